/*
 * commit.c - the write queue and the group commit: every queued put and delete
 * is applied in one write transaction before the loop sleeps, each import and
 * dry run in its own, and only then are the writers answered, so a reply that
 * says "committed" is durable.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "mem.h"
#include "obs_err.h"
#include "period.h"

void
commit_pending_free(pending_t *p)
{
    if (p == NULL)
        return;
    ops_fini(&p->ops);
    issue_list_fini(&p->issues);
    free(p);
}

void
commit_queue(engine_t *self, pending_t *p)
{
    p->next = NULL;
    if (self->pending_tail)
        self->pending_tail->next = p;
    else
        self->pending_head = p;
    self->pending_tail = p;
}

/* Makes room in the map ahead of a big write. Only for big writes
 * (imports): a dry run would grow the map for nothing, and near map_max
 * every small write would ask again. */
static void
reserve_room(engine_t *self, pending_t **group, size_t n, bool dry_run)
{
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += group[i]->ops.store_bytes;
    if (!dry_run && need >= RESERVE_MIN && !obsdb_reserve(self->db, need))
        log_info("store: no room made ahead for a write of ~%" PRIu64
                 " MiB (map_max?); it may still fit",
                 need >> 20);
}

/* One try at the group's transaction: committed, or aborted (a dry run's
 * always, its origin_seq back to saved_seq). */
static int
group_txn(engine_t *self, pending_t **group, size_t n, bool dry_run,
          uint64_t saved_seq)
{
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->db, true, &txn);
    for (size_t i = 0; rc == OBS_OK && i < n; i++)
        rc = apply_pending(self, txn, group[i]);
    if (rc == OBS_OK && !dry_run) {
        rc = obsdb_meta_put_u64(txn, "origin_seq", self->origin_seq);
        if (rc == OBS_OK)
            rc = obsdb_meta_put_u64(txn, "hlc", self->hlc.last);
    }
    if (rc == OBS_OK && !dry_run) {
        rc = obsdb_commit(&txn);
    } else {
        obsdb_abort(&txn);
        if (dry_run)
            self->origin_seq = saved_seq;
    }
    return rc;
}

/* After n writes were committed: the counters, and replication told. */
static void
group_committed(engine_t *self, size_t n, uint64_t saved_seq)
{
    self->commits++;
    self->writes_grouped += n;
    if (self->hub)
        repl_hub_log_grew(self->hub);
    if (self->node && self->origin_seq != saved_seq)
        repl_node_outbox_grew(self->node, self->origin_seq);
}

/* Applies the group in one transaction; grows the map and retries on
 * MDB_MAP_FULL. Dry runs apply in a write txn that is then aborted, so the
 * counts are exactly what a real run would give. */
int
commit_group(engine_t *self, pending_t **group, size_t n, bool dry_run)
{
    /* A hub applies its state behind its log: local writes read the state
     * (current versions, unchanged checks), so it must hold the whole log. */
    if (self->hub) {
        int rc = repl_hub_catch_up(self->hub);
        if (rc != OBS_OK)
            return rc;
    }
    reserve_room(self, group, n, dry_run);
    for (;;) {
        uint64_t saved_seq = self->origin_seq;
        int rc = group_txn(self, group, n, dry_run, saved_seq);
        if (rc == OBS_OK) {
            if (!dry_run)
                group_committed(self, n, saved_seq);
            return OBS_OK;
        }
        self->origin_seq = saved_seq;
        if (rc == OBS_ESTOREFULL && obsdb_grow(self->db)) {
            log_notice("store: map grown, retrying %zu write(s)", n);
            continue;
        }
        if (rc == OBS_ESTOREFULL)
            self->store_full++;
        return rc;
    }
}

static void
finish_group(engine_t *self, pending_t **group, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        pending_t *p = group[i];
        if (rc == OBS_OK) {
            counts_add(&p->counts, &p->prior);
            api_reply_summary(self, &p->peer, &p->issues, &p->counts,
                              p->rejected, !p->dry_run, p->batch_id);
        } else if (p->rows_committed_before > 0) {
            ctl_reply_error(self->ctl, &p->peer, rc,
                            "the last part of the import failed (%s); the "
                            "%" PRIu64 " row(s) of its earlier parts stay "
                            "committed (batch %s)",
                            obs_strerror(rc), p->rows_committed_before,
                            p->batch_id);
        } else if (rc == OBS_ESTOREFULL) {
            ctl_reply_error(self->ctl, &p->peer, rc,
                            "store map is full (map_max = %" PRIu64
                            " bytes): nothing of this write was stored; "
                            "raise map_max",
                            self->cfg->map_max);
        } else {
            ctl_reply_error(self->ctl, &p->peer, rc,
                            "write failed, nothing stored: %s",
                            obs_strerror(rc));
        }
        commit_pending_free(p);
    }
}

/* before_sleep: one transaction for all queued single writes, one per
 * import, one per dry run. */
/* Commits group[0..n) as one transaction and answers each writer. */
static void
commit_and_finish(engine_t *self, pending_t **group, size_t n, bool dry_run)
{
    if (n == 0)
        return;
    int rc = commit_group(self, group, n, dry_run);
    if (rc != OBS_OK)
        log_warnr(rc, "%s of %zu write(s) failed (first: batch %s)",
                  n > 1 ? "group commit" : "commit", n, group[0]->batch_id);
    finish_group(self, group, n, rc);
}

/* before_sleep: consecutive puts and deletes share one transaction; an
 * import or a dry run gets one of its own. Requests are applied in arrival
 * order, so a later write always wins over an earlier one. */
void
commit_flush(engine_t *self)
{
    enum { GROUP_STACK = 4096 };
    pending_t *group[GROUP_STACK];
    size_t n = 0, max = self->cfg->group_commit_max;
    if (max > GROUP_STACK)
        max = GROUP_STACK;
    pending_t *p = self->pending_head;
    self->pending_head = self->pending_tail = NULL;
    while (p != NULL) {
        pending_t *next = p->next;
        if (p->is_import || p->dry_run) {
            commit_and_finish(self, group, n, false); /* earlier writes first */
            n = 0;
            commit_and_finish(self, &p, 1, p->dry_run);
        } else {
            group[n++] = p;
            if (n == max) {
                commit_and_finish(self, group, n, false);
                n = 0;
            }
        }
        p = next;
    }
    commit_and_finish(self, group, n, false);
}

pending_t *
commit_pending_new(const ctl_peer_t *peer, const char *kind, uint64_t stamp_ms)
{
    pending_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->peer = *peer;
    issue_list_init(&p->issues, ISSUES_PER_REPLY);
    (void)snprintf(p->batch_id, sizeof(p->batch_id), "%s-%" PRIx64 "-%" PRIu64,
                   kind, stamp_ms, peer->corr_id);
    return p;
}
