/*
 * hub_state.c - the hub's keyed state (current versions, history) applied
 * behind its log, and the log's trimming.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_int.h"
#include "log.h"
#include "obs_err.h"

/* ------------------------------------------------- state behind the log */

typedef struct {
    repl_hub_t *hub;
    obsdb_txn_t *txn;
    uint64_t expect;      /* the hub_seq the next entry must have */
    uint64_t *superseded; /* per peer, added once the txn committed */
} state_apply_t;

#ifndef NDEBUG
/* Bytewise, padding and the bytes after each string's NUL included: every
 * version reaches the cache as a whole-struct copy of a zeroed decode
 * (hub_prep.c, hub_accept.c), so any difference is a real one. */
static bool
same_bytes(const obs_version_t *a, const obs_version_t *b)
{
    /* NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): padding copied */
    return memcmp(a, b, sizeof(*a)) == 0;
}
#endif

static int
state_cb(uint64_t hub_seq, const uint8_t *key, size_t klen, const uint8_t *rec,
         size_t rlen, void *arg)
{
    state_apply_t *a = arg;
    if (obsdb_txn_lookups(a->txn) >= HUB_STATE_LOOKUPS_MAX)
        return STATE_TXN_FULL;  /* the rest in the next transaction */
    if (hub_seq != a->expect) { /* never claim entries the log lacks */
        log_errx("hub: log entry %" PRIu64 " is missing; the state stays at "
                 "%" PRIu64,
                 a->expect, a->expect - 1);
        return OBS_ESTORE;
    }
    a->expect++;
    obs_version_t v;
    bool applied = false;
    bool key_ok = obsdb_key_len_fits(klen);
    /* the version as accepted moments ago, else read back from the record */
    const obs_version_t *ver =
        key_ok ? version_cache_find(&a->hub->vcache, hub_seq) : NULL;
#ifndef NDEBUG /* debug builds prove the cache is the record's version */
    if (ver && (codec_obs_decode_version(rec, rlen, &v) != OBS_OK ||
                !same_bytes(&v, ver))) {
        log_errx("hub: cached version of log entry %" PRIu64
                 " differs from its record",
                 hub_seq);
        abort();
    }
#endif
    if (ver == NULL && key_ok &&
        codec_obs_decode_version(rec, rlen, &v) == OBS_OK)
        ver = &v;
    if (ver == NULL) {
        /* no store can hold it: skipped here as at every node, rather than
         * stopping the state for good */
        log_warnx("hub: log entry %" PRIu64 " cannot be applied (%s); "
                  "skipped",
                  hub_seq, key_ok ? "undecodable version" : "bad key");
        return OBS_OK;
    }
    /* any error now is the store's: the state stops here and says so */
    int rc =
        obsdb_put_replicated_raw(a->txn, key, klen, rec, rlen, ver, &applied);
    if (rc == OBS_OK && !applied) /* lost to a newer version of its key */
        for (size_t i = 0; i < a->hub->n_peers; i++)
            if (strcmp(a->hub->peers[i].node_id, ver->origin) == 0)
                a->superseded[i]++;
    return rc;
}

/* Applies up to max log entries after state_applied to the state, with the
 * new state_applied, in one lazy transaction (a system crash may undo it:
 * the log is applied again from the state_applied it leaves; growing the
 * map on MDB_MAP_FULL). On failure nothing moved: the next turn retries. */
int
hub_apply_state(repl_hub_t *self, size_t max)
{
    state_apply_t a = {
        .hub = self, .superseded = calloc(self->n_peers + 1, sizeof(uint64_t))};
    if (a.superseded == NULL)
        return OBS_ENOMEM;
    int rc = OBS_ESTOREFULL;
    for (int attempt = 0; attempt < 8; attempt++) {
        memset(a.superseded, 0, self->n_peers * sizeof(uint64_t));
        a.expect = self->state_applied + 1;
        uint64_t last = self->state_applied;
        /* lazy: the state is rebuilt from the log if a crash undoes it */
        rc = obsdb_begin_lazy(self->env.db, &a.txn);
        if (rc == OBS_OK)
            rc = obsdb_log_walk(a.txn, self->state_applied, max,
                                HUB_STATE_APPLY_BYTES, state_cb, &a, &last);
        if (rc == STATE_TXN_FULL)
            rc = OBS_OK;
        if (rc == OBS_OK)
            rc = obsdb_meta_put_u64(a.txn, STATE_APPLIED, last);
        if (rc == OBS_OK)
            rc = obsdb_commit(&a.txn);
        else
            obsdb_abort(&a.txn);
        if (rc == OBS_OK) {
            self->state_applied = last;
            for (size_t i = 0; i < self->n_peers; i++)
                self->peers[i].superseded += a.superseded[i];
            break;
        }
        if (rc != OBS_ESTOREFULL || !obsdb_grow(self->env.db))
            break;
    }
    free(a.superseded);
    return rc;
}

int
repl_hub_store_local(obsdb_txn_t *txn, obs_t *o)
{
    uint64_t applied = 0;
    int rc = obsdb_meta_get_u64(txn, STATE_APPLIED, &applied);
    if (rc == OBS_ENOENT)
        rc = OBS_OK;
    if (rc == OBS_OK)
        rc = obsdb_log_append(txn, o);
    if (rc == OBS_OK)
        rc = obsdb_put(txn, o);
    /* The state holds this entry now; if it held every earlier one too,
     * say so, else the entry is applied again later, a no-op. */
    if (rc == OBS_OK && applied + 1 == o->ver.hub_seq)
        rc = obsdb_meta_put_u64(txn, STATE_APPLIED, o->ver.hub_seq);
    return rc;
}

int
repl_hub_catch_up(repl_hub_t *self)
{
    while (self->state_applied < self->log_last) {
        uint64_t before = self->state_applied;
        int rc = hub_apply_state(self, HUB_STATE_APPLY_MAX);
        if (rc != OBS_OK)
            return rc;
        if (self->state_applied == before)
            return OBS_ESTORE; /* the log ends before log_last: malformed */
    }
    self->state_done_ms = hub_now_ms();
    return OBS_OK;
}

/* Is it time to apply the log to the state? While publishes stream in,
 * only once HUB_STATE_APPLY_MAX entries wait or HUB_STATE_DELAY_MS passed
 * since the state last caught up: fewer, fuller transactions, so fewer
 * fsyncs. As soon as a turn commits nothing, at once. */
bool
hub_state_due(const repl_hub_t *self, uint64_t now)
{
    if (self->hold_state || self->state_applied >= self->log_last ||
        now < self->state_retry_ms)
        return false;
    return !self->committed ||
           self->log_last - self->state_applied >= HUB_STATE_APPLY_MAX ||
           now - self->state_done_ms >= HUB_STATE_DELAY_MS;
}

void
hub_trim_log(repl_hub_t *self)
{
    uint64_t keep = self->env.cfg->log_keep;
    if (self->log_last - self->state_applied > keep)
        keep = self->log_last - self->state_applied; /* not applied yet */
    if (self->log_last < self->log_first ||
        self->log_last - self->log_first + 1 <= keep)
        return;
    obsdb_txn_t *txn = NULL;
    size_t deleted = 0;
    int rc = obsdb_begin_lazy(self->env.db, &txn); /* undone: trimmed again */
    if (rc == OBS_OK)
        rc = obsdb_log_trim(txn, keep, 50000, &deleted);
    if (rc == OBS_OK)
        rc = obsdb_log_bounds(txn, &self->log_first, &self->log_last);
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc != OBS_OK)
        log_warnr(rc, "hub: log trim failed");
    else if (deleted)
        log_info("hub: log trimmed: %zu entries, now %" PRIu64 "..%" PRIu64,
                 deleted, self->log_first, self->log_last);
}
