/*
 * test_sync_basic.c - component.sync_basic: publish, ack and rebroadcast
 * between a hub and two nodes running as engines on one loop
 * (component.h). Every test ends with the hub's and the nodes' stores
 * compared observation by observation, versions included.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"

/* Writes on node a: one put of many rows, single puts, a merge and a
 * delete; returns how many observations stay live. */
static size_t
write_mix(comp_daemon_t *a, const char *area, size_t n_batch)
{
    static const obsync_attr_t unit[] = {{"OBS_STATUS", "A"},
                                         {"UNIT_MEASURE", COMP_UNIT}};
    char key[64], periods[64][8], values[64][16];
    obsync_obs_t batch[64];
    assert_true(n_batch <= 64);
    comp_key(key, sizeof(key), area, "_T", "HARM");
    for (size_t i = 0; i < n_batch; i++) {
        snprintf(periods[i], sizeof(periods[i]), "%zu", 1960 + i);
        snprintf(values[i], sizeof(values[i]), "%zu.5", 10 + i);
        batch[i] = (obsync_obs_t){.dataflow = COMP_DF_VIOLENCE,
                                  .series_key = key,
                                  .time_period = periods[i],
                                  .value = values[i],
                                  .n_attrs = 2,
                                  .attrs = unit};
    }
    obsync_summary_t sum;
    comp_put(a, batch, n_batch, &sum);
    assert_int_equal(sum.accepted, n_batch);

    char k2[64];
    comp_key(k2, sizeof(k2), area, "F", "CJ");
    comp_put1(a, k2, "2019", "3.25", NULL);
    comp_put1(a, k2, "2020", "3.5", NULL);
    comp_put1(a, k2, "2021", "4", NULL);
    comp_put1(a, k2, "2020", "3.75", NULL); /* a second version */

    const obsync_attr_t est[] = {{"OBS_STATUS", "E"}};
    obsync_obs_t merge = {.dataflow = COMP_DF_VIOLENCE,
                          .series_key = key,
                          .time_period = periods[0],
                          .value = "9.5",
                          .n_attrs = 1,
                          .attrs = est};
    comp_put(a, &merge, 1, NULL);

    obsync_summary_t del;
    memset(&del, 0, sizeof(del));
    int rc = obsync_delete(a->c, COMP_DF_VIOLENCE, k2, "2019", false, &del);
    if (rc != OBSYNC_OK || del.deleted != 1)
        fail_msg("%s: delete: %s: %s", a->name, obsync_strerror(rc),
                 obsync_client_errmsg(a->c));
    return n_batch + 2;
}

/* Publish and ack: node a's writes are published to the hub, which acks
 * them (a's outbox drains, outbox_acked reaches its last origin_seq, and the
 * hub's row for a holds that origin_seq), logs them and streams them to
 * node b: every store ends with the same observations and versions. */
static void
test_writes_reach_hub_and_other_node(void **state)
{
    comp_world_t *w = *state;
    size_t live = write_mix(w->a, "COL", 40);

    comp_wait_outbox_drained(w, w->a);
    obsync_status_t *sa = comp_status(w->a);
    assert_true(sa->last_origin_seq > 0);
    assert_int_equal(sa->outbox_depth, 0);
    assert_int_equal(sa->outbox_acked, sa->last_origin_seq);

    comp_daemon_t *all[] = {w->a, w->hub, w->b};
    comp_assert_converged(w, all, 3);

    comp_dump_t db;
    assert_obsync_ok(comp_dump(w->b, &db));
    size_t b_live = comp_dump_live(&db), b_all = db.n;
    comp_dump_fini(&db);
    assert_int_equal(b_live, live);
    assert_int_equal(b_all, live + 1); /* and the tombstone */

    obsync_status_t *sh = comp_status(w->hub);
    const obsync_peer_status_t *pa = comp_peer(sh, "COL");
    assert_non_null(pa);
    assert_true(pa->up);
    assert_int_equal(pa->last_origin_seq, sa->last_origin_seq);
    assert_int_equal(pa->rejected, 0);
    assert_true(pa->accepted > 0);
    assert_true(sh->log_last > 0);
    uint64_t log_last = sh->log_last;
    obsync_status_free(&sh);
    obsync_status_free(&sa);

    /* b applied the hub's log up to its end */
    comp_wait_caught_up(w, w->b);
    obsync_status_t *sb = comp_status(w->b);
    assert_true(sb->hub_cursor >= log_last);
    assert_int_equal(sb->observations, live);
    assert_int_equal(sb->tombstones, 1);
    obsync_status_free(&sb);
}

/* Both nodes write at once, each its own area: each node receives the
 * other's changes through the hub and all three stores converge. */
static void
test_writes_from_both_nodes_converge(void **state)
{
    comp_world_t *w = *state;
    size_t live_a = write_mix(w->a, "COL", 20);
    size_t live_b = write_mix(w->b, "MEX", 20);

    comp_wait_outbox_drained(w, w->a);
    comp_wait_outbox_drained(w, w->b);
    comp_daemon_t *all[] = {w->hub, w->a, w->b};
    comp_assert_converged(w, all, 3);

    comp_dump_t d;
    assert_obsync_ok(comp_dump(w->hub, &d));
    size_t live = comp_dump_live(&d), n = d.n;
    comp_dump_fini(&d);
    assert_int_equal(live, live_a + live_b);
    assert_int_equal(n, live_a + live_b + 2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_writes_reach_hub_and_other_node,
                                        comp_setup, comp_teardown),
        cmocka_unit_test_setup_teardown(test_writes_from_both_nodes_converge,
                                        comp_setup, comp_teardown),
    };
    return cmocka_run_group_tests_name("component.sync_basic", tests, NULL,
                                       NULL);
}
