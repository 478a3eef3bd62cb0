/*
 * test_obsdb.c - unit tests for obsdb.c's puts, gets and transactions: a
 * put lands in one transaction across obs, history and outbox; abort, a
 * failed put that fails the commit, one writer at a time; counters and
 * stats; history order; obsdb_key_fits; an import row put by key and body;
 * epoch, node id and format in meta; map full, growth and reserve. The
 * outbox is test_obsdb_outbox.c's, scans are test_obsdb_scan.c's. Real
 * LMDB files in a mkdtemp directory removed after each test.
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
#include "obs_key.h"
#include "obsdb.h"
#include "test_obsdb_support.h"
#include "test_support.h"

/* NODE, OTHER, DF, NDIMS, fixture_t, row_t, make_obs, put_rows, collect_t,
 * scan, get_stats: test_obsdb_support.h */
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
        T(test_obsdb_key_fits_matches_put),
        T(test_obsdb_epoch_stable_across_reopen),
        T(test_obsdb_new_stores_get_different_epochs),
        T(test_obsdb_reopen_with_other_node_refused),
        T(test_obsdb_format_marked_newer_refused),
        T(test_obsdb_format_unmarked_store_marked),
        T(test_obsdb_meta_and_structure_roundtrip),
        T(test_obsdb_map_full_then_grow),
    };
    return cmocka_run_group_tests_name("obsdb", tests, NULL, NULL);
}
