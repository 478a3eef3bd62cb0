/*
 * test_repl_fsm_hub.c - scripted scenarios for the hub's session with one
 * node in repl_fsm.c (rh_*): the Hello (snapshot or stream from the cursor),
 * flow control by credit and resync credit, snapshot chunks, Publish and its
 * ack, and the session's lifecycle (timeouts, heartbeats, Goodbye, protocol
 * errors). Each test feeds a few events with a fake clock and checks the
 * actions in the outbox and the state after them; no sockets, no store. It
 * is not a test of the glue (daemon/repl_node.c, daemon/repl_hub.c) nor of a
 * node and a hub talking to each other; fuzz_repl_fsm.c checks the
 * invariants under random events.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "repl_fsm.h"
#include "test_repl_fsm_support.h"

/* HB_MS, DEAD_MS, rh_ev, rh_find, hub_hello, hub_send_all:
 * test_repl_fsm_support.h */

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
        /* the glue answers with a Goodbye, except to one */
        assert_int_equal(out.a[0].n, bad[k] == RH_EV_GOODBYE
                                         ? RH_CLOSE_PEER_LEFT
                                         : RH_CLOSE_PROTOCOL);
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
    assert_int_equal(out.a[0].n, RH_CLOSE_TIMEOUT);
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
    assert_int_equal(out.a[0].n, RH_CLOSE_TIMEOUT);
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
        assert_int_equal(out.a[0].n, bad[k] == RH_EV_GOODBYE
                                         ? RH_CLOSE_PEER_LEFT
                                         : RH_CLOSE_PROTOCOL);
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
