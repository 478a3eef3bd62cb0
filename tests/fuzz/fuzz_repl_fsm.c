/*
 * fuzz_repl_fsm.c - libFuzzer target for the replication state machines of
 * repl_fsm.c. The input is read 3 bytes at a time as events: byte 0 picks
 * the machine (bit 0: node or hub) and the event type (the other bits),
 * byte 1 advances the fake clock by byte*16 ms, byte 2 gives small seq
 * deltas and flags relative to the machine's own position, so the
 * interesting equalities (from == cursor, cursor == log_first - 1, ...)
 * come up often. One node machine and one hub session run side by side,
 * each with a minimal glue model that answers the actions a real glue
 * answers at once (APPLY_CHUNK -> APPLIED, SEND_PUBLISH -> PUBLISHED,
 * SEND_BATCH/SEND_CHUNK -> SENT); peer messages are arbitrary. The node's
 * glue keeps LogBatches as repl/node/ does (stream_keep_batch) and reports
 * them APPLIED, in order, when it flushes: before an event that is not a
 * LogBatch at `expect`, when full, and when the socket is drained (the
 * mixer picks when). So `expect` runs ahead of `cursor`, and a batch must
 * start where the glue's data ends: the end of the last kept batch, or the
 * cursor. Invariants are checked after every step and abort() on
 * violation. It is not an end-to-end simulation of a node talking to a hub.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "repl_fsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HB_MS     1000
#define DEAD_MS   3000
#define QUEUE_MAX 64  /* glue events pending, per input event */
#define STEPS_MAX 512 /* steps per input event: more is a livelock */
#define KEPT_MAX  (4 * REPL_WINDOW) /* as NODE_BATCHES_MAX */

typedef struct {
    const uint8_t *p;
    size_t left;
    uint64_t now;
    rn_fsm_t node;
    rh_fsm_t hub;
    uint64_t log_first, log_last; /* the hub's log, as the glue knows it */
    uint32_t glue;                /* the glue's choices, mixed from input */
    uint64_t kept[KEPT_MAX];      /* `to` of each batch the node glue keeps */
    size_t n_kept;
} sim_t;

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "fuzz_repl_fsm: invariant failed: %s (line %d)\n", \
                    #cond, __LINE__);                                          \
            abort();                                                           \
        }                                                                      \
    } while (0)

static uint8_t
take(sim_t *s)
{
    if (s->left == 0)
        return 0;
    s->left--;
    return *s->p++;
}

/* The glue's choices (batch sizes, end of snapshot) come from a mixer
 * seeded by each event, so they never shift the 3-byte framing. */
static unsigned
glue_pick(sim_t *s)
{
    s->glue ^= s->glue << 13;
    s->glue ^= s->glue >> 17;
    s->glue ^= s->glue << 5;
    return s->glue;
}

/* a + d - back, saturating at 0 */
static uint64_t
rel(uint64_t a, unsigned d, unsigned back)
{
    return a + d >= back ? a + d - back : 0;
}

/* ------------------------------------------------------------ node side */

/* Where the node glue's data ends: its last kept batch, or the store. */
static uint64_t
node_end(const sim_t *s, const rn_fsm_t *pre)
{
    return s->n_kept > 0 ? s->kept[s->n_kept - 1] : pre->cursor;
}

static void
node_check(const sim_t *s, const rn_fsm_t *pre, const rn_fsm_t *f,
           const rn_event_t *ev, const rn_actions_t *out)
{
    CHECK(out->n <= REPL_ACTIONS_MAX);
    CHECK(strcmp(rn_state_name(f->state), "?") != 0);
    CHECK(strcmp(rn_event_name(ev->type), "?") != 0);
    CHECK(f->pub_inflight <= REPL_PUB_WINDOW);
    CHECK(f->pub_sent >= f->pub_acked);
    CHECK(f->expect >= f->cursor);
    bool finished = false, restored = false;
    for (size_t i = 0; i < out->n; i++) {
        const rn_action_t *a = &out->a[i];
        if (a->type == RN_A_APPLY_BATCH) {
            CHECK(ev->type == RN_EV_LOG_BATCH);
            CHECK(pre->state == RN_STREAMING);
            /* never a gap, never before the cursor, never over a batch
             * the glue still keeps */
            CHECK(ev->from == node_end(s, pre));
            CHECK(ev->from == pre->expect);
            CHECK(a->n >= ev->from);
        }
        /* The hub restarts after the cursor a resync names: the glue must
         * not keep batches that end beyond it (they would come again). */
        if (a->type == RN_A_SEND_CREDIT && a->resync)
            CHECK(f->cursor == f->expect &&
                  (s->n_kept == 0 || s->kept[s->n_kept - 1] <= f->cursor));
        if (a->type == RN_A_FINISH_SNAPSHOT) {
            CHECK(pre->state == RN_SNAPSHOT);
            CHECK(f->cursor == a->n);
            finished = true;
        }
        if (a->type == RN_A_RESTORE_OUTBOX) {
            CHECK(ev->type == RN_EV_WELCOME && pre->state == RN_HELLO);
            CHECK(a->n == ev->seq && a->n < pre->pub_acked);
            CHECK(f->pub_acked == a->n && f->pub_sent == a->n);
            restored = true;
        }
        if (a->type == RN_A_SEND_PUBLISH) {
            CHECK(f->state == RN_SNAPSHOT || f->state == RN_STREAMING);
            CHECK(a->n == f->pub_sent && a->n < f->outbox_last);
        }
    }
    /* The cursor only moves back when a snapshot from another hub history
     * replaces the store: then it is the fence. */
    CHECK(f->cursor >= pre->cursor || finished);
    /* pub_acked only moves back when a Welcome says the hub lost changes
     * it had acknowledged (restored): they go back into the outbox. */
    CHECK(f->pub_acked >= pre->pub_acked || restored);
    if (pre->state == RN_IDLE && ev->type != RN_EV_TICK)
        CHECK(out->n == 0);
}

/* The glue's immediate answers to the node's actions. */
static void
node_glue(sim_t *s, const rn_actions_t *out, rn_event_t *q, size_t *qn)
{
    for (size_t i = 0; i < out->n && *qn < QUEUE_MAX; i++) {
        const rn_action_t *a = &out->a[i];
        rn_event_t ev = {.now_ms = s->now};
        if (a->type == RN_A_APPLY_BATCH) {
            CHECK(s->n_kept < KEPT_MAX); /* flushed before it fills */
            s->kept[s->n_kept++] = a->n;
            continue;
        } else if (a->type == RN_A_DISCONNECT) {
            s->n_kept = 0; /* dropped, as stream_drop */
            continue;
        } else if (a->type == RN_A_APPLY_CHUNK) {
            ev.type = RN_EV_APPLIED;
        } else if (a->type == RN_A_SEND_PUBLISH) {
            uint64_t last = a->n + 1 + (glue_pick(s) & 3);
            ev.type = RN_EV_PUBLISHED;
            ev.seq = last < s->node.outbox_last ? last : s->node.outbox_last;
        } else {
            continue;
        }
        q[(*qn)++] = ev;
    }
}

static void
node_run(sim_t *s, rn_event_t first)
{
    rn_event_t q[QUEUE_MAX];
    size_t head = 0, qn = 0, steps = 0;
    q[qn++] = first;
    while (head < qn) {
        rn_event_t ev = q[head++];
        rn_fsm_t pre = s->node;
        rn_actions_t out;
        rn_state_t st = rn_fsm_step(&s->node, &ev, &out);
        CHECK(st == s->node.state);
        node_check(s, &pre, &s->node, &ev, &out);
        node_glue(s, &out, q, &qn);
        CHECK(++steps < STEPS_MAX);
    }
}

/* The glue commits its kept batches (one transaction) and reports each
 * APPLIED in order, as stream_flush. */
static void
node_flush(sim_t *s)
{
    while (s->n_kept > 0) {
        rn_event_t ev = {
            .type = RN_EV_APPLIED, .now_ms = s->now, .to = s->kept[0]};
        s->n_kept--;
        memmove(s->kept, s->kept + 1, s->n_kept * sizeof(s->kept[0]));
        node_run(s, ev);
    }
}

/* One message or local event reaches the node: kept batches are flushed
 * first unless it is a batch that follows them (repl_node.c's read loop),
 * and maybe after it, as when the socket has nothing more. */
static void
node_input(sim_t *s, rn_event_t ev)
{
    if (ev.type != RN_EV_LOG_BATCH || ev.from != s->node.expect ||
        s->n_kept == KEPT_MAX)
        node_flush(s);
    node_run(s, ev);
    if (glue_pick(s) & 1)
        node_flush(s);
}

static rn_event_t
node_event(const sim_t *s, unsigned type, uint8_t b)
{
    const rn_fsm_t *f = &s->node;
    rn_event_t ev = {.now_ms = s->now};
    switch (type % 12) {
    case 0:
        ev.type = RN_EV_TICK;
        break;
    case 1:
        ev.type = RN_EV_WELCOME;
        ev.snapshot = b & 1;
        ev.seq = rel(f->pub_acked, (b >> 1) & 7, 3);
        break;
    case 2:
        ev.type = RN_EV_SNAP_BEGIN;
        ev.seq = rel(f->cursor, b & 15, 4);
        break;
    case 3:
        ev.type = RN_EV_SNAP_CHUNK;
        break;
    case 4:
        ev.type = RN_EV_SNAP_END;
        ev.seq = (b & 1) ? f->fence : rel(f->cursor, (b >> 1) & 15, 4);
        break;
    case 5:
        ev.type = RN_EV_LOG_BATCH;
        ev.from = (b & 1) ? f->expect : rel(f->cursor, (b >> 1) & 7, 3);
        ev.to = (b >> 4) == 15 ? rel(ev.from, 0, 1) : ev.from + (b >> 4);
        break;
    case 6:
        ev.type = RN_EV_APPLIED;
        ev.to = rel(f->cursor, b & 7, 2);
        break;
    case 7:
        ev.type = RN_EV_PUB_ACK;
        ev.seq = rel(f->pub_acked, b & 7, 1);
        ev.from = (b & 0x80) ? f->pub_acked + ((b >> 3) & 7) : 0;
        break;
    case 8:
        ev.type = RN_EV_OUTBOX;
        ev.seq = f->outbox_last + (b & 15);
        break;
    case 9:
        ev.type = RN_EV_HEARTBEAT;
        break;
    case 10:
        ev.type = RN_EV_GOODBYE;
        break;
    default:
        ev.type = RN_EV_PROTO_ERROR;
        break;
    }
    return ev;
}

/* ------------------------------------------------------------- hub side */

static void
hub_check(const rh_fsm_t *pre, const rh_fsm_t *f, const rh_event_t *ev,
          const rh_actions_t *out)
{
    CHECK(out->n <= REPL_ACTIONS_MAX);
    CHECK(strcmp(rh_state_name(f->state), "?") != 0);
    CHECK(strcmp(rh_event_name(ev->type), "?") != 0);
    CHECK(f->credits <= 4 * REPL_WINDOW);
    if (pre->state == RH_DEAD)
        CHECK(out->n == 0 && f->state == RH_DEAD);
    for (size_t i = 0; i < out->n; i++) {
        const rh_action_t *a = &out->a[i];
        if (a->type == RH_A_SEND_BATCH) {
            CHECK(f->credits > 0);
            CHECK(f->state == RH_STREAMING);
            CHECK(a->n == f->read_pos && a->n < f->log_last);
        }
        if (a->type == RH_A_SEND_CHUNK) {
            CHECK(f->credits > 0);
            CHECK(f->state == RH_SNAPSHOT);
        }
        if (a->type == RH_A_CLOSE)
            CHECK(f->state == RH_DEAD);
    }
}

static void
hub_glue(sim_t *s, const rh_actions_t *out, rh_event_t *q, size_t *qn)
{
    for (size_t i = 0; i < out->n && *qn < QUEUE_MAX; i++) {
        const rh_action_t *a = &out->a[i];
        rh_event_t ev = {.type = RH_EV_SENT, .now_ms = s->now};
        if (a->type == RH_A_SEND_BATCH) {
            uint64_t to = a->n + 1 + (glue_pick(s) & 7);
            ev.seq = to < s->hub.log_last ? to : s->hub.log_last;
        } else if (a->type == RH_A_SEND_CHUNK) {
            ev.done = (glue_pick(s) & 3) == 0;
        } else {
            continue;
        }
        q[(*qn)++] = ev;
    }
}

static void
hub_run(sim_t *s, rh_event_t first)
{
    rh_event_t q[QUEUE_MAX];
    size_t head = 0, qn = 0, steps = 0;
    q[qn++] = first;
    while (head < qn) {
        rh_event_t ev = q[head++];
        rh_fsm_t pre = s->hub;
        rh_actions_t out;
        rh_state_t st = rh_fsm_step(&s->hub, &ev, &out);
        CHECK(st == s->hub.state);
        hub_check(&pre, &s->hub, &ev, &out);
        hub_glue(s, &out, q, &qn);
        CHECK(++steps < STEPS_MAX);
    }
}

static rh_event_t
hub_event(sim_t *s, unsigned type, uint8_t b)
{
    const rh_fsm_t *f = &s->hub;
    rh_event_t ev = {.now_ms = s->now};
    switch (type % 9) {
    case 0:
        ev.type = RH_EV_TICK;
        break;
    case 1:
        if (f->state == RH_DEAD && (b & 0x40)) /* the node reconnects */
            rh_fsm_init(&s->hub, s->now, HB_MS, DEAD_MS);
        ev.type = RH_EV_HELLO;
        ev.cursor = (b & 1) ? 0 : rel(s->log_last, (b >> 1) & 15, 10);
        ev.epoch_ok = !(b & 0x80);
        ev.log_first = s->log_first;
        ev.log_last = s->log_last;
        break;
    case 2:
        ev.type = RH_EV_CREDIT;
        ev.n = (b & 0x40) ? 1000u + b : (b & 15u);
        ev.resync = b & 0x80;
        ev.cursor = rel(f->read_pos, 0, (b >> 4) & 3);
        break;
    case 3:
        ev.type = RH_EV_PUBLISH;
        ev.first = b & 15;
        ev.last = b;
        break;
    case 4:
        ev.type = RH_EV_COMMITTED;
        ev.seq = b;
        ev.first = b & 3;
        break;
    case 5:
        s->log_last += b & 15;
        if ((b & 0x80) && s->log_first <= s->log_last)
            s->log_first += 4; /* trimmed */
        ev.type = RH_EV_LOG_GREW;
        ev.log_last = s->log_last;
        break;
    case 6:
        ev.type = RH_EV_HEARTBEAT;
        break;
    case 7:
        ev.type = RH_EV_GOODBYE;
        break;
    default:
        ev.type = RH_EV_PROTO_ERROR;
        break;
    }
    return ev;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sim_t s;
    memset(&s, 0, sizeof(s));
    s.p = data;
    s.left = size;
    s.log_first = 1;
    rn_fsm_init(&s.node, 0, 0, 0, HB_MS, DEAD_MS);
    rh_fsm_init(&s.hub, 0, HB_MS, DEAD_MS);
    while (s.left >= 3) {
        uint8_t sel = take(&s), dt = take(&s), b = take(&s);
        s.now += (uint64_t)dt * 16;
        s.glue = 0x9e3779b9u ^ ((uint32_t)sel << 16 | (uint32_t)dt << 8 | b);
        if ((sel & 1) == 0)
            node_input(&s, node_event(&s, sel >> 1, b));
        else
            hub_run(&s, hub_event(&s, sel >> 1, b));
    }
    return 0;
}
