/*
 * test_local_api.c - component.local_api: a node's local API through
 * libobsync, with the node running as an engine on the shared loop
 * (component.h): the write path (put, get, merge, delete), the group
 * commit of concurrent writers, and the import of a real sample file.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "component.h"

#define K_COL "A.COL.VC_IHR_PSRC._T._T._T.HARM"

/* Versions of one observation as the history gives them, newest first. */
typedef struct {
    size_t n;
    char value[2][32];
    bool tombstone[2];
} versions_t;

static int
on_version(void *arg, const obsync_obs_t *o)
{
    versions_t *v = arg;
    if (v->n < 2) {
        snprintf(v->value[v->n], sizeof(v->value[v->n]), "%s", o->value);
        v->tombstone[v->n] = o->tombstone;
    }
    v->n++;
    return 0;
}

static int
count_obs(void *arg, const obsync_obs_t *o)
{
    size_t *n = arg;
    (void)o;
    (*n)++;
    return 0;
}

/* put stores an observation that get returns as given, stamped with the
 * node's version; the same put again changes nothing. */
static void
test_put_then_get_returns_it(void **state)
{
    comp_world_t *w = *state;
    comp_daemon_t *a = w->a;
    const obsync_attr_t attrs[] = {{"COMMENT_OBS", "first estimate"},
                                   {"OBS_STATUS", "A"},
                                   {"UNIT_MEASURE", COMP_UNIT}};
    obsync_obs_t in = {.dataflow = COMP_DF_VIOLENCE,
                       .series_key = K_COL,
                       .time_period = "2020",
                       .value = "12.5",
                       .n_attrs = 3,
                       .attrs = attrs};
    obsync_summary_t sum;
    comp_put(a, &in, 1, &sum);
    assert_int_equal(sum.accepted, 1);
    assert_int_equal(sum.unchanged, 0);
    assert_true(sum.batch_id[0] != '\0');

    obsync_obs_t *o = NULL;
    assert_obsync_rc(obsync_get(a->c, COMP_DF_VIOLENCE, K_COL, "2020", &o),
                     OBSYNC_OK);
    assert_string_equal(o->series_key, K_COL);
    assert_string_equal(o->time_period, "2020");
    assert_string_equal(o->value, "12.5");
    assert_int_equal(o->n_attrs, 3);
    assert_string_equal(comp_attr(o, "COMMENT_OBS"), "first estimate");
    assert_string_equal(comp_attr(o, "OBS_STATUS"), "A");
    assert_string_equal(comp_attr(o, "UNIT_MEASURE"), COMP_UNIT);
    assert_string_equal(o->origin, "COL");
    assert_string_equal(o->provider, "COL");
    assert_string_equal(o->batch_id, sum.batch_id);
    assert_true(o->origin_seq > 0);
    assert_true(o->hlc > 0);
    assert_false(o->tombstone);
    obsync_obs_free(&o);

    comp_put(a, &in, 1, &sum); /* the same again */
    assert_int_equal(sum.accepted, 0);
    assert_int_equal(sum.unchanged, 1);

    obsync_status_t *st = comp_status(a);
    assert_int_equal(st->observations, 1);
    assert_int_equal(st->tombstones, 0);
    obsync_status_free(&st);
}

/* A merge changes the value and the attributes it names and keeps every
 * other attribute; the history keeps both versions, newest first. */
static void
test_merge_keeps_attributes(void **state)
{
    comp_world_t *w = *state;
    comp_daemon_t *a = w->a;
    const obsync_attr_t first[] = {{"COMMENT_OBS", "provisional"},
                                   {"OBS_STATUS", "A"},
                                   {"UNIT_MEASURE", COMP_UNIT}};
    obsync_obs_t in = {.dataflow = COMP_DF_VIOLENCE,
                       .series_key = K_COL,
                       .time_period = "2021",
                       .value = "10.25",
                       .n_attrs = 3,
                       .attrs = first};
    comp_put(a, &in, 1, NULL);
    obsync_obs_t *before = NULL;
    assert_obsync_rc(obsync_get(a->c, COMP_DF_VIOLENCE, K_COL, "2021", &before),
                     OBSYNC_OK);

    const obsync_attr_t change[] = {{"OBS_STATUS", "E"}};
    obsync_obs_t merge = {.dataflow = COMP_DF_VIOLENCE,
                          .series_key = K_COL,
                          .time_period = "2021",
                          .value = "11.75",
                          .n_attrs = 1,
                          .attrs = change};
    obsync_summary_t sum;
    comp_put(a, &merge, 1, &sum);
    assert_int_equal(sum.accepted, 1);

    obsync_obs_t *o = NULL;
    assert_obsync_rc(obsync_get(a->c, COMP_DF_VIOLENCE, K_COL, "2021", &o),
                     OBSYNC_OK);
    assert_string_equal(o->value, "11.75");
    assert_int_equal(o->n_attrs, 3);
    assert_string_equal(comp_attr(o, "OBS_STATUS"), "E");
    assert_string_equal(comp_attr(o, "COMMENT_OBS"), "provisional");
    assert_string_equal(comp_attr(o, "UNIT_MEASURE"), COMP_UNIT);
    assert_int_equal(o->action, OBSYNC_MERGE);
    assert_true(o->hlc > before->hlc);
    assert_true(o->origin_seq > before->origin_seq);
    obsync_obs_free(&o);
    obsync_obs_free(&before);

    /* two versions, newest first */
    versions_t v;
    memset(&v, 0, sizeof(v));
    assert_obsync_rc(
        obsync_history(a->c, COMP_DF_VIOLENCE, K_COL, "2021", on_version, &v),
        OBSYNC_OK);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.value[0], "11.75");
    assert_string_equal(v.value[1], "10.25");
}

/* delete tombstones an observation: get no longer finds it, a query finds
 * it only with include_deleted, the history shows the tombstone over the
 * last value, and status counts it as a tombstone. */
static void
test_delete_tombstones(void **state)
{
    comp_world_t *w = *state;
    comp_daemon_t *a = w->a;
    comp_put1(a, K_COL, "2022", "9.5", NULL);
    obsync_summary_t sum;
    memset(&sum, 0, sizeof(sum));
    int rc = obsync_delete(a->c, COMP_DF_VIOLENCE, K_COL, "2022", false, &sum);
    assert_obsync_ok(rc);
    assert_int_equal(sum.accepted, 1);
    assert_int_equal(sum.deleted, 1);
    assert_true(sum.committed);

    obsync_obs_t *o = NULL;
    assert_obsync_rc(obsync_get(a->c, COMP_DF_VIOLENCE, K_COL, "2022", &o),
                     OBSYNC_ENOENT);
    assert_null(o);

    versions_t v;
    memset(&v, 0, sizeof(v));
    assert_obsync_rc(
        obsync_history(a->c, COMP_DF_VIOLENCE, K_COL, "2022", on_version, &v),
        OBSYNC_OK);
    assert_int_equal(v.n, 2);
    assert_true(v.tombstone[0]);
    assert_false(v.tombstone[1]);
    assert_string_equal(v.value[1], "9.5");

    obsync_query_t q;
    memset(&q, 0, sizeof(q));
    q.dataflow = COMP_DF_VIOLENCE;
    size_t live = 0, all = 0;
    assert_obsync_ok(obsync_query(a->c, &q, count_obs, &live));
    q.include_deleted = true;
    assert_obsync_ok(obsync_query(a->c, &q, count_obs, &all));
    assert_int_equal(live, 0);
    assert_int_equal(all, 1);

    obsync_status_t *st = comp_status(a);
    assert_int_equal(st->observations, 0);
    assert_int_equal(st->tombstones, 1);
    obsync_status_free(&st);
}

/* ---- group commit */

#define WRITERS      8
#define PUTS_EACH    25
#define TOTAL_WRITES (WRITERS * PUTS_EACH)

static const char *const SEXES[] = {"_T", "M", "F"};
static const char *const SOURCES[] = {"CJ", "PH", "HARM", "MOD"};

typedef struct {
    const char *sock;
    unsigned id;
    pthread_barrier_t *start;
    /* results, read after the join */
    unsigned acked; /* puts answered accepted = 1, committed */
    int rc;         /* first failure */
    char err[256];
} writer_t;

static void
writer_key(unsigned id, char *buf, size_t cap)
{
    comp_key(buf, cap, "COL", SEXES[id % 3], SOURCES[id / 3]);
}

static void
writer_value(unsigned id, unsigned i, char *buf, size_t cap)
{
    snprintf(buf, cap, "%u.%02u", id + 1, i);
}

/* One client of its own, PUTS_EACH puts back to back: no cmocka call here
 * (not the test thread); the test checks the results after the join. */
static void *
writer_main(void *arg)
{
    writer_t *wr = arg;
    obsync_client_t *c = NULL;
    wr->rc = obsync_client_new(wr->sock, &c);
    if (wr->rc == OBSYNC_OK)
        obsync_client_set_timeout(c, COMP_REPLY_MS);
    pthread_barrier_wait(wr->start);
    static const obsync_attr_t unit[] = {{"UNIT_MEASURE", COMP_UNIT}};
    char key[64], period[8], value[16];
    writer_key(wr->id, key, sizeof(key));
    for (unsigned i = 0; wr->rc == OBSYNC_OK && i < PUTS_EACH; i++) {
        snprintf(period, sizeof(period), "%u", 1990 + i);
        writer_value(wr->id, i, value, sizeof(value));
        obsync_obs_t o = {.dataflow = COMP_DF_VIOLENCE,
                          .series_key = key,
                          .time_period = period,
                          .value = value,
                          .n_attrs = 1,
                          .attrs = unit};
        obsync_summary_t sum;
        memset(&sum, 0, sizeof(sum));
        wr->rc = obsync_put(c, &o, 1, NULL, &sum);
        if (wr->rc == OBSYNC_OK && sum.accepted == 1 && sum.committed)
            wr->acked++;
        else if (wr->rc == OBSYNC_OK)
            snprintf(wr->err, sizeof(wr->err),
                     "put %u: accepted %" PRIu64 ", rejected %" PRIu64 ", %s",
                     i, sum.accepted, sum.rejected,
                     sum.committed ? "committed" : "not committed");
    }
    if (wr->rc != OBSYNC_OK && c != NULL)
        snprintf(wr->err, sizeof(wr->err), "%s: %s", obsync_strerror(wr->rc),
                 obsync_client_errmsg(c));
    obsync_client_destroy(&c);
    return NULL;
}

/* Writers that put at the same time share commits: the node makes fewer
 * commits than it got writes, counts every write as grouped, acknowledges
 * each one as committed, and every one is readable afterwards. */
static void
test_group_commit_of_concurrent_writers(void **state)
{
    comp_world_t *w = *state;
    comp_daemon_t *a = w->a;
    obsync_status_t *st = comp_status(a);
    uint64_t commits0 = st->commits, grouped0 = st->writes_grouped;
    obsync_status_free(&st);

    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, WRITERS), 0);
    writer_t wr[WRITERS];
    pthread_t th[WRITERS];
    memset(wr, 0, sizeof(wr));
    for (unsigned i = 0; i < WRITERS; i++) {
        wr[i] = (writer_t){.sock = a->sock, .id = i, .start = &start};
        assert_int_equal(pthread_create(&th[i], NULL, writer_main, &wr[i]), 0);
    }
    for (unsigned i = 0; i < WRITERS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    for (unsigned i = 0; i < WRITERS; i++) {
        if (wr[i].rc != OBSYNC_OK || wr[i].acked != PUTS_EACH)
            fail_msg("writer %u: %u of %d puts acknowledged: %s", i,
                     wr[i].acked, PUTS_EACH, wr[i].err);
    }

    st = comp_status(a);
    uint64_t commits = st->commits - commits0;
    uint64_t grouped = st->writes_grouped - grouped0;
    obsync_status_free(&st);
    print_message("%d writes from %d clients in %" PRIu64 " commits\n",
                  TOTAL_WRITES, WRITERS, commits);
    assert_int_equal(grouped, TOTAL_WRITES);
    assert_true(commits >= 1);
    assert_true(commits < TOTAL_WRITES);

    /* every acknowledged write reads back */
    for (unsigned id = 0; id < WRITERS; id++) {
        char key[64], period[8], value[16];
        writer_key(id, key, sizeof(key));
        for (unsigned i = 0; i < PUTS_EACH; i++) {
            snprintf(period, sizeof(period), "%u", 1990 + i);
            writer_value(id, i, value, sizeof(value));
            obsync_obs_t *o = NULL;
            int rc = obsync_get(a->c, COMP_DF_VIOLENCE, key, period, &o);
            if (rc != OBSYNC_OK)
                fail_msg("get %s %s: %s", key, period, obsync_strerror(rc));
            bool same = strcmp(o->value, value) == 0;
            obsync_obs_free(&o);
            if (!same)
                fail_msg("get %s %s: not the value %s", key, period, value);
        }
    }
    st = comp_status(a);
    assert_int_equal(st->observations, TOTAL_WRITES);
    obsync_status_free(&st);
}

/* ---- import */

static void
import_slice(comp_daemon_t *d, const char *path, obsync_summary_t *sum)
{
    memset(sum, 0, sizeof(*sum));
    obsync_import_opts_t o;
    memset(&o, 0, sizeof(o));
    int rc = obsync_import_file(d->c, path, &o, sum);
    if (rc != OBSYNC_OK)
        fail_msg("%s: import %s: %s: %s", d->name, path, obsync_strerror(rc),
                 obsync_client_errmsg(d->c));
}

/* The COL rows of the real WDI homicide sample, imported on node COL: every
 * row accepted in one commit, each stored with the exact value text of the
 * file; imported again, every row is unchanged and nothing is committed
 * as a change. */
static void
test_import_sample_then_reimport_unchanged(void **state)
{
    comp_world_t *w = *state;
    comp_daemon_t *a = w->a;
    char path[256];
    snprintf(path, sizeof(path), "%s/col_homicide.csv", w->tmp);
    comp_csv_t csv;
    comp_sample_slice("violence_wdi_homicide.csv", "COL", path, &csv);
    uint64_t rows = csv.n_rows;

    obsync_status_t *st = comp_status(a);
    uint64_t commits0 = st->commits;
    obsync_status_free(&st);

    obsync_summary_t sum;
    import_slice(a, path, &sum);
    assert_true(sum.committed);
    assert_int_equal(sum.accepted, rows);
    assert_int_equal(sum.unchanged, 0);
    assert_int_equal(sum.rejected, 0);
    st = comp_status(a);
    assert_int_equal(st->observations, rows);
    assert_int_equal(st->commits - commits0, 1); /* one file, one commit */
    obsync_status_free(&st);

    /* each row as the file has it */
    static const char *const dims[] = {"FREQ", "REF_AREA",  "INDICATOR",  "SEX",
                                       "AGE",  "BREAKDOWN", "SOURCE_TYPE"};
    size_t dcol[7];
    for (size_t i = 0; i < 7; i++)
        dcol[i] = comp_csv_col(&csv, dims[i]);
    size_t tcol = comp_csv_col(&csv, "TIME_PERIOD");
    size_t vcol = comp_csv_col(&csv, "OBS_VALUE");
    size_t scol = comp_csv_col(&csv, "OBS_STATUS");
    char first_key[128] = "", first_period[32] = "";
    for (size_t r = 0; r < csv.n_rows; r++) {
        char *const *f = csv.rows[r];
        char key[128];
        snprintf(key, sizeof(key), "%s.%s.%s.%s.%s.%s.%s", f[dcol[0]],
                 f[dcol[1]], f[dcol[2]], f[dcol[3]], f[dcol[4]], f[dcol[5]],
                 f[dcol[6]]);
        if (r == 0) {
            snprintf(first_key, sizeof(first_key), "%s", key);
            snprintf(first_period, sizeof(first_period), "%s", f[tcol]);
        }
        obsync_obs_t *o = NULL;
        int rc = obsync_get(a->c, COMP_DF_VIOLENCE, key, f[tcol], &o);
        if (rc != OBSYNC_OK)
            fail_msg("row %zu: get %s %s: %s", r + 2, key, f[tcol],
                     obsync_strerror(rc));
        const char *status = comp_attr(o, "OBS_STATUS");
        bool same = strcmp(o->value, f[vcol]) == 0 && status != NULL &&
                    strcmp(status, f[scol]) == 0;
        if (!same)
            print_error("row %zu: stored %s (OBS_STATUS %s), file %s (%s)\n",
                        r + 2, o->value, status ? status : "none", f[vcol],
                        f[scol]);
        obsync_obs_free(&o);
        assert_true(same);
    }
    comp_csv_fini(&csv);

    import_slice(a, path, &sum); /* the same file again */
    assert_int_equal(sum.accepted, 0);
    assert_int_equal(sum.unchanged, rows);
    assert_int_equal(sum.rejected, 0);
    st = comp_status(a);
    assert_int_equal(st->observations, rows);
    obsync_status_free(&st);
    versions_t v; /* no new version of a row */
    memset(&v, 0, sizeof(v));
    assert_obsync_rc(obsync_history(a->c, COMP_DF_VIOLENCE, first_key,
                                    first_period, on_version, &v),
                     OBSYNC_OK);
    assert_int_equal(v.n, 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_then_get_returns_it,
                                        comp_setup, comp_teardown),
        cmocka_unit_test_setup_teardown(test_merge_keeps_attributes, comp_setup,
                                        comp_teardown),
        cmocka_unit_test_setup_teardown(test_delete_tombstones, comp_setup,
                                        comp_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_of_concurrent_writers,
                                        comp_setup, comp_teardown),
        cmocka_unit_test_setup_teardown(
            test_import_sample_then_reimport_unchanged, comp_setup,
            comp_teardown),
    };
    return cmocka_run_group_tests_name("component.local_api", tests, NULL,
                                       NULL);
}
