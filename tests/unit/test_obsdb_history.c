/*
 * test_obsdb_history.c - unit tests for obsdb's history of versions: every
 * version of a key is kept, also two (or more) with one HLC from different
 * origins (history keys carry the origin), whatever order they arrive in;
 * a late older version is kept once; obsdb_history lists them by (hlc,
 * origin), newest first; obsdb_scan's as_of picks the winner at that time;
 * entries of an older store (short history keys, origins records without
 * the hlc) are still read. Real LMDB files in a mkdtemp directory removed
 * after each test.
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
#include "hlc.h"
#include "obs_err.h"
#include "obs_key.h"
#include "obsdb.h"
#include "store.h"
#include "test_support.h"

/* This file builds versions of its own (row_t, make_obs, seen_t): only the
 * fixture part of test_obsdb_support.h, which gives HUB, DF, NDIMS, EPOCH,
 * fixture_t, begin and commit. */
#define TEST_OBSDB_FIXTURE_ONLY
#include "test_obsdb_support.h"

#define COL "node-col"
#define MEX "node-mex"
#define ZZZ "node-zzz"

static int
setup(void **state)
{
    return fixture_setup(state, "/tmp/obsync-hist-XXXXXX", HUB, true);
}

static int
teardown(void **state)
{
    return fixture_teardown(state);
}

/* ------------------------------------------------------------- builders */

/* A version of the observation (A, area, IND1) for 2019. */
typedef struct {
    const char *area;
    const char *value;
    uint64_t hlc;
    const char *origin;
    uint64_t seq;
} row_t;

static void
make_obs(obs_t *o, const row_t *r)
{
    const char *dims[NDIMS] = {"A", r->area, "IND1"};
    obs_init(o);
    assert_ok(obs_set_identity(o, DF, dims, NDIMS, "2019"));
    assert_ok(obs_set_value(o, r->value));
    o->ver.hlc = r->hlc;
    (void)snprintf(o->ver.origin, sizeof(o->ver.origin), "%s", r->origin);
    o->ver.origin_seq = r->seq;
    o->ver.action = OBS_ACTION_MERGE;
    obs_content_hash(o, o->ver.content_hash);
}

/* Replicates r in its own txn; returns whether it was applied. */
static bool
replicate(obsdb_t *db, const row_t *r)
{
    obs_t o;
    bool applied = true;
    make_obs(&o, r);
    obsdb_txn_t *txn = begin(db, true);
    assert_ok(obsdb_put_replicated(txn, &o, &applied));
    commit(txn);
    obs_fini(&o);
    return applied;
}

static uint64_t
history_count(obsdb_t *db)
{
    obsdb_stats_t st;
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    return st.history;
}

/* The versions a walk (obsdb_history or obsdb_scan) passed to its cb. */
typedef struct {
    size_t n;
    uint64_t hlc[16];
    char origin[16][OBS_ID_MAX + 1];
    char area[16][16];
    char value[16][16];
} seen_t;

static int
seen_cb(const obs_t *o, void *arg)
{
    seen_t *s = arg;
    assert_true(s->n < 16);
    s->hlc[s->n] = o->ver.hlc;
    (void)snprintf(s->origin[s->n], sizeof(s->origin[0]), "%s", o->ver.origin);
    (void)snprintf(s->area[s->n], sizeof(s->area[0]), "%s", o->dims[1]);
    (void)snprintf(s->value[s->n], sizeof(s->value[0]), "%s", o->value);
    s->n++;
    return 0;
}

static void
history(obsdb_t *db, const char *area, seen_t *s)
{
    obs_t id;
    memset(s, 0, sizeof(*s));
    make_obs(&id, &(row_t){.area = area, .value = "", .origin = HUB});
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_history(txn, &id, seen_cb, s));
    obsdb_abort(&txn);
    obs_fini(&id);
}

/* The current version of area into s (one entry): plain copies, so a
 * failed assertion on them leaks nothing. */
static void
current(obsdb_t *db, const char *area, seen_t *s)
{
    obs_t id, cur;
    memset(s, 0, sizeof(*s));
    make_obs(&id, &(row_t){.area = area, .value = "", .origin = HUB});
    obs_init(&cur);
    obsdb_txn_t *txn = begin(db, false);
    int rc = obsdb_get(txn, &id, &cur);
    obsdb_abort(&txn);
    if (rc == OBS_OK)
        (void)seen_cb(&cur, s);
    obs_fini(&cur);
    obs_fini(&id);
    assert_ok(rc);
}

static void
assert_seen(const seen_t *s, size_t i, uint64_t hlc, const char *origin,
            const char *value)
{
    assert_true(i < s->n);
    assert_int_equal(s->hlc[i], hlc);
    assert_string_equal(s->origin[i], origin);
    assert_string_equal(s->value[i], value);
}

static void
scan_as_of(obsdb_t *db, uint64_t as_of_ms, seen_t *s)
{
    obsdb_scan_t q = {
        .start_day = INT32_MIN, .end_day = INT32_MAX, .as_of_ms = as_of_ms};
    memset(s, 0, sizeof(*s));
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_scan(txn, &q, seen_cb, s, NULL, NULL, NULL));
    obsdb_abort(&txn);
}

/* ------------------------------------------------- same hlc, two origins */

#define H1 HLC_MAKE(1000, 7)

static void
test_same_hlc_two_origins_both_kept_in_either_order(void **state)
{
    fixture_t *f = *state;
    /* K1 gets node-col's version first, K2 node-mex's first. */
    assert_true(replicate(f->db, &(row_t){"K1", "col", H1, COL, 1}));
    assert_true(replicate(f->db, &(row_t){"K1", "mex", H1, MEX, 1}));
    assert_true(replicate(f->db, &(row_t){"K2", "mex", H1, MEX, 2}));
    assert_false(replicate(f->db, &(row_t){"K2", "col", H1, COL, 2}));

    const char *keys[] = {"K1", "K2"};
    for (size_t k = 0; k < 2; k++) {
        seen_t cur;
        current(f->db, keys[k], &cur);
        assert_string_equal(cur.origin[0], MEX); /* greater origin wins */
        assert_string_equal(cur.value[0], "mex");

        seen_t s;
        history(f->db, keys[k], &s);
        assert_int_equal(s.n, 2);
        assert_seen(&s, 0, H1, MEX, "mex");
        assert_seen(&s, 1, H1, COL, "col");
    }
    assert_int_equal(history_count(f->db), 4); /* 2 versions per key */
}

static void
test_same_hlc_counts_two_history_entries(void **state)
{
    fixture_t *f = *state;
    assert_true(replicate(f->db, &(row_t){"K1", "mex", H1, MEX, 1}));
    assert_int_equal(history_count(f->db), 1);
    assert_false(replicate(f->db, &(row_t){"K1", "col", H1, COL, 1}));
    assert_int_equal(history_count(f->db), 2);
}

static void
test_same_hlc_three_origins_and_newer_listed_by_hlc_then_origin(void **state)
{
    fixture_t *f = *state;
    const uint64_t h2 = HLC_MAKE(1000, 8);
    assert_true(replicate(f->db, &(row_t){"K1", "mex", H1, MEX, 1}));
    assert_true(replicate(f->db, &(row_t){"K1", "newer", h2, COL, 2}));
    assert_false(replicate(f->db, &(row_t){"K1", "col", H1, COL, 1}));
    assert_false(replicate(f->db, &(row_t){"K1", "zzz", H1, ZZZ, 1}));

    seen_t s;
    history(f->db, "K1", &s);
    assert_int_equal(s.n, 4);
    assert_seen(&s, 0, h2, COL, "newer");
    assert_seen(&s, 1, H1, ZZZ, "zzz");
    assert_seen(&s, 2, H1, MEX, "mex");
    assert_seen(&s, 3, H1, COL, "col");
    assert_int_equal(history_count(f->db), 4);

    seen_t cur;
    current(f->db, "K1", &cur);
    assert_int_equal(cur.hlc[0], h2);
}

/* ------------------------------------------------------ late and older */

static void
test_late_older_version_is_kept_once(void **state)
{
    fixture_t *f = *state;
    const uint64_t h10 = HLC_MAKE(10, 0), h20 = HLC_MAKE(20, 0),
                   h30 = HLC_MAKE(30, 0);
    assert_true(replicate(f->db, &(row_t){"K1", "v10", h10, COL, 1}));
    assert_true(replicate(f->db, &(row_t){"K1", "v30", h30, COL, 3}));
    uint64_t before = history_count(f->db);
    assert_int_equal(before, 2);

    /* node-mex's version stamped between the two comes late, twice */
    const row_t late = {"K1", "v20", h20, MEX, 9};
    assert_false(replicate(f->db, &late));
    assert_int_equal(history_count(f->db), before + 1);
    assert_false(replicate(f->db, &late));
    assert_int_equal(history_count(f->db), before + 1);

    seen_t s;
    history(f->db, "K1", &s);
    assert_int_equal(s.n, 3);
    assert_seen(&s, 0, h30, COL, "v30");
    assert_seen(&s, 1, h20, MEX, "v20");
    assert_seen(&s, 2, h10, COL, "v10");

    seen_t cur;
    current(f->db, "K1", &cur);
    assert_string_equal(cur.value[0], "v30"); /* the late one did not win */
}

/* ---------------------------------------------------------------- as_of */

static void
test_as_of_picks_the_winner_among_same_ms_versions(void **state)
{
    fixture_t *f = *state;
    const uint64_t a10 = HLC_MAKE(10, 0), b10 = HLC_MAKE(10, 0),
                   a20 = HLC_MAKE(20, 0);
    assert_true(replicate(f->db, &(row_t){"K1", "a10", a10, COL, 1}));
    assert_true(replicate(f->db, &(row_t){"K1", "b10", b10, MEX, 1}));
    assert_true(replicate(f->db, &(row_t){"K1", "a20", a20, COL, 2}));

    seen_t s;
    scan_as_of(f->db, 15, &s);
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, b10, MEX, "b10");

    scan_as_of(f->db, 10, &s); /* as_of is inclusive */
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, b10, MEX, "b10");

    scan_as_of(f->db, 25, &s);
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, a20, COL, "a20");

    scan_as_of(f->db, 5, &s);
    assert_int_equal(s.n, 0);
}

static void
test_as_of_same_ms_versions_arriving_out_of_order(void **state)
{
    fixture_t *f = *state;
    const uint64_t h10 = HLC_MAKE(10, 0), h20 = HLC_MAKE(20, 0);
    /* the newest first: both ms-10 versions come late into history */
    assert_true(replicate(f->db, &(row_t){"K1", "a20", h20, COL, 2}));
    assert_false(replicate(f->db, &(row_t){"K1", "b10", h10, MEX, 1}));
    assert_false(replicate(f->db, &(row_t){"K1", "a10", h10, COL, 1}));

    seen_t s;
    scan_as_of(f->db, 15, &s);
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, h10, MEX, "b10");
    scan_as_of(f->db, 25, &s);
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, h20, COL, "a20");
}

/* ----------------------------------------------------- older stores */

/* Writes r into history under the short key (canonical key | be64 hlc),
 * as a store written before history keys carried the origin. */
static void
put_short_history(obsdb_t *db, const row_t *r)
{
    uint8_t key[OBS_KEY_MAX + 1];
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    obs_t o;
    make_obs(&o, r);
    int klen = obs_key_encode(&o, key, sizeof(key) - 8);
    assert_true(klen > 0);
    store_be64_put(key + klen, r->hlc);
    assert_ok(codec_obs_encode(&o, &enc, &enc_len));
    obsdb_txn_t *txn = begin(db, true);
    assert_ok(store_put(obsdb_txn_store(txn), STORE_T_HISTORY, key,
                        (size_t)klen + 8, enc, enc_len));
    commit(txn);
    free(enc);
    obs_fini(&o);
}

static void
test_short_history_key_is_read_and_not_duplicated(void **state)
{
    fixture_t *f = *state;
    const uint64_t h10 = HLC_MAKE(10, 0), h20 = HLC_MAKE(20, 0);
    const row_t old = {"K1", "old", h10, MEX, 4};
    assert_true(replicate(f->db, &(row_t){"K1", "cur", h20, COL, 5}));
    put_short_history(f->db, &old);

    seen_t s;
    history(f->db, "K1", &s);
    assert_int_equal(s.n, 2);
    assert_seen(&s, 0, h20, COL, "cur");
    assert_seen(&s, 1, h10, MEX, "old");

    scan_as_of(f->db, 15, &s); /* as_of reads it too */
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, h10, MEX, "old");

    /* The same version arriving again is not kept a second time. */
    uint64_t before = history_count(f->db);
    assert_false(replicate(f->db, &old));
    assert_int_equal(history_count(f->db), before);
    history(f->db, "K1", &s);
    assert_int_equal(s.n, 2);
}

/* A store with a short-key entry gets another origin's version with the
 * same hlc, under the long key: both are listed, in version order (the
 * short key sorts before every long key of its hlc, whatever the origins),
 * and as_of gives the winner of the two. */
static void
test_short_history_key_and_same_hlc_long_key_in_version_order(void **state)
{
    fixture_t *f = *state;
    const uint64_t h10 = HLC_MAKE(10, 0), h20 = HLC_MAKE(20, 0);
    assert_true(replicate(f->db, &(row_t){"K1", "cur", h20, COL, 5}));
    put_short_history(f->db, &(row_t){"K1", "old", h10, MEX, 4});
    uint64_t before = history_count(f->db);

    /* node-abc < node-mex: a version of its own, which loses to mex's */
    assert_false(replicate(f->db, &(row_t){"K1", "abc", h10, "node-abc", 1}));
    assert_int_equal(history_count(f->db), before + 1);

    seen_t s;
    history(f->db, "K1", &s);
    assert_int_equal(s.n, 3);
    assert_seen(&s, 0, h20, COL, "cur");
    assert_seen(&s, 1, h10, MEX, "old");
    assert_seen(&s, 2, h10, "node-abc", "abc");

    scan_as_of(f->db, 15, &s);
    assert_int_equal(s.n, 1);
    assert_seen(&s, 0, h10, MEX, "old");
}

static void
test_origin_record_without_hlc_reads_hlc_0(void **state)
{
    fixture_t *f = *state;
    uint8_t val[8 + sizeof(EPOCH) - 1];
    store_be64_put(val, 42);
    memcpy(val + 8, EPOCH, sizeof(EPOCH) - 1);
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(store_put(obsdb_txn_store(txn), STORE_T_ORIGINS, COL, strlen(COL),
                        val, sizeof(val)));
    commit(txn);

    char epoch[OBS_ID_MAX + 1] = "";
    uint64_t seq = 0, hlc = 99;
    txn = begin(f->db, false);
    assert_ok(obsdb_origin_get(txn, COL, epoch, sizeof(epoch), &seq, &hlc));
    obsdb_abort(&txn);
    assert_string_equal(epoch, EPOCH);
    assert_int_equal(seq, 42);
    assert_int_equal(hlc, 0);
}

static void
test_origin_record_round_trips_hlc(void **state)
{
    fixture_t *f = *state;
    const uint64_t h = HLC_MAKE(1700000000000ull, 3);
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_origin_put(txn, COL, EPOCH, 42, h));
    commit(txn);

    char epoch[OBS_ID_MAX + 1] = "";
    uint64_t seq = 0, hlc = 0;
    txn = begin(f->db, false);
    assert_ok(obsdb_origin_get(txn, COL, epoch, sizeof(epoch), &seq, &hlc));
    obsdb_abort(&txn);
    assert_string_equal(epoch, EPOCH);
    assert_int_equal(seq, 42);
    assert_int_equal(hlc, h);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_same_hlc_two_origins_both_kept_in_either_order),
        T(test_same_hlc_counts_two_history_entries),
        T(test_same_hlc_three_origins_and_newer_listed_by_hlc_then_origin),
        T(test_late_older_version_is_kept_once),
        T(test_as_of_picks_the_winner_among_same_ms_versions),
        T(test_as_of_same_ms_versions_arriving_out_of_order),
        T(test_short_history_key_is_read_and_not_duplicated),
        T(test_short_history_key_and_same_hlc_long_key_in_version_order),
        T(test_origin_record_without_hlc_reads_hlc_0),
        T(test_origin_record_round_trips_hlc),
    };
    return cmocka_run_group_tests_name("obsdb_history", tests, NULL, NULL);
}
