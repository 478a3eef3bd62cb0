/*
 * test_obsdb_scan.c - unit tests for obsdb_scan: by dataflow and key
 * pattern, by period range, updated_after (tombstones included) and as_of
 * (read from history); resume paging and an oversized resume key; and the
 * scanned data surviving a close and reopen. Real LMDB files in a mkdtemp
 * directory removed after each test.
 */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "obs_err.h"
#include "obsdb.h"
#include "period.h"
#include "test_obsdb_support.h"
#include "test_support.h"

/* NODE, DF, NDIMS, fixture_t, row_t, put_rows, collect_t, scan_all, scan,
 * assert_items, get_stats: test_obsdb_support.h */
#define DF2 "OID:DF_U(1.0)"

static int
open_db(fixture_t *f, const char *node, uint64_t map_size, uint64_t map_max,
        char *err, size_t errcap)
{
    return fixture_open(f, node, map_size, map_max, false, err, errcap);
}

static int
setup(void **state)
{
    return fixture_setup(state, "/tmp/obsync-obsdb-XXXXXX", NODE, false);
}

static int
teardown(void **state)
{
    return fixture_teardown(state);
}

/* ---------------------------------------------------------------- tests */

static const row_t scan_rows[] = {
    {.area = "COL", .period = "2019", .value = "c19", .ms = 1000, .seq = 1},
    {.area = "COL", .period = "2020", .value = "c20", .ms = 2000, .seq = 2},
    {.area = "MEX", .period = "2019", .value = "m19", .ms = 3000, .seq = 3},
    {.area = "PER", .period = "2021-Q2", .value = "p21", .ms = 4000, .seq = 4},
    {.df = DF2, .area = "COL", .value = "u19", .ms = 5000, .seq = 5},
};

static void
test_obsdb_scan_by_dataflow_and_pattern(void **state)
{
    fixture_t *f = *state;
    obs_pattern_t p;
    collect_t c;
    put_rows(f->db, scan_rows, 5);
    obsdb_scan_t q = scan_all();
    q.dataflow = DF;
    q.total_dims = NDIMS;
    scan(f->db, &q, &c);
    const char *df[] = {"COL/2019=c19", "COL/2020=c20", "MEX/2019=m19",
                        "PER/2021-Q2=p21"};
    assert_items(&c, df, 4);

    assert_ok(obs_pattern_parse("A.COL.", &p));
    q.pattern = &p;
    scan(f->db, &q, &c);
    const char *col[] = {"COL/2019=c19", "COL/2020=c20"};
    assert_items(&c, col, 2);
    obs_pattern_fini(&p);

    assert_ok(obs_pattern_parse(".MEX+PER.", &p));
    scan(f->db, &q, &c);
    const char *alt[] = {"MEX/2019=m19", "PER/2021-Q2=p21"};
    assert_items(&c, alt, 2);
    obs_pattern_fini(&p);

    q = scan_all(); /* every dataflow */
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 5);
}

static void
test_obsdb_scan_by_period_range(void **state)
{
    fixture_t *f = *state;
    period_t from, to;
    collect_t c;
    put_rows(f->db, scan_rows, 4);
    assert_ok(period_parse("2019-07", 0, 9999, &from, NULL, 0));
    assert_ok(period_parse("2020-03", 0, 9999, &to, NULL, 0));
    obsdb_scan_t q = scan_all();
    q.start_day = from.start_day; /* 2019 and 2020 overlap; 2021-Q2 not */
    q.end_day = to.end_day;
    scan(f->db, &q, &c);
    const char *want[] = {"COL/2019=c19", "COL/2020=c20", "MEX/2019=m19"};
    assert_items(&c, want, 3);

    assert_ok(period_parse("2021-05", 0, 9999, &from, NULL, 0));
    q.start_day = from.start_day;
    q.end_day = INT32_MAX;
    scan(f->db, &q, &c);
    const char *q2[] = {"PER/2021-Q2=p21"};
    assert_items(&c, q2, 1);
}

static void
test_obsdb_scan_updated_after_includes_tombstones(void **state)
{
    fixture_t *f = *state;
    collect_t c;
    put_rows(f->db, scan_rows, 4);
    put_row(f->db, (row_t){.area = "COL",
                           .period = "2019",
                           .ms = 6000,
                           .seq = 6,
                           .tombstone = true});
    obsdb_scan_t q = scan_all();
    q.updated_after_ms = 2000;
    scan(f->db, &q, &c);
    const char *want[] = {"COL/2019=X", "MEX/2019=m19", "PER/2021-Q2=p21"};
    assert_items(&c, want, 3);

    q = scan_all(); /* current state hides the tombstone ... */
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 3);
    q.include_deleted = true; /* ... unless asked */
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.items[0], "COL/2019=X");
}

static void
test_obsdb_scan_as_of_reads_history(void **state)
{
    fixture_t *f = *state;
    collect_t c;
    const row_t rows[] = {
        {.area = "COL", .value = "v1", .ms = 1000, .seq = 1},
        {.area = "COL", .value = "v2", .ms = 2000, .seq = 2},
        {.area = "COL", .value = "v3", .ms = 3000, .seq = 3},
        {.area = "MEX", .value = "m1", .ms = 2500, .seq = 4},
        {.area = "PER", .value = "p1", .ms = 1000, .seq = 5},
        {.area = "PER", .ms = 2000, .seq = 6, .tombstone = true},
    };
    put_rows(f->db, rows, 6);
    obsdb_scan_t q = scan_all();
    q.as_of_ms = 1500;
    scan(f->db, &q, &c);
    const char *t1500[] = {"COL/2019=v1", "PER/2019=p1"};
    assert_items(&c, t1500, 2);

    q.as_of_ms = 2000; /* inclusive */
    scan(f->db, &q, &c);
    const char *t2000[] = {"COL/2019=v2"};
    assert_items(&c, t2000, 1);

    q.as_of_ms = 2500;
    q.include_deleted = true;
    scan(f->db, &q, &c);
    const char *t2500[] = {"COL/2019=v2", "MEX/2019=m1", "PER/2019=X"};
    assert_items(&c, t2500, 3);

    q.as_of_ms = 999;
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 0);
}

static void
scan_page(obsdb_t *db, obsdb_scan_t *q, collect_t *c, uint8_t *last,
          size_t *last_len, bool *more)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, false, &txn));
    assert_ok(obsdb_scan(txn, q, collect_cb, c, last, last_len, more));
    obsdb_abort(&txn);
}

static void
test_obsdb_scan_resumes_in_pages(void **state)
{
    fixture_t *f = *state;
    const row_t rows[] = {
        {.area = "E", .value = "5", .ms = 5, .seq = 5},
        {.area = "B", .value = "2", .ms = 2, .seq = 2},
        {.area = "D", .value = "4", .ms = 4, .seq = 4},
        {.area = "A", .value = "1", .ms = 1, .seq = 1},
        {.area = "C", .value = "3", .ms = 3, .seq = 3},
    };
    put_rows(f->db, rows, 5);
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    collect_t c = {0};
    obsdb_scan_t q = scan_all();
    q.dataflow = DF;
    q.total_dims = NDIMS;
    q.limit = 2;
    const bool want_more[] = {true, true, false};
    for (int page = 0; page < 3; page++) {
        size_t before = c.n;
        scan_page(f->db, &q, &c, last, &last_len, &more);
        assert_int_equal(c.n - before, page < 2 ? 2 : 1);
        assert_int_equal(more, want_more[page]);
        q.resume_after = last;
        q.resume_len = last_len;
    }
    const char *want[] = {"A/2019=1", "B/2019=2", "C/2019=3", "D/2019=4",
                          "E/2019=5"};
    assert_items(&c, want, 5);
}

static void
test_obsdb_scan_refuses_oversized_resume_key(void **state)
{
    fixture_t *f = *state;
    static const uint8_t big[OBS_KEY_MAX + 1];
    collect_t c = {0};
    obsdb_txn_t *txn = NULL;
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len;
    bool more;
    obsdb_scan_t q = scan_all();
    q.resume_after = big;
    q.resume_len = sizeof(big);
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_rc(obsdb_scan(txn, &q, collect_cb, &c, last, &last_len, &more),
              OBS_EINVAL);
    obsdb_abort(&txn);
}

static void
test_obsdb_data_survives_reopen(void **state)
{
    fixture_t *f = *state;
    collect_t c;
    put_rows(f->db, scan_rows, 5);
    obsdb_close(&f->db);
    assert_ok(open_db(f, NODE, 0, 0, NULL, 0));
    obsdb_scan_t q = scan_all();
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 5);
    obsdb_stats_t st;
    get_stats(f->db, &st);
    assert_int_equal(st.observations, 5);
    assert_int_equal(st.history, 5);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_obsdb_scan_by_dataflow_and_pattern),
        T(test_obsdb_scan_by_period_range),
        T(test_obsdb_scan_updated_after_includes_tombstones),
        T(test_obsdb_scan_as_of_reads_history),
        T(test_obsdb_scan_resumes_in_pages),
        T(test_obsdb_scan_refuses_oversized_resume_key),
        T(test_obsdb_data_survives_reopen),
    };
    return cmocka_run_group_tests_name("obsdb_scan", tests, NULL, NULL);
}
