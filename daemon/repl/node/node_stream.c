/*
 * node_stream.c - the node's store side of the hub's stream: LogBatches and
 * snapshot chunks applied, and the cursor committed with them (PROTOCOL.md
 * §5). Every change from the hub is stored as received, under the key its
 * identity gives (read in place: codec_obs_decode_id, obs_key_encode_id), by
 * obsdb_put_replicated_raw (the greater (hlc, origin) wins, equal versions
 * are no-ops, so a resent or replayed batch changes nothing), and the new
 * cursor is written in the same transaction, so after a crash the node
 * resumes exactly where its data is. Those transactions are lazy
 * (obsdb_begin_lazy): a system crash may undo the last one, cursor and data
 * together, and the hub sends it again.
 *
 * It decides nothing about the protocol (repl_fsm.c does) and touches no
 * socket; repl_node.c calls it for the state machine's APPLY_BATCH,
 * APPLY_CHUNK and FINISH_SNAPSHOT actions and when the socket is drained.
 * Threading: the engine's loop only. Ownership: the messages it is given
 * are its own (kept in repl_node.batches until applied, then destroyed).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "node_int.h"
#include "obs_err.h"
#include "obs_key.h"

/* The hub's log was applied up to cursor: measures entries per second
 * (for the time left in status) over spans of a second or more. */
static void
note_applied(repl_node_t *self, uint64_t before, uint64_t cursor)
{
    uint64_t now = node_now_ms();
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

static int
apply_set(repl_node_t *self, obsdb_txn_t *txn, const msg_changes_t *set,
          uint64_t *applied, uint64_t *last_ms)
{
    int rc = OBS_OK;
    uint64_t wall = hlc_wall_ms(); /* one clock read a batch */
    for (size_t i = 0; rc == OBS_OK && i < set->n; i++) {
        const uint8_t *enc = set->items[i].ptr;
        size_t len = set->items[i].len;
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
            if (HLC_MS(id.ver.hlc) <= wall + (uint64_t)REPL_MAX_SKEW_MS)
                hlc_observe(self->env.hlc, id.ver.hlc, wall);
            *applied += done;
            *last_ms = HLC_MS(id.ver.hlc);
        }
    }
    return rc;
}

/* The meta rows a commit of the stream carries: the hlc always, and with
 * set_cursor the cursor with the epoch and subscription it belongs to. */
static int
put_meta(repl_node_t *self, obsdb_txn_t *txn, bool set_cursor, uint64_t cursor)
{
    int rc = OBS_OK;
    if (set_cursor) {
        rc = obsdb_meta_put_u64(txn, "hub_cursor", cursor);
        if (rc == OBS_OK)
            rc = obsdb_meta_put_str(txn, "hub_epoch", self->next_epoch);
        if (rc == OBS_OK)
            rc = obsdb_meta_put_str(txn, "sub_hash", self->sub_hash);
    }
    if (rc == OBS_OK)
        rc = obsdb_meta_put_u64(txn, "hlc", self->env.hlc->last);
    return rc;
}

/* Applies the change sets (and, with set_cursor, the new cursor) in one
 * transaction. */
static int
apply_changes(repl_node_t *self, const msg_changes_t *sets, size_t n_sets,
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
        if (rc == OBS_OK)
            rc = put_meta(self, txn, set_cursor, cursor);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc != OBS_OK) {
            if (rc != OBS_ESTOREFULL || !obsdb_grow(self->env.db))
                return rc;
            continue; /* the map grew: once more */
        }
        self->applied += applied;
        if (last_ms)
            self->last_applied_ms = last_ms;
        if (set_cursor) {
            (void)snprintf(self->hub_epoch, sizeof(self->hub_epoch), "%s",
                           self->next_epoch);
            self->cursor_unsaved = 0;
            self->cursor_saved_ms = node_now_ms();
        }
        return OBS_OK;
    }
    return OBS_ESTOREFULL;
}

/* A snapshot chunk is applied at once (the cursor does not move). */
void
stream_apply_chunk(repl_node_t *self, msg_t **mp, rn_event_t *next)
{
    msg_changes_t set = {NULL, 0};
    if (*mp != NULL && (*mp)->type == MSG_SNAPSHOT_CHUNK)
        set = (*mp)->u.snapshot_chunk.changes;
    int rc = apply_changes(self, &set, 1, false, 0);
    msg_destroy(mp);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not apply a snapshot chunk");
        next->type = RN_EV_PROTO_ERROR; /* reconnect: the snapshot restarts */
        return;
    }
    self->progress = true;
    next->type = RN_EV_APPLIED;
    next->to = 0;
}

/* A LogBatch is kept until the socket is drained (stream_flush). */
void
stream_keep_batch(repl_node_t *self, msg_t **mp)
{
    if (*mp == NULL || (*mp)->type != MSG_LOG_BATCH ||
        self->n_batches == NODE_BATCHES_MAX) {
        msg_destroy(mp); /* cannot happen: flushed before it fills */
        return;
    }
    self->batches[self->n_batches++] = *mp;
    *mp = NULL;
}

void
stream_drop(repl_node_t *self)
{
    for (size_t i = 0; i < self->n_batches; i++)
        msg_destroy(&self->batches[i]);
    self->n_batches = 0;
}

void
stream_flush(repl_node_t *self)
{
    size_t n = self->n_batches;
    if (n == 0)
        return;
    msg_changes_t sets[NODE_BATCHES_MAX];
    uint64_t tos[NODE_BATCHES_MAX];
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        const msg_log_batch_t *b = &self->batches[i]->u.log_batch;
        sets[i] = b->changes;
        tos[i] = b->to_seq;
        total += b->changes.n;
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
    /* sets[] points into the batches: destroyed only now, and before the
     * state machine runs (an action of it may keep new batches) */
    stream_drop(self);
    if (rc != OBS_OK) {
        log_errr(rc, "node: could not apply %zu change(s) from the hub", total);
        rn_event_t ev = {.type = RN_EV_PROTO_ERROR, .now_ms = node_now_ms()};
        node_step(self, &ev);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        rn_event_t ev = {
            .type = RN_EV_APPLIED, .now_ms = node_now_ms(), .to = tos[i]};
        node_step(self, &ev);
    }
}

void
stream_save_cursor(repl_node_t *self)
{
    if (self->cursor_unsaved == 0)
        return;
    int rc = apply_changes(self, NULL, 0, true, self->cursor_unsaved);
    if (rc != OBS_OK) /* harmless: the hub sends those entries again */
        log_warnr(rc, "node: storing cursor %" PRIu64, self->cursor_unsaved);
    self->cursor_unsaved = 0;
}

bool
stream_finish_snapshot(repl_node_t *self, uint64_t fence)
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
