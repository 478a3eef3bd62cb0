/*
 * repl_fsm.c - replication state machines (see repl_fsm.h and the tables of
 * PROTOCOL.md §5.4). A switch on the state, then on the event; each action is
 * appended to the outbox for the glue to perform. No I/O, no clock, no
 * allocation: everything the machines know arrives in events.
 */
#include "repl_fsm.h"

#include <assert.h>
#include <string.h>

/* ------------------------------------------------------------ node side */

static const char *const RN_STATES[] = {"idle", "hello", "snapshot",
                                        "streaming"};
static const char *const RN_EVENTS[] = {
    "tick",      "welcome", "snap_begin", "snap_chunk", "snap_end",
    "batch",     "applied", "pub_ack",    "published",  "outbox",
    "heartbeat", "goodbye", "proto_error"};

const char *
rn_state_name(rn_state_t s)
{
    return (unsigned)s < 4 ? RN_STATES[s] : "?";
}

const char *
rn_event_name(rn_event_type_t e)
{
    return (unsigned)e < sizeof(RN_EVENTS) / sizeof(RN_EVENTS[0]) ? RN_EVENTS[e]
                                                                  : "?";
}

static void
rn_push(rn_fsm_t *f, rn_actions_t *out, rn_action_type_t t, uint64_t n,
        bool resync, uint64_t now)
{
    /* No event produces more: a bug if it does (the fuzzer looks). */
    assert(out->n < REPL_ACTIONS_MAX);
    out->a[out->n++] = (rn_action_t){t, n, resync, NULL};
    if (t == RN_A_SEND_HELLO || t == RN_A_SEND_CREDIT ||
        t == RN_A_SEND_HEARTBEAT)
        f->last_send_ms = now;
}

void
rn_fsm_init(rn_fsm_t *f, uint64_t cursor, uint64_t pub_acked,
            uint64_t outbox_last, uint32_t heartbeat_ms, uint32_t dead_ms)
{
    memset(f, 0, sizeof(*f));
    f->state = RN_IDLE;
    f->cursor = cursor;
    f->expect = cursor;
    f->pub_acked = pub_acked;
    f->pub_sent = pub_acked;
    f->outbox_last = outbox_last;
    f->heartbeat_ms = heartbeat_ms;
    f->dead_ms = dead_ms;
}

/* Nothing is in flight any more (all acked, a resend, a new session). */
static void
rn_inflight_clear(rn_fsm_t *f)
{
    f->pub_inflight = 0;
    f->pub_head = 0;
}

static void
rn_disconnect(rn_fsm_t *f, uint64_t now, rn_actions_t *out)
{
    rn_push(f, out, RN_A_DISCONNECT, 0, false, now);
    f->state = RN_IDLE;
    f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : REPL_BACKOFF_MIN;
    if (f->backoff_ms > REPL_BACKOFF_MAX)
        f->backoff_ms = REPL_BACKOFF_MAX;
    f->next_connect_ms = now + f->backoff_ms;
    rn_inflight_clear(f);
    f->pub_sent = f->pub_acked;
    f->resyncing = false;
    f->expect = f->cursor; /* batches not yet applied are dropped */
}

/* One Publish at a time: the glue answers with RN_EV_PUBLISHED. */
static void
rn_try_publish(rn_fsm_t *f, uint64_t now, rn_actions_t *out)
{
    if ((f->state == RN_SNAPSHOT || f->state == RN_STREAMING) &&
        f->pub_inflight < REPL_PUB_WINDOW && f->pub_sent < f->outbox_last)
        rn_push(f, out, RN_A_SEND_PUBLISH, f->pub_sent, false, now);
}

static void
rn_on_welcome(rn_fsm_t *f, const rn_event_t *ev, rn_actions_t *out)
{
    f->backoff_ms = 0;
    f->expect = f->cursor;
    /* The hub holds our changes up to ev->seq: drop them from the outbox and
     * publish from there on. */
    /* ev->to: the glue renumbered our unacknowledged changes after the
     * hub's (this store is an older copy of itself); they end there */
    if (ev->to > f->outbox_last)
        f->outbox_last = ev->to;
    if (ev->seq > f->pub_acked) {
        f->pub_acked = ev->seq;
        if (ev->seq > f->outbox_last)
            f->outbox_last = ev->seq;
        rn_push(f, out, RN_A_ACK_OUTBOX, ev->seq, false, ev->now_ms);
    } else if (ev->seq < f->pub_acked) {
        /* The hub no longer has changes it acknowledged: publish them again
         * (at-least-once; the hub applies each once). */
        f->pub_acked = ev->seq;
        rn_push(f, out, RN_A_RESTORE_OUTBOX, ev->seq, false, ev->now_ms);
    }
    f->pub_sent = f->pub_acked;
    rn_inflight_clear(f);
    f->state = ev->snapshot ? RN_SNAPSHOT : RN_STREAMING;
    rn_push(f, out, RN_A_SEND_CREDIT, REPL_WINDOW, false, ev->now_ms);
    rn_try_publish(f, ev->now_ms, out);
}

/* Events every connected state handles alike. Returns false if unhandled. */
static bool
rn_connected_common(rn_fsm_t *f, const rn_event_t *ev, rn_actions_t *out)
{
    uint64_t now = ev->now_ms;
    switch (ev->type) {
    case RN_EV_TICK:
        if (now - f->last_recv_ms >= f->dead_ms)
            rn_disconnect(f, now, out);
        else if (now - f->last_send_ms >= f->heartbeat_ms)
            rn_push(f, out, RN_A_SEND_HEARTBEAT, 0, false, now);
        return true;
    case RN_EV_HEARTBEAT:
        return true;
    case RN_EV_GOODBYE:
    case RN_EV_PROTO_ERROR:
        rn_disconnect(f, now, out);
        return true;
    case RN_EV_OUTBOX:
        if (ev->seq > f->outbox_last)
            f->outbox_last = ev->seq;
        rn_try_publish(f, now, out);
        return true;
    case RN_EV_PUBLISHED:
        if (ev->seq > f->pub_sent)
            f->pub_sent = ev->seq;
        if (f->pub_inflight < REPL_PUB_WINDOW) /* always: TRY_PUBLISH checked */
            f->pub_ends[(f->pub_head + f->pub_inflight++) % REPL_PUB_WINDOW] =
                ev->seq;
        f->last_send_ms = now;
        rn_try_publish(f, now, out);
        return true;
    case RN_EV_PUB_ACK:
        if (f->state == RN_HELLO)
            return false;
        if (ev->seq > f->pub_acked) {
            f->pub_acked = ev->seq;
            rn_push(f, out, RN_A_ACK_OUTBOX, ev->seq, false, now);
        }
        /* acked_seq is cumulative: one ack after a group commit may cover
         * several Publishes, and frees every slot it covers, so the window
         * refills while the hub commits the rest. */
        if (f->pub_acked >= f->pub_sent) {
            f->pub_sent = f->pub_acked;
            rn_inflight_clear(f);
        }
        while (f->pub_inflight > 0 &&
               f->pub_ends[f->pub_head] <= f->pub_acked) {
            f->pub_head = (f->pub_head + 1) % REPL_PUB_WINDOW;
            f->pub_inflight--;
        }
        if (ev->from != 0 && ev->from - 1 < f->pub_sent) {
            /* the hub saw a gap: resend from there, forget what is in flight */
            f->pub_sent =
                ev->from - 1 > f->pub_acked ? ev->from - 1 : f->pub_acked;
            rn_inflight_clear(f);
        }
        rn_try_publish(f, now, out);
        return true;
    default:
        return false;
    }
}

static rn_state_t
rn_step_idle(rn_fsm_t *f, const rn_event_t *ev, rn_actions_t *out)
{
    if (ev->type == RN_EV_TICK && ev->now_ms >= f->next_connect_ms) {
        rn_push(f, out, RN_A_CONNECT, 0, false, ev->now_ms);
        rn_push(f, out, RN_A_SEND_HELLO, f->cursor, false, ev->now_ms);
        f->last_recv_ms = ev->now_ms;
        f->state = RN_HELLO;
    } else if (ev->type == RN_EV_OUTBOX && ev->seq > f->outbox_last) {
        f->outbox_last = ev->seq;
    }
    /* Anything else is stale input from a closed link: ignored. */
    return f->state;
}

static rn_state_t
rn_step_hello(rn_fsm_t *f, const rn_event_t *ev, rn_actions_t *out)
{
    if (ev->type == RN_EV_WELCOME)
        rn_on_welcome(f, ev, out);
    else if (!rn_connected_common(f, ev, out) && ev->type != RN_EV_APPLIED)
        rn_disconnect(f, ev->now_ms, out); /* out of state */
    return f->state;
}

static rn_state_t
rn_step_snapshot(rn_fsm_t *f, rn_event_t *ev, rn_actions_t *out)
{
    uint64_t now = ev->now_ms;
    switch (ev->type) {
    case RN_EV_SNAP_BEGIN:
        f->fence = ev->seq;
        rn_push(f, out, RN_A_BEGIN_SNAPSHOT, ev->seq, false, now);
        break;
    case RN_EV_SNAP_CHUNK:
        rn_push(f, out, RN_A_APPLY_CHUNK, 0, false, now);
        out->a[out->n - 1].msg = repl_take(&ev->msg);
        break;
    case RN_EV_APPLIED:
        rn_push(f, out, RN_A_SEND_CREDIT, 1, false, now);
        break;
    case RN_EV_SNAP_END:
        rn_push(f, out, RN_A_FINISH_SNAPSHOT, ev->seq, false, now);
        f->cursor = ev->seq;
        f->expect = ev->seq;
        f->state = RN_STREAMING;
        break;
    default:
        if (!rn_connected_common(f, ev, out))
            rn_disconnect(f, now, out);
    }
    return f->state;
}

/* A LogBatch while streaming. The glue keeps accepted batches and commits
 * them together (RN_EV_APPLIED for each), so expect, the end of the last
 * one handed over, may run ahead of the cursor. A resync named while it
 * still keeps some would restart the hub before them: the credit waits
 * until they are applied (rn_on_applied), and nothing is accepted
 * meanwhile, so no batch is ever handed over that does not start where the
 * glue's data ends. */
static void
rn_on_batch(rn_fsm_t *f, rn_event_t *ev, rn_actions_t *out)
{
    uint64_t now = ev->now_ms;
    bool waiting = f->resyncing && f->cursor < f->expect;
    if (!waiting && ev->from == f->expect && ev->to >= ev->from) {
        f->expect = ev->to;
        f->resyncing = false;
        rn_push(f, out, RN_A_APPLY_BATCH, ev->to, false, now);
        out->a[out->n - 1].msg = repl_take(&ev->msg);
        return;
    }
    /* A gap or a batch from before a resync: never skip ahead. */
    rn_push(f, out, RN_A_DROP_BATCH, ev->from, false, now);
    if (f->resyncing)
        return;
    f->resyncing = true;
    if (f->cursor == f->expect) /* the hub restarts after the cursor */
        rn_push(f, out, RN_A_SEND_CREDIT, REPL_WINDOW, true, now);
}

static void
rn_on_applied(rn_fsm_t *f, const rn_event_t *ev, rn_actions_t *out)
{
    bool waiting = f->resyncing && f->cursor < f->expect;
    if (ev->to > f->cursor)
        f->cursor = ev->to;
    /* Applied past what was handed over (the glue says so): the store is
     * at the cursor, so the next batch starts there, never before it. */
    bool past = f->cursor > f->expect;
    if (past)
        f->expect = f->cursor;
    if (!f->resyncing)
        rn_push(f, out, RN_A_SEND_CREDIT, 1, false, ev->now_ms);
    else if (past || (waiting && f->cursor == f->expect))
        /* the kept batches are in (or the resync named an older cursor):
         * the hub restarts after this one */
        rn_push(f, out, RN_A_SEND_CREDIT, REPL_WINDOW, true, ev->now_ms);
}

static rn_state_t
rn_step_streaming(rn_fsm_t *f, rn_event_t *ev, rn_actions_t *out)
{
    switch (ev->type) {
    case RN_EV_LOG_BATCH:
        rn_on_batch(f, ev, out);
        break;
    case RN_EV_APPLIED:
        rn_on_applied(f, ev, out);
        break;
    default:
        if (!rn_connected_common(f, ev, out))
            rn_disconnect(f, ev->now_ms, out);
    }
    return f->state;
}

rn_state_t
rn_fsm_step(rn_fsm_t *f, rn_event_t *ev, rn_actions_t *out)
{
    out->n = 0;
    bool received = ev->type != RN_EV_TICK && ev->type != RN_EV_APPLIED &&
                    ev->type != RN_EV_PUBLISHED && ev->type != RN_EV_OUTBOX;
    if (received && f->state != RN_IDLE)
        f->last_recv_ms = ev->now_ms;
    switch (f->state) {
    case RN_IDLE:
        return rn_step_idle(f, ev, out);
    case RN_HELLO:
        return rn_step_hello(f, ev, out);
    case RN_SNAPSHOT:
        return rn_step_snapshot(f, ev, out);
    case RN_STREAMING:
        return rn_step_streaming(f, ev, out);
    }
    return f->state;
}

/* ------------------------------------------------------------- hub side */

static const char *const RH_STATES[] = {"new", "snapshot", "streaming", "dead"};
static const char *const RH_EVENTS[] = {
    "tick",     "hello", "credit",    "publish", "committed",
    "log_grew", "sent",  "heartbeat", "goodbye", "proto_error"};

const char *
rh_state_name(rh_state_t s)
{
    return (unsigned)s < 4 ? RH_STATES[s] : "?";
}

const char *
rh_event_name(rh_event_type_t e)
{
    return (unsigned)e < sizeof(RH_EVENTS) / sizeof(RH_EVENTS[0]) ? RH_EVENTS[e]
                                                                  : "?";
}

static void
rh_push(rh_fsm_t *f, rh_actions_t *out, rh_action_type_t t, uint64_t n,
        uint64_t m, bool snapshot, uint64_t now)
{
    assert(out->n < REPL_ACTIONS_MAX);
    out->a[out->n++] = (rh_action_t){t, n, m, snapshot, NULL};
    if (t != RH_A_APPLY_PUBLISH && t != RH_A_START_SNAPSHOT && t != RH_A_CLOSE)
        f->last_send_ms = now;
}

void
rh_fsm_init(rh_fsm_t *f, uint64_t now_ms, uint32_t heartbeat_ms,
            uint32_t dead_ms)
{
    memset(f, 0, sizeof(*f));
    f->state = RH_NEW;
    f->last_recv_ms = f->last_send_ms = now_ms;
    f->heartbeat_ms = heartbeat_ms;
    f->dead_ms = dead_ms;
}

static void
rh_close(rh_fsm_t *f, uint64_t now, rh_close_why_t why, rh_actions_t *out)
{
    rh_push(f, out, RH_A_CLOSE, why, 0, false, now);
    f->state = RH_DEAD;
}

/* Sends one batch or chunk if the node gave credit; RH_EV_SENT continues. */
static void
rh_pump(rh_fsm_t *f, uint64_t now, rh_actions_t *out)
{
    if (f->credits == 0)
        return;
    if (f->state == RH_SNAPSHOT)
        rh_push(f, out, RH_A_SEND_CHUNK, 0, 0, false, now);
    else if (f->state == RH_STREAMING && f->read_pos < f->log_last)
        rh_push(f, out, RH_A_SEND_BATCH, f->read_pos, 0, false, now);
}

/* Snapshot when the log cannot bring the node up to date: a new node (on a
 * non-empty log), a cursor before the log's start (trimmed), a cursor from
 * another hub incarnation, or a cursor past the log's end (hub restored). */
static bool
rh_needs_snapshot(const rh_event_t *ev)
{
    if (ev->cursor == 0)
        return ev->log_last > 0;
    return !ev->epoch_ok || ev->cursor + 1 < ev->log_first ||
           ev->cursor > ev->log_last;
}

static void
rh_on_hello(rh_fsm_t *f, const rh_event_t *ev, rh_actions_t *out)
{
    bool snap = rh_needs_snapshot(ev);
    f->log_last = ev->log_last;
    f->credits = 0;
    rh_push(f, out, RH_A_SEND_WELCOME, 0, 0, snap, ev->now_ms);
    if (snap) {
        f->fence = ev->log_last;
        f->read_pos = ev->log_last;
        f->state = RH_SNAPSHOT;
        rh_push(f, out, RH_A_START_SNAPSHOT, f->fence, 0, false, ev->now_ms);
    } else {
        f->read_pos = ev->cursor;
        f->state = RH_STREAMING;
    }
}

static void
rh_on_sent(rh_fsm_t *f, const rh_event_t *ev, rh_actions_t *out)
{
    if (f->credits > 0)
        f->credits--;
    if (f->state == RH_SNAPSHOT) {
        if (ev->done) {
            rh_push(f, out, RH_A_SEND_SNAP_END, f->fence, 0, false, ev->now_ms);
            f->state = RH_STREAMING;
        }
    } else if (ev->seq > f->read_pos) {
        f->read_pos = ev->seq;
    }
    rh_pump(f, ev->now_ms, out);
}

static void
rh_step_active(rh_fsm_t *f, rh_event_t *ev, rh_actions_t *out)
{
    uint64_t now = ev->now_ms;
    switch (ev->type) {
    case RH_EV_CREDIT:
        if (ev->resync && f->state == RH_STREAMING) {
            f->read_pos = ev->cursor;
            /* the node's count is not trusted: same cap as below */
            f->credits = ev->n > 4 * REPL_WINDOW ? 4 * REPL_WINDOW : ev->n;
        } else {
            uint64_t c = (uint64_t)f->credits + ev->n;
            f->credits =
                c > 4 * (uint64_t)REPL_WINDOW ? 4 * REPL_WINDOW : (uint32_t)c;
        }
        rh_pump(f, now, out);
        break;
    case RH_EV_PUBLISH:
        rh_push(f, out, RH_A_APPLY_PUBLISH, ev->first, ev->last, false, now);
        out->a[out->n - 1].msg = repl_take(&ev->msg);
        break;
    case RH_EV_COMMITTED:
        rh_push(f, out, RH_A_SEND_ACK, ev->seq, ev->first, false, now);
        break;
    case RH_EV_LOG_GREW:
        if (ev->log_last > f->log_last)
            f->log_last = ev->log_last;
        rh_pump(f, now, out);
        break;
    case RH_EV_SENT:
        rh_on_sent(f, ev, out);
        break;
    case RH_EV_TICK:
        if (now - f->last_recv_ms >= f->dead_ms)
            rh_close(f, now, RH_CLOSE_TIMEOUT, out);
        else if (now - f->last_send_ms >= f->heartbeat_ms)
            rh_push(f, out, RH_A_SEND_HEARTBEAT, 0, 0, false, now);
        break;
    case RH_EV_HEARTBEAT:
        break;
    case RH_EV_GOODBYE:
        rh_close(f, now, RH_CLOSE_PEER_LEFT, out);
        break;
    default: /* HELLO twice, PROTO_ERROR */
        rh_close(f, now, RH_CLOSE_PROTOCOL, out);
    }
}

rh_state_t
rh_fsm_step(rh_fsm_t *f, rh_event_t *ev, rh_actions_t *out)
{
    out->n = 0;
    if (ev->type == RH_EV_HELLO || ev->type == RH_EV_CREDIT ||
        ev->type == RH_EV_PUBLISH || ev->type == RH_EV_HEARTBEAT)
        f->last_recv_ms = ev->now_ms;
    switch (f->state) {
    case RH_NEW:
        if (ev->type == RH_EV_HELLO)
            rh_on_hello(f, ev, out);
        else if (ev->type == RH_EV_TICK) {
            if (ev->now_ms - f->last_recv_ms >= f->dead_ms)
                rh_close(f, ev->now_ms, RH_CLOSE_TIMEOUT, out);
        } else if (ev->type == RH_EV_GOODBYE) {
            rh_close(f, ev->now_ms, RH_CLOSE_PEER_LEFT, out);
        } else if (ev->type != RH_EV_LOG_GREW) {
            rh_close(f, ev->now_ms, RH_CLOSE_PROTOCOL, out); /* Hello first */
        }
        break;
    case RH_SNAPSHOT:
    case RH_STREAMING:
        rh_step_active(f, ev, out);
        break;
    case RH_DEAD:
        break;
    }
    return f->state;
}
