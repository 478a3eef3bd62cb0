/*
 * repl_node.c - node end of replication (see repl_node.h, PROTOCOL.md §5).
 *
 * The state machine decides; this file performs. Every change from the hub
 * is stored as received, under the key its identity gives (read in place:
 * codec_obs_decode_id, obs_key_encode_id), by obsdb_put_replicated_raw (the
 * greater (hlc, origin) wins, equal versions are no-ops, so a resent or
 * replayed batch changes nothing), and the new cursor is written in the same
 * transaction, so after a crash the node resumes exactly where its data is.
 * Those transactions are lazy (obsdb_begin_lazy): a system crash may undo the
 * last one, cursor and data together, and the hub sends it again. The outbox is
 * trimmed only after the hub acknowledged a durable commit.
 */
#include "repl_node.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "link.h"
#include "log.h"
#include "node_rebase.h"
#include "obs_err.h"
#include "obs_key.h"
#include "repl_fsm.h"
#include "sha256.h"

/* The outbox is trimmed (a commit) when OUTBOX_TRIM_MS passed since the
 * last trim or OUTBOX_TRIM_EVERY changes were acknowledged since. */
#define OUTBOX_TRIM_MS    1000
#define OUTBOX_TRIM_EVERY 100000
#define CURSOR_SAVE_MS    1000 /* see repl_node.cursor_unsaved */

struct repl_node {
    repl_env_t env;
    void *sock;
    rn_fsm_t fsm;
    char hub_epoch[OBS_ID_MAX + 1];  /* of the hub our cursor refers to */
    char next_epoch[OBS_ID_MAX + 1]; /* from the current Welcome */
    char **dfs, **areas;
    size_t n_dfs, n_areas;
    char hash[65];
    char sub_hash[65]; /* of the subscription, kept beside the cursor */
    uint64_t log_last, last_applied_ms, snapshots, applied, bytes_in;
    uint64_t trimmed; /* outbox removed (and pub_acked stored) up to here */
    uint64_t trimmed_ms;
    /* The outbox was restored (restore_outbox: only current versions come
     * back, so its origin_seqs have gaps): trimmed at every ack until it
     * is empty, so status can count what waits as stored - (acked -
     * trimmed). */
    bool trim_now;
    /* Cursor moved by batches with no change for us (all filtered out or
     * our own) and not stored yet: a commit (an fsync) for nothing but a
     * cursor would cost an importing node one per batch it is streamed.
     * Stored at most every CURSOR_SAVE_MS, before a Welcome and at exit; a
     * crash before that only has the hub send those entries again. */
    uint64_t cursor_unsaved, cursor_saved_ms;
    const codec_env_t *cur; /* message being dispatched */
    bool cur_taken;         /* ... and kept in batches[] */
    /* LogBatches accepted by the state machine and not yet committed: they
     * are applied together in one transaction when the socket is drained,
     * so a catch-up costs one fsync per read burst, not one per batch. */
    codec_env_t *batches[REPL_WINDOW * 4];
    size_t n_batches;
    uint64_t snap_received;  /* changes of the snapshot being received */
    char *pending_structure; /* deferred while imports are open */
    size_t pending_len;
    /* the hub's clock, from Welcome and Heartbeat: repl_node_clock_check,
     * publish_limit */
    hlc_ref_t hub_clock;
    uint64_t restamped, renumbered; /* by node_rebase, this run */
    /* outbox changes stamped past what the hub accepts (it refused one:
     * R-clock), from the first to the end: re-stamped at the next Welcome,
     * or held there until the hub's clock catches up (node_rebase.h) */
    uint64_t pending_rejects;
    uint64_t held_warned_ms;
    /* the link (link.h): Publishes sized and windowed by what the acks
     * confirm; the hub's stream measured as it arrives */
    link_t up;
    uint64_t in_bytes, in_start_ms, rate_in_bps;
    uint64_t applied_from, applied_start_ms, apply_rate; /* entries/s */
    uint64_t sessions, reconnects;
    bool progress;    /* this session moved something */
    unsigned stalled; /* sessions in a row that ended without progress */
    uint64_t session_ms;
};

static uint64_t
now_ms(void)
{
    return hlc_mono_ms(); /* timers only: a clock step must not fire them */
}

static void node_step(repl_node_t *self, rn_event_t *ev);

/* ----------------------------------------------------------- sending */

/* Sends env; returns its size (0 when not sent). */
static uint64_t
send_env(repl_node_t *self, codec_env_t *env)
{
    uint64_t bytes = 0;
    if (self->sock == NULL)
        return 0;
    int rc = repl_send(self->sock, NULL, 0, env, &bytes);
    if (rc != OBS_OK)
        log_debug("node: frame to the hub dropped: %s", obs_strerror(rc));
    return rc == OBS_OK ? bytes : 0;
}

static void
send_hello(repl_node_t *self)
{
    Obsync__V1__Subscription sub;
    obsync__v1__subscription__init(&sub);
    sub.n_dataflows = self->n_dfs;
    sub.dataflows = self->dfs;
    sub.n_areas = self->n_areas;
    sub.areas = self->areas;
    Obsync__V1__Hello h;
    obsync__v1__hello__init(&h);
    h.node_id = self->env.cfg->node_id;
    h.node_epoch = (char *)(uintptr_t)obsdb_epoch(self->env.db);
    h.cursor = self->fsm.cursor;
    h.hub_epoch = self->hub_epoch;
    h.subscription = &sub;
    h.structure_hash = self->hash;
    h.provider = self->env.cfg->provider;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_HELLO;
    env.hello = &h;
    send_env(self, &env);
}

static void
send_credit(repl_node_t *self, uint32_t n, bool resync)
{
    Obsync__V1__Credit c;
    obsync__v1__credit__init(&c);
    c.cursor = self->fsm.cursor;
    c.batches = n;
    c.resync = resync;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_CREDIT;
    env.credit = &c;
    send_env(self, &env);
}

static void
send_heartbeat(repl_node_t *self)
{
    Obsync__V1__Heartbeat h;
    obsync__v1__heartbeat__init(&h);
    h.now_ms = hlc_wall_ms();
    h.cursor = self->fsm.cursor;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &h;
    send_env(self, &env);
}

typedef struct {
    ProtobufCBinaryData *items;
    size_t n;
    uint64_t first, last;
    uint64_t stamp_limit; /* changes stamped past it wait (UINT64_MAX: none) */
    bool held;            /* ... and one did */
} outbatch_t;

static int
outbox_cb(uint64_t origin_seq, const uint8_t *key, size_t klen,
          const uint8_t *rec, size_t rlen, void *arg)
{
    (void)key;
    (void)klen;
    outbatch_t *b = arg;
    obs_version_t ver;
    if (b->stamp_limit != UINT64_MAX &&
        (codec_obs_decode_version(rec, rlen, &ver) != OBS_OK ||
         ver.hlc > b->stamp_limit)) {
        b->held = true; /* the hub would refuse it: see publish_limit */
        return 1;
    }
    /* zero copy: the outbox holds each change encoded as it goes out */
    b->items[b->n].data = (uint8_t *)(uintptr_t)rec;
    b->items[b->n].len = rlen;
    if (b->n == 0)
        b->first = origin_seq;
    b->last = origin_seq;
    b->n++;
    return 0;
}

/* The stamp past which the hub would refuse a change of ours now (our
 * estimate of its clock + its bound - a margin: node_rebase.h), or
 * UINT64_MAX when nothing of ours can be stamped past it (every local stamp
 * is at most our HLC) or the hub's clock is unknown. */
static uint64_t
publish_limit(repl_node_t *self)
{
    uint64_t hub_now = hlc_ref_now(&self->hub_clock, now_ms());
    if (hub_now == 0)
        return UINT64_MAX;
    uint64_t limit =
        HLC_MAKE(hub_now + REPL_MAX_SKEW_MS - REBASE_MARGIN_MS, 0xffff);
    return self->env.hlc->last > limit ? limit : UINT64_MAX;
}

/* Sends the next Publish after origin_seq `after`; returns its last seq or
 * 0 if the outbox had nothing after it, or only changes stamped past what
 * the hub accepts now (they wait: pending_rejects). */
static uint64_t
send_publish(repl_node_t *self, uint64_t after)
{
    if (!link_may_send(&self->up))
        return 0; /* the link is full: the next ack sends it */
    outbatch_t b = {.items =
                        calloc(REPL_BATCH_MAX, sizeof(ProtobufCBinaryData)),
                    .stamp_limit = publish_limit(self)};
    if (b.items == NULL)
        return 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK) /* sized for the link (link.h) */
        rc = obsdb_outbox_walk_raw(txn, after, REPL_BATCH_MAX,
                                   link_batch_bytes(&self->up), outbox_cb, &b);
    if (rc == 1) /* stopped before a change stamped too far ahead */
        rc = OBS_OK;
    if (b.held && b.n == 0 && self->pending_rejects == 0) {
        self->pending_rejects = self->fsm.outbox_last - after;
        if (now_ms() - self->held_warned_ms >= 60000) { /* once a minute */
            self->held_warned_ms = now_ms();
            log_warnx("node: %" PRIu64 " change(s) from origin_seq %" PRIu64
                      " are stamped further ahead of the hub's clock than "
                      "it accepts: they wait in the outbox",
                      self->pending_rejects, after + 1);
        }
    } else if (b.n > 0) {
        self->pending_rejects = 0;
    }
    if (rc == OBS_OK && b.n > 0) {
        Obsync__V1__Publish p;
        obsync__v1__publish__init(&p);
        p.first_seq = b.first;
        p.last_seq = b.last;
        p.n_changes = b.n;
        p.changes = b.items;
        codec_env_t env;
        obsync__v1__envelope__init(&env);
        env.body_case = OBSYNC__V1__ENVELOPE__BODY_PUBLISH;
        env.publish = &p;
        /* packs while the map pages are valid */
        link_sent(&self->up, send_env(self, &env), b.last, hlc_mono_us());
    } else if (rc != OBS_OK) {
        log_warnr(rc, "node: reading the outbox");
    }
    obsdb_abort(&txn);
    free(b.items);
    return b.n > 0 && rc == OBS_OK ? b.last : 0;
}

/* ----------------------------------------------------------- applying */

/* The hub's log was applied up to cursor: measures entries per second
 * (for the time left in status) over spans of a second or more. */
static void
note_applied(repl_node_t *self, uint64_t before, uint64_t cursor)
{
    uint64_t now = now_ms();
    self->progress = true;
    if (self->applied_start_ms == 0) {
        self->applied_start_ms = now;
        self->applied_from = before;
    }
    if (now - self->applied_start_ms >= 1000 && cursor > self->applied_from) {
        uint64_t r = (cursor - self->applied_from) * 1000 /
                     (now - self->applied_start_ms);
        self->apply_rate = self->apply_rate ? (self->apply_rate + r) / 2 : r;
        self->applied_start_ms = now;
        self->applied_from = cursor;
    }
}

typedef struct {
    ProtobufCBinaryData *changes;
    size_t n;
} change_set_t;

static int
apply_set(repl_node_t *self, obsdb_txn_t *txn, const change_set_t *set,
          uint64_t *applied, uint64_t *last_ms)
{
    int rc = OBS_OK;
    uint64_t wall = hlc_wall_ms(); /* one clock read a batch */
    for (size_t i = 0; rc == OBS_OK && i < set->n; i++) {
        const uint8_t *enc = set->changes[i].data;
        size_t len = set->changes[i].len;
        codec_obs_id_t id; /* key and version are all it takes */
        uint8_t key[OBS_KEY_MAX];
        bool done = false;
        rc = codec_obs_decode_id(enc, len, &id);
        if (rc == OBS_OK) {
            int klen = obs_key_encode_id(&id.id, key, sizeof(key));
            rc = klen < 0 ? klen
                          : obsdb_put_replicated_raw(txn, key, (size_t)klen,
                                                     enc, len, &id.ver, &done);
        }
        if (rc == OBS_OK) {
            if (HLC_MS(id.ver.hlc) <= wall + REPL_MAX_SKEW_MS)
                hlc_observe(self->env.hlc, id.ver.hlc, wall);
            *applied += done;
            *last_ms = HLC_MS(id.ver.hlc);
        }
    }
    return rc;
}

/* Applies the change sets (and, with set_cursor, the new cursor) in one
 * transaction. */
static int
apply_changes(repl_node_t *self, const change_set_t *sets, size_t n_sets,
              bool set_cursor, uint64_t cursor)
{
    for (int attempt = 0; attempt < 8; attempt++) {
        obsdb_txn_t *txn = NULL;
        /* lazy: if a crash undoes it, the cursor goes back with the data
         * and the hub sends the batches again */
        int rc = obsdb_begin_lazy(self->env.db, &txn);
        uint64_t applied = 0, last_ms = 0;
        for (size_t i = 0; rc == OBS_OK && i < n_sets; i++)
            rc = apply_set(self, txn, &sets[i], &applied, &last_ms);
        if (rc == OBS_OK && set_cursor) {
            rc = obsdb_meta_put_u64(txn, "hub_cursor", cursor);
            if (rc == OBS_OK)
                rc = obsdb_meta_put_str(txn, "hub_epoch", self->next_epoch);
            if (rc == OBS_OK)
                rc = obsdb_meta_put_str(txn, "sub_hash", self->sub_hash);
        }
        if (rc == OBS_OK)
            rc = obsdb_meta_put_u64(txn, "hlc", self->env.hlc->last);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc == OBS_OK) {
            self->applied += applied;
            if (last_ms)
                self->last_applied_ms = last_ms;
            if (set_cursor) {
                snprintf(self->hub_epoch, sizeof(self->hub_epoch), "%s",
                         self->next_epoch);
                self->cursor_unsaved = 0;
                self->cursor_saved_ms = now_ms();
            }
            return OBS_OK;
        }
        if (rc != OBS_ESTOREFULL || !obsdb_grow(self->env.db))
            return rc;
    }
    return OBS_ESTOREFULL;
}

static void
ack_outbox(repl_node_t *self, uint64_t upto)
{
    if (upto <= self->trimmed)
        return;
    obsdb_txn_t *txn = NULL;
    /* lazy: entries a crash brings back are resent, and the hub drops them */
    int rc = obsdb_begin_lazy(self->env.db, &txn);
    if (rc == OBS_OK)
        rc = obsdb_outbox_ack(txn, upto);
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "pub_acked", upto);
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc != OBS_OK) /* harmless: the entries are resent and deduplicated */
        log_warnr(rc, "node: trimming the outbox up to %" PRIu64, upto);
    else
        self->trimmed = upto;
    self->trimmed_ms = now_ms();
    if (self->trimmed >= self->fsm.outbox_last)
        self->trim_now = false;
}

/* Trims when it is time (OUTBOX_TRIM_MS, OUTBOX_TRIM_EVERY). */
static void
maybe_ack_outbox(repl_node_t *self, uint64_t now)
{
    uint64_t acked = self->fsm.pub_acked;
    if (acked > self->trimmed &&
        (self->trim_now || now - self->trimmed_ms >= OUTBOX_TRIM_MS ||
         acked - self->trimmed >= OUTBOX_TRIM_EVERY))
        ack_outbox(self, acked);
}

/* The hub holds our changes only up to `after` although it acknowledged
 * more: it was restored from a backup or wiped. Our later changes go back to
 * the outbox from the stored versions and are published again. */
static void
restore_outbox(repl_node_t *self, uint64_t after)
{
    size_t n = 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, true, &txn);
    if (rc == OBS_OK)
        rc = obsdb_outbox_restore(txn, after, UINT64_MAX, &n);
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "pub_acked", after);
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not restore the outbox after %" PRIu64,
                 after);
        return;
    }
    self->trimmed = after;
    self->trim_now = true; /* see trim_now */
    log_warnx("node: the hub holds our changes only up to %" PRIu64
              " (restored from a backup, or wiped?): %zu change(s) put "
              "back in the outbox to publish again",
              after, n);
}

/* Before the state machine sees a Welcome: takes the hub's clock, and
 * renumbers (this store is an older copy of itself) or re-stamps (stamped
 * too far ahead of the hub's clock) the changes not acknowledged yet, so
 * that none is dropped or refused (node_rebase.h). ev->to gets the outbox's
 * new last origin_seq when it changed. False when the rewrite failed: the
 * session is then closed before anything is published, and the next
 * Welcome tries again. */
static bool
rebase_on_welcome(repl_node_t *self, const Obsync__V1__Welcome *w,
                  rn_event_t *ev)
{
    hlc_ref_sample(&self->hub_clock, w->now_ms, now_ms());
    uint64_t last = w->last_origin_seq, acked = self->fsm.pub_acked;
    uint64_t made = *self->env.origin_seq;
    bool older = false;
    int rc = node_rebase_is_older_copy(self->env.db, last, w->last_origin_hlc,
                                       made, acked, &older);
    if (rc != OBS_OK) { /* not knowing, nothing may be dropped as acked */
        log_warnr(rc, "node: reading the outbox to compare with the hub's");
        return false;
    }
    rebase_plan_t plan = {.after = last > acked ? last : acked,
                          .stamp_limit = UINT64_MAX,
                          .floor_hlc = w->last_origin_hlc};
    uint64_t hub_now = hlc_ref_now(&self->hub_clock, now_ms());
    if (hub_now != 0 && last >= acked) {
        plan.hub_now_ms = hub_now;
        plan.stamp_limit =
            HLC_MAKE(hub_now + REPL_MAX_SKEW_MS - REBASE_MARGIN_MS, 0xffff);
    }
    if (older) {
        plan.after = acked;
        plan.renumber_after = last;
    }
    if (!older && self->env.hlc->last <= plan.stamp_limit)
        return true; /* nothing of ours is stamped past the hub's bound */
    rebase_result_t res;
    rc = node_rebase_run(self->env.db, &plan, self->env.hlc,
                         self->env.origin_seq, &res);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not renumber or re-stamp the outbox");
        return false;
    }
    self->restamped += res.restamped;
    self->renumbered += res.renumbered;
    self->pending_rejects = res.held;
    if (older) {
        self->trimmed = last; /* stored with the rewrite */
        ev->to = res.last_seq;
        log_warnx("node: this store is an older copy of itself (restored "
                  "from a backup?): the hub holds our changes up to %" PRIu64
                  " and this copy made %" PRIu64 "; %zu change(s) not "
                  "acknowledged are renumbered %" PRIu64 "..%" PRIu64
                  " and published, the hub's come back through the log",
                  last, made, res.renumbered, last + 1, res.last_seq);
    }
    if (plan.stamp_limit != UINT64_MAX && res.restamped > 0)
        log_warnx(
            "node: %zu change(s) stamped more than %d s ahead of the "
            "hub's clock (this clock is %+.1f s off) re-stamped from "
            "the hub's clock",
            res.restamped, (REPL_MAX_SKEW_MS - REBASE_MARGIN_MS) / 1000,
            (double)hlc_ref_skew(&self->hub_clock, hlc_wall_ms(), now_ms()) /
                1000.0);
    if (res.held > 0)
        log_warnx("node: %zu change(s) stamped further ahead of the hub's "
                  "clock than it accepts cannot be re-stamped (a new stamp "
                  "must stay above what the hub holds of ours, and that is "
                  "past its bound too: its clock went back?): they wait in "
                  "the outbox for the hub's clock",
                  res.held);
    else if (!older && res.restamped == 0)
        log_warnx("node: this node's clock stamp ran past the hub's bound; "
                  "brought back to the hub's clock");
    return true;
}

/* A snapshot chunk is applied at once (the cursor does not move). */
static bool
apply_chunk(repl_node_t *self, rn_event_t *next)
{
    change_set_t set = {NULL, 0};
    if (self->cur && self->cur->snapshot_chunk) {
        set.changes = self->cur->snapshot_chunk->changes;
        set.n = self->cur->snapshot_chunk->n_changes;
    }
    int rc = apply_changes(self, &set, 1, false, 0);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not apply a snapshot chunk");
        next->type = RN_EV_PROTO_ERROR; /* reconnect: the snapshot restarts */
        return true;
    }
    self->progress = true;
    next->type = RN_EV_APPLIED;
    next->to = 0;
    return true;
}

/* A LogBatch is kept until the socket is drained (flush_batches). */
static void
keep_batch(repl_node_t *self)
{
    if (self->cur == NULL || self->cur->log_batch == NULL ||
        self->n_batches == sizeof(self->batches) / sizeof(self->batches[0]))
        return; /* cannot happen: flushed before it fills */
    self->batches[self->n_batches++] = (codec_env_t *)(uintptr_t)self->cur;
    self->cur_taken = true;
}

static void
drop_batches(repl_node_t *self)
{
    for (size_t i = 0; i < self->n_batches; i++)
        codec_envelope_free(&self->batches[i]);
    self->n_batches = 0;
}

/* Commits every kept LogBatch in one transaction with the last one's
 * cursor, then tells the state machine, batch by batch. */
static void
flush_batches(repl_node_t *self)
{
    size_t n = self->n_batches;
    if (n == 0)
        return;
    change_set_t sets[sizeof(self->batches) / sizeof(self->batches[0])];
    uint64_t tos[sizeof(self->batches) / sizeof(self->batches[0])];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const Obsync__V1__LogBatch *b = self->batches[i]->log_batch;
        sets[i].changes = b->changes;
        sets[i].n = b->n_changes;
        tos[i] = b->to_seq;
        total += b->n_changes;
        if (b->log_last > self->log_last)
            self->log_last = b->log_last;
    }
    int rc = OBS_OK;
    uint64_t before = self->fsm.cursor;
    if (total == 0 && strcmp(self->next_epoch, self->hub_epoch) == 0)
        self->cursor_unsaved = tos[n - 1]; /* nothing to apply */
    else
        rc = apply_changes(self, sets, n, true, tos[n - 1]);
    if (rc == OBS_OK && tos[n - 1] > before)
        note_applied(self, before, tos[n - 1]);
    drop_batches(self);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not apply %zu change(s) from the hub", total);
        rn_event_t ev = {.type = RN_EV_PROTO_ERROR, .now_ms = now_ms()};
        node_step(self, &ev);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rn_event_t ev = {
            .type = RN_EV_APPLIED, .now_ms = now_ms(), .to = tos[i]};
        node_step(self, &ev);
    }
}

/* Stores a cursor that empty batches moved (see cursor_unsaved). */
static void
save_cursor(repl_node_t *self)
{
    if (self->cursor_unsaved == 0)
        return;
    int rc = apply_changes(self, NULL, 0, true, self->cursor_unsaved);
    if (rc != OBS_OK) /* harmless: the hub sends those entries again */
        log_warnr(rc, "node: storing cursor %" PRIu64, self->cursor_unsaved);
    self->cursor_unsaved = 0;
}

static bool
finish_snapshot(repl_node_t *self, uint64_t fence)
{
    int rc = apply_changes(self, NULL, 0, true, fence);
    if (rc != OBS_OK) {
        log_errr(rc, "node: snapshot received but its cursor not committed");
        return false;
    }
    self->snapshots++;
    log_notice("node: snapshot complete, cursor %" PRIu64, fence);
    return true;
}

/* ------------------------------------------------------------ actions */

static void
connect_hub(repl_node_t *self)
{
    self->sock = zmq_socket(self->env.zctx, ZMQ_DEALER);
    if (self->sock == NULL) {
        log_warnx("node: socket: %s", zmq_strerror(zmq_errno()));
        return;
    }
    char id[OBS_ID_MAX + 24];
    snprintf(id, sizeof(id), "%s-%08x", self->env.cfg->node_id,
             (unsigned)(now_ms() & 0xffffffffu));
    int linger = 0, hwm = 1000, ivl = 100, ivl_max = 5000;
    int64_t maxmsg = (int64_t)self->env.cfg->max_frame;
    zmq_setsockopt(self->sock, ZMQ_ROUTING_ID, id, strlen(id));
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(self->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(self->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
                   sizeof(ivl_max));
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (zmq_connect(self->sock, self->env.cfg->hub_endpoint) != 0)
        log_warnx("node: connect %s: %s", self->env.cfg->hub_endpoint,
                  zmq_strerror(zmq_errno()));
}

static void
disconnect_hub(repl_node_t *self)
{
    if (self->sock)
        zmq_close(self->sock);
    self->sock = NULL;
}

static void
session_started(repl_node_t *self)
{
    self->reconnects += self->sessions > 0;
    self->sessions++;
    self->progress = false;
    self->session_ms = now_ms();
    self->in_start_ms = 0;
    self->applied_start_ms = 0;
    link_reset(&self->up);
}

/* A session ended: one that moved nothing (no batch or chunk applied, no
 * publish acked) counts toward "no progress" (repl_session_ended). */
static void
session_ended(repl_node_t *self)
{
    link_reset(&self->up);
    repl_session_ended("node", self->progress, &self->stalled,
                       (double)(now_ms() - self->session_ms) / 1000.0,
                       self->up.rate_bps ? self->up.rate_bps
                                         : self->rate_in_bps,
                       (unsigned)self->fsm.dead_ms);
}

/* Performs one action; may produce a follow-up event (*next). */
static bool
do_action(repl_node_t *self, const rn_action_t *a, rn_event_t *next)
{
    memset(next, 0, sizeof(*next));
    next->now_ms = now_ms();
    switch (a->type) {
    case RN_A_CONNECT:
        connect_hub(self);
        session_started(self);
        return false;
    case RN_A_DISCONNECT:
        drop_batches(self); /* not applied: they come again from the cursor */
        disconnect_hub(self);
        session_ended(self);
        return false;
    case RN_A_SEND_HELLO:
        send_hello(self);
        return false;
    case RN_A_SEND_CREDIT:
        send_credit(self, (uint32_t)a->n, a->resync);
        return false;
    case RN_A_APPLY_BATCH:
        keep_batch(self);
        return false;
    case RN_A_DROP_BATCH:
        log_info("node: dropped a batch from %" PRIu64 " (cursor %" PRIu64
                 "): resynchronising",
                 a->n, self->fsm.cursor);
        return false;
    case RN_A_BEGIN_SNAPSHOT:
        log_notice("node: receiving a snapshot fenced at hub_seq %" PRIu64,
                   a->n);
        return false;
    case RN_A_APPLY_CHUNK:
        return apply_chunk(self, next);
    case RN_A_FINISH_SNAPSHOT:
        if (finish_snapshot(self, a->n))
            return false;
        next->type = RN_EV_PROTO_ERROR; /* reconnect: the snapshot restarts */
        return true;
    case RN_A_SEND_PUBLISH: {
        uint64_t last = send_publish(self, a->n);
        if (last == 0)
            return false;
        next->type = RN_EV_PUBLISHED;
        next->seq = last;
        return true;
    }
    case RN_A_ACK_OUTBOX:
        /* Trimming is lazy: each trim is a commit (lazy too), and an entry
         * trimmed late is only resent and deduplicated. */
        maybe_ack_outbox(self, now_ms());
        return false;
    case RN_A_RESTORE_OUTBOX:
        restore_outbox(self, a->n);
        return false;
    case RN_A_SEND_HEARTBEAT:
        send_heartbeat(self);
        return false;
    }
    return false;
}

static void
node_step(repl_node_t *self, rn_event_t *ev)
{
    for (int guard = 0; guard < 64; guard++) {
        rn_state_t before = self->fsm.state;
        rn_actions_t out;
        rn_fsm_step(&self->fsm, ev, &out);
        if (before != self->fsm.state)
            log_notice("node: hub %s: state %s -> %s (event %s)",
                       self->env.cfg->hub_endpoint, rn_state_name(before),
                       rn_state_name(self->fsm.state), rn_event_name(ev->type));
        rn_event_t next;
        bool more = false;
        for (size_t i = 0; i < out.n; i++) {
            rn_event_t follow;
            if (do_action(self, &out.a[i], &follow)) {
                next = follow;
                more = true;
            }
        }
        if (!more)
            return;
        *ev = next;
    }
}

/* ---------------------------------------------------------- receiving */

static void
try_structure(repl_node_t *self)
{
    if (self->pending_structure == NULL)
        return;
    int rc = self->env.load_structure(self->env.engine, self->pending_structure,
                                      self->pending_len);
    if (rc == OBS_EBUSY)
        return; /* imports open: try again from cron */
    if (rc != OBS_OK)
        log_errr(rc, "node: structure from the hub not loaded");
    free(self->pending_structure);
    self->pending_structure = NULL;
    repl_structure_hash(self->env.st, self->hash);
}

static void
on_structure(repl_node_t *self, const Obsync__V1__StructureUpdate *u)
{
    free(self->pending_structure);
    self->pending_len = strlen(u->text);
    self->pending_structure = strdup(u->text);
    try_structure(self);
}

static void
dispatch(repl_node_t *self, const codec_env_t *env)
{
    rn_event_t ev = {.now_ms = now_ms()};
    switch (env->body_case) {
    case OBSYNC__V1__ENVELOPE__BODY_WELCOME:
        ev.type = RN_EV_WELCOME;
        ev.snapshot = env->welcome->snapshot;
        ev.seq = env->welcome->last_origin_seq;
        save_cursor(self); /* under the epoch it refers to */
        snprintf(self->next_epoch, sizeof(self->next_epoch), "%s",
                 env->welcome->hub_epoch);
        self->log_last = env->welcome->log_last;
        link_reset(&self->up); /* nothing of ours is in flight */
        if (!rebase_on_welcome(self, env->welcome, &ev))
            ev.type = RN_EV_PROTO_ERROR; /* not published: try again */
        break;
    case OBSYNC__V1__ENVELOPE__BODY_LOG_BATCH:
        ev.type = RN_EV_LOG_BATCH;
        ev.from = env->log_batch->from_seq;
        ev.to = env->log_batch->to_seq;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_BEGIN:
        ev.type = RN_EV_SNAP_BEGIN;
        ev.seq = env->snapshot_begin->fence_seq;
        self->snap_received = 0;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_CHUNK:
        /* A lost chunk must not go unnoticed: the counts must agree. */
        self->snap_received += env->snapshot_chunk->n_changes;
        ev.type = env->snapshot_chunk->sent == self->snap_received
                      ? RN_EV_SNAP_CHUNK
                      : RN_EV_PROTO_ERROR;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_END:
        ev.type = env->snapshot_end->total == self->snap_received
                      ? RN_EV_SNAP_END
                      : RN_EV_PROTO_ERROR;
        ev.seq = env->snapshot_end->fence_seq;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_PUBLISH_ACK:
        ev.type = RN_EV_PUB_ACK;
        ev.seq = env->publish_ack->acked_seq;
        ev.from = env->publish_ack->resend_from;
        if (link_confirm_upto(&self->up, ev.seq, hlc_mono_us()) > 0)
            self->progress = true;
        if (ev.from != 0) /* a resend: what was in flight is forgotten */
            link_reset(&self->up);
        for (size_t i = 0; i < env->publish_ack->n_rejects; i++) {
            const Obsync__V1__RowIssue *r = env->publish_ack->rejects[i];
            if (strcmp(r->rule, "R-clock") == 0 && r->line > 0 &&
                self->fsm.outbox_last >= r->line)
                self->pending_rejects = self->fsm.outbox_last - r->line + 1;
            if (i < 5)
                log_warnx("node: hub %s change %" PRIu64 ": %s: %s",
                          strcmp(r->rule, "R-clock") == 0 ? "refused"
                                                          : "rejected",
                          r->line, r->rule, r->message);
        }
        break;
    case OBSYNC__V1__ENVELOPE__BODY_HEARTBEAT:
        ev.type = RN_EV_HEARTBEAT;
        hlc_ref_sample(&self->hub_clock, env->heartbeat->now_ms, now_ms());
        if (env->heartbeat->cursor > self->log_last)
            self->log_last = env->heartbeat->cursor;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_UPDATE:
        on_structure(self, env->structure_update);
        ev.type = RN_EV_HEARTBEAT; /* counts as life */
        break;
    case OBSYNC__V1__ENVELOPE__BODY_GOODBYE:
        log_notice("node: hub said goodbye: %s", env->goodbye->reason);
        ev.type = RN_EV_GOODBYE;
        break;
    default:
        log_warnx("node: unexpected message %d from the hub",
                  (int)env->body_case);
        ev.type = RN_EV_PROTO_ERROR;
    }
    self->cur = env;
    node_step(self, &ev);
    self->cur = NULL;
}

/* The rate the hub's messages arrive at, over spans of a second or more. */
static void
rate_in(repl_node_t *self, size_t bytes)
{
    uint64_t now = now_ms();
    if (self->in_start_ms == 0)
        self->in_start_ms = now;
    self->in_bytes += bytes;
    if (now - self->in_start_ms >= 1000) {
        self->rate_in_bps = self->in_bytes * 1000 / (now - self->in_start_ms);
        self->in_bytes = 0;
        self->in_start_ms = now;
    }
}

void
repl_node_on_readable(repl_node_t *self)
{
    for (int budget = 0; budget < 256 && self->sock; budget++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        self->bytes_in += zmq_msg_size(&m);
        rate_in(self, zmq_msg_size(&m));
        codec_env_t *env = NULL;
        int rc = zmq_msg_more(&m)
                     ? OBS_EPROTO
                     : codec_envelope_unpack(zmq_msg_data(&m), zmq_msg_size(&m),
                                             self->env.cfg->max_frame, &env);
        zmq_msg_close(&m);
        if (rc != OBS_OK) {
            flush_batches(self);
            log_warnr(rc, "node: bad frame from the hub");
            rn_event_t ev = {.type = RN_EV_PROTO_ERROR, .now_ms = now_ms()};
            node_step(self, &ev);
            return;
        }
        /* Only consecutive LogBatches are grouped: anything else, or a
         * batch that does not follow, sees the kept ones committed first. */
        bool batch = env->body_case == OBSYNC__V1__ENVELOPE__BODY_LOG_BATCH;
        if (!batch || env->log_batch->from_seq != self->fsm.expect ||
            self->n_batches == sizeof(self->batches) / sizeof(self->batches[0]))
            flush_batches(self);
        self->cur_taken = false;
        dispatch(self, env);
        if (!self->cur_taken)
            codec_envelope_free(&env);
    }
    flush_batches(self);
}

void
repl_node_cron(repl_node_t *self, uint64_t now)
{
    try_structure(self);
    maybe_ack_outbox(self, now);
    if (now - self->cursor_saved_ms >= CURSOR_SAVE_MS)
        save_cursor(self);
    rn_event_t ev = {.type = RN_EV_TICK, .now_ms = now};
    node_step(self, &ev);
    if (self->pending_rejects > 0) { /* has the hub's clock caught up? */
        rn_event_t more = {
            .type = RN_EV_OUTBOX, .now_ms = now, .seq = self->fsm.outbox_last};
        node_step(self, &more);
    }
}

void
repl_node_outbox_grew(repl_node_t *self, uint64_t origin_seq)
{
    rn_event_t ev = {
        .type = RN_EV_OUTBOX, .now_ms = now_ms(), .seq = origin_seq};
    node_step(self, &ev);
}

void
repl_node_structure_changed(repl_node_t *self)
{
    repl_structure_hash(self->env.st, self->hash);
}

void
repl_node_status(repl_node_t *self, Obsync__V1__StatusReply *sr)
{
    sr->hub_endpoint = (char *)(uintptr_t)self->env.cfg->hub_endpoint;
    sr->repl_state = (char *)(uintptr_t)rn_state_name(self->fsm.state);
    sr->hub_cursor = self->fsm.cursor;
    sr->log_last = self->log_last;
    sr->lag_changes = self->log_last > self->fsm.cursor
                          ? self->log_last - self->fsm.cursor
                          : 0;
    uint64_t now = hlc_wall_ms(); /* compared with HLC (wall) times */
    sr->lag_ms =
        sr->lag_changes && self->last_applied_ms && now > self->last_applied_ms
            ? now - self->last_applied_ms
            : 0;
    sr->outbox_acked = self->fsm.pub_acked;
    /* entries acknowledged and not trimmed yet (lazily) are not waiting */
    uint64_t untrimmed = self->fsm.pub_acked > self->trimmed
                             ? self->fsm.pub_acked - self->trimmed
                             : 0;
    sr->outbox_depth =
        sr->outbox_depth > untrimmed ? sr->outbox_depth - untrimmed : 0;
    sr->snapshots = self->snapshots;
    sr->clock_known = self->hub_clock.known;
    sr->clock_skew_ms = hlc_ref_skew(&self->hub_clock, now, now_ms());
    sr->restamped = self->restamped;
    sr->renumbered = self->renumbered;
    sr->pending_rejects = self->pending_rejects;
    sr->link = (char *)(uintptr_t)(self->stalled >= 3 && !self->progress
                                       ? "no progress"
                                   : link_is_slow(&self->up) ||
                                           (self->rate_in_bps != 0 &&
                                            self->rate_in_bps < LINK_SLOW_BPS &&
                                            sr->lag_changes > 0)
                                       ? "slow link"
                                       : "ok");
    sr->rate_in_bps = self->rate_in_bps;
    sr->rate_out_bps = self->up.rate_bps;
    sr->reconnects = self->reconnects;
    sr->apply_rate = self->apply_rate;
    sr->eta_s =
        sr->lag_changes && self->apply_rate
            ? (sr->lag_changes + self->apply_rate - 1) / self->apply_rate
            : 0;
}

int
repl_node_clock_check(repl_node_t *self, char *why, size_t cap)
{
    if (!self->hub_clock.known)
        return OBS_OK; /* no sample yet: a rebase puts things right later */
    int64_t skew = hlc_ref_skew(&self->hub_clock, hlc_wall_ms(), now_ms());
    if (skew <= REPL_MAX_SKEW_MS && skew >= -REPL_MAX_SKEW_MS)
        return OBS_OK;
    snprintf(why, cap,
             "this node's clock is %.1f s %s the hub's (the bound is %d s): "
             "local writes are refused until the clock is fixed (NTP)",
             (double)(skew < 0 ? -skew : skew) / 1000.0,
             skew < 0 ? "behind" : "ahead of", REPL_MAX_SKEW_MS / 1000);
    return OBS_ECLOCK;
}

/* ---------------------------------------------------------- lifecycle */

/* Hex SHA-256 of the subscription as configured ("" lists = everything). */
static void
subscription_hash(repl_node_t *self)
{
    sha256_t h;
    sha256_init(&h);
    for (size_t i = 0; i < self->n_dfs; i++)
        sha256_update(&h, self->dfs[i], strlen(self->dfs[i]) + 1);
    sha256_update(&h, "|", 1);
    for (size_t i = 0; i < self->n_areas; i++)
        sha256_update(&h, self->areas[i], strlen(self->areas[i]) + 1);
    uint8_t d[32];
    sha256_final(&h, d);
    for (size_t i = 0; i < 32; i++)
        snprintf(self->sub_hash + 2 * i, 3, "%02x", d[i]);
}

int
repl_node_new(const repl_env_t *env, repl_node_t **out, char *err, size_t cap)
{
    *out = NULL;
    repl_node_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->env = *env;
    int rc = repl_list_parse(env->cfg->subscribe_dataflows, &self->dfs,
                             &self->n_dfs);
    if (rc == OBS_OK)
        rc = repl_list_parse(env->cfg->subscribe_areas, &self->areas,
                             &self->n_areas);
    if (rc == OBS_OK)
        rc = repl_structure_hash(env->st, self->hash);
    uint64_t cursor = 0, acked = 0, outbox_last = 0;
    char stored_sub[65] = "";
    obsdb_txn_t *txn = NULL;
    if (rc == OBS_OK)
        subscription_hash(self);
    if (rc == OBS_OK)
        rc = obsdb_begin(env->db, false, &txn);
    if (rc == OBS_OK) {
        obsdb_meta_get_u64(txn, "hub_cursor", &cursor);
        obsdb_meta_get_u64(txn, "pub_acked", &acked);
        obsdb_meta_get_str(txn, "hub_epoch", self->hub_epoch,
                           sizeof(self->hub_epoch));
        if (obsdb_meta_get_str(txn, "sub_hash", stored_sub,
                               sizeof(stored_sub)) != OBS_OK)
            snprintf(stored_sub, sizeof(stored_sub), "%s", self->sub_hash);
        rc = obsdb_outbox_last(txn, &outbox_last);
    }
    obsdb_abort(&txn);
    if (rc != OBS_OK) {
        snprintf(err, cap, "replication state: %s", obs_strerror(rc));
        repl_node_destroy(&self);
        return rc;
    }
    if (outbox_last < acked)
        outbox_last = acked;
    if (cursor > 0 && strcmp(stored_sub, self->sub_hash) != 0) {
        /* The log before the cursor was filtered with the old subscription:
         * what the new one adds is only in a snapshot. */
        log_notice("node: subscription changed since cursor %" PRIu64
                   ": a fresh snapshot will be taken",
                   cursor);
        cursor = 0;
    }
    self->trimmed = acked;
    rn_fsm_init(&self->fsm, cursor, acked, outbox_last,
                (uint32_t)env->cfg->heartbeat_ms,
                (uint32_t)env->cfg->peer_timeout_ms);
    log_warnx("node: replication with %s is PLAINTEXT (security = "
              "plaintext): no encryption, no authentication. Local testing "
              "only.",
              env->cfg->hub_endpoint);
    log_notice("node: cursor %" PRIu64 ", outbox acked up to %" PRIu64
               ", last local change %" PRIu64,
               cursor, acked, outbox_last);
    *out = self;
    return OBS_OK;
}

void
repl_node_destroy(repl_node_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    repl_node_t *self = *selfp;
    ack_outbox(self, self->fsm.pub_acked);
    save_cursor(self);
    drop_batches(self);
    disconnect_hub(self);
    repl_list_free(&self->dfs);
    repl_list_free(&self->areas);
    free(self->pending_structure);
    free(self);
    *selfp = NULL;
}

void *
repl_node_socket(repl_node_t *self)
{
    return self->sock;
}
