/*
 * test_repl_fsm_support.h - what the scripted repl_fsm tests
 * (test_repl_fsm_node.c, test_repl_fsm_node_publish.c, test_repl_fsm_hub.c)
 * share: the heartbeat and dead timeouts they init the machines with,
 * rn_ev()/rh_ev() to feed one event, rn_find()/rn_count()/rh_find() to look
 * for an action in the outbox, and the scripted starts and glue they play:
 * a streaming or welcomed node, Publishes answered until the node stops
 * asking, a hub session after a Hello, batches sent until the hub stops.
 * Header-only and static, for cmocka tests only (it asserts); include it
 * after cmocka.h.
 */
#ifndef OBSYNC_TEST_REPL_FSM_SUPPORT_H
#define OBSYNC_TEST_REPL_FSM_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "repl_fsm.h"

#define HB_MS   1000 /* heartbeat after this much silence */
#define DEAD_MS 3000 /* peer dead after this much silence */

/* ------------------------------------------------------------ helpers */

static inline rn_state_t
rn_ev(rn_fsm_t *f, rn_actions_t *out, rn_event_t ev)
{
    return rn_fsm_step(f, &ev, out);
}

static inline rh_state_t
rh_ev(rh_fsm_t *f, rh_actions_t *out, rh_event_t ev)
{
    return rh_fsm_step(f, &ev, out);
}

/* Index of the first action of type t in out, or -1. */
static inline int
rn_find(const rn_actions_t *out, rn_action_type_t t)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].type == t)
            return (int)i;
    return -1;
}

static inline size_t
rn_count(const rn_actions_t *out, rn_action_type_t t)
{
    size_t c = 0;
    for (size_t i = 0; i < out->n; i++)
        c += out->a[i].type == t;
    return c;
}

static inline int
rh_find(const rh_actions_t *out, rh_action_type_t t)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->a[i].type == t)
            return (int)i;
    return -1;
}

/* A node connected at t=0 and welcomed at t=10 (no snapshot), outbox empty
 * unless outbox_last > pub_acked. */
static inline void
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
static inline unsigned
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
static inline void
node_welcomed(rn_fsm_t *f, rn_actions_t *out)
{
    rn_fsm_init(f, 0, 0, 100, HB_MS, DEAD_MS);
    rn_ev(f, out, (rn_event_t){.type = RN_EV_TICK});
    rn_ev(f, out, (rn_event_t){.type = RN_EV_WELCOME});
}

/* A hub session that got a Hello at t=0 from a node at `cursor`, log
 * (log_first, log_last], same epoch. */
static inline rh_state_t
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
static inline unsigned
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

#endif /* OBSYNC_TEST_REPL_FSM_SUPPORT_H */
