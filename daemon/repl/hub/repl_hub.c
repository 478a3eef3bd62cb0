/*
 * repl_hub.c - hub end of replication (see repl_hub.h, PROTOCOL.md §5).
 *
 * Write path, log first: a Publish is queued when it arrives; before the
 * loop sleeps, every queued Publish of every node is checked and appended to
 * the hub's log in ONE LMDB transaction committed with sync, and only then
 * are the PublishAcks sent (acked means durable). Per origin, changes apply
 * in origin_seq order: a seq at or below the origin's last accepted one is a
 * duplicate (no effect), a seq beyond last + 1 is a gap the node must
 * resend. The log is sequential, so acking costs one append per change, not
 * a random B-tree write per table. The checks that need only the change
 * and the structure (decode, key, validation) run ahead on a second thread
 * (hub_prep) as Publishes arrive, while this one commits and syncs; this
 * thread then appends each change it finds prepared, and checks the rest
 * the usual way.
 *
 * The keyed state (obs, history) is applied behind the log, in its own
 * transactions of at most HUB_STATE_APPLY_MAX changes, with meta
 * "state_applied" (the last hub_seq applied) in the same transaction: after
 * a crash the state resumes from there, rebuilt from the durable log.
 * Between two versions of one key the greater (hlc, origin) wins
 * (obsdb_version_cmp) on every daemon, so a change that loses is logged
 * like any other and loses again wherever it is applied; the hub counts it
 * as superseded when it applies it to its own state. The log is never
 * trimmed past state_applied; a snapshot, and a local write at the hub,
 * first bring the state up to the log.
 *
 * Test hook: with OBSYNC_TEST_HOLD_STATE set in its environment the hub
 * does not apply its state behind the log on its own (only before a
 * snapshot, a local write and a clean stop), so tests can hold the state
 * behind the log deterministically.
 *
 * Read path: each session streams the log from its node's cursor, one
 * LogBatch per credit the node grants, read zero-copy from the map; a node
 * too far behind (or new, or from another hub incarnation) first gets a
 * snapshot of the state fenced by a hub_seq. Nothing is buffered per node
 * beyond the frame being sent, so a stalled node costs no memory.
 */
#include "repl_hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "hub_prep.h"
#include "link.h"
#include "log.h"
#include "obs_err.h"
#include "obs_key.h"
#include "repl_fsm.h"
#include "seq_ranges.h"
#include "validate.h"
#include "version_cache.h"

#define HUB_SESSIONS_MAX 1024
#define HUB_PEERS_MAX    4096 /* node ids remembered for status */
#define HUB_REJECTS_MAX  100  /* RowIssues per PublishAck */
/* LMDB keeps a transaction's dirty pages in the heap until commit, so
 * these bound the hub's memory outside the map. An accept transaction only
 * appends to the log (sequential: a few hundred bytes per change); a state
 * transaction dirties pages of the obs and history trees, with random keys
 * about 2 pages, 8 KiB, per change at worst. */
/* Changes accepted per transaction: half a node's window of full Publishes,
 * so the node refills the window while the hub commits the rest; and
 * their bytes, for big records (LMDB keeps a transaction's dirty pages for
 * reuse: the biggest accept transaction stays in the hub's RSS). */
#define HUB_COMMIT_MAX      8000
#define HUB_COMMIT_BYTES    (4u << 20)
#define HUB_STATE_APPLY_MAX 8000 /* log entries applied to state per txn */
/* ... and bytes of them: LMDB holds a write txn's dirty pages in malloc'd
 * memory and keeps them for reuse, so this bounds the hub's RSS */
#define HUB_STATE_APPLY_BYTES (2u << 20)
/* ... and changes to keys out of order (a random-order load): each dirties
 * a leaf page or two (obsdb_txn_lookups) */
#define HUB_STATE_LOOKUPS_MAX 2000
#define STATE_TXN_FULL        1   /* state_cb: stop before this entry */
#define HUB_STATE_TURN_MS     50  /* state applied per loop turn, at most */
#define HUB_STATE_DELAY_MS    500 /* see state_due */
/* versions of the newest accepted changes kept for the state apply: twice
 * what one state transaction takes, ~6 MiB */
#define HUB_VERSION_CACHE 16384

typedef struct {
    char node_id[OBS_ID_MAX + 1];
    char address[64];
    char state[16];
    bool up;
    uint64_t last_seen_ms, cursor, last_origin_seq;
    uint64_t accepted, rejected, duplicates, superseded;
    uint64_t clock_refused; /* changes stamped too far ahead (not consumed) */
    uint64_t bytes_in, bytes_out;
    /* the stream to the node: its rate outlives a session; bytes_out counts
     * a LogBatch or snapshot chunk when the node's credit confirms it, so
     * a batch sent again after a reconnect is not counted twice */
    link_t down;
    uint64_t rate_in_bps; /* of its Publishes (their acks) */
    uint64_t reconnects;  /* sessions after the first */
    uint64_t sessions;
    unsigned stalled; /* sessions in a row that ended without progress */
} peer_t;

/* changes checked ahead by the worker (hub_prep) while the loop commits
 * the group before: one group commit's worth, ~5 MiB of outputs */
#define HUB_PREP_AHEAD HUB_COMMIT_MAX

/* A Publish as received, waiting for the group commit. */
typedef struct pub {
    uint64_t first, last;
    size_t n, bytes;                    /* changes, and their bytes */
    codec_env_t *env;                   /* owned: the Publish as received */
    const ProtobufCBinaryData *changes; /* env's */
    prep_job_t job; /* its changes checked ahead (forgotten before env) */
    struct pub *next;
} pub_t;

typedef struct {
    uint8_t id[256];
    size_t id_len;
    size_t peer; /* index into hub->peers */
    rh_fsm_t fsm;
    char node_epoch[OBS_ID_MAX + 1];
    char provider[OBS_ID_MAX + 1]; /* from Hello: what it may write (R12) */
    uint64_t last_seq;             /* origin_seq accepted from this node */
    uint64_t last_hlc;             /* ... and that change's hlc */
    /* origin_seq of a change refused in this commit for its clock (0:
     * none): the session ends after the ack (the node re-stamps it) */
    uint64_t clock_refused;
    /* hub_seqs of the changes accepted from the node in this session:
     * they are in its store, so they are not echoed back to it. Ranges at
     * or below its cursor are dropped. */
    seq_ranges_t own;
    char **dfs, **areas;
    size_t n_dfs, n_areas;
    uint8_t snap_key[OBS_KEY_MAX + 1];
    size_t snap_len;
    uint64_t snap_sent;
    pub_t *pubs, *pubs_tail;
    size_t n_applied;     /* queued publishes the current commit covers */
    issue_list_t rejects; /* of the current group commit */
    bool hello_done;
    bool progress; /* a credit confirmed a batch, or a publish was acked */
    uint64_t started_ms, in_bytes, in_start_ms;
    uint64_t told_last, told_ms; /* log_last the node was last told, when */
} sess_t;

/* LogBatches packed this loop turn, for the next node at the same
 * position with the same subscription: the same bytes go out again instead
 * of another log walk and pack (fan-out). A node pumps a whole window of
 * batches at once, so the last few are kept, oldest dropped first, at most
 * FANOUT_MAX of them and FANOUT_BYTES in all. Only a batch that left out
 * none of its node's own changes is kept; all are dropped at the end of
 * the turn (reap), so built_for is never a freed session. */
#define FANOUT_MAX   8
#define FANOUT_BYTES (4u << 20)
typedef struct {
    const sess_t *built_for;
    uint64_t after, to, last;
    uint8_t *buf;
    size_t len;
} fanout_t;

struct repl_hub {
    repl_env_t env;
    void *sock;
    char endpoint[160];
    char hash[65];
    sess_t *sess[HUB_SESSIONS_MAX];
    size_t n_sess;
    peer_t *peers;
    size_t n_peers, cap_peers;
    uint64_t log_first, log_last;
    uint64_t state_applied;   /* the state holds the log up to here */
    uint64_t state_retry_ms;  /* after a failed state apply */
    uint64_t state_done_ms;   /* when the state last caught up with the log */
    bool committed;           /* the last turn committed publishes */
    bool hold_state;          /* test hook: see the top of this file */
    validate_memo_t vmemo;    /* emptied at each group commit: the
                                 structure cannot change within one */
    validate_texts_t vtexts;  /* normalised texts of the change checked */
    hub_prep_t *prep;         /* checks queued publishes ahead */
    version_cache_t vcache;   /* versions of the changes accepted last */
    fanout_t fan[FANOUT_MAX]; /* oldest first */
    size_t n_fan, fan_bytes;
    uint64_t batches_shared; /* LogBatches sent from fan */
    bool log_grew;
    uint64_t next_trim_ms, snapshots;
    size_t rr;                       /* round-robin start of the group commit */
    const Obsync__V1__Envelope *cur; /* message being dispatched */
    bool cur_taken;                  /* ... and kept by queue_publish */
    const char *cur_addr;            /* and its peer's address */
    Obsync__V1__PeerStatus *status_rows, **status_ptrs;
};

static int load_state_applied(repl_hub_t *self);

static uint64_t
now_ms(void)
{
    return hlc_mono_ms(); /* timers only: a clock step must not fire them */
}

/* -------------------------------------------------------------- peers */

/* The record of node_id (made on its first Hello), or SIZE_MAX when the
 * table is full or memory is short: the Hello is then refused. */
static size_t
peer_for(repl_hub_t *self, const char *node_id)
{
    for (size_t i = 0; i < self->n_peers; i++)
        if (strcmp(self->peers[i].node_id, node_id) == 0)
            return i;
    if (self->n_peers == HUB_PEERS_MAX)
        return SIZE_MAX;
    if (self->n_peers == self->cap_peers) {
        size_t cap = self->cap_peers ? self->cap_peers * 2 : 16;
        peer_t *p = realloc(self->peers, cap * sizeof(*p));
        if (p == NULL)
            return SIZE_MAX;
        self->peers = p;
        self->cap_peers = cap;
    }
    peer_t *p = &self->peers[self->n_peers];
    memset(p, 0, sizeof(*p));
    snprintf(p->node_id, sizeof(p->node_id), "%s", node_id);
    return self->n_peers++;
}

static peer_t *
sess_peer(repl_hub_t *self, const sess_t *s)
{
    return &self->peers[s->peer];
}

/* ----------------------------------------------------------- sessions */

/* Frees the first n queued publishes (SIZE_MAX: all). */
static void
pubs_drop(repl_hub_t *self, sess_t *s, size_t n)
{
    while (s->pubs && n-- > 0) {
        pub_t *next = s->pubs->next;
        hub_prep_forget(self->prep, &s->pubs->job); /* it reads env */
        codec_envelope_free(&s->pubs->env);
        free(s->pubs);
        s->pubs = next;
    }
    if (s->pubs == NULL)
        s->pubs_tail = NULL;
}

static void
pubs_free(repl_hub_t *self, sess_t *s)
{
    pubs_drop(self, s, SIZE_MAX);
}

static size_t
pubs_queued(const sess_t *s)
{
    size_t n = 0;
    for (const pub_t *p = s->pubs; p; p = p->next)
        n++;
    return n;
}

static void
sess_free(repl_hub_t *self, sess_t *s)
{
    if (s == NULL)
        return;
    pubs_free(self, s);
    seq_ranges_fini(&s->own);
    repl_list_free(&s->dfs);
    repl_list_free(&s->areas);
    issue_list_fini(&s->rejects);
    free(s);
}

static sess_t *
sess_find(repl_hub_t *self, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < self->n_sess; i++)
        if (self->sess[i]->id_len == len &&
            memcmp(self->sess[i]->id, id, len) == 0)
            return self->sess[i];
    return NULL;
}

static sess_t *
sess_new(repl_hub_t *self, const uint8_t *id, size_t len)
{
    if (self->n_sess == HUB_SESSIONS_MAX || len > sizeof(((sess_t *)0)->id))
        return NULL;
    sess_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    memcpy(s->id, id, len);
    s->id_len = len;
    s->peer = SIZE_MAX;
    rh_fsm_init(&s->fsm, now_ms(), (uint32_t)self->env.cfg->heartbeat_ms,
                (uint32_t)self->env.cfg->peer_timeout_ms);
    issue_list_init(&s->rejects, HUB_REJECTS_MAX);
    self->sess[self->n_sess++] = s;
    return s;
}

static void
send_env(repl_hub_t *self, sess_t *s, codec_env_t *env)
{
    uint64_t bytes = 0;
    int rc = repl_send(self->sock, s->id, s->id_len, env, &bytes);
    if (rc != OBS_OK)
        log_debug("hub: frame to a node dropped: %s", obs_strerror(rc));
    if (s->peer == SIZE_MAX)
        return;
    if (env->body_case == OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_CHUNK)
        link_sent(&sess_peer(self, s)->down, bytes, 0, hlc_mono_us());
    else /* stream messages count when confirmed (peer_t.down) */
        sess_peer(self, s)->bytes_out += bytes;
}

static void
send_goodbye(repl_hub_t *self, sess_t *s, const char *reason)
{
    Obsync__V1__Goodbye g;
    obsync__v1__goodbye__init(&g);
    g.reason = (char *)(uintptr_t)reason;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_GOODBYE;
    env.goodbye = &g;
    send_env(self, s, &env);
}

/* --------------------------------------------------------- streaming */

typedef struct {
    repl_hub_t *hub;
    sess_t *s;
    ProtobufCBinaryData *items;
    size_t n, cap;
    bool own_left_out; /* some entry was the node's own */
} gather_t;

/* The node's own changes, as of its cursor (see sess_t.own). */
static const seq_ranges_t *
own_of(repl_hub_t *self, sess_t *s)
{
    seq_ranges_drop_upto(&s->own, sess_peer(self, s)->cursor);
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
static void
fanout_drop(repl_hub_t *self, const sess_t *s)
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
        ProtobufCBinaryData *items = realloc(g->items, cap * sizeof(*items));
        if (items == NULL)
            return OBS_ENOMEM;
        g->items = items;
        g->cap = cap;
    }
    /* zero copy: points into the map until the read txn ends */
    g->items[g->n].data = (uint8_t *)(uintptr_t)rec;
    g->items[g->n].len = rlen;
    g->n++;
    return 0;
}

/* Packs and sends LogBatch (after, to] of items; keeps the bytes in
 * self->fan when they suit any node with s's subscription. */
static void
send_log_batch(repl_hub_t *self, sess_t *s, uint64_t after, uint64_t to,
               uint64_t last, const gather_t *g)
{
    Obsync__V1__LogBatch b;
    obsync__v1__log_batch__init(&b);
    b.from_seq = after;
    b.to_seq = to;
    b.n_changes = g ? g->n : 0;
    b.changes = g ? g->items : NULL;
    b.log_last = last;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_LOG_BATCH;
    env.log_batch = &b;
    uint8_t *buf = NULL;
    size_t len = 0;
    uint64_t bytes = 0;
    int rc = codec_envelope_pack(&env, &buf, &len);
    if (rc == OBS_OK)
        rc = repl_send_bytes(self->sock, s->id, s->id_len, buf, len, &bytes);
    if (rc != OBS_OK)
        log_debug("hub: frame to a node dropped: %s", obs_strerror(rc));
    link_sent(&sess_peer(self, s)->down, bytes, to, hlc_mono_us());
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
static uint64_t
send_batch(repl_hub_t *self, sess_t *s, uint64_t after, bool *closed)
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
                   sess_peer(self, s)->node_id, after);
        send_goodbye(self, s,
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
    size_t max_bytes = link_batch_bytes(&sess_peer(self, s)->down);
    const fanout_t *f = rc == OBS_OK ? fanout_find(self, s, after, last) : NULL;
    if (f != NULL && f->len <= max_bytes + max_bytes / 2) {
        obsdb_abort(&txn);
        uint64_t bytes = 0;
        if (repl_send_bytes(self->sock, s->id, s->id_len, f->buf, f->len,
                            &bytes) != OBS_OK)
            log_debug("hub: frame to a node dropped");
        link_sent(&sess_peer(self, s)->down, bytes, f->to, hlc_mono_us());
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
                  sess_peer(self, s)->node_id);
    return rc == OBS_OK ? to : after;
}

/* Sends the next snapshot chunk; *done when the state walk finished. */
static void
send_chunk(repl_hub_t *self, sess_t *s, bool *done, bool *failed)
{
    obsdb_txn_t *txn = NULL;
    gather_t g = {self, s, NULL, 0, 0, false};
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    int rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_state_walk_raw(txn, s->snap_len ? s->snap_key : NULL,
                                  s->snap_len, REPL_BATCH_MAX,
                                  link_batch_bytes(&sess_peer(self, s)->down),
                                  gather_cb, &g, last, &last_len, &more);
    if (rc == OBS_OK) {
        s->snap_sent += g.n;
        Obsync__V1__SnapshotChunk c;
        obsync__v1__snapshot_chunk__init(&c);
        c.n_changes = g.n;
        c.changes = g.items;
        c.sent = s->snap_sent;
        codec_env_t env;
        obsync__v1__envelope__init(&env);
        env.body_case = OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_CHUNK;
        env.snapshot_chunk = &c;
        send_env(self, s, &env);
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

/* ------------------------------------------------------------ actions */

static void hub_step(repl_hub_t *self, sess_t *s, rh_event_t *ev);

static void
send_welcome(repl_hub_t *self, sess_t *s, bool snapshot)
{
    Obsync__V1__Welcome w;
    obsync__v1__welcome__init(&w);
    w.hub_id = self->env.cfg->node_id;
    w.hub_epoch = (char *)(uintptr_t)obsdb_epoch(self->env.db);
    w.last_origin_seq = s->last_seq;
    w.log_first = self->log_first;
    w.log_last = self->log_last;
    w.snapshot = snapshot;
    w.heartbeat_ms = (uint32_t)self->env.cfg->heartbeat_ms;
    w.last_origin_hlc = s->last_hlc;
    w.now_ms = hlc_wall_ms();
    s->told_last = self->log_last;
    s->told_ms = now_ms();
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_WELCOME;
    env.welcome = &w;
    send_env(self, s, &env);
}

static void
send_structure(repl_hub_t *self, sess_t *s)
{
    char *text = NULL;
    size_t len = 0;
    if (structure_to_text(self->env.st, &text, &len) != OBS_OK)
        return;
    Obsync__V1__StructureUpdate u;
    obsync__v1__structure_update__init(&u);
    u.text = text;
    u.hash = self->hash;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_UPDATE;
    env.structure_update = &u;
    send_env(self, s, &env);
    free(text);
}

static void
send_ack(repl_hub_t *self, sess_t *s, uint64_t acked, uint64_t resend_from)
{
    Obsync__V1__PublishAck a;
    obsync__v1__publish_ack__init(&a);
    peer_t *p = sess_peer(self, s);
    a.acked_seq = acked;
    a.resend_from = resend_from;
    a.accepted = p->accepted;
    a.duplicates = p->duplicates;
    a.superseded = p->superseded;
    a.rejected = p->rejected;
    size_t n = s->rejects.n;
    Obsync__V1__RowIssue *ri = calloc(n ? n : 1, sizeof(*ri));
    Obsync__V1__RowIssue **rp = calloc(n ? n : 1, sizeof(*rp));
    for (size_t i = 0; ri && rp && i < n; i++) {
        obsync__v1__row_issue__init(&ri[i]);
        ri[i].line = s->rejects.items[i].line;
        ri[i].column = s->rejects.items[i].column;
        ri[i].rule = s->rejects.items[i].rule;
        ri[i].message = s->rejects.items[i].message;
        rp[i] = &ri[i];
    }
    a.n_rejects = ri && rp ? n : 0;
    a.rejects = rp;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_PUBLISH_ACK;
    env.publish_ack = &a;
    send_env(self, s, &env);
    free(ri);
    free(rp);
    issue_list_clear(&s->rejects);
}

static void
send_heartbeat(repl_hub_t *self, sess_t *s)
{
    Obsync__V1__Heartbeat h;
    obsync__v1__heartbeat__init(&h);
    h.now_ms = hlc_wall_ms();
    h.cursor = self->log_last;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &h;
    send_env(self, s, &env);
    s->told_last = self->log_last;
    s->told_ms = now_ms();
}

/* A busy stream sends no heartbeats: a node is told where the log ends
 * (a Heartbeat, ahead of the batches it will get) when the log grew, at
 * most every heartbeat_ms, so its lag counts against the hub's end and
 * not the last batch that crossed its line. */
static void
tell_log_last(repl_hub_t *self, sess_t *s, uint64_t now)
{
    if (s->fsm.state != RH_DEAD && s->hello_done &&
        self->log_last > s->told_last &&
        (now - s->told_ms >= self->env.cfg->heartbeat_ms ||
         /* ahead of a stream that starts (at most every 100 ms) */
         (sess_peer(self, s)->down.n == 0 && now - s->told_ms >= 100)))
        send_heartbeat(self, s);
}

static void
queue_publish(repl_hub_t *self, sess_t *s)
{
    const Obsync__V1__Publish *m = self->cur ? self->cur->publish : NULL;
    if (m == NULL || self->cur_taken)
        return;
    pub_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_warnx("hub: out of memory queuing a publish; the node resends");
        return;
    }
    /* the envelope itself is kept until the ack: no copy of its changes */
    p->env = (codec_env_t *)(uintptr_t)self->cur;
    self->cur_taken = true;
    p->first = m->first_seq;
    p->last = m->last_seq;
    p->changes = m->changes;
    p->n = m->n_changes;
    for (size_t i = 0; i < p->n; i++)
        p->bytes += p->changes[i].len;
    p->job.changes = p->changes;
    p->job.n = p->n;
    snprintf(p->job.node_id, sizeof(p->job.node_id), "%s",
             s->peer != SIZE_MAX ? sess_peer(self, s)->node_id : "");
    snprintf(p->job.provider, sizeof(p->job.provider), "%s", s->provider);
    hub_prep_submit(self->prep, &p->job);
    if (s->pubs_tail)
        s->pubs_tail->next = p;
    else
        s->pubs = p;
    s->pubs_tail = p;
}

static void
start_snapshot(repl_hub_t *self, sess_t *s, uint64_t fence)
{
    s->snap_len = 0;
    s->snap_sent = 0;
    Obsync__V1__SnapshotBegin b;
    obsync__v1__snapshot_begin__init(&b);
    b.fence_seq = fence;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_BEGIN;
    env.snapshot_begin = &b;
    send_env(self, s, &env);
    log_notice("hub: node %s: snapshot fenced at hub_seq %" PRIu64,
               sess_peer(self, s)->node_id, fence);
}

static void
snap_end(repl_hub_t *self, sess_t *s, uint64_t fence)
{
    Obsync__V1__SnapshotEnd e;
    obsync__v1__snapshot_end__init(&e);
    e.fence_seq = fence;
    e.total = s->snap_sent;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_END;
    env.snapshot_end = &e;
    send_env(self, s, &env);
    self->snapshots++;
    log_notice("hub: node %s: snapshot of %" PRIu64 " observations sent",
               sess_peer(self, s)->node_id, s->snap_sent);
}

/* Performs one action; may produce a follow-up event (*next). */
static bool
do_action(repl_hub_t *self, sess_t *s, const rh_action_t *a, rh_event_t *next)
{
    bool closed = false, done = false;
    memset(next, 0, sizeof(*next));
    next->now_ms = now_ms();
    switch (a->type) {
    case RH_A_SEND_WELCOME:
        send_welcome(self, s, a->snapshot);
        if (strcmp(self->cur && self->cur->hello
                       ? self->cur->hello->structure_hash
                       : "",
                   self->hash) != 0)
            send_structure(self, s);
        return false;
    case RH_A_START_SNAPSHOT:
        /* the state must hold every change up to the fence */
        if (repl_hub_catch_up(self) != OBS_OK) {
            log_warnx("hub: node %s: no snapshot: the state could not be "
                      "brought up to the log",
                      sess_peer(self, s)->node_id);
            send_goodbye(self, s, "snapshot failed; reconnect to retry");
            next->type = RH_EV_GOODBYE;
            return true;
        }
        start_snapshot(self, s, a->n);
        return false;
    case RH_A_SEND_CHUNK:
        if (!link_may_send(&sess_peer(self, s)->down))
            return false; /* the node's link is full: its next credit */
        send_chunk(self, s, &done, &closed);
        if (closed) { /* an incomplete snapshot must never look complete */
            send_goodbye(self, s, "snapshot failed; reconnect to retry");
            next->type = RH_EV_GOODBYE;
            return true;
        }
        next->type = RH_EV_SENT;
        next->done = done;
        return true;
    case RH_A_SEND_SNAP_END:
        snap_end(self, s, a->n);
        return false;
    case RH_A_SEND_BATCH: {
        if (!link_may_send(&sess_peer(self, s)->down))
            return false; /* the node's link is full: its next credit */
        uint64_t to = send_batch(self, s, a->n, &closed);
        if (closed) {
            next->type = RH_EV_GOODBYE;
            return true;
        }
        if (to == a->n)
            return false; /* nothing new: wait for LOG_GREW */
        next->type = RH_EV_SENT;
        next->seq = to;
        return true;
    }
    case RH_A_APPLY_PUBLISH:
        queue_publish(self, s);
        return false;
    case RH_A_SEND_ACK:
        send_ack(self, s, a->n, a->m);
        return false;
    case RH_A_SEND_HEARTBEAT:
        send_heartbeat(self, s);
        return false;
    case RH_A_CLOSE:
        if (s->hello_done)
            send_goodbye(self, s, "session closed");
        return false;
    }
    return false;
}

static void
hub_step(repl_hub_t *self, sess_t *s, rh_event_t *ev)
{
    /* Iterative, not recursive: a SENT event continues the stream until the
     * credit or the log runs out. */
    for (int guard = 0; guard < 4 * REPL_WINDOW + 8; guard++) {
        rh_state_t before = s->fsm.state;
        rh_actions_t out;
        rh_fsm_step(&s->fsm, ev, &out);
        if (before != s->fsm.state && s->peer != SIZE_MAX) {
            peer_t *p = sess_peer(self, s);
            log_info("hub: node %s: state %s -> %s (event %s)", p->node_id,
                     rh_state_name(before), rh_state_name(s->fsm.state),
                     rh_event_name(ev->type));
            snprintf(p->state, sizeof(p->state), "%s",
                     rh_state_name(s->fsm.state));
        }
        rh_event_t next;
        bool more = false;
        for (size_t i = 0; i < out.n; i++) {
            rh_event_t follow;
            if (do_action(self, s, &out.a[i], &follow)) {
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

/* The rate the node's messages arrive at, over spans of a second or more
 * (what its Publishes use of its link). */
static void
rate_in(sess_t *s, peer_t *p, size_t bytes)
{
    uint64_t now = now_ms();
    if (s->in_start_ms == 0)
        s->in_start_ms = now;
    s->in_bytes += bytes;
    if (now - s->in_start_ms >= 1000) {
        p->rate_in_bps = s->in_bytes * 1000 / (now - s->in_start_ms);
        s->in_bytes = 0;
        s->in_start_ms = now;
    }
}

/* A Credit returns one credit per batch or chunk the node applied, in the
 * order they were sent (the first one of a session, and a resync, give a
 * fresh window instead): those are confirmed, which measures the node's
 * link and moves its confirmed position. */
static void
on_credit(repl_hub_t *self, sess_t *s, const Obsync__V1__Credit *c)
{
    peer_t *p = sess_peer(self, s);
    uint64_t mark = 0;
    if (c->resync) {
        link_reset(&p->down);
    } else {
        uint64_t bytes =
            link_confirm_n(&p->down, c->batches, hlc_mono_us(), &mark);
        p->bytes_out += bytes;
        if (bytes > 0) {
            s->progress = true;
            p->stalled = 0;
        }
    }
    uint64_t cursor = c->cursor > mark ? c->cursor : mark;
    if (cursor > p->cursor)
        p->cursor = cursor;
}

static int
on_hello(repl_hub_t *self, sess_t *s, const Obsync__V1__Hello *h)
{
    if (h->node_id[0] == '\0' || strlen(h->node_id) > OBS_ID_MAX ||
        strlen(h->node_epoch) > OBS_ID_MAX ||
        strlen(h->provider) > OBS_ID_MAX ||
        strcmp(h->node_id, self->env.cfg->node_id) == 0)
        return OBS_EPROTO;
    /* A node that reconnects replaces its old session. */
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *o = self->sess[i];
        if (o != s && o->peer != SIZE_MAX &&
            strcmp(sess_peer(self, o)->node_id, h->node_id) == 0 &&
            o->fsm.state != RH_DEAD) {
            send_goodbye(self, o, "replaced by a newer connection");
            /* its queued publishes are not accepted any more: the new
             * session starts from the origin's last accepted seq, and the
             * node resends what follows */
            pubs_free(self, o);
            o->fsm.state = RH_DEAD;
        }
    }
    s->peer = peer_for(self, h->node_id);
    if (s->peer == SIZE_MAX) {
        log_warnx("hub: Hello from %.63s refused: %d node ids known",
                  h->node_id, HUB_PEERS_MAX);
        return OBS_ETOOBIG;
    }
    snprintf(s->node_epoch, sizeof(s->node_epoch), "%s", h->node_epoch);
    snprintf(s->provider, sizeof(s->provider), "%s",
             h->provider[0] ? h->provider : h->node_id);
    fanout_drop(self, s); /* built with the old subscription */
    if (h->subscription) {
        repl_list_free(&s->dfs);
        repl_list_free(&s->areas);
        s->dfs = calloc(h->subscription->n_dataflows + 1, sizeof(char *));
        s->areas = calloc(h->subscription->n_areas + 1, sizeof(char *));
        if (s->dfs == NULL || s->areas == NULL)
            return OBS_ENOMEM;
        for (size_t i = 0; i < h->subscription->n_dataflows; i++)
            if ((s->dfs[s->n_dfs++] = strdup(h->subscription->dataflows[i])) ==
                NULL)
                return OBS_ENOMEM;
        for (size_t i = 0; i < h->subscription->n_areas; i++)
            if ((s->areas[s->n_areas++] = strdup(h->subscription->areas[i])) ==
                NULL)
                return OBS_ENOMEM;
    }
    char epoch[OBS_ID_MAX + 1] = "";
    uint64_t last = 0, last_hlc = 0, first = 0, log_last = 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK) {
        rc = obsdb_origin_get(txn, h->node_id, epoch, sizeof(epoch), &last,
                              &last_hlc);
        if (rc == OBS_ENOENT)
            rc = OBS_OK;
    }
    if (rc == OBS_OK)
        rc = obsdb_log_bounds(txn, &first, &log_last);
    obsdb_abort(&txn);
    if (rc != OBS_OK)
        return rc;
    if (epoch[0] && strcmp(epoch, h->node_epoch) != 0) {
        log_notice("hub: node %s has a new store (epoch %s, was %s): its "
                   "change numbers start again",
                   h->node_id, h->node_epoch, epoch);
        last = 0;
        last_hlc = 0;
    }
    s->last_seq = last;
    s->last_hlc = last_hlc;
    self->log_first = first;
    self->log_last = log_last;
    peer_t *p = sess_peer(self, s);
    p->up = true;
    p->cursor = h->cursor;
    link_reset(&p->down); /* what was in flight went with the old session */
    p->reconnects += p->sessions > 0;
    p->sessions++;
    s->started_ms = now_ms();
    p->last_seen_ms = hlc_wall_ms();
    if (self->cur_addr)
        snprintf(p->address, sizeof(p->address), "%s", self->cur_addr);
    p->last_origin_seq = last;
    s->hello_done = true;
    const char *he = obsdb_epoch(self->env.db);
    rh_event_t ev = {.type = RH_EV_HELLO,
                     .now_ms = now_ms(),
                     .cursor = h->cursor,
                     .log_first = first,
                     .log_last = log_last,
                     .epoch_ok =
                         h->cursor == 0 || strcmp(h->hub_epoch, he) == 0};
    log_notice("hub: node %s connected from %s: cursor %" PRIu64
               ", hub log %" PRIu64 "..%" PRIu64,
               h->node_id, p->address, h->cursor, first, log_last);
    hub_step(self, s, &ev);
    return OBS_OK;
}

static void
dispatch(repl_hub_t *self, sess_t *s, const codec_env_t *env)
{
    rh_event_t ev = {.now_ms = now_ms()};
    if (s->fsm.state == RH_DEAD)
        return; /* a replaced connection's late messages: its node's link
                   and cursor belong to the new session */
    if (env->body_case == OBSYNC__V1__ENVELOPE__BODY_HELLO) {
        if (s->hello_done) {
            ev.type = RH_EV_PROTO_ERROR;
        } else {
            int rc = on_hello(self, s, env->hello);
            if (rc == OBS_OK)
                return;
            log_warnr(rc, "hub: bad Hello");
            ev.type = RH_EV_PROTO_ERROR;
        }
    } else if (!s->hello_done) {
        ev.type = RH_EV_PROTO_ERROR;
    } else {
        switch (env->body_case) {
        case OBSYNC__V1__ENVELOPE__BODY_CREDIT:
            ev.type = RH_EV_CREDIT;
            ev.cursor = env->credit->cursor;
            ev.n = env->credit->batches;
            ev.resync = env->credit->resync;
            on_credit(self, s, env->credit);
            break;
        case OBSYNC__V1__ENVELOPE__BODY_PUBLISH:
            /* the window and the batch size bound what a node can queue */
            if (env->publish->n_changes > REPL_BATCH_MAX ||
                pubs_queued(s) >= 2 * REPL_PUB_WINDOW) {
                ev.type = RH_EV_PROTO_ERROR;
                break;
            }
            ev.type = RH_EV_PUBLISH;
            ev.first = env->publish->first_seq;
            ev.last = env->publish->last_seq;
            break;
        case OBSYNC__V1__ENVELOPE__BODY_HEARTBEAT:
            ev.type = RH_EV_HEARTBEAT;
            if (env->heartbeat->cursor > sess_peer(self, s)->cursor)
                sess_peer(self, s)->cursor = env->heartbeat->cursor;
            break;
        case OBSYNC__V1__ENVELOPE__BODY_GOODBYE:
            ev.type = RH_EV_GOODBYE;
            break;
        default:
            ev.type = RH_EV_PROTO_ERROR;
        }
    }
    if (ev.type == RH_EV_PROTO_ERROR)
        log_warnx("hub: protocol error from %s: message %d in state %s",
                  s->peer != SIZE_MAX ? sess_peer(self, s)->node_id : "?",
                  (int)env->body_case, rh_state_name(s->fsm.state));
    hub_step(self, s, &ev);
}

static void
recv_one(repl_hub_t *self, zmq_msg_t *idm, zmq_msg_t *body)
{
    const uint8_t *id = zmq_msg_data(idm);
    size_t id_len = zmq_msg_size(idm);
    sess_t *s = sess_find(self, id, id_len);
    codec_env_t *env = NULL;
    int rc = codec_envelope_unpack(zmq_msg_data(body), zmq_msg_size(body),
                                   self->env.cfg->max_frame, &env);
    if (s == NULL) {
        if (rc != OBS_OK ||
            env->body_case != OBSYNC__V1__ENVELOPE__BODY_HELLO) {
            codec_envelope_free(&env);
            return; /* strangers must say Hello first; nothing is kept */
        }
        s = sess_new(self, id, id_len);
        if (s == NULL) {
            codec_envelope_free(&env);
            log_warnx("hub: too many sessions; a connection was ignored");
            return;
        }
    }
    const char *addr = zmq_msg_gets(body, "Peer-Address");
    if (s->peer != SIZE_MAX) {
        peer_t *p = sess_peer(self, s);
        p->bytes_in += zmq_msg_size(body);
        rate_in(s, p, zmq_msg_size(body));
        p->last_seen_ms = hlc_wall_ms();
    }
    if (rc != OBS_OK) {
        log_warnr(rc, "hub: bad frame of %zu bytes", zmq_msg_size(body));
        rh_event_t ev = {.type = RH_EV_PROTO_ERROR, .now_ms = now_ms()};
        hub_step(self, s, &ev);
        return;
    }
    self->cur = env;
    self->cur_taken = false;
    self->cur_addr = addr;
    dispatch(self, s, env);
    self->cur = NULL;
    self->cur_addr = NULL;
    if (!self->cur_taken)
        codec_envelope_free(&env);
}

void
repl_hub_on_readable(repl_hub_t *self)
{
    for (int budget = 0; budget < 10000; budget++) {
        zmq_msg_t idm, body;
        zmq_msg_init(&idm);
        if (zmq_msg_recv(&idm, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idm);
            return;
        }
        zmq_msg_init(&body);
        int more = zmq_msg_more(&idm);
        if (!more || zmq_msg_recv(&body, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idm);
            zmq_msg_close(&body);
            continue;
        }
        if (zmq_msg_more(&body)) { /* one frame per message */
            while (zmq_msg_more(&body)) {
                zmq_msg_close(&body);
                zmq_msg_init(&body);
                zmq_msg_recv(&body, self->sock, ZMQ_DONTWAIT);
            }
        } else {
            recv_one(self, &idm, &body);
        }
        zmq_msg_close(&idm);
        zmq_msg_close(&body);
    }
}

/* ------------------------------------------------------- group commit */

/* Logs a change the worker prepared (hub_prep) and found good, when it is
 * the next of its origin and its clock is sane: true. false leaves it to
 * apply_change's usual checks, which also word any reject. */
static bool
append_prepared(repl_hub_t *self, obsdb_txn_t *txn, sess_t *s,
                const prep_change_t *pc, int *rc)
{
    if (pc == NULL || pc->verdict != PREP_OK ||
        pc->ver.origin_seq != s->last_seq + 1 ||
        HLC_MS(pc->ver.hlc) > hlc_wall_ms() + REPL_MAX_SKEW_MS)
        return false;
    obs_version_t ver; /* a copy: a retried commit reuses pc */
    memcpy(&ver, &pc->ver, sizeof(ver)); /* padding too (version_cache) */
    s->last_seq = ver.origin_seq;
    s->last_hlc = ver.hlc;
    *rc = obsdb_log_append_body(txn, pc->buf, pc->key_len,
                                pc->buf + pc->key_len, pc->body_len, &ver);
    if (*rc == OBS_OK) {
        version_cache_put(&self->vcache, &ver);
        seq_ranges_add(&s->own, ver.hub_seq);
        sess_peer(self, s)->accepted++;
        hlc_observe(self->env.hlc, ver.hlc, hlc_wall_ms());
    }
    return true;
}

/* One change from node s: checks, then reconciliation; pc is what the
 * worker prepared of it (NULL: nothing). */
static int
apply_change(repl_hub_t *self, obsdb_txn_t *txn, sess_t *s,
             const ProtobufCBinaryData *bin, const prep_change_t *pc,
             uint64_t *resend_from, bool *stop)
{
    int rc = OBS_OK;
    if (append_prepared(self, txn, s, pc, &rc))
        return rc;
    peer_t *p = sess_peer(self, s);
    /* a view into the bytes: checked and logged without a copy per field */
    codec_obs_ro_t ro;
    obs_t *o = &ro.obs;
    rc = codec_obs_decode_ro(bin->data, bin->len, &ro);
    if (rc != OBS_OK) {
        codec_obs_ro_release(&ro);
        *stop = true; /* cannot even read its seq: make the node resend */
        *resend_from = s->last_seq + 1;
        log_warnr(rc, "hub: node %s sent an undecodable change", p->node_id);
        return OBS_OK;
    }
    uint64_t seq = o->ver.origin_seq;
    if (seq <= s->last_seq) {
        p->duplicates++;
        goto out;
    }
    if (seq > s->last_seq + 1) {
        *resend_from = s->last_seq + 1;
        *stop = true;
        goto out;
    }
    if (HLC_MS(o->ver.hlc) > hlc_wall_ms() + REPL_MAX_SKEW_MS) {
        /* One stamp from a clock far ahead would drag every clock of the
         * federation with it; such a change is refused, not observed. Nor
         * is its number consumed: the node keeps it, re-stamps it from the
         * clock the next Welcome tells, and sends it again. */
        p->clock_refused++;
        s->clock_refused = seq;
        *stop = true;
        issue_add(&s->rejects, seq, "", "R-clock", false,
                  "change %" PRIu64 " is stamped %" PRIu64
                  " ms ahead of the hub's clock",
                  seq, HLC_MS(o->ver.hlc) - hlc_wall_ms());
        goto out;
    }
    s->last_seq = seq;
    s->last_hlc = o->ver.hlc;
    /* The node's provider decides which REF_AREA it may write (rule 12).
     * Until CURVE authenticates nodes the hub takes the provider the Hello
     * names; a change must carry that same provider. */
    uint8_t key[OBS_KEY_MAX]; /* logged under: validation normalises
                                 decimal texts, never the identity */
    int klen = obs_key_encode(o, key, sizeof(key));
    if (klen <= 0 || !obsdb_key_len_fits((size_t)klen)) {
        /* every store would refuse it */
        p->rejected++;
        issue_add(&s->rejects, seq, "", "R-length", false,
                  "change %" PRIu64 " has a key longer than a store allows",
                  seq);
        goto out;
    }
    validate_ctx_t vc = {.st = self->env.st,
                         .memo = &self->vmemo,
                         .provider = s->provider,
                         .texts = &self->vtexts};
    const sdmx_dataflow_t *df =
        structure_find_dataflow(self->env.st, o->dataflow);
    issue_list_t issues;
    issue_list_init(&issues, 4);
    bool own = strcmp(o->ver.origin, p->node_id) == 0 &&
               strcmp(o->ver.provider, s->provider) == 0;
    int vrc = own ? validate_obs(&vc, df, o, seq, &issues) : OBS_OK;
    if (!own || vrc != OBS_OK) {
        p->rejected++;
        if (!own)
            issue_add(&s->rejects, seq, "", "R-origin", false,
                      "change %" PRIu64 " claims origin %s provider %s, not "
                      "the session's",
                      seq, o->ver.origin, o->ver.provider);
        else if (issues.n)
            issue_add(&s->rejects, seq, issues.items[0].column,
                      issues.items[0].rule, false, "%s",
                      issues.items[0].message);
        issue_list_fini(&issues);
        goto out;
    }
    issue_list_fini(&issues);
    rc = obsdb_log_append_key(txn, o, key, (size_t)klen);
    if (rc == OBS_OK) {
        version_cache_put(&self->vcache, &o->ver);
        seq_ranges_add(&s->own, o->ver.hub_seq);
        p->accepted++;
        hlc_observe(self->env.hlc, o->ver.hlc, hlc_wall_ms());
    }
out:
    codec_obs_ro_release(&ro);
    return rc;
}

/* Applies whole queued publishes of s while *budget lasts; s->n_applied
 * says how many, so the ack frees exactly those. After a gap the rest is
 * dropped too: the node resends from resend_from. */
static int
apply_session(repl_hub_t *self, obsdb_txn_t *txn, sess_t *s,
              uint64_t *resend_from, size_t *budget, size_t *budget_bytes)
{
    bool stop = false;
    int rc = OBS_OK;
    s->n_applied = 0;
    for (pub_t *p = s->pubs;
         p && !stop && rc == OBS_OK && *budget > 0 && *budget_bytes > 0;
         p = p->next) {
        hub_prep_wait(self->prep, &p->job);
        for (size_t i = 0; i < p->n && !stop && rc == OBS_OK; i++)
            rc = apply_change(self, txn, s, &p->changes[i],
                              p->job.out ? &p->job.out[i] : NULL, resend_from,
                              &stop);
        *budget = p->n < *budget ? *budget - p->n : 0;
        *budget_bytes = p->bytes < *budget_bytes ? *budget_bytes - p->bytes : 0;
        s->n_applied++;
    }
    if (stop)
        s->n_applied = pubs_queued(s);
    if (rc == OBS_OK)
        rc = obsdb_origin_put(txn, sess_peer(self, s)->node_id, s->node_epoch,
                              s->last_seq, s->last_hlc);
    return rc;
}

/* One transaction for the queued publishes of `list`; grows the map and
 * redoes it on MDB_MAP_FULL. On failure every session's position and
 * counters are as before, so nothing is counted twice. */
static int
commit_sessions(repl_hub_t *self, sess_t **list, size_t n, uint64_t *resend)
{
    uint64_t saved[HUB_SESSIONS_MAX], saved_hlc[HUB_SESSIONS_MAX];
    seq_ranges_mark_t saved_own[HUB_SESSIONS_MAX];
    peer_t counts[HUB_SESSIONS_MAX];
    self->vmemo.df = NULL;
    for (int attempt = 0; attempt < 8; attempt++) {
        for (size_t i = 0; i < n; i++) {
            saved[i] = list[i]->last_seq;
            saved_hlc[i] = list[i]->last_hlc;
            list[i]->clock_refused = 0;
            saved_own[i] = seq_ranges_mark(&list[i]->own);
            counts[i] = *sess_peer(self, list[i]);
            resend[i] = 0;
            issue_list_clear(&list[i]->rejects);
        }
        obsdb_txn_t *txn = NULL;
        int rc = obsdb_begin(self->env.db, true, &txn);
        size_t budget = HUB_COMMIT_MAX, budget_bytes = HUB_COMMIT_BYTES;
        for (size_t i = 0; rc == OBS_OK && i < n; i++)
            rc = apply_session(self, txn, list[i], &resend[i], &budget,
                               &budget_bytes);
        uint64_t first = 0, last = 0;
        if (rc == OBS_OK)
            rc = obsdb_log_bounds(txn, &first, &last);
        if (rc == OBS_OK) /* later local writes must stamp above these */
            rc = obsdb_meta_put_u64(txn, "hlc", self->env.hlc->last);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc == OBS_OK) {
            if (last > self->log_last)
                self->log_grew = true;
            self->log_first = first;
            self->log_last = last;
            return OBS_OK;
        }
        /* the seqs this try assigned go to other changes next time */
        version_cache_forget(&self->vcache, self->log_last + 1, UINT64_MAX);
        for (size_t i = 0; i < n; i++) {
            list[i]->last_seq = saved[i];
            list[i]->last_hlc = saved_hlc[i];
            seq_ranges_rewind(&list[i]->own, saved_own[i]); /* this try's */
            *sess_peer(self, list[i]) = counts[i];
        }
        if (rc != OBS_ESTOREFULL || !obsdb_grow(self->env.db))
            return rc;
    }
    return OBS_ESTOREFULL;
}

static void
ack_session(repl_hub_t *self, sess_t *s, uint64_t resend)
{
    if (s->n_applied == 0)
        return; /* nothing of it fitted in this commit: no ack yet */
    pubs_drop(self, s, s->n_applied);
    sess_peer(self, s)->last_origin_seq = s->last_seq;
    s->progress = true;
    sess_peer(self, s)->stalled = 0;
    rh_event_t ev = {.type = RH_EV_COMMITTED,
                     .now_ms = now_ms(),
                     .seq = s->last_seq,
                     .first = resend};
    hub_step(self, s, &ev);
    if (s->clock_refused != 0 && s->fsm.state != RH_DEAD) {
        char why[160];
        snprintf(why, sizeof(why),
                 "change %" PRIu64 " is stamped too far ahead of the hub's "
                 "clock: reconnect, re-stamp it and send it again",
                 s->clock_refused);
        log_warnx("hub: node %s: %s", sess_peer(self, s)->node_id, why);
        send_goodbye(self, s, why);
        pubs_free(self, s);
        s->fsm.state = RH_DEAD;
    }
}

/* Group commit of every queued publish. If the shared transaction fails for
 * another reason than a full map, each node's publishes are retried on their
 * own, so one node whose change cannot be stored does not stop the others:
 * that node's session is closed (it reconnects and resends). */
static void
commit_publishes(repl_hub_t *self)
{
    sess_t *list[HUB_SESSIONS_MAX];
    uint64_t resend[HUB_SESSIONS_MAX];
    size_t n = 0;
    /* Round robin: the commit budget goes to a different node first each
     * turn, so one busy node cannot starve the others. */
    size_t start = self->n_sess ? self->rr++ % self->n_sess : 0;
    for (size_t k = 0; k < self->n_sess; k++) {
        sess_t *s = self->sess[(start + k) % self->n_sess];
        if (s->pubs && s->peer != SIZE_MAX && s->fsm.state != RH_DEAD)
            list[n++] = s;
    }
    self->committed = n > 0;
    if (n == 0)
        return;
    int rc = commit_sessions(self, list, n, resend);
    if (rc == OBS_OK) {
        for (size_t i = 0; i < n; i++)
            ack_session(self, list[i], resend[i]);
        return;
    }
    log_errr(rc, "hub: group commit of %zu node(s) failed", n);
    int group_rc = rc;
    for (size_t i = 0; i < n; i++) {
        uint64_t one = 0;
        sess_t *s = list[i];
        rc = n > 1 && group_rc != OBS_ESTOREFULL
                 ? commit_sessions(self, &s, 1, &one)
                 : group_rc;
        if (rc == OBS_OK) {
            ack_session(self, s, one);
            continue;
        }
        log_warnr(rc,
                  "hub: node %s: publishes not stored; closing its "
                  "session (it will resend)",
                  sess_peer(self, s)->node_id);
        pubs_free(self, s);
        send_goodbye(self, s, "your changes could not be stored; resend");
        s->fsm.state = RH_DEAD;
    }
}

/* ------------------------------------------------- state behind the log */

#define STATE_APPLIED "state_applied"

typedef struct {
    repl_hub_t *hub;
    obsdb_txn_t *txn;
    uint64_t expect;      /* the hub_seq the next entry must have */
    uint64_t *superseded; /* per peer, added once the txn committed */
} state_apply_t;

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
                memcmp(&v, ver, sizeof(v)) != 0)) {
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
static int
apply_state(repl_hub_t *self, size_t max)
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
        int rc = apply_state(self, HUB_STATE_APPLY_MAX);
        if (rc != OBS_OK)
            return rc;
        if (self->state_applied == before)
            return OBS_ESTORE; /* the log ends before log_last: malformed */
    }
    self->state_done_ms = now_ms();
    return OBS_OK;
}

/* Frees dead sessions. Two passes: peers are marked down while every
 * session is still allocated, then the dead ones are freed. */
static void
reap(repl_hub_t *self)
{
    fanout_drop(self, NULL); /* before any session is freed */
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *s = self->sess[i];
        if (s->fsm.state != RH_DEAD || s->peer == SIZE_MAX)
            continue;
        bool other = false;
        for (size_t j = 0; j < self->n_sess; j++)
            other |= self->sess[j]->peer == s->peer &&
                     self->sess[j]->fsm.state != RH_DEAD;
        peer_t *p = sess_peer(self, s);
        if (!other && p->up) {
            p->up = false;
            snprintf(p->state, sizeof(p->state), "down");
            log_notice("hub: node %s is down", p->node_id);
        }
        if (s->hello_done) {
            char who[OBS_ID_MAX + 16];
            snprintf(who, sizeof(who), "hub: node %s", p->node_id);
            repl_session_ended(who, s->progress, &p->stalled,
                               (double)(now_ms() - s->started_ms) / 1000.0,
                               p->down.rate_bps ? p->down.rate_bps
                                                : p->rate_in_bps,
                               (unsigned)s->fsm.dead_ms);
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < self->n_sess; i++) {
        if (self->sess[i]->fsm.state == RH_DEAD)
            sess_free(self, self->sess[i]);
        else
            self->sess[w++] = self->sess[i];
    }
    self->n_sess = w;
}

/* Is it time to apply the log to the state? While publishes stream in,
 * only once HUB_STATE_APPLY_MAX entries wait or HUB_STATE_DELAY_MS passed
 * since the state last caught up: fewer, fuller transactions, so fewer
 * fsyncs. As soon as a turn commits nothing, at once. */
static bool
state_due(const repl_hub_t *self, uint64_t now)
{
    if (self->hold_state || self->state_applied >= self->log_last ||
        now < self->state_retry_ms)
        return false;
    return !self->committed ||
           self->log_last - self->state_applied >= HUB_STATE_APPLY_MAX ||
           now - self->state_done_ms >= HUB_STATE_DELAY_MS;
}

void
repl_hub_before_sleep(repl_hub_t *self)
{
    commit_publishes(self);
    if (self->log_grew) {
        self->log_grew = false;
        for (size_t i = 0; i < self->n_sess; i++) {
            sess_t *s = self->sess[i];
            rh_event_t ev = {.type = RH_EV_LOG_GREW,
                             .now_ms = now_ms(),
                             .log_last = self->log_last};
            tell_log_last(self, s, ev.now_ms);
            hub_step(self, s, &ev);
        }
    }
    /* Acks and streams go first; then the state follows the log, for at
     * most HUB_STATE_TURN_MS a turn so acks and heartbeats keep flowing,
     * which is also enough to keep pace with what a turn accepts. */
    uint64_t t0 = now_ms();
    while (state_due(self, now_ms())) {
        int rc = apply_state(self, HUB_STATE_APPLY_MAX);
        if (rc != OBS_OK) {
            log_warnr(rc,
                      "hub: applying the log after hub_seq %" PRIu64
                      " to the state (retrying in 1 s)",
                      self->state_applied);
            self->state_retry_ms = now_ms() + 1000;
        }
        if (self->state_applied == self->log_last)
            self->state_done_ms = now_ms();
        if (now_ms() - t0 >= HUB_STATE_TURN_MS)
            break;
    }
    reap(self);
}

bool
repl_hub_has_work(const repl_hub_t *self)
{
    for (size_t i = 0; i < self->n_sess; i++)
        if (self->sess[i]->pubs)
            return true;
    return state_due(self, now_ms());
}

void
repl_hub_log_grew(repl_hub_t *self)
{
    obsdb_txn_t *txn = NULL;
    if (obsdb_begin(self->env.db, false, &txn) == OBS_OK &&
        obsdb_log_bounds(txn, &self->log_first, &self->log_last) == OBS_OK &&
        obsdb_meta_get_u64(txn, STATE_APPLIED, &self->state_applied) == OBS_OK)
        self->log_grew = true;
    obsdb_abort(&txn);
}

static void
trim_log(repl_hub_t *self)
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

void
repl_hub_cron(repl_hub_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *s = self->sess[i];
        rh_event_t ev = {.type = RH_EV_TICK, .now_ms = now};
        hub_step(self, s, &ev);
        tell_log_last(self, s, now);
    }
    if (now >= self->next_trim_ms) {
        trim_log(self);
        self->next_trim_ms = now + 1000;
    }
    reap(self);
}

void
repl_hub_structure_changing(repl_hub_t *self)
{
    hub_prep_pause(self->prep);
    for (size_t i = 0; i < self->n_sess; i++) /* checked against the old */
        for (pub_t *p = self->sess[i]->pubs; p; p = p->next)
            hub_prep_redo(self->prep, &p->job);
}

void
repl_hub_structure_loaded(repl_hub_t *self, bool changed)
{
    hub_prep_resume(self->prep);
    if (!changed)
        return;
    fanout_drop(self, NULL); /* filtered against the old structure */
    if (repl_structure_hash(self->env.st, self->hash) != OBS_OK)
        return;
    for (size_t i = 0; i < self->n_sess; i++)
        if (self->sess[i]->hello_done)
            send_structure(self, self->sess[i]);
}

/* ------------------------------------------------------------ status */

void
repl_hub_status(repl_hub_t *self, Obsync__V1__StatusReply *sr)
{
    free(self->status_rows);
    free(self->status_ptrs);
    size_t n = self->n_peers;
    self->status_rows = calloc(n ? n : 1, sizeof(*self->status_rows));
    self->status_ptrs = calloc(n ? n : 1, sizeof(*self->status_ptrs));
    sr->log_first = self->log_first;
    sr->log_last = self->log_last;
    sr->state_applied = self->state_applied;
    sr->batches_shared = self->batches_shared;
    sr->snapshots = self->snapshots;
    sr->hub_endpoint = self->endpoint;
    if (self->status_rows == NULL || self->status_ptrs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        peer_t *p = &self->peers[i];
        Obsync__V1__PeerStatus *r = &self->status_rows[i];
        obsync__v1__peer_status__init(r);
        r->node_id = p->node_id;
        r->up = p->up;
        r->last_seen_ms = p->last_seen_ms;
        r->address = p->address;
        r->cursor = p->cursor;
        r->lag_changes =
            self->log_last > p->cursor ? self->log_last - p->cursor : 0;
        r->accepted = p->accepted;
        r->rejected = p->rejected;
        r->duplicates = p->duplicates;
        r->conflicts = p->superseded;
        r->bytes_in = p->bytes_in;
        r->bytes_out = p->bytes_out;
        r->state = p->state;
        r->last_origin_seq = p->last_origin_seq;
        r->clock_refused = p->clock_refused;
        r->link = (char *)(uintptr_t)(p->stalled >= 3 ? "no progress"
                                      : link_is_slow(&p->down) ||
                                              (p->rate_in_bps != 0 &&
                                               p->rate_in_bps < LINK_SLOW_BPS &&
                                               p->down.rate_bps == 0)
                                          ? "slow link"
                                          : "ok");
        r->rate_out_bps = p->down.rate_bps;
        r->rate_in_bps = p->rate_in_bps;
        r->reconnects = p->reconnects;
        self->status_ptrs[i] = r;
    }
    sr->n_peers = n;
    sr->peers = self->status_ptrs;
}

/* ---------------------------------------------------------- lifecycle */

static int
write_endpoint_file(const repl_hub_t *self, char *err, size_t cap)
{
    char path[512], tmp[520];
    snprintf(path, sizeof(path), "%s/repl.endpoint", self->env.cfg->data_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fprintf(f, "%s\n", self->endpoint) < 0 || fclose(f) != 0 ||
        rename(tmp, path) != 0) {
        snprintf(err, cap, "cannot write %s", path);
        return OBS_ESYS;
    }
    return OBS_OK;
}

int
repl_hub_new(const repl_env_t *env, repl_hub_t **out, char *err, size_t cap)
{
    *out = NULL;
    repl_hub_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->env = *env;
    self->hold_state = getenv("OBSYNC_TEST_HOLD_STATE") != NULL;
    if (version_cache_init(&self->vcache, HUB_VERSION_CACHE) != OBS_OK)
        log_warnx("hub: no memory for the version cache; the state apply "
                  "reads each version back from the log");
    self->sock = zmq_socket(env->zctx, ZMQ_ROUTER);
    int linger = 0, hwm = 2000, mandatory = 0;
    int64_t maxmsg = (int64_t)env->cfg->max_frame;
    int rc = OBS_ESYS;
    if (self->sock) {
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        zmq_setsockopt(self->sock, ZMQ_ROUTER_MANDATORY, &mandatory,
                       sizeof(mandatory));
        if (zmq_bind(self->sock, env->cfg->repl_bind) == 0) {
            size_t len = sizeof(self->endpoint);
            zmq_getsockopt(self->sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
            rc = OBS_OK;
        }
    }
    if (rc != OBS_OK)
        snprintf(err, cap, "repl_bind %s: %s", env->cfg->repl_bind,
                 zmq_strerror(zmq_errno()));
    if (rc == OBS_OK)
        rc = write_endpoint_file(self, err, cap);
    if (rc == OBS_OK)
        rc = repl_structure_hash(env->st, self->hash);
    if (rc == OBS_OK)
        rc = load_state_applied(self);
    if (rc == OBS_OK && (rc = hub_prep_new(env->st, HUB_PREP_AHEAD, true,
                                           &self->prep)) != OBS_OK)
        snprintf(err, cap, "hub: cannot start the checking thread: %s",
                 obs_strerror(rc));
    if (rc != OBS_OK) {
        repl_hub_destroy(&self);
        return rc;
    }
    log_warnx("hub: replication on %s is PLAINTEXT (security = plaintext): "
              "no encryption, no authentication. Local testing only.",
              self->endpoint);
    *out = self;
    return OBS_OK;
}

/* Reads the log bounds and state_applied. A store without state_applied
 * comes from before the state was applied behind the log, when both were
 * written together: its state holds the whole log, which is recorded now,
 * before any change is accepted. */
static int
load_state_applied(repl_hub_t *self)
{
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, true, &txn);
    if (rc == OBS_OK)
        rc = obsdb_log_bounds(txn, &self->log_first, &self->log_last);
    if (rc == OBS_OK) {
        rc = obsdb_meta_get_u64(txn, STATE_APPLIED, &self->state_applied);
        if (rc == OBS_ENOENT) {
            self->state_applied = self->log_last;
            rc = obsdb_meta_put_u64(txn, STATE_APPLIED, self->log_last);
        }
    }
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc == OBS_OK && self->state_applied < self->log_last)
        log_notice("hub: the state holds the log up to hub_seq %" PRIu64
                   " of %" PRIu64 ": applying the rest",
                   self->state_applied, self->log_last);
    return rc;
}

void
repl_hub_destroy(repl_hub_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    repl_hub_t *self = *selfp;
    /* a clean stop leaves the state in step with the log */
    if (self->state_applied < self->log_last &&
        repl_hub_catch_up(self) != OBS_OK)
        log_warnx("hub: stopping with the state at hub_seq %" PRIu64
                  " of %" PRIu64 "; it is applied at the next start",
                  self->state_applied, self->log_last);
    fanout_drop(self, NULL);
    for (size_t i = 0; i < self->n_sess; i++)
        sess_free(self, self->sess[i]);
    if (self->prep) { /* how much the checking thread took off the loop */
        uint64_t ahead = 0, inline_ = 0;
        hub_prep_counts(self->prep, &ahead, &inline_);
        log_info("hub: %" PRIu64 " publish(es) checked ahead, %" PRIu64
                 " at their commit",
                 ahead, inline_);
    }
    hub_prep_destroy(&self->prep); /* after every job is forgotten */
    if (self->sock)
        zmq_close(self->sock);
    version_cache_fini(&self->vcache);
    free(self->peers);
    free(self->status_rows);
    free(self->status_ptrs);
    free(self);
    *selfp = NULL;
}

void *
repl_hub_socket(repl_hub_t *self)
{
    return self->sock;
}
