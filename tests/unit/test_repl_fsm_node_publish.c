/*
 * test_repl_fsm_node_publish.c - scripted scenarios for the node's
 * publishing in repl_fsm.c (rn_*): the publish window, PubAcks (cumulative,
 * partial, resend_from) and what a Welcome's last origin_seq does to the
 * outbox (acks it, restores and republishes, moves numbering on). Each test
 * feeds a few events with a fake clock and checks the actions in the outbox
 * and the state after them; no sockets, no store. It is not a test of the
 * glue (daemon/repl_node.c, daemon/repl_hub.c) nor of a node and a hub
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

/* HB_MS, DEAD_MS, rn_ev, rn_find, node_streaming,
 * node_publish_all, node_welcomed: test_repl_fsm_support.h */

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

int
main(void)
{
    const struct CMUnitTest tests[] = {
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
