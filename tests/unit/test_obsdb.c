/*
 * test_obsdb.c - unit tests for obsdb.c: puts in one transaction across obs,
 * history and outbox; counters; history order; scans by prefix, pattern,
 * period, updated_after and as_of; resume paging; epoch and node id in meta;
 * map full and growth. Real LMDB files in a mkdtemp directory removed after
 * each test.
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
#include <lmdb.h>

#include "codec.h"
#include "hlc.h"
#include "obs_err.h"
#include "obsdb.h"
#include "period.h"
#include "store.h"
#include "test_obsdb_support.h"
#include "test_support.h"

/* NODE, OTHER, DF, NDIMS, fixture_t, row_t, make_obs: test_obsdb_support.h */
#define DF2 "OID:DF_U(1.0)"
#define KIB 1024ull

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

/* ------------------------------------------------------------- builders */

static void
put_rows(obsdb_t *db, const row_t *rows, size_t n)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, true, &txn));
    for (size_t i = 0; i < n; i++) {
        obs_t o;
        make_obs(&o, &rows[i]);
        assert_ok(obsdb_put(txn, &o));
        obs_fini(&o);
    }
    assert_ok(obsdb_commit(&txn));
    assert_null(txn);
}

static void
put_row(obsdb_t *db, row_t r)
{
    put_rows(db, &r, 1);
}

/* Collects "AREA/PERIOD=VALUE" (or "AREA/PERIOD=X" for a tombstone). */
typedef struct {
    char items[32][64];
    size_t n;
    int stop_after; /* 0 = never */
} collect_t;

static int
collect_cb(const obs_t *o, void *arg)
{
    collect_t *c = arg;
    assert_true(c->n < 32);
    (void)snprintf(c->items[c->n], sizeof(c->items[0]), "%s/%s=%s", o->dims[1],
                   o->time_period, o->ver.tombstone ? "X" : o->value);
    c->n++;
    return c->stop_after != 0 && (int)c->n >= c->stop_after ? 42 : 0;
}

/* obsdb_outbox_walk_raw callback: decodes, then collect_cb. */
static int
collect_raw_cb(uint64_t seq, const uint8_t *key, size_t klen,
               const uint8_t *rec, size_t rlen, void *arg)
{
    (void)key;
    (void)klen;
    obs_t o;
    obs_init(&o);
    assert_ok(codec_obs_decode(rec, rlen, &o));
    assert_int_equal(o.ver.origin_seq, seq);
    int rc = collect_cb(&o, arg);
    obs_fini(&o);
    return rc;
}

static void
assert_items(const collect_t *c, const char *const *want, size_t n)
{
    for (size_t i = 0; i < c->n && i < n; i++)
        assert_string_equal(c->items[i], want[i]);
    assert_int_equal(c->n, n);
}

static obsdb_scan_t
scan_all(void)
{
    obsdb_scan_t q = {.start_day = INT32_MIN, .end_day = INT32_MAX};
    return q;
}

static void
scan(obsdb_t *db, const obsdb_scan_t *q, collect_t *c)
{
    obsdb_txn_t *txn = NULL;
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len;
    bool more;
    memset(c, 0, sizeof(*c));
    assert_ok(obsdb_begin(db, false, &txn));
    assert_ok(obsdb_scan(txn, q, collect_cb, c, last, &last_len, &more));
    obsdb_abort(&txn);
}

static void
get_stats(obsdb_t *db, obsdb_stats_t *st)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, false, &txn));
    assert_ok(obsdb_stats(txn, st));
    obsdb_abort(&txn);
}

/* ---------------------------------------------------------------- tests */

static void
test_obsdb_put_then_get_returns_copy(void **state)
{
    fixture_t *f = *state;
    put_row(f->db, (row_t){.area = "COL", .value = "1.50", .ms = 1000});
    obs_t id, out;
    make_obs(&id, &(row_t){.area = "COL", .value = "ignored"});
    obs_init(&out);
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_get(txn, &id, &out));
    obsdb_abort(&txn);
    assert_string_equal(out.value, "1.50");
    assert_string_equal(out.ver.origin, NODE);
    assert_true(out.ver.hlc == HLC_MAKE(1000, 0));
    obs_fini(&id);
    obs_fini(&out);
}

static void
test_obsdb_get_missing_is_enoent(void **state)
{
    fixture_t *f = *state;
    obs_t id, out;
    make_obs(&id, &(row_t){.area = "COL", .value = "1"});
    obs_init(&out);
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_rc(obsdb_get(txn, &id, &out), OBS_ENOENT);
    obsdb_abort(&txn);
    obs_fini(&id);
}

static void
test_obsdb_abort_leaves_nothing(void **state)
{
    fixture_t *f = *state;
    obs_t o;
    obsdb_txn_t *txn = NULL;
    obsdb_stats_t st;
    make_obs(&o, &(row_t){.area = "COL", .value = "1", .ms = 1, .seq = 1});
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_put(txn, &o));
    obsdb_abort(&txn);
    assert_null(txn);
    obs_fini(&o);
    get_stats(f->db, &st);
    assert_int_equal(st.observations, 0);
    assert_int_equal(st.history, 0);
    assert_int_equal(st.outbox, 0);
}

static void
test_obsdb_failed_put_makes_commit_fail(void **state)
{
    fixture_t *f = *state;
    obs_t good, bad;
    obsdb_txn_t *txn = NULL;
    obsdb_stats_t st;
    collect_t c;
    make_obs(&good, &(row_t){.area = "COL", .value = "1", .ms = 1});
    make_obs(&bad, &(row_t){.area = "MEX", .value = "1", .period = "20x9"});
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_put(txn, &good));
    assert_rc(obsdb_put(txn, &bad), OBS_EINVAL);
    assert_rc(obsdb_put(txn, &good), OBS_EINVAL); /* sticky */
    assert_rc(obsdb_commit(&txn), OBS_EINVAL);
    assert_null(txn);
    obs_fini(&good);
    obs_fini(&bad);
    obsdb_scan_t q = scan_all();
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 0);
    get_stats(f->db, &st);
    assert_int_equal(st.observations, 0);
}

static void
test_obsdb_second_write_txn_is_busy(void **state)
{
    fixture_t *f = *state;
    obsdb_txn_t *w = NULL, *w2 = NULL, *r = NULL;
    assert_ok(obsdb_begin(f->db, true, &w));
    assert_rc(obsdb_begin(f->db, true, &w2), OBS_EBUSY);
    assert_null(w2);
    assert_ok(obsdb_begin(f->db, false, &r)); /* readers still welcome */
    obsdb_abort(&r);
    assert_ok(obsdb_commit(&w));
    assert_ok(obsdb_begin(f->db, true, &w2));
    obsdb_abort(&w2);
}

static void
test_obsdb_history_walks_newest_first(void **state)
{
    fixture_t *f = *state;
    const row_t rows[] = {
        {.area = "COL", .value = "1", .ms = 1000, .seq = 1},
        {.area = "COL", .value = "3", .ms = 3000, .seq = 3},
        {.area = "COL", .value = "2", .ms = 2000, .seq = 2},
        {.area = "COLX", .value = "other", .ms = 2500, .seq = 4},
        {.area = "COL", .period = "2020", .value = "y", .ms = 2600, .seq = 5},
    };
    put_rows(f->db, rows, 5);
    obs_t id;
    collect_t c = {0};
    make_obs(&id, &rows[0]);
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_history(txn, &id, collect_cb, &c));
    const char *want[] = {"COL/2019=3", "COL/2019=2", "COL/2019=1"};
    assert_items(&c, want, 3);
    /* The callback's non-zero return stops the walk and comes back. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 1;
    assert_int_equal(obsdb_history(txn, &id, collect_cb, &c), 42);
    assert_int_equal(c.n, 1);
    obsdb_abort(&txn);
    obs_fini(&id);
}

static void
test_obsdb_counters_follow_tombstones(void **state)
{
    fixture_t *f = *state;
    obsdb_stats_t st;
    put_row(f->db, (row_t){.area = "COL", .value = "1", .ms = 1, .seq = 1});
    put_row(
        f->db,
        (row_t){
            .area = "MEX", .value = "1", .ms = 2, .seq = 2, .origin = OTHER});
    put_row(f->db,
            (row_t){.area = "COL", .ms = 3, .seq = 3, .tombstone = true});
    get_stats(f->db, &st);
    assert_int_equal(st.observations, 2);
    assert_int_equal(st.tombstones, 1);
    assert_int_equal(st.history, 3);
    assert_int_equal(st.outbox, 2);

    /* Back to live: the tombstone count drops, nothing is added. */
    put_row(f->db, (row_t){.area = "COL", .value = "2", .ms = 4, .seq = 4});
    /* The same version again: no new history entry, no double count. */
    put_row(f->db, (row_t){.area = "COL", .value = "2", .ms = 4, .seq = 4});
    get_stats(f->db, &st);
    assert_int_equal(st.observations, 2);
    assert_int_equal(st.tombstones, 0);
    assert_int_equal(st.history, 4);
    assert_int_equal(st.outbox, 3);
    assert_true(st.map_used > 0 && st.map_used <= st.map_size);
}

static void
test_obsdb_stats_see_own_pending_writes(void **state)
{
    fixture_t *f = *state;
    obs_t o;
    obsdb_stats_t st;
    obsdb_txn_t *txn = NULL;
    make_obs(&o, &(row_t){.area = "COL", .value = "1", .ms = 1, .seq = 1});
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_put(txn, &o));
    assert_ok(obsdb_stats(txn, &st));
    assert_int_equal(st.observations, 1);
    obsdb_abort(&txn);
    obs_fini(&o);
}

static void
test_obsdb_outbox_only_local_origin_and_ack(void **state)
{
    fixture_t *f = *state;
    const row_t rows[] = {
        {.area = "COL", .value = "1", .ms = 1, .seq = 1},
        {.area = "MEX", .value = "9", .ms = 2, .seq = 7, .origin = OTHER},
        {.area = "PER", .value = "2", .ms = 3, .seq = 2},
        {.area = "ARG", .value = "3", .ms = 4, .seq = 3},
    };
    put_rows(f->db, rows, 4);
    collect_t c = {0};
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_outbox_walk_raw(txn, 0, 0, 0, collect_raw_cb, &c));
    const char *all[] = {"COL/2019=1", "PER/2019=2", "ARG/2019=3"};
    assert_items(&c, all, 3);
    memset(&c, 0, sizeof(c));
    assert_ok(obsdb_outbox_walk_raw(txn, 1, 1, 0, collect_raw_cb, &c));
    const char *one[] = {"PER/2019=2"};
    assert_items(&c, one, 1);
    obsdb_abort(&txn);

    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_outbox_ack(txn, 2));
    assert_ok(obsdb_commit(&txn));
    obsdb_stats_t st;
    get_stats(f->db, &st);
    assert_int_equal(st.outbox, 1);
    memset(&c, 0, sizeof(c));
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_outbox_walk_raw(txn, 0, 0, 0, collect_raw_cb, &c));
    obsdb_abort(&txn);
    const char *rest[] = {"ARG/2019=3"};
    assert_items(&c, rest, 1);
}

/* Walks the outbox: seqs strictly ascending, their count, first and last,
 * and the value of one of them. */
typedef struct {
    uint64_t first, last, n, want_seq;
    char value[16];
} seqs_t;

static int
seqs_cb(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
        size_t rlen, void *arg)
{
    seqs_t *w = arg;
    obs_t o;
    (void)key;
    (void)klen;
    obs_init(&o);
    assert_ok(codec_obs_decode(rec, rlen, &o));
    assert_int_equal(o.ver.origin_seq, seq);
    if (w->n > 0)
        assert_int_equal(seq, w->last + 1);
    else
        w->first = seq;
    if (seq == w->want_seq)
        (void)snprintf(w->value, sizeof(w->value), "%s", o.value);
    w->last = seq;
    w->n++;
    obs_fini(&o);
    return 0;
}

static seqs_t
walk_seqs(obsdb_t *db, uint64_t after, size_t max, uint64_t want_seq)
{
    seqs_t w = {.want_seq = want_seq};
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, false, &txn));
    assert_ok(obsdb_outbox_walk_raw(txn, after, max, 0, seqs_cb, &w));
    obsdb_abort(&txn);
    return w;
}

static void
put_local_range(obsdb_t *db, uint64_t from, uint64_t to, const char *value)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, true, &txn));
    for (uint64_t seq = from; seq <= to; seq++) {
        char area[16];
        (void)snprintf(area, sizeof(area), "C%05llu", (unsigned long long)seq);
        obs_t o;
        make_obs(&o,
                 &(row_t){.area = area, .value = value, .ms = seq, .seq = seq});
        assert_ok(obsdb_put(txn, &o));
        obs_fini(&o);
    }
    assert_ok(obsdb_commit(&txn));
}

/* A txn's local changes are stored as chunks (OUTBOX_CHUNK_N = 1024 a
 * chunk): walks from any seq, at and across chunk edges, ack inside a
 * chunk (the rest stays, counted exactly), the same seq stored again. */
static void
test_obsdb_outbox_chunks_walk_ack_and_put_again(void **state)
{
    fixture_t *f = *state;
    put_local_range(f->db, 1, 2500, "1");
    const uint64_t afters[] = {0, 1, 1023, 1024, 1025, 2047, 2048, 2493, 2499};
    for (size_t i = 0; i < sizeof(afters) / sizeof(afters[0]); i++) {
        seqs_t w = walk_seqs(f->db, afters[i], 7, 0);
        uint64_t want = 2500 - afters[i] < 7 ? 2500 - afters[i] : 7;
        assert_int_equal(w.n, want);
        assert_int_equal(w.first, afters[i] + 1);
    }
    seqs_t all = walk_seqs(f->db, 0, 0, 0);
    assert_int_equal(all.n, 2500);
    assert_int_equal(all.last, 2500);
    assert_int_equal(walk_seqs(f->db, 2500, 0, 0).n, 0);

    obsdb_txn_t *txn = NULL;
    uint64_t last = 0;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_outbox_ack(txn, 1500)); /* inside the second chunk */
    assert_ok(obsdb_outbox_last(txn, &last));
    assert_ok(obsdb_commit(&txn));
    assert_int_equal(last, 2500);
    obsdb_stats_t st;
    get_stats(f->db, &st);
    assert_int_equal(st.outbox, 1000);
    all = walk_seqs(f->db, 0, 0, 0);
    assert_int_equal(all.first, 1501);
    assert_int_equal(all.n, 1000);
    assert_int_equal(walk_seqs(f->db, 1400, 3, 0).first, 1501);

    /* seq 2000 again, another value: replaced in its chunk, not added */
    put_local_range(f->db, 2000, 2000, "7");
    get_stats(f->db, &st);
    assert_int_equal(st.outbox, 1000);
    all = walk_seqs(f->db, 1500, 0, 2000);
    assert_int_equal(all.n, 1000);
    assert_string_equal(all.value, "7");

    put_local_range(f->db, 2501, 2502, "1"); /* later txns go on after */
    assert_int_equal(walk_seqs(f->db, 0, 0, 0).last, 2502);
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_outbox_ack(txn, 2502));
    assert_ok(obsdb_commit(&txn));
    get_stats(f->db, &st);
    assert_int_equal(st.outbox, 0);
    assert_int_equal(walk_seqs(f->db, 0, 0, 0).n, 0);
}

/* Replaces the outbox record under key 1 with raw bytes (obsdb closed
 * and opened again around it). */
static void
put_raw_outbox(fixture_t *f, const uint8_t *val, size_t len)
{
    char err[256] = "";
    uint8_t key[8];
    store_t *store = NULL;
    store_txn_t st;
    obsdb_close(&f->db);
    store_be64_put(key, 1);
    assert_ok(store_open(&(store_opts_t){.dir = f->dir, .no_sync = true},
                         &store, err, sizeof(err)));
    assert_ok(store_begin(store, &st, true));
    assert_ok(store_put(&st, STORE_T_OUTBOX, key, 8, val, len));
    assert_ok(store_commit(&st));
    store_close(&store);
    assert_ok(open_db(f, NODE, 0, 0, err, sizeof(err)));
}

static int
walk_rc(obsdb_t *db, uint64_t after)
{
    seqs_t w = {0};
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, false, &txn));
    int rc = obsdb_outbox_walk_raw(txn, after, 0, 0, seqs_cb, &w);
    obsdb_abort(&txn);
    return rc;
}

/* A chunk whose bytes are damaged is reported, not skipped: a change
 * length past the end, then a header whose last seq is below its key
 * (found by the walk from the middle of the chunk, and by ack). */
static void
test_obsdb_outbox_damaged_chunk_is_estore(void **state)
{
    fixture_t *f = *state;
    put_local_range(f->db, 1, 3, "1");
    uint8_t bad[15] = {0}; /* chunk 1..3, 1 change, length 0x7f */
    store_be64_put(bad + 1, 3);
    bad[12] = 1;
    bad[13] = 1;
    bad[14] = 0x7f;
    put_raw_outbox(f, bad, sizeof(bad));
    assert_int_equal(walk_rc(f->db, 0), OBS_ESTORE);
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_int_equal(obsdb_outbox_ack(txn, 2), OBS_ESTORE);
    obsdb_abort(&txn);

    uint8_t head[13] = {0}; /* last 0 < key 1 */
    head[12] = 1;
    put_raw_outbox(f, head, sizeof(head));
    assert_int_equal(walk_rc(f->db, 1), OBS_ESTORE);
    assert_int_equal(walk_rc(f->db, 0), OBS_ESTORE);
}

/* A hub that lost acked changes: the local versions after a seq go back
 * into the outbox, from history (superseded ones) and obs (current ones). */
static void
test_obsdb_outbox_restore_from_history_and_current(void **state)
{
    fixture_t *f = *state;
    const row_t rows[] = {
        {.area = "COL", .value = "1", .ms = 1, .seq = 1},
        {.area = "PER", .value = "2", .ms = 2, .seq = 2},
        {.area = "COL", .value = "3", .ms = 3, .seq = 3}, /* supersedes 1 */
        {.area = "MEX", .value = "9", .ms = 4, .seq = 7, .origin = OTHER},
    };
    put_rows(f->db, rows, 4);
    obsdb_txn_t *txn = NULL;
    size_t n = 0;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_outbox_ack(txn, 3));
    assert_ok(obsdb_outbox_restore(txn, 0, UINT64_MAX, &n));
    assert_int_equal(n, 3);
    assert_ok(obsdb_commit(&txn));
    collect_t c = {0};
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_outbox_walk_raw(txn, 0, 0, 0, collect_raw_cb, &c));
    const char *all[] = {"COL/2019=1", "PER/2019=2", "COL/2019=3"};
    assert_items(&c, all, 3);
    obsdb_abort(&txn);
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_outbox_ack(txn, 3));
    assert_ok(obsdb_outbox_restore(txn, 1, 2, &n));
    assert_int_equal(n, 1);
    assert_ok(obsdb_commit(&txn));
    obsdb_stats_t st;
    get_stats(f->db, &st);
    assert_int_equal(st.outbox, 1);
    assert_int_equal(st.history, 4); /* every version stored, current too */
}

/* obsdb_key_fits says exactly what obsdb_put would refuse as too long. */
static void
test_obsdb_key_fits_matches_put(void **state)
{
    fixture_t *f = *state;
    char code[61];
    memset(code, 'X', sizeof(code) - 1);
    code[sizeof(code) - 1] = '\0';
    const char *dims[12];
    for (size_t n = 1; n <= 12; n++) {
        for (size_t i = 0; i < n; i++)
            dims[i] = code;
        obs_t o;
        obs_init(&o);
        assert_ok(obs_set_identity(&o, DF, dims, n, "2019"));
        assert_ok(obs_set_value(&o, "1"));
        o.ver.hlc = HLC_MAKE(1000, 0);
        (void)snprintf(o.ver.origin, sizeof(o.ver.origin), "%s", NODE);
        o.ver.origin_seq = n;
        obsdb_txn_t *txn = NULL;
        assert_ok(obsdb_begin(f->db, true, &txn));
        int rc = obsdb_put(txn, &o);
        obsdb_abort(&txn);
        assert_int_equal(rc == OBS_OK, obsdb_key_fits(&o));
        if (n == 1)
            assert_true(obsdb_key_fits(&o));
        if (n == 12) /* 12 x 61 bytes: far past the limit */
            assert_false(obsdb_key_fits(&o));
        obs_fini(&o);
    }
}

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
test_obsdb_epoch_stable_across_reopen(void **state)
{
    fixture_t *f = *state;
    char epoch[40];
    (void)snprintf(epoch, sizeof(epoch), "%s", obsdb_epoch(f->db));
    assert_int_equal(strlen(epoch), 32);
    assert_int_equal(strspn(epoch, "0123456789abcdef"), 32);
    obsdb_close(&f->db);
    assert_ok(open_db(f, NODE, 0, 0, NULL, 0));
    assert_string_equal(obsdb_epoch(f->db), epoch);
}

static void
test_obsdb_new_stores_get_different_epochs(void **state)
{
    fixture_t *f = *state;
    fixture_t g = {0};
    (void)snprintf(g.dir, sizeof(g.dir), "/tmp/obsync-obsdb-XXXXXX");
    assert_non_null(mkdtemp(g.dir));
    assert_ok(open_db(&g, NODE, 0, 0, NULL, 0));
    assert_string_not_equal(obsdb_epoch(g.db), obsdb_epoch(f->db));
    obsdb_close(&g.db);
    test_rm_tree(g.dir);
}

static void
test_obsdb_reopen_with_other_node_refused(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    obsdb_close(&f->db);
    assert_rc(open_db(f, OTHER, 0, 0, err, sizeof(err)), OBS_EINVAL);
    assert_null(f->db);
    assert_non_null(strstr(err, "belongs to node " NODE));
    assert_non_null(strstr(err, "config says " OTHER));
    assert_non_null(strstr(err, f->dir));
}

/* Deletes meta "format" with LMDB itself: a store from before the marker. */
static void
unmark_format(const char *dir)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val key = {.mv_size = strlen("format"), .mv_data = "format"};
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_del(txn, dbi, &key, NULL), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* A store with no format marker (older than the marker) opens, keeps its
 * data and is marked. */
static void
test_obsdb_format_unmarked_store_marked(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    obs_t o, got;
    make_obs(&o, &(row_t){.area = "COL", .value = "7", .ms = 5, .seq = 1});
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_put(txn, &o));
    assert_ok(obsdb_commit(&txn));
    obsdb_close(&f->db);
    unmark_format(f->dir);
    assert_ok(open_db(f, NODE, 0, 0, err, sizeof(err)));
    uint64_t format = 0;
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_meta_get_u64(txn, "format", &format));
    obs_init(&got);
    assert_ok(obsdb_get(txn, &o, &got));
    obsdb_abort(&txn);
    assert_int_equal(format, 3);
    assert_string_equal(got.value, "7");
    obs_fini(&got);
    obs_fini(&o);
}

/* A new store is marked with this build's format; a store marked older
 * (or not at all) is marked at its next open and still read; one marked
 * newer is refused, saying so, and left as it was. */
static void
test_obsdb_format_marked_newer_refused(void **state)
{
    fixture_t *f = *state;
    char err[256] = "";
    uint64_t format = 0;
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_meta_get_u64(txn, "format", &format));
    assert_int_equal(format, 3);
    assert_ok(obsdb_meta_put_u64(txn, "format", 2)); /* an older store */
    assert_ok(obsdb_commit(&txn));
    obsdb_close(&f->db);
    assert_ok(open_db(f, NODE, 0, 0, err, sizeof(err)));
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_ok(obsdb_meta_get_u64(txn, "format", &format));
    assert_int_equal(format, 3);
    assert_ok(obsdb_meta_put_u64(txn, "format", 4)); /* a newer build's */
    assert_ok(obsdb_commit(&txn));
    obsdb_close(&f->db);
    assert_rc(open_db(f, NODE, 0, 0, err, sizeof(err)), OBS_EVERSION);
    assert_null(f->db);
    assert_non_null(strstr(err, "format 4"));
    assert_non_null(strstr(err, "newer obsyncd"));
    assert_non_null(strstr(err, f->dir));
    /* still refused: nothing was rewritten (the fixture's teardown needs
     * no open store) */
    assert_rc(open_db(f, NODE, 0, 0, err, sizeof(err)), OBS_EVERSION);
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

static void
test_obsdb_meta_and_structure_roundtrip(void **state)
{
    fixture_t *f = *state;
    obsdb_txn_t *txn = NULL;
    uint64_t u = 0;
    char buf[16], small[4];
    char *text = NULL;
    size_t len = 0;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_rc(obsdb_structure_get(txn, &text, &len), OBS_ENOENT);
    assert_rc(obsdb_meta_get_u64(txn, "hlc", &u), OBS_ENOENT);
    assert_ok(obsdb_meta_put_u64(txn, "hlc", HLC_MAKE(77, 3)));
    assert_ok(obsdb_meta_put_str(txn, "cursor.hub", "abcdef"));
    assert_ok(obsdb_structure_put(txn, "dsd v1", 6));
    assert_ok(obsdb_commit(&txn));

    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_meta_get_u64(txn, "hlc", &u));
    assert_true(u == HLC_MAKE(77, 3));
    assert_ok(obsdb_meta_get_str(txn, "cursor.hub", buf, sizeof(buf)));
    assert_string_equal(buf, "abcdef");
    assert_rc(obsdb_meta_get_str(txn, "cursor.hub", small, sizeof(small)),
              OBS_ETOOBIG);
    assert_ok(obsdb_meta_get_str(txn, "node_id", buf, sizeof(buf)));
    assert_string_equal(buf, NODE);
    assert_ok(obsdb_structure_get(txn, &text, &len));
    obsdb_abort(&txn);
    assert_int_equal(len, 6);
    assert_string_equal(text, "dsd v1");
    free(text);
}

/* Writes one observation with a 4 KiB attribute per txn; returns the rc of
 * the first failing commit (or 0 after max rows). */
static int
write_big(obsdb_t *db, unsigned from, unsigned max, unsigned *done)
{
    static char blob[4 * KIB];
    char area[16];
    memset(blob, 'x', sizeof(blob) - 1);
    for (unsigned i = from; i < from + max; i++) {
        obs_t o;
        obsdb_txn_t *txn = NULL;
        (void)snprintf(area, sizeof(area), "A%05u", i);
        make_obs(&o, &(row_t){.area = area,
                              .value = "1",
                              .ms = i + 1,
                              .seq = i + 1,
                              .origin = OTHER});
        assert_ok(obs_set_attr(&o, "COMMENT_OBS", blob));
        assert_ok(obsdb_begin(db, true, &txn));
        obsdb_put(txn, &o);
        obs_fini(&o);
        int rc = obsdb_commit(&txn);
        if (rc != 0)
            return rc;
        (*done)++;
    }
    return OBS_OK;
}

static void
test_obsdb_map_full_then_grow(void **state)
{
    fixture_t *f = *state;
    unsigned n = 0;
    obsdb_close(&f->db);
    test_rm_tree(f->dir); /* fresh store so the small map applies */
    assert_ok(open_db(f, NODE, 256 * KIB, 256 * KIB, NULL, 0));
    assert_rc(write_big(f->db, 0, 10000, &n), OBS_ESTOREFULL);
    assert_true(n > 0);
    assert_false(obsdb_grow(f->db)); /* at map_max */

    /* The committed rows are intact and a read txn works. */
    obsdb_stats_t st;
    collect_t c;
    get_stats(f->db, &st);
    assert_int_equal(st.observations, n);
    assert_int_equal(st.outbox, 0);
    obsdb_scan_t q = scan_all();
    q.limit = 3;
    scan(f->db, &q, &c);
    assert_int_equal(c.n, 3);

    /* With room to grow, the failed write goes through after obsdb_grow. */
    obsdb_close(&f->db);
    assert_ok(open_db(f, NODE, 256 * KIB, 1024 * KIB, NULL, 0));
    unsigned m = 0;
    assert_rc(write_big(f->db, n, 1, &m), OBS_ESTOREFULL);
    assert_true(obsdb_grow(f->db));
    assert_ok(write_big(f->db, n, 1, &m));
    get_stats(f->db, &st);
    assert_int_equal(st.observations, n + 1);
    assert_true(st.map_size > 256 * KIB);
}

typedef struct {
    uint8_t *rec;
    size_t len;
} raw_t;

static int
keep_raw_cb(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
            size_t rlen, void *arg)
{
    (void)seq;
    (void)key;
    (void)klen;
    raw_t *r = arg;
    r->rec = malloc(rlen);
    assert_non_null(r->rec);
    memcpy(r->rec, rec, rlen);
    r->len = rlen;
    return 0;
}

/* An import row stored by its key, body and version is byte for byte what
 * obsdb_put stores for it, in the state and in the outbox. */
static void
test_obsdb_put_key_body_stores_what_put_would(void **state)
{
    fixture_t *f = *state;
    obs_t o, out;
    make_obs(&o, &(row_t){.area = "COL", .value = "2.5", .ms = 2000, .seq = 1});
    obs_init(&out);
    uint8_t key[OBS_KEY_MAX + 1];
    int klen = obs_key_encode(&o, key, sizeof(key));
    assert_true(klen > 0);
    uint8_t *body = NULL, *whole = NULL;
    size_t blen = 0, wlen = 0;
    assert_ok(codec_obs_encode_body(&o, 0, &body, &blen));
    assert_ok(codec_obs_encode(&o, &whole, &wlen));

    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_rc(obsdb_exists(txn, key, (size_t)klen), OBS_ENOENT);
    assert_ok(
        obsdb_put_key_body(txn, key, (size_t)klen, &o.ver, body, blen, true));
    assert_ok(obsdb_exists(txn, key, (size_t)klen));
    assert_ok(obsdb_commit(&txn));

    raw_t r = {0};
    assert_ok(obsdb_begin(f->db, false, &txn));
    assert_ok(obsdb_get(txn, &o, &out));
    assert_ok(obsdb_outbox_walk_raw(txn, 0, 10, 0, keep_raw_cb, &r));
    obsdb_abort(&txn);
    assert_string_equal(out.value, "2.5");
    obsdb_stats_t st; /* counted as a new key, though not looked up twice */
    get_stats(f->db, &st);
    assert_int_equal(st.observations, 1);
    assert_int_equal(st.history, 1);
    assert_int_equal(st.outbox, 1);
    assert_int_equal(r.len, wlen);
    assert_memory_equal(r.rec, whole, wlen);

    /* a key no store can hold is refused (and fails the txn) */
    uint8_t big[OBS_KEY_MAX + 1];
    memset(big, 'k', sizeof(big));
    assert_ok(obsdb_begin(f->db, true, &txn));
    assert_rc(
        obsdb_put_key_body(txn, big, OBS_KEY_MAX, &o.ver, body, blen, false),
        OBS_EINVAL);
    obsdb_abort(&txn);
    free(r.rec);
    free(body);
    free(whole);
    obs_fini(&out);
    obs_fini(&o);
}

/* obsdb_reserve grows the map ahead of a big write, in steps, and says
 * when map_max leaves no room. */
static void
test_obsdb_reserve_grows_ahead(void **state)
{
    fixture_t *f = *state;
    obsdb_close(&f->db);
    test_rm_tree(f->dir);
    assert_ok(open_db(f, NODE, 256 * KIB, 8192 * KIB, NULL, 0));
    obsdb_stats_t st;
    get_stats(f->db, &st);
    assert_true(st.map_size == 256 * KIB);
    assert_true(obsdb_reserve(f->db, 64 * KIB)); /* already there */
    get_stats(f->db, &st);
    assert_true(st.map_size == 256 * KIB);
    assert_true(obsdb_reserve(f->db, 3000 * KIB));
    get_stats(f->db, &st);
    assert_true(st.map_size - st.map_used >= 3000 * KIB);
    assert_true(st.map_size <= 8192 * KIB);
    /* the room is real: ~1.6 MiB of writes need no further growth */
    uint64_t size = st.map_size;
    unsigned n = 0;
    assert_ok(write_big(f->db, 0, 200, &n));
    get_stats(f->db, &st);
    assert_true(st.map_size == size);
    assert_false(obsdb_reserve(f->db, 9000 * KIB)); /* past map_max */
    get_stats(f->db, &st);
    assert_true(st.map_size == 8192 * KIB);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_obsdb_put_then_get_returns_copy),
        T(test_obsdb_reserve_grows_ahead),
        T(test_obsdb_put_key_body_stores_what_put_would),
        T(test_obsdb_get_missing_is_enoent),
        T(test_obsdb_abort_leaves_nothing),
        T(test_obsdb_failed_put_makes_commit_fail),
        T(test_obsdb_second_write_txn_is_busy),
        T(test_obsdb_history_walks_newest_first),
        T(test_obsdb_counters_follow_tombstones),
        T(test_obsdb_stats_see_own_pending_writes),
        T(test_obsdb_outbox_only_local_origin_and_ack),
        T(test_obsdb_outbox_chunks_walk_ack_and_put_again),
        T(test_obsdb_outbox_damaged_chunk_is_estore),
        T(test_obsdb_outbox_restore_from_history_and_current),
        T(test_obsdb_key_fits_matches_put),
        T(test_obsdb_scan_by_dataflow_and_pattern),
        T(test_obsdb_scan_by_period_range),
        T(test_obsdb_scan_updated_after_includes_tombstones),
        T(test_obsdb_scan_as_of_reads_history),
        T(test_obsdb_scan_resumes_in_pages),
        T(test_obsdb_scan_refuses_oversized_resume_key),
        T(test_obsdb_epoch_stable_across_reopen),
        T(test_obsdb_new_stores_get_different_epochs),
        T(test_obsdb_reopen_with_other_node_refused),
        T(test_obsdb_format_marked_newer_refused),
        T(test_obsdb_format_unmarked_store_marked),
        T(test_obsdb_data_survives_reopen),
        T(test_obsdb_meta_and_structure_roundtrip),
        T(test_obsdb_map_full_then_grow),
    };
    return cmocka_run_group_tests_name("obsdb", tests, NULL, NULL);
}
