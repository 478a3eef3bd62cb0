/*
 * test_repl_fsm.c - scripted scenarios for the pure replication state
 * machines of repl_fsm.c: the node's link to its hub (rn_*) and the hub's
 * session with one node (rh_*). Each test feeds a few events with a fake
 * clock and checks the actions in the outbox and the state after them; no
 * sockets, no store. It is not a test of the glue (daemon/repl_node.c,
 * daemon/repl_hub.c) nor of a node and a hub talking to each other;
 * fuzz_repl_fsm.c checks the invariants under random events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "repl_fsm.h"

#define HB_MS   1000 /* heartbeat after this much silence */
#define DEAD_MS 3000 /* peer dead after this much silence */

/* ------------------------------------------------------------ helpers */

static rn_state_t
rn_ev(rn_fsm_t *f, rn_actions_t *out, rn_event_t ev)
{
    return rn_fsm_step(f, &ev, out);
}

static rh_state_t
rh_ev(rh_fsm_t *f, rh_actions_t *out, rh_event_t ev)
{
    return rh_fsm_step(f, &ev, out);
}

/* Index of the first action of type t in out, or -1. */
static int
rn_find(const rn_actions_t *out, rn_action_type_t t)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].type == t)
            return (int)i;
    return -1;
}

static size_t
rn_count(const rn_actions_t *out, rn_action_type_t t)
{
    size_t c = 0;
    for (size_t i = 0; i < out->n; i++)
        c += out->a[i].type == t;
    return c;
}

static int
rh_find(const rh_actions_t *out, rh_action_type_t t)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].type == t)
            return (int)i;
    return -1;
}

/* A node connected at t=0 and welcomed at t=10 (no snapshot), outbox empty
 * unless outbox_last > pub_acked. */
static void
node_streaming(rn_fsm_t *f, uint64_t cursor, uint64_t pub_acked,
               uint64_t outbox_last)
{
    rn_actions_t out;
    rn_fsm_init(f, cursor, pub_acked, outbox_last, HB_MS, DEAD_MS);
    assert_int_equal(rn_ev(f, &out, (rn_event_t){.type = RN_EV_TICK}),
                     RN_HELLO);
    assert_int_equal(rn_ev(f, &out,
                           (rn_event_t){.type = RN_EV_WELCOME,
                                        .now_ms = 10,
                                        .seq = pub_acked}),
                     RN_STREAMING);
}

/* Plays the glue for SEND_PUBLISH: answers PUBLISHED (one origin_seq per
 * Publish) until the machine stops asking. Returns the Publishes sent. */
static unsigned
node_publish_all(rn_fsm_t *f, rn_actions_t *out, uint64_t now)
{
    unsigned sent = 0;
    int i;
    while ((i = rn_find(out, RN_A_SEND_PUBLISH)) >= 0 && sent < 100) {
        uint64_t seq = out->a[i].n + 1;
        rn_ev(f, out,
              (rn_event_t){.type = RN_EV_PUBLISHED, .now_ms = now, .seq = seq});
        sent++;
    }
    return sent;
}

/* A new node (cursor 0, nothing acked, 100 local changes) that connected
 * and got a Welcome: streaming, free to publish. */
static void
node_welcomed(rn_fsm_t *f, rn_actions_t *out)
{
    rn_fsm_init(f, 0, 0, 100, HB_MS, DEAD_MS);
    rn_ev(f, out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(f, out, (rn_event_t){.type = RN_EV_WELCOME});
}

/* A hub session that got a Hello at t=0 from a node at `cursor`, log
 * (log_first, log_last], same epoch. */
static rh_state_t
hub_hello(rh_fsm_t *f, rh_actions_t *out, uint64_t cursor, uint64_t log_first,
          uint64_t log_last)
{
    rh_fsm_init(f, 0, HB_MS, DEAD_MS);
    return rh_ev(f, out,
                 (rh_event_t){.type = RH_EV_HELLO,
                              .cursor = cursor,
                              .log_first = log_first,
                              .log_last = log_last,
                              .epoch_ok = true});
}

/* Plays the glue for SEND_BATCH: the batch after n covers `per` entries
 * (capped at log_last). Returns the batches sent. */
static unsigned
hub_send_all(rh_fsm_t *f, rh_actions_t *out, uint64_t log_last, uint64_t per)
{
    unsigned sent = 0;
    int i;
    while ((i = rh_find(out, RH_A_SEND_BATCH)) >= 0 && sent < 100) {
        uint64_t to = out->a[i].n + per;
        rh_ev(f, out,
              (rh_event_t){.type = RH_EV_SENT,
                           .seq = to > log_last ? log_last : to});
        sent++;
    }
    return sent;
}

/* ------------------------------------------------------- node: connect */

static void
test_node_first_tick_connects_and_sends_hello_with_cursor(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 42, 7, 7, HB_MS, DEAD_MS);
    assert_int_equal(f.state, RN_IDLE);
    assert_int_equal(rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK}),
                     RN_HELLO);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.a[0].type, RN_A_CONNECT);
    assert_int_equal(out.a[1].type, RN_A_SEND_HELLO);
    assert_int_equal(out.a[1].n, 42);
}

static void
test_node_welcome_without_snapshot_streams_with_full_credit(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 5, 0, 0, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    assert_int_equal(
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .now_ms = 1}),
        RN_STREAMING);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_SEND_CREDIT);
    assert_int_equal(out.a[0].n, REPL_WINDOW);
    assert_false(out.a[0].resync);
    assert_int_equal(f.cursor, 5);
}

static void
test_node_welcome_with_snapshot_enters_snapshot_with_full_credit(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    assert_int_equal(
        rn_ev(
            &f, &out,
            (rn_event_t){.type = RN_EV_WELCOME, .now_ms = 1, .snapshot = true}),
        RN_SNAPSHOT);
    int i = rn_find(&out, RN_A_SEND_CREDIT);
    assert_true(i >= 0);
    assert_int_equal(out.a[i].n, REPL_WINDOW);
}

static void
test_node_snapshot_sets_cursor_to_fence_then_streams(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 3, 0, 0, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .snapshot = true});

    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_SNAP_BEGIN, .seq = 900});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_BEGIN_SNAPSHOT);
    assert_int_equal(out.a[0].n, 900);
    assert_int_equal(f.cursor, 3); /* not before the end */

    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_SNAP_CHUNK});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_APPLY_CHUNK);

    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_APPLIED});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_SEND_CREDIT);
    assert_int_equal(out.a[0].n, 1);
    assert_int_equal(f.cursor, 3);

    assert_int_equal(
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_SNAP_END, .seq = 900}),
        RN_STREAMING);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_FINISH_SNAPSHOT);
    assert_int_equal(out.a[0].n, 900);
    assert_int_equal(f.cursor, 900);
}

static void
test_node_log_batch_during_snapshot_disconnects(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .snapshot = true});
    assert_int_equal(
        rn_ev(&f, &out,
              (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 0, .to = 4}),
        RN_IDLE);
    assert_true(rn_find(&out, RN_A_DISCONNECT) >= 0);
    assert_int_equal(rn_find(&out, RN_A_APPLY_BATCH), -1);
}

static void
test_node_out_of_state_message_in_hello_disconnects(void **state)
{
    (void)state;
    const rn_event_type_t bad[] = {RN_EV_SNAP_BEGIN, RN_EV_SNAP_CHUNK,
                                   RN_EV_SNAP_END, RN_EV_LOG_BATCH,
                                   RN_EV_PUB_ACK};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        rn_fsm_t f;
        rn_actions_t out;
        rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
        assert_int_equal(rn_ev(&f, &out, (rn_event_t){.type = bad[k]}),
                         RN_IDLE);
        assert_int_equal(out.n, 1);
        assert_int_equal(out.a[0].type, RN_A_DISCONNECT);
    }
}

static void
test_node_second_welcome_disconnects(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 0, 0);
    assert_int_equal(
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .now_ms = 20}),
        RN_IDLE);
    assert_int_equal(rn_find(&out, RN_A_DISCONNECT), 0);
}

/* ---------------------------------------------------- node: log stream */

static void
test_node_batch_from_cursor_is_applied(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 10, .to = 14});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_APPLY_BATCH);
    assert_int_equal(out.a[0].n, 14);
    assert_int_equal(f.cursor, 10); /* only once the glue says applied */
}

static void
test_node_applied_advances_cursor_and_returns_one_credit(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 10, .to = 14});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_APPLIED, .to = 14});
    assert_int_equal(f.cursor, 14);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_SEND_CREDIT);
    assert_int_equal(out.a[0].n, 1);
    assert_false(out.a[0].resync);
}

static void
test_node_gap_drops_batch_and_sends_one_resync_credit(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 14, .to = 20});
    assert_int_equal(out.n, 2);
    assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
    assert_int_equal(out.a[1].type, RN_A_SEND_CREDIT);
    assert_int_equal(out.a[1].n, REPL_WINDOW);
    assert_true(out.a[1].resync);
    assert_true(f.resyncing);
    assert_int_equal(f.cursor, 10);
}

static void
test_node_stale_batches_while_resyncing_send_no_more_credit(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 14, .to = 20});
    const uint64_t stale_from[] = {20, 25, 3};
    for (size_t k = 0; k < 3; k++) {
        rn_ev(&f, &out,
              (rn_event_t){.type = RN_EV_LOG_BATCH,
                           .from = stale_from[k],
                           .to = stale_from[k] + 5});
        assert_int_equal(out.n, 1);
        assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
    }
    assert_int_equal(f.cursor, 10);
}

static void
test_node_batch_from_cursor_after_gap_is_applied(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 14, .to = 20});
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 20, .to = 25});
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 10, .to = 12});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_APPLY_BATCH);
    assert_false(f.resyncing);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_APPLIED, .to = 12});
    assert_int_equal(f.cursor, 12);
    assert_int_equal(rn_count(&out, RN_A_SEND_CREDIT), 1);
    assert_int_equal(out.a[0].n, 1);
}

static void
test_node_batch_ending_before_it_starts_is_dropped(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 10, .to = 9});
    assert_int_equal(rn_find(&out, RN_A_APPLY_BATCH), -1);
    assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
}

/* ------------------------------------------------------- node: publish */

static void
test_node_publish_window_never_exceeds_repl_pub_window(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    assert_true(rn_find(&out, RN_A_SEND_PUBLISH) >= 0);
    assert_int_equal(node_publish_all(&f, &out, 0), REPL_PUB_WINDOW);
    assert_int_equal(f.pub_inflight, REPL_PUB_WINDOW);
    assert_int_equal(f.pub_sent, REPL_PUB_WINDOW);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_OUTBOX, .seq = 200});
    assert_int_equal(rn_find(&out, RN_A_SEND_PUBLISH), -1);
    assert_int_equal(f.outbox_last, 200);
}

static void
test_node_publish_starts_after_pub_sent(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 30, 30);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_OUTBOX, .seq = 31});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_SEND_PUBLISH);
    assert_int_equal(out.a[0].n, 30);
}

static void
test_node_pub_ack_drops_outbox_and_refills_window(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    node_publish_all(&f, &out, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 1});
    assert_int_equal(out.n, 2);
    assert_int_equal(out.a[0].type, RN_A_ACK_OUTBOX);
    assert_int_equal(out.a[0].n, 1);
    assert_int_equal(out.a[1].type, RN_A_SEND_PUBLISH);
    assert_int_equal(out.a[1].n, REPL_PUB_WINDOW);
    assert_int_equal(f.pub_acked, 1);
}

/* PublishAck.acked_seq is cumulative: one ack after a group commit may cover
 * every Publish in flight, and then the whole window is free again. */
static void
test_node_cumulative_pub_ack_frees_the_whole_window(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    node_publish_all(&f, &out, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_PUB_ACK, .seq = REPL_PUB_WINDOW});
    assert_int_equal(f.pub_inflight, 0);
    assert_int_equal(node_publish_all(&f, &out, 0), REPL_PUB_WINDOW);
    assert_int_equal(f.pub_sent, 2 * REPL_PUB_WINDOW);
}

/* An ack that covers some of the Publishes in flight frees exactly their
 * slots (the hub commits part of the window while the rest waits), so the
 * node refills the window while the hub works; a repeated ack frees none. */
static void
test_node_partial_pub_ack_frees_the_slots_it_covers(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    node_publish_all(&f, &out, 0); /* sent 1..16, one change each */
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 4});
    assert_int_equal(f.pub_inflight, REPL_PUB_WINDOW - 4);
    assert_int_equal(node_publish_all(&f, &out, 0), 4);
    assert_int_equal(f.pub_inflight, REPL_PUB_WINDOW);
    assert_int_equal(f.pub_sent, REPL_PUB_WINDOW + 4);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 4});
    assert_int_equal(f.pub_inflight, REPL_PUB_WINDOW);
    assert_int_equal(rn_find(&out, RN_A_SEND_PUBLISH), -1);
    /* the window wraps around its ring: ack 5..10 frees six */
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 10});
    assert_int_equal(f.pub_inflight, REPL_PUB_WINDOW - 6);
}

static void
test_node_pub_ack_resend_from_rewinds_pub_sent(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    node_publish_all(&f, &out, 0); /* sent 1..16 */
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 2, .from = 4});
    assert_int_equal(f.pub_sent, 3);
    assert_int_equal(f.pub_inflight, 0);
    int i = rn_find(&out, RN_A_SEND_PUBLISH);
    assert_true(i >= 0);
    assert_int_equal(out.a[i].n, 3); /* resend starts at origin_seq 4 */
}

static void
test_node_pub_ack_resend_never_rewinds_below_acked(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    node_publish_all(&f, &out, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 5, .from = 2});
    assert_int_equal(f.pub_acked, 5);
    assert_int_equal(f.pub_sent, 5);
}

static void
test_node_welcome_last_origin_seq_acks_outbox(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 3, 10, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .seq = 7});
    assert_int_equal(out.a[0].type, RN_A_ACK_OUTBOX);
    assert_int_equal(out.a[0].n, 7);
    assert_int_equal(f.pub_acked, 7);
    int i = rn_find(&out, RN_A_SEND_PUBLISH);
    assert_true(i >= 0);
    assert_int_equal(out.a[i].n, 7); /* publishing resumes after 7 */
}

/* The hub holds less than it acknowledged (restored from a backup, or
 * wiped): the node puts its later changes back in the outbox and publishes
 * them again from the hub's position. */
static void
test_node_welcome_behind_acked_restores_and_republishes(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 7, 7, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .seq = 2});
    assert_int_equal(rn_find(&out, RN_A_ACK_OUTBOX), -1);
    int r = rn_find(&out, RN_A_RESTORE_OUTBOX);
    assert_true(r >= 0);
    assert_int_equal(out.a[r].n, 2);
    assert_int_equal(f.pub_acked, 2);
    int i = rn_find(&out, RN_A_SEND_PUBLISH);
    assert_true(i > r);
    assert_int_equal(out.a[i].n, 2); /* publishing resumes after 2 */
}

/* The hub holds more of our changes than this store made (an old backup of
 * the node): they are acked, and our numbering continues after them. */
static void
test_node_welcome_ahead_of_outbox_moves_numbering_on(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 3, 5, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .seq = 9});
    int a = rn_find(&out, RN_A_ACK_OUTBOX);
    assert_true(a >= 0);
    assert_int_equal(out.a[a].n, 9);
    assert_int_equal(f.pub_acked, 9);
    assert_int_equal(f.outbox_last, 9);
    assert_int_equal(rn_find(&out, RN_A_SEND_PUBLISH), -1);
}

/* An older copy of the store whose unacknowledged changes 4..5 the glue
 * renumbered 10..11 (a.to) after the hub's 9: they are published, from
 * after 9, and nothing of them is acked away. */
static void
test_node_welcome_renumbered_outbox_is_published_after_hubs(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 3, 5, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .seq = 9, .to = 11});
    assert_int_equal(f.pub_acked, 9);
    assert_int_equal(f.outbox_last, 11);
    int i = rn_find(&out, RN_A_SEND_PUBLISH);
    assert_true(i >= 0);
    assert_int_equal(out.a[i].n, 9); /* 10 and 11 go out */
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUBLISHED, .seq = 11});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PUB_ACK, .seq = 10});
    assert_int_equal(f.pub_acked, 10); /* 11 stays until acked */
    assert_int_equal(f.outbox_last, 11);
}

/* ---------------------------------------------------- node: liveness */

static void
test_node_heartbeat_after_heartbeat_ms_of_silence(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 0, 0); /* last send: credit at t=10 */
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = 10 + HB_MS - 1});
    assert_int_equal(out.n, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = 10 + HB_MS});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_SEND_HEARTBEAT);
    /* the heartbeat itself counts as a send */
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_TICK, .now_ms = 10 + HB_MS + 100});
    assert_int_equal(out.n, 0);
}

static void
test_node_disconnects_after_dead_ms_without_input(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 0, 0); /* last input: Welcome at t=10 */
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_TICK, .now_ms = 10 + DEAD_MS - 1});
    assert_int_equal(f.state, RN_STREAMING);
    assert_int_equal(
        rn_ev(&f, &out,
              (rn_event_t){.type = RN_EV_TICK, .now_ms = 10 + DEAD_MS}),
        RN_IDLE);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_DISCONNECT);
    assert_int_equal(f.next_connect_ms, 10 + DEAD_MS + REPL_BACKOFF_MIN);
}

static void
test_node_input_postpones_dead_timeout(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 0, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_HEARTBEAT, .now_ms = 2000});
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_TICK, .now_ms = 2000 + DEAD_MS - 1});
    assert_int_equal(f.state, RN_STREAMING);
}

static void
test_node_hello_without_welcome_times_out(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = 50});
    assert_int_equal(
        rn_ev(&f, &out,
              (rn_event_t){.type = RN_EV_TICK, .now_ms = 50 + DEAD_MS}),
        RN_IDLE);
    assert_int_equal(out.a[0].type, RN_A_DISCONNECT);
}

/* Each failed attempt (connect, no Welcome, dead) doubles the wait. */
static void
test_node_backoff_doubles_from_min_to_max(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
    uint64_t now = 0, want = REPL_BACKOFF_MIN;
    for (int k = 0; k < 10; k++) {
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = now});
        assert_int_equal(f.state, RN_HELLO);
        now += DEAD_MS;
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = now});
        assert_int_equal(f.state, RN_IDLE);
        assert_int_equal(f.backoff_ms, want);
        assert_int_equal(f.next_connect_ms, now + want);
        /* not a millisecond early */
        rn_ev(&f, &out,
              (rn_event_t){.type = RN_EV_TICK, .now_ms = now + want - 1});
        assert_int_equal(f.state, RN_IDLE);
        assert_int_equal(out.n, 0);
        now += want;
        want = want * 2 > REPL_BACKOFF_MAX ? REPL_BACKOFF_MAX : want * 2;
    }
    assert_int_equal(f.backoff_ms, REPL_BACKOFF_MAX);
}

static void
test_node_welcome_resets_backoff(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
    uint64_t now = 0;
    for (int k = 0; k < 4; k++) { /* backoff up to 800 */
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = now});
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_GOODBYE, .now_ms = now});
        now = f.next_connect_ms;
    }
    assert_int_equal(f.backoff_ms, 8 * REPL_BACKOFF_MIN);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK, .now_ms = now});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME, .now_ms = now});
    assert_int_equal(f.backoff_ms, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_GOODBYE, .now_ms = now});
    assert_int_equal(f.backoff_ms, REPL_BACKOFF_MIN);
}

static void
test_node_proto_error_disconnects(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 0, 0);
    assert_int_equal(
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_PROTO_ERROR, .now_ms = 20}),
        RN_IDLE);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_DISCONNECT);
}

static void
test_node_goodbye_disconnects_and_forgets_inflight(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_welcomed(&f, &out);
    node_publish_all(&f, &out, 0);
    assert_int_equal(
        rn_ev(&f, &out, (rn_event_t){.type = RN_EV_GOODBYE, .now_ms = 20}),
        RN_IDLE);
    assert_int_equal(out.a[0].type, RN_A_DISCONNECT);
    assert_int_equal(f.pub_inflight, 0);
    assert_int_equal(f.pub_sent, f.pub_acked);
}

static void
test_node_idle_ignores_stale_events(void **state)
{
    (void)state;
    const rn_event_type_t stale[] = {
        RN_EV_WELCOME,   RN_EV_SNAP_BEGIN, RN_EV_SNAP_CHUNK, RN_EV_SNAP_END,
        RN_EV_LOG_BATCH, RN_EV_APPLIED,    RN_EV_PUB_ACK,    RN_EV_PUBLISHED,
        RN_EV_HEARTBEAT, RN_EV_GOODBYE,    RN_EV_PROTO_ERROR};
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 5, 0, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_GOODBYE, .now_ms = 20});
    rn_fsm_t before = f;
    for (size_t k = 0; k < sizeof(stale) / sizeof(stale[0]); k++) {
        assert_int_equal(rn_ev(&f, &out,
                               (rn_event_t){.type = stale[k],
                                            .now_ms = 21,
                                            .seq = 50,
                                            .from = 5,
                                            .to = 50,
                                            .snapshot = true}),
                         RN_IDLE);
        assert_int_equal(out.n, 0);
    }
    assert_int_equal(f.cursor, before.cursor);
    assert_int_equal(f.pub_acked, before.pub_acked);
    assert_int_equal(f.pub_sent, before.pub_sent);
    assert_int_equal(f.pub_inflight, before.pub_inflight);
    assert_int_equal(f.next_connect_ms, before.next_connect_ms);
    assert_int_equal(f.backoff_ms, before.backoff_ms);
    assert_int_equal(f.last_recv_ms, before.last_recv_ms);
}

static void
test_node_idle_outbox_is_remembered_and_published_after_welcome(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    rn_fsm_init(&f, 0, 0, 0, HB_MS, DEAD_MS);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_OUTBOX, .seq = 3});
    assert_int_equal(out.n, 0);
    assert_int_equal(f.outbox_last, 3);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_WELCOME});
    assert_true(rn_find(&out, RN_A_SEND_PUBLISH) >= 0);
}

static void
test_node_names_are_known(void **state)
{
    (void)state;
    for (int s = RN_IDLE; s <= RN_STREAMING; s++)
        assert_string_not_equal(rn_state_name((rn_state_t)s), "?");
    for (int e = RN_EV_TICK; e <= RN_EV_PROTO_ERROR; e++)
        assert_string_not_equal(rn_event_name((rn_event_type_t)e), "?");
    assert_string_equal(rn_state_name((rn_state_t)99), "?");
    assert_string_equal(rn_event_name((rn_event_type_t)99), "?");
    assert_string_equal(rn_state_name(RN_STREAMING), "streaming");
}

/* --------------------------------------------------------- hub: hello */

typedef struct {
    const char *why;
    uint64_t cursor, log_first, log_last;
    bool epoch_ok, snapshot;
} hello_case_t;

static void
test_hub_hello_decides_snapshot(void **state)
{
    (void)state;
    const hello_case_t cases[] = {
        {"new node, empty log", 0, 0, 0, true, false},
        {"new node, empty log, other epoch", 0, 0, 0, false, false},
        {"new node, non-empty log", 0, 1, 5, true, true},
        {"new node, trimmed log", 0, 50, 90, true, true},
        {"cursor in range", 10, 1, 20, true, false},
        {"cursor at log end", 20, 1, 20, true, false},
        {"cursor just before log start", 49, 50, 90, true, false},
        {"cursor before trimmed log start", 48, 50, 90, true, true},
        {"cursor from another hub epoch", 10, 1, 20, false, true},
        {"cursor past log end (hub restored)", 30, 1, 20, true, true},
        {"cursor on an empty log", 5, 0, 0, true, true},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const hello_case_t *c = &cases[k];
        rh_fsm_t f;
        rh_actions_t out;
        rh_fsm_init(&f, 0, HB_MS, DEAD_MS);
        rh_state_t s = rh_ev(&f, &out,
                             (rh_event_t){.type = RH_EV_HELLO,
                                          .cursor = c->cursor,
                                          .log_first = c->log_first,
                                          .log_last = c->log_last,
                                          .epoch_ok = c->epoch_ok});
        if (out.a[0].snapshot != c->snapshot)
            fail_msg("case '%s': snapshot %d, want %d", c->why,
                     out.a[0].snapshot, c->snapshot);
        assert_int_equal(out.a[0].type, RH_A_SEND_WELCOME);
        assert_int_equal(s, c->snapshot ? RH_SNAPSHOT : RH_STREAMING);
        assert_int_equal(out.n, c->snapshot ? 2 : 1);
    }
}

static void
test_hub_snapshot_hello_starts_snapshot_fenced_at_log_last(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    assert_int_equal(hub_hello(&f, &out, 0, 1, 77), RH_SNAPSHOT);
    assert_int_equal(out.a[1].type, RH_A_START_SNAPSHOT);
    assert_int_equal(out.a[1].n, 77);
    assert_int_equal(f.fence, 77);
    assert_int_equal(f.read_pos, 77);
    assert_int_equal(f.credits, 0);
}

static void
test_hub_streaming_hello_reads_from_cursor(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    assert_int_equal(hub_hello(&f, &out, 10, 1, 20), RH_STREAMING);
    assert_int_equal(f.read_pos, 10);
    assert_int_equal(f.log_last, 20);
}

/* --------------------------------------------------- hub: flow control */

static void
test_hub_sends_no_batch_without_credit(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 20);
    assert_int_equal(rh_find(&out, RH_A_SEND_BATCH), -1);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_LOG_GREW, .log_last = 30});
    assert_int_equal(out.n, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = 0});
    assert_int_equal(out.n, 0);
}

static void
test_hub_credit_pumps_one_batch(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 20);
    rh_ev(&f, &out,
          (rh_event_t){.type = RH_EV_CREDIT, .n = REPL_WINDOW, .cursor = 10});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_BATCH);
    assert_int_equal(out.a[0].n, 10);
    assert_int_equal(f.credits, REPL_WINDOW);
}

static void
test_hub_sent_continues_until_credit_exhausted(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 0, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_LOG_GREW, .log_last = 1000});
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = 3});
    assert_int_equal(hub_send_all(&f, &out, 1000, 10), 3);
    assert_int_equal(f.credits, 0);
    assert_int_equal(f.read_pos, 30);
}

static void
test_hub_sent_stops_when_log_exhausted(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 20);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = REPL_WINDOW});
    assert_int_equal(hub_send_all(&f, &out, 20, 4), 3); /* 14, 18, 20 */
    assert_int_equal(f.read_pos, 20);
    assert_int_equal(f.credits, REPL_WINDOW - 3);
}

static void
test_hub_log_grew_pumps(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 20, 1, 20);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = REPL_WINDOW});
    assert_int_equal(out.n, 0); /* nothing to send yet */
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_LOG_GREW, .log_last = 21});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_BATCH);
    assert_int_equal(out.a[0].n, 20);
}

static void
test_hub_log_grew_never_shrinks_log_last(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 20, 1, 20);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_LOG_GREW, .log_last = 5});
    assert_int_equal(f.log_last, 20);
}

static void
test_hub_resync_credit_rewinds_read_pos(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 100);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = REPL_WINDOW});
    hub_send_all(&f, &out, 100, 5); /* read_pos 50, credits 0 */
    rh_ev(&f, &out,
          (rh_event_t){.type = RH_EV_CREDIT,
                       .n = REPL_WINDOW,
                       .cursor = 15,
                       .resync = true});
    assert_int_equal(f.read_pos, 15);
    assert_int_equal(f.credits, REPL_WINDOW);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_BATCH);
    assert_int_equal(out.a[0].n, 15);
}

static void
test_hub_resync_credit_replaces_credit(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 10);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = 20});
    rh_ev(&f, &out,
          (rh_event_t){
              .type = RH_EV_CREDIT, .n = 2, .cursor = 10, .resync = true});
    assert_int_equal(f.credits, 2);
}

static void
test_hub_credits_capped(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 10);
    for (int k = 0; k < 10; k++)
        rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = REPL_WINDOW});
    assert_int_equal(f.credits, 4 * REPL_WINDOW);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = UINT32_MAX});
    assert_int_equal(f.credits, 4 * REPL_WINDOW);
}

static void
test_hub_resync_credits_capped(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 10, 1, 10);
    rh_ev(
        &f, &out,
        (rh_event_t){
            .type = RH_EV_CREDIT, .n = 1000000, .cursor = 10, .resync = true});
    assert_int_equal(f.credits, 4 * REPL_WINDOW);
}

/* ------------------------------------------------------ hub: snapshot */

static void
test_hub_snapshot_chunks_consume_credit(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 1, 50);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = 2});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_CHUNK);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_SENT});
    assert_int_equal(f.credits, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_CHUNK);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_SENT});
    assert_int_equal(f.credits, 0);
    assert_int_equal(out.n, 0); /* wait for the node's credit */
    assert_int_equal(f.state, RH_SNAPSHOT);
}

static void
test_hub_snapshot_done_sends_end_then_streams_from_fence(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 1, 50);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_LOG_GREW, .log_last = 60});
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .n = REPL_WINDOW});
    assert_int_equal(
        rh_ev(&f, &out, (rh_event_t){.type = RH_EV_SENT, .done = true}),
        RH_STREAMING);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.a[0].type, RH_A_SEND_SNAP_END);
    assert_int_equal(out.a[0].n, 50);
    assert_int_equal(out.a[1].type, RH_A_SEND_BATCH);
    assert_int_equal(out.a[1].n, 50);
    assert_int_equal(f.credits, REPL_WINDOW - 1);
}

/* ------------------------------------------------------- hub: publish */

static void
test_hub_publish_is_applied(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 0, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_PUBLISH, .first = 4, .last = 9});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_APPLY_PUBLISH);
    assert_int_equal(out.a[0].n, 4);
    assert_int_equal(out.a[0].m, 9);
}

static void
test_hub_committed_sends_ack(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 1, 5); /* also during a snapshot */
    rh_ev(&f, &out,
          (rh_event_t){.type = RH_EV_COMMITTED, .seq = 9, .first = 3});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_ACK);
    assert_int_equal(out.a[0].n, 9);
    assert_int_equal(out.a[0].m, 3);
}

/* ------------------------------------------------------ hub: lifecycle */

static void
test_hub_anything_but_hello_first_closes(void **state)
{
    (void)state;
    const rh_event_type_t bad[] = {
        RH_EV_CREDIT,    RH_EV_PUBLISH, RH_EV_COMMITTED,  RH_EV_SENT,
        RH_EV_HEARTBEAT, RH_EV_GOODBYE, RH_EV_PROTO_ERROR};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        rh_fsm_t f;
        rh_actions_t out;
        rh_fsm_init(&f, 0, HB_MS, DEAD_MS);
        assert_int_equal(rh_ev(&f, &out, (rh_event_t){.type = bad[k], .n = 8}),
                         RH_DEAD);
        assert_int_equal(out.n, 1);
        assert_int_equal(out.a[0].type, RH_A_CLOSE);
    }
}

static void
test_hub_new_waits_through_tick_and_log_grew(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    rh_fsm_init(&f, 0, HB_MS, DEAD_MS);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_LOG_GREW, .log_last = 9});
    assert_int_equal(out.n, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_TICK, .now_ms = DEAD_MS - 1});
    assert_int_equal(out.n, 0); /* no heartbeat before Hello */
    assert_int_equal(f.state, RH_NEW);
}

static void
test_hub_new_without_hello_times_out(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    rh_fsm_init(&f, 100, HB_MS, DEAD_MS);
    assert_int_equal(
        rh_ev(&f, &out,
              (rh_event_t){.type = RH_EV_TICK, .now_ms = 100 + DEAD_MS}),
        RH_DEAD);
    assert_int_equal(out.a[0].type, RH_A_CLOSE);
}

static void
test_hub_dead_timeout_closes(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 0, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_CREDIT, .now_ms = 500});
    rh_ev(&f, &out,
          (rh_event_t){.type = RH_EV_TICK, .now_ms = 500 + DEAD_MS - 1});
    assert_int_equal(f.state, RH_STREAMING);
    assert_int_equal(
        rh_ev(&f, &out,
              (rh_event_t){.type = RH_EV_TICK, .now_ms = 500 + DEAD_MS}),
        RH_DEAD);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_CLOSE);
}

static void
test_hub_heartbeat_after_silence(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 0, 0); /* Welcome sent at t=0 */
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_HEARTBEAT, .now_ms = 900});
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_TICK, .now_ms = HB_MS - 1});
    assert_int_equal(out.n, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_TICK, .now_ms = HB_MS});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RH_A_SEND_HEARTBEAT);
}

static void
test_hub_second_hello_goodbye_and_proto_error_close(void **state)
{
    (void)state;
    const rh_event_type_t bad[] = {RH_EV_HELLO, RH_EV_GOODBYE,
                                   RH_EV_PROTO_ERROR};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        rh_fsm_t f;
        rh_actions_t out;
        hub_hello(&f, &out, 0, 0, 0);
        assert_int_equal(rh_ev(&f, &out, (rh_event_t){.type = bad[k]}),
                         RH_DEAD);
        assert_int_equal(out.n, 1);
        assert_int_equal(out.a[0].type, RH_A_CLOSE);
    }
}

static void
test_hub_dead_ignores_everything(void **state)
{
    (void)state;
    rh_fsm_t f;
    rh_actions_t out;
    hub_hello(&f, &out, 0, 0, 0);
    rh_ev(&f, &out, (rh_event_t){.type = RH_EV_GOODBYE});
    for (int e = RH_EV_TICK; e <= RH_EV_PROTO_ERROR; e++) {
        assert_int_equal(rh_ev(&f, &out,
                               (rh_event_t){.type = (rh_event_type_t)e,
                                            .now_ms = 99999,
                                            .n = 8,
                                            .log_last = 50}),
                         RH_DEAD);
        assert_int_equal(out.n, 0);
    }
}

static void
test_hub_names_are_known(void **state)
{
    (void)state;
    for (int s = RH_NEW; s <= RH_DEAD; s++)
        assert_string_not_equal(rh_state_name((rh_state_t)s), "?");
    for (int e = RH_EV_TICK; e <= RH_EV_PROTO_ERROR; e++)
        assert_string_not_equal(rh_event_name((rh_event_type_t)e), "?");
    assert_string_equal(rh_state_name((rh_state_t)99), "?");
    assert_string_equal(rh_event_name((rh_event_type_t)99), "?");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            test_node_first_tick_connects_and_sends_hello_with_cursor),
        cmocka_unit_test(
            test_node_welcome_without_snapshot_streams_with_full_credit),
        cmocka_unit_test(
            test_node_welcome_with_snapshot_enters_snapshot_with_full_credit),
        cmocka_unit_test(test_node_snapshot_sets_cursor_to_fence_then_streams),
        cmocka_unit_test(test_node_log_batch_during_snapshot_disconnects),
        cmocka_unit_test(test_node_out_of_state_message_in_hello_disconnects),
        cmocka_unit_test(test_node_second_welcome_disconnects),
        cmocka_unit_test(test_node_batch_from_cursor_is_applied),
        cmocka_unit_test(
            test_node_applied_advances_cursor_and_returns_one_credit),
        cmocka_unit_test(test_node_gap_drops_batch_and_sends_one_resync_credit),
        cmocka_unit_test(
            test_node_stale_batches_while_resyncing_send_no_more_credit),
        cmocka_unit_test(test_node_batch_from_cursor_after_gap_is_applied),
        cmocka_unit_test(test_node_batch_ending_before_it_starts_is_dropped),
        cmocka_unit_test(
            test_node_publish_window_never_exceeds_repl_pub_window),
        cmocka_unit_test(test_node_publish_starts_after_pub_sent),
        cmocka_unit_test(test_node_pub_ack_drops_outbox_and_refills_window),
        cmocka_unit_test(test_node_cumulative_pub_ack_frees_the_whole_window),
        cmocka_unit_test(test_node_partial_pub_ack_frees_the_slots_it_covers),
        cmocka_unit_test(test_node_pub_ack_resend_from_rewinds_pub_sent),
        cmocka_unit_test(test_node_pub_ack_resend_never_rewinds_below_acked),
        cmocka_unit_test(test_node_welcome_last_origin_seq_acks_outbox),
        cmocka_unit_test(
            test_node_welcome_behind_acked_restores_and_republishes),
        cmocka_unit_test(test_node_welcome_ahead_of_outbox_moves_numbering_on),
        cmocka_unit_test(
            test_node_welcome_renumbered_outbox_is_published_after_hubs),
        cmocka_unit_test(test_node_heartbeat_after_heartbeat_ms_of_silence),
        cmocka_unit_test(test_node_disconnects_after_dead_ms_without_input),
        cmocka_unit_test(test_node_input_postpones_dead_timeout),
        cmocka_unit_test(test_node_hello_without_welcome_times_out),
        cmocka_unit_test(test_node_backoff_doubles_from_min_to_max),
        cmocka_unit_test(test_node_welcome_resets_backoff),
        cmocka_unit_test(test_node_proto_error_disconnects),
        cmocka_unit_test(test_node_goodbye_disconnects_and_forgets_inflight),
        cmocka_unit_test(test_node_idle_ignores_stale_events),
        cmocka_unit_test(
            test_node_idle_outbox_is_remembered_and_published_after_welcome),
        cmocka_unit_test(test_node_names_are_known),
        cmocka_unit_test(test_hub_hello_decides_snapshot),
        cmocka_unit_test(
            test_hub_snapshot_hello_starts_snapshot_fenced_at_log_last),
        cmocka_unit_test(test_hub_streaming_hello_reads_from_cursor),
        cmocka_unit_test(test_hub_sends_no_batch_without_credit),
        cmocka_unit_test(test_hub_credit_pumps_one_batch),
        cmocka_unit_test(test_hub_sent_continues_until_credit_exhausted),
        cmocka_unit_test(test_hub_sent_stops_when_log_exhausted),
        cmocka_unit_test(test_hub_log_grew_pumps),
        cmocka_unit_test(test_hub_log_grew_never_shrinks_log_last),
        cmocka_unit_test(test_hub_resync_credit_rewinds_read_pos),
        cmocka_unit_test(test_hub_resync_credit_replaces_credit),
        cmocka_unit_test(test_hub_credits_capped),
        cmocka_unit_test(test_hub_resync_credits_capped),
        cmocka_unit_test(test_hub_snapshot_chunks_consume_credit),
        cmocka_unit_test(
            test_hub_snapshot_done_sends_end_then_streams_from_fence),
        cmocka_unit_test(test_hub_publish_is_applied),
        cmocka_unit_test(test_hub_committed_sends_ack),
        cmocka_unit_test(test_hub_anything_but_hello_first_closes),
        cmocka_unit_test(test_hub_new_waits_through_tick_and_log_grew),
        cmocka_unit_test(test_hub_new_without_hello_times_out),
        cmocka_unit_test(test_hub_dead_timeout_closes),
        cmocka_unit_test(test_hub_heartbeat_after_silence),
        cmocka_unit_test(test_hub_second_hello_goodbye_and_proto_error_close),
        cmocka_unit_test(test_hub_dead_ignores_everything),
        cmocka_unit_test(test_hub_names_are_known),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
