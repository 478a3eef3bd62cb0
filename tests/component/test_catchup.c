/*
 * test_catchup.c - component.catchup: a node that was down resumes from
 * its cursor through the hub's log, and a new node with an empty store
 * bootstraps from a snapshot (component.h: hub and nodes as engines on
 * one loop). Every test ends with the stores compared observation by
 * observation, versions included.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"

/* n puts of one series of area on d, periods from first, values marked
 * with round; one request each, so each is its own change. */
static void
write_round(comp_daemon_t *d, const char *area, unsigned first, unsigned n,
            unsigned round)
{
    char key[64], period[8], value[16];
    comp_key(key, sizeof(key), area, "M", "PH");
    for (unsigned i = 0; i < n; i++) {
        snprintf(period, sizeof(period), "%u", first + i);
        snprintf(value, sizeof(value), "%u.%u", round, i);
        comp_put1(d, key, period, value, NULL);
    }
}

/* Node b, in step with the hub, goes down; node a writes (new rows, new
 * versions of rows b has, a delete); b comes back on the same store and
 * resumes from its cursor through the log: no snapshot, its cursor only
 * moved forward, and all three stores end identical. */
static void
test_restarted_node_catches_up_from_log(void **state)
{
    comp_world_t *w = *state;
    comp_daemon_t *all[] = {w->a, w->hub, w->b};
    write_round(w->a, "COL", 2000, 10, 1);
    comp_assert_converged(w, all, 3);
    comp_wait_caught_up(w, w->b);
    obsync_status_t *st = comp_status(w->b);
    uint64_t cursor0 = st->hub_cursor, snapshots0 = st->snapshots;
    obsync_status_free(&st);
    assert_true(cursor0 > 0);

    comp_daemon_down(w, w->b);
    write_round(w->a, "COL", 2005, 20, 2); /* 5 new versions, 15 new rows */
    char key[64];
    comp_key(key, sizeof(key), "COL", "M", "PH");
    obsync_summary_t del;
    memset(&del, 0, sizeof(del));
    assert_obsync_rc(
        obsync_delete(w->a->c, COMP_DF_VIOLENCE, key, "2000", false, &del),
        OBSYNC_OK);
    assert_int_equal(del.deleted, 1);
    comp_wait_outbox_drained(w, w->a);
    comp_daemon_t *up[] = {w->a, w->hub};
    comp_assert_converged(w, up, 2);

    comp_daemon_up(w, w->b);
    comp_wait_streaming(w, w->b);
    comp_assert_converged(w, all, 3);
    comp_wait_caught_up(w, w->b);

    st = comp_status(w->b);
    print_message("b resumed from cursor %" PRIu64 " to %" PRIu64 "\n", cursor0,
                  st->hub_cursor);
    assert_true(st->hub_cursor > cursor0);
    assert_int_equal(st->snapshots, snapshots0);
    assert_int_equal(st->observations, 24);
    assert_int_equal(st->tombstones, 1);
    obsync_status_free(&st);
}

/* A node with an empty store joins a hub whose log has data from two
 * nodes: it takes a snapshot fenced at the hub's log end (the hub counts
 * it sent one, the node that it took one), ends identical to the others,
 * and then follows the log: a later write reaches it without another
 * snapshot. */
static void
test_new_node_bootstraps_from_snapshot(void **state)
{
    comp_world_t *w = *state;
    write_round(w->a, "COL", 1990, 15, 1);
    write_round(w->b, "MEX", 1990, 10, 1);
    comp_wait_outbox_drained(w, w->a);
    comp_wait_outbox_drained(w, w->b);
    comp_daemon_t *three[] = {w->hub, w->a, w->b};
    comp_assert_converged(w, three, 3);

    comp_daemon_t *c = comp_add_node(w, "c", "JAM");
    comp_wait_streaming(w, c);
    comp_daemon_t *all[] = {w->hub, w->a, w->b, c};
    comp_assert_converged(w, all, 4);
    comp_wait_caught_up(w, c);

    obsync_status_t *sc = comp_status(c);
    obsync_status_t *sh = comp_status(w->hub);
    uint64_t snapshots = sc->snapshots;
    assert_int_equal(sc->observations, 25);
    assert_true(sc->snapshots >= 1);
    assert_true(sh->snapshots >= 1);
    obsync_status_free(&sc);
    obsync_status_free(&sh);

    write_round(w->a, "COL", 2010, 3, 2); /* after the snapshot: the log */
    comp_wait_outbox_drained(w, w->a);
    comp_assert_converged(w, all, 4);
    comp_wait_caught_up(w, c);
    sc = comp_status(c);
    assert_int_equal(sc->observations, 28);
    assert_int_equal(sc->snapshots, snapshots);
    obsync_status_free(&sc);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_restarted_node_catches_up_from_log,
                                        comp_setup, comp_teardown),
        cmocka_unit_test_setup_teardown(test_new_node_bootstraps_from_snapshot,
                                        comp_setup, comp_teardown),
    };
    return cmocka_run_group_tests_name("component.catchup", tests, NULL, NULL);
}
