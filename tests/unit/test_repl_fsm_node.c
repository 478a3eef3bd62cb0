/*
 * test_repl_fsm_node.c - scripted scenarios for the node's link to its hub
 * in repl_fsm.c (rn_*): connect, Hello and Welcome, snapshot; the log stream
 * (apply, credit, gaps and resync); liveness (heartbeats, the dead timeout,
 * backoff, errors, Goodbye, stale events while idle). Publishing is
 * test_repl_fsm_node_publish.c's, the hub's side test_repl_fsm_hub.c's. Each
 * test feeds a few events with a fake clock and checks the actions in the
 * outbox and the state after them; no sockets, no store. It is not a test of
 * the glue (daemon/repl_node.c, daemon/repl_hub.c) nor of a node and a hub
 * talking to each other; fuzz_repl_fsm.c checks the invariants under random
 * events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "repl_fsm.h"
#include "test_repl_fsm_support.h"

/* HB_MS, DEAD_MS, rn_ev, rn_find, rn_count, node_streaming,
 * node_publish_all, node_welcomed: test_repl_fsm_support.h */

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

/* The glue keeps consecutive batches and applies them together (expect runs
 * ahead of the cursor). A bad batch then (here one ending before it starts,
 * at expect, so the glue did not flush first) must not restart the hub at
 * the cursor while the kept batch is still to come: the hub would resend
 * it and the node apply a batch that starts before its cursor. The resync
 * credit waits for the kept batches, and names the cursor they reach. */
static void
test_node_resync_waits_for_kept_batches_then_names_their_cursor(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 10, 0, 0);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 10, .to = 12});
    assert_int_equal(out.a[0].type, RN_A_APPLY_BATCH); /* kept by the glue */
    assert_int_equal(f.expect, 12);
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 12, .to = 11});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
    assert_true(f.resyncing);
    assert_true(f.expect >= f.cursor);
    /* nothing is accepted before the kept batch is applied */
    const uint64_t early[] = {10, 12};
    for (size_t k = 0; k < 2; k++) {
        rn_ev(&f, &out,
              (rn_event_t){.type = RN_EV_LOG_BATCH,
                           .from = early[k],
                           .to = early[k] + 2});
        assert_int_equal(out.n, 1);
        assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
    }
    /* the glue commits it: one resync credit, from cursor 12 */
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_APPLIED, .to = 12});
    assert_int_equal(f.cursor, 12);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_SEND_CREDIT);
    assert_true(out.a[0].resync);
    assert_int_equal(out.a[0].n, REPL_WINDOW);
    /* a batch from before it is dropped without asking again */
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 10, .to = 14});
    assert_int_equal(out.n, 1);
    assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
    /* the hub's answer */
    rn_ev(&f, &out,
          (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 12, .to = 14});
    assert_int_equal(out.a[0].type, RN_A_APPLY_BATCH);
    assert_false(f.resyncing);
}

/* An APPLIED past every batch handed out (fuzz_repl_fsm's reproducer,
 * corpus/repl_fsm/applied_past_expect): the store is at the cursor, so the
 * next batch must start there; one from the old position is dropped. */
static void
test_node_applied_past_expect_moves_expect_to_the_cursor(void **state)
{
    (void)state;
    rn_fsm_t f;
    rn_actions_t out;
    node_streaming(&f, 0, 0, 0);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_APPLIED, .to = 3});
    assert_int_equal(f.cursor, 3);
    assert_int_equal(f.expect, 3);
    rn_ev(&f, &out, (rn_event_t){.type = RN_EV_LOG_BATCH, .from = 0, .to = 0});
    assert_int_equal(rn_find(&out, RN_A_APPLY_BATCH), -1);
    assert_int_equal(out.a[0].type, RN_A_DROP_BATCH);
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
            test_node_resync_waits_for_kept_batches_then_names_their_cursor),
        cmocka_unit_test(
            test_node_applied_past_expect_moves_expect_to_the_cursor),
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
