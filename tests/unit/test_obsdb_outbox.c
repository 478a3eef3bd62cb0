/*
 * test_obsdb_outbox.c - unit tests for obsdb's outbox: only local-origin
 * changes go in, walks from any seq and acks; changes stored as chunks
 * (walks at and across chunk edges, an ack inside a chunk, a seq stored
 * again); a damaged chunk reported, not skipped; a lost tail restored from
 * history and the current versions. Real LMDB files in a mkdtemp
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

#include "codec.h"
#include "obs_err.h"
#include "obsdb.h"
#include "store.h"
#include "test_obsdb_support.h"
#include "test_support.h"

/* NODE, OTHER, fixture_t, row_t, make_obs, put_rows, collect_t,
 * collect_raw_cb, get_stats: test_obsdb_support.h */

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

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_obsdb_outbox_only_local_origin_and_ack),
        T(test_obsdb_outbox_chunks_walk_ack_and_put_again),
        T(test_obsdb_outbox_damaged_chunk_is_estore),
        T(test_obsdb_outbox_restore_from_history_and_current),
    };
    return cmocka_run_group_tests_name("obsdb_outbox", tests, NULL, NULL);
}
