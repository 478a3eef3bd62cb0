/*
 * hub_stream.c - the hub's read path: the log streamed to each node from its
 * cursor in LogBatches sized for its link, snapshot chunks of the state, and
 * the fan-out that sends one packed batch to every node at the same position.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub_int.h"
#include "log.h"
#include "obs_err.h"

/* --------------------------------------------------------- streaming */

typedef struct {
    repl_hub_t *hub;
    sess_t *s;
    msg_bytes_t *items;
    size_t n, cap;
    bool own_left_out; /* some entry was the node's own */
} gather_t;

/* The node's own changes, as of its cursor (see sess_t.own). */
static const seq_ranges_t *
own_of(repl_hub_t *self, sess_t *s)
{
    seq_ranges_drop_upto(&s->own, hub_sess_peer(self, s)->cursor);
    return &s->own;
}

static bool
same_list(char *const *a, size_t na, char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return true;
}

/* Drops the cached batches (built_for s only, or all when s is NULL). */
void
hub_fanout_drop(repl_hub_t *self, const sess_t *s)
{
    size_t w = 0;
    for (size_t i = 0; i < self->n_fan; i++) {
        fanout_t *f = &self->fan[i];
        if (s == NULL || f->built_for == s) {
            self->fan_bytes -= f->len;
            free(f->buf);
        } else {
            self->fan[w++] = *f;
        }
    }
    self->n_fan = w;
}

static void
fanout_keep(repl_hub_t *self, const fanout_t *f)
{
    while (self->n_fan > 0 && (self->n_fan == FANOUT_MAX ||
                               self->fan_bytes + f->len > FANOUT_BYTES)) {
        self->fan_bytes -= self->fan[0].len;
        free(self->fan[0].buf);
        memmove(&self->fan[0], &self->fan[1],
                --self->n_fan * sizeof(self->fan[0]));
    }
    self->fan[self->n_fan++] = *f;
    self->fan_bytes += f->len;
}

/* The cached batch s would be sent after `after`, or NULL. */
static const fanout_t *
fanout_find(repl_hub_t *self, sess_t *s, uint64_t after, uint64_t last)
{
    for (size_t i = 0; i < self->n_fan; i++) {
        const fanout_t *f = &self->fan[i];
        const sess_t *b = f->built_for;
        if (f->after == after && f->last == last &&
            same_list(b->dfs, b->n_dfs, s->dfs, s->n_dfs) &&
            same_list(b->areas, b->n_areas, s->areas, s->n_areas) &&
            !seq_ranges_overlaps(own_of(self, s), after, f->to))
            return f;
    }
    return NULL;
}

static int
gather_cb(uint64_t hub_seq, const uint8_t *key, size_t klen, const uint8_t *rec,
          size_t rlen, void *arg)
{
    gather_t *g = arg;
    if (!repl_key_passes(g->hub->env.st, key, klen, g->s->dfs, g->s->n_dfs,
                         g->s->areas, g->s->n_areas))
        return 0;
    /* no echo (PROTOCOL.md §5.4); snapshot walks pass hub_seq 0, so a
     * snapshot always holds the node's own changes too */
    if (hub_seq != 0 && seq_ranges_has(own_of(g->hub, g->s), hub_seq)) {
        g->own_left_out = true;
        return 0;
    }
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 256;
        msg_bytes_t *items = realloc(g->items, cap * sizeof(*items));
        if (items == NULL)
            return OBS_ENOMEM;
        g->items = items;
        g->cap = cap;
    }
    /* zero copy: points into the map until the read txn ends */
    g->items[g->n] = (msg_bytes_t){rec, rlen};
    g->n++;
    return 0;
}

/* Packs and sends LogBatch (after, to] of items; keeps the bytes in
 * self->fan when they suit any node with s's subscription. */
static void
send_log_batch(repl_hub_t *self, sess_t *s, uint64_t after, uint64_t to,
               uint64_t last, const gather_t *g)
{
    msg_t m = {.type = MSG_LOG_BATCH};
    m.u.log_batch =
        (msg_log_batch_t){.from_seq = after,
                          .to_seq = to,
                          .changes = {g ? g->items : NULL, g ? g->n : 0},
                          .log_last = last};
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t bytes = 0;
    int rc = msg_encode(&m, &buf, &len);
    if (rc == OBS_OK)
        rc = repl_send_bytes(self->sock, s->id, s->id_len, buf, len, &bytes);
    if (rc != OBS_OK)
        log_debug("hub: frame to a node dropped: %s", obs_strerror(rc));
    link_sent(&hub_sess_peer(self, s)->down, bytes, to, hlc_mono_us());
    if (g == NULL || g->own_left_out || buf == NULL || len > FANOUT_BYTES) {
        free(buf);
        return;
    }
    fanout_t f = {.built_for = s,
                  .after = after,
                  .to = to,
                  .last = last,
                  .buf = buf,
                  .len = len};
    fanout_keep(self, &f);
}

/* Sends the next LogBatch after `after`; returns the new position, or
 * `after` if there was nothing to send. Closes the session when the log no
 * longer reaches back to `after` (the node reconnects for a snapshot). */
uint64_t
hub_send_batch(repl_hub_t *self, sess_t *s, uint64_t after, bool *closed)
{
    obsdb_txn_t *txn = NULL;
    gather_t g = {self, s, NULL, 0, 0, false};
    uint64_t first = 0, last = 0, to = after;
    int rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_log_bounds(txn, &first, &last);
    if (rc == OBS_OK && after + 1 < first) {
        obsdb_abort(&txn);
        log_notice("hub: node %s: log trimmed past its position %" PRIu64
                   "; it must take a snapshot",
                   hub_sess_peer(self, s)->node_id, after);
        hub_send_goodbye(self, s, OBS_ENOENT,
                         "log trimmed past your cursor: reconnect for "
                         "a snapshot");
        *closed = true;
        return after;
    }
    if (rc == OBS_OK &&
        (to = seq_ranges_run_end(own_of(self, s), after, last)) > after) {
        /* the node's own changes: nothing to read, an empty batch */
        obsdb_abort(&txn);
        send_log_batch(self, s, after, to, last, NULL);
        return to;
    }
    size_t max_bytes = link_batch_bytes(&hub_sess_peer(self, s)->down);
    const fanout_t *f = rc == OBS_OK ? fanout_find(self, s, after, last) : NULL;
    if (f != NULL && f->len <= max_bytes + max_bytes / 2) {
        obsdb_abort(&txn);
        uint64_t bytes = 0;
        if (repl_send_bytes(self->sock, s->id, s->id_len, f->buf, f->len,
                            &bytes) != OBS_OK)
            log_debug("hub: frame to a node dropped");
        link_sent(&hub_sess_peer(self, s)->down, bytes, f->to, hlc_mono_us());
        self->batches_shared++;
        return f->to;
    }
    if (rc == OBS_OK) /* sized for the node's link (link.h) */
        rc = obsdb_log_walk(txn, after, REPL_BATCH_MAX, max_bytes, gather_cb,
                            &g, &to);
    if (rc == OBS_OK && to > after) /* packs while the map pages are valid */
        send_log_batch(self, s, after, to, last, &g);
    obsdb_abort(&txn);
    free(g.items);
    if (rc != OBS_OK)
        log_warnr(rc, "hub: reading the log for node %s",
                  hub_sess_peer(self, s)->node_id);
    return rc == OBS_OK ? to : after;
}

/* Sends the next snapshot chunk; *done when the state walk finished. */
void
hub_send_chunk(repl_hub_t *self, sess_t *s, bool *done, bool *failed)
{
    obsdb_txn_t *txn = NULL;
    gather_t g = {self, s, NULL, 0, 0, false};
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    int rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_state_walk_raw(
            txn, s->snap_len ? s->snap_key : NULL, s->snap_len, REPL_BATCH_MAX,
            link_batch_bytes(&hub_sess_peer(self, s)->down), gather_cb, &g,
            last, &last_len, &more);
    if (rc == OBS_OK) {
        s->snap_sent += g.n;
        msg_t m = {.type = MSG_SNAPSHOT_CHUNK,
                   .u.snapshot_chunk = {.changes = {g.items, g.n},
                                        .sent = s->snap_sent}};
        hub_send(self, s, &m);
        if (last_len) {
            memcpy(s->snap_key, last, last_len);
            s->snap_len = last_len;
        }
    } else {
        log_warnr(rc, "hub: reading the state for a snapshot");
    }
    obsdb_abort(&txn);
    free(g.items);
    *failed = rc != OBS_OK;
    *done = !more;
}
