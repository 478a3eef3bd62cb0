/*
 * test_obsdb_log.c - unit tests for obsdb's hub log: append numbering
 * (kept in meta, never reused after trims and reopens), bounds, zero-copy
 * walks with entry and byte limits, trims, and appends of a given key or
 * body that log the same bytes as a whole obs. Real LMDB files in a
 * mkdtemp directory removed after each test.
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
#include "test_obsdb_support.h"
#include "test_support.h"

/* NODE, HUB, fixture_t, row_t, make_obs, begin, commit, reopen, seen_t,
 * seen_cb: test_obsdb_support.h */

static int
setup(void **state)
{
    return fixture_setup(state, "/tmp/obsync-repl-XXXXXX", HUB, true);
}

static int
teardown(void **state)
{
    return fixture_teardown(state);
}

/* ------------------------------------------------------------- builders */

/* Appends areas A0..A(n-1) to the log in one txn, one change each. */
static void
append_n(obsdb_t *db, unsigned from, unsigned n)
{
    obsdb_txn_t *txn = begin(db, true);
    for (unsigned i = from; i < from + n; i++) {
        char area[16];
        (void)snprintf(area, sizeof(area), "A%u", i);
        obs_t o;
        make_obs(&o, &(row_t){.area = area, .value = "1", .ms = 1000 + i});
        assert_ok(obsdb_log_append(txn, &o));
        obs_fini(&o);
    }
    commit(txn);
}

static void
bounds(obsdb_t *db, uint64_t *first, uint64_t *last)
{
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_log_bounds(txn, first, last));
    obsdb_abort(&txn);
}

static void
assert_bounds(obsdb_t *db, uint64_t want_first, uint64_t want_last)
{
    uint64_t first = 99, last = 99;
    bounds(db, &first, &last);
    assert_int_equal(first, want_first);
    assert_int_equal(last, want_last);
}

static size_t
trim(obsdb_t *db, uint64_t keep, size_t max_delete)
{
    size_t deleted = 99;
    obsdb_txn_t *txn = begin(db, true);
    assert_ok(obsdb_log_trim(txn, keep, max_delete, &deleted));
    commit(txn);
    return deleted;
}
static int
log_walk(obsdb_t *db, uint64_t after, size_t max_e, size_t max_b, seen_t *s,
         uint64_t *last_seen)
{
    obsdb_txn_t *txn = begin(db, false);
    int rc = obsdb_log_walk(txn, after, max_e, max_b, seen_cb, s, last_seen);
    obsdb_abort(&txn);
    return rc;
}

/* --------------------------------------------------------------- hub log */

static void
test_log_append_assigns_1_2_3(void **state)
{
    fixture_t *f = *state;
    obsdb_txn_t *txn = begin(f->db, true);
    for (uint64_t want = 1; want <= 3; want++) {
        obs_t o;
        make_obs(&o, &(row_t){.area = "COL", .value = "1", .ms = want});
        o.ver.hub_seq = 777; /* whatever came in is overwritten */
        assert_ok(obsdb_log_append(txn, &o));
        assert_int_equal(o.ver.hub_seq, want);
        obs_fini(&o);
    }
    commit(txn);
    append_n(f->db, 0, 1); /* the next txn goes on from the meta value */
    assert_bounds(f->db, 1, 4);
}

static void
test_log_last_is_kept_in_meta(void **state)
{
    fixture_t *f = *state;
    uint64_t v = 0;
    append_n(f->db, 0, 3);
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_meta_get_u64(txn, "log.last", &v));
    obsdb_abort(&txn);
    assert_int_equal(v, 3);
}

static void
test_log_bounds_on_new_log(void **state)
{
    fixture_t *f = *state;
    assert_bounds(f->db, 1, 0);
}

static void
test_log_bounds_see_own_pending_appends(void **state)
{
    fixture_t *f = *state;
    uint64_t first = 0, last = 0;
    obs_t o;
    make_obs(&o, &(row_t){.area = "COL", .value = "1", .ms = 1});
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_log_append(txn, &o));
    assert_ok(obsdb_log_bounds(txn, &first, &last));
    obsdb_abort(&txn);
    obs_fini(&o);
    assert_int_equal(first, 1);
    assert_int_equal(last, 1);
    assert_bounds(f->db, 1, 0); /* aborted: nothing assigned */
}

static void
test_log_bounds_filled_then_trimmed(void **state)
{
    fixture_t *f = *state;
    append_n(f->db, 0, 5);
    assert_bounds(f->db, 1, 5);
    assert_int_equal(trim(f->db, 2, 0), 3);
    assert_bounds(f->db, 4, 5);
    assert_int_equal(trim(f->db, 0, 0), 2);
    assert_bounds(f->db, 6, 5); /* empty: first = last + 1 */
}

static void
test_log_walk_stops_after_max_entries(void **state)
{
    fixture_t *f = *state;
    seen_t s = {0};
    uint64_t last_seen = 0;
    append_n(f->db, 0, 5);
    assert_ok(log_walk(f->db, 1, 2, 0, &s, &last_seen));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.seqs[0], 2);
    assert_int_equal(s.seqs[1], 3);
    assert_string_equal(s.areas[0], "A1");
    assert_int_equal(last_seen, 3);
}

static void
test_log_walk_stops_once_bytes_reach_max(void **state)
{
    fixture_t *f = *state;
    seen_t all = {0}, s = {0};
    uint64_t last_seen = 0;
    append_n(f->db, 0, 5);
    assert_ok(log_walk(f->db, 0, 0, 0, &all, &last_seen));
    assert_int_equal(all.n, 5);
    assert_int_equal(last_seen, 5);
    /* One byte over the first two records: the third crosses, stops. */
    size_t max = all.rlens[0] + all.rlens[1] + 1;
    assert_ok(log_walk(f->db, 0, 0, max, &s, &last_seen));
    assert_int_equal(s.n, 3);
    assert_int_equal(last_seen, 3);
    /* Exactly two records' worth stops right after the second. */
    memset(&s, 0, sizeof(s));
    assert_ok(log_walk(f->db, 0, 0, max - 1, &s, &last_seen));
    assert_int_equal(s.n, 2);
    /* A budget below one record still makes progress. */
    memset(&s, 0, sizeof(s));
    assert_ok(log_walk(f->db, 4, 0, 1, &s, &last_seen));
    assert_int_equal(s.n, 1);
    assert_int_equal(last_seen, 5);
}

/* Checks the pointers are into one stored value (be16 klen | key | rec)
 * and keeps a copy of the record. */
typedef struct {
    uint8_t rec[1024];
    size_t rlen;
} copy_t;

static int
contiguous_cb(uint64_t hub_seq, const uint8_t *key, size_t klen,
              const uint8_t *rec, size_t rlen, void *arg)
{
    copy_t *c = arg;
    (void)hub_seq;
    assert_ptr_equal(rec, key + klen);
    assert_int_equal(((size_t)key[-2] << 8) | key[-1], klen);
    assert_true(rlen <= sizeof(c->rec));
    memcpy(c->rec, rec, rlen);
    c->rlen = rlen;
    return 0;
}

static void
test_log_walk_is_zero_copy_and_decodes_back(void **state)
{
    fixture_t *f = *state;
    obs_t o, back;
    copy_t c = {.rlen = 0};
    uint64_t last_seen = 0;
    uint8_t *enc = NULL;
    size_t elen = 0;
    make_obs(&o, &(row_t){.area = "COL",
                          .period = "2020-Q3",
                          .value = "2.5",
                          .ms = 4242,
                          .origin = OTHER,
                          .seq = 9});
    assert_ok(obs_set_attr(&o, "OBS_STATUS", "E"));
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_log_append(txn, &o));
    commit(txn);

    txn = begin(f->db, false);
    assert_ok(obsdb_log_walk(txn, 0, 0, 0, contiguous_cb, &c, &last_seen));
    obsdb_abort(&txn);
    assert_int_equal(last_seen, 1);

    /* The record is exactly the encoding of o with hub_seq set. */
    assert_int_equal(o.ver.hub_seq, 1);
    assert_ok(codec_obs_encode(&o, &enc, &elen));
    assert_int_equal(c.rlen, elen);
    assert_memory_equal(c.rec, enc, elen);
    obs_init(&back);
    assert_ok(codec_obs_decode(c.rec, c.rlen, &back));
    assert_int_equal(back.ver.hub_seq, 1);
    assert_int_equal(back.ver.origin_seq, 9);
    assert_string_equal(back.value, "2.5");
    assert_string_equal(back.time_period, "2020-Q3");
    assert_string_equal(back.ver.origin, OTHER);
    assert_string_equal(obs_get_attr(&back, "OBS_STATUS"), "E");
    free(enc);
    obs_fini(&back);
    obs_fini(&o);
}

static void
test_log_walk_past_last_sees_nothing(void **state)
{
    fixture_t *f = *state;
    seen_t s = {0};
    uint64_t last_seen = 0;
    append_n(f->db, 0, 3);
    assert_ok(log_walk(f->db, 3, 0, 0, &s, &last_seen));
    assert_int_equal(s.n, 0);
    assert_int_equal(last_seen, 3);
    assert_ok(log_walk(f->db, UINT64_MAX, 0, 0, &s, &last_seen));
    assert_int_equal(last_seen, UINT64_MAX);
}

static void
test_log_walk_callback_stop_is_returned(void **state)
{
    fixture_t *f = *state;
    seen_t s = {.stop_at = 3};
    uint64_t last_seen = 0;
    append_n(f->db, 0, 5);
    assert_rc(log_walk(f->db, 0, 0, 0, &s, &last_seen), 42);
    assert_int_equal(s.n, 2);
    assert_int_equal(last_seen, 2); /* the refused entry is not counted */
}

static void
test_log_trim_keeps_newest_n(void **state)
{
    fixture_t *f = *state;
    seen_t s = {0};
    uint64_t last_seen = 0;
    append_n(f->db, 0, 6);
    assert_int_equal(trim(f->db, 2, 0), 4);
    assert_ok(log_walk(f->db, 0, 0, 0, &s, &last_seen));
    assert_int_equal(s.n, 2);
    assert_int_equal(s.seqs[0], 5);
    assert_int_equal(s.seqs[1], 6);
    assert_int_equal(trim(f->db, 2, 0), 0); /* nothing more to do */
}

static void
test_log_trim_deletes_at_most_max_delete(void **state)
{
    fixture_t *f = *state;
    append_n(f->db, 0, 10);
    assert_int_equal(trim(f->db, 1, 4), 4);
    assert_bounds(f->db, 5, 10);
    assert_int_equal(trim(f->db, 1, 4), 4);
    assert_int_equal(trim(f->db, 1, 4), 1);
    assert_int_equal(trim(f->db, 1, 4), 0);
    assert_bounds(f->db, 10, 10);
}

static void
test_log_seqs_never_reused_after_trim_and_reopen(void **state)
{
    fixture_t *f = *state;
    append_n(f->db, 0, 4);
    assert_int_equal(trim(f->db, 0, 0), 4);
    reopen(f, HUB, true);
    assert_bounds(f->db, 5, 4);
    append_n(f->db, 4, 1);
    assert_bounds(f->db, 5, 5);
    seen_t s = {0};
    uint64_t last_seen = 0;
    assert_ok(log_walk(f->db, 0, 0, 0, &s, &last_seen));
    assert_int_equal(s.n, 1);
    assert_int_equal(s.seqs[0], 5);
    assert_string_equal(s.areas[0], "A4");
}

static void
test_log_append_in_read_txn_fails_sticky(void **state)
{
    fixture_t *f = *state;
    obs_t o;
    uint64_t first, last;
    make_obs(&o, &(row_t){.area = "COL", .value = "1", .ms = 1});
    obsdb_txn_t *txn = begin(f->db, false);
    assert_rc(obsdb_log_append(txn, &o), OBS_EINVAL);
    assert_rc(obsdb_log_bounds(txn, &first, &last), OBS_EINVAL);
    obsdb_abort(&txn);
    assert_int_equal(o.ver.hub_seq, 0);
    obs_fini(&o);
}

/* The caller's key is what the log keeps (seen_cb checks it is obs's own);
 * an empty or oversized one fails the transaction. */
static void
test_log_append_key_stores_given_key(void **state)
{
    fixture_t *f = *state;
    seen_t s = {.n = 0};
    uint64_t last_seen = 0;
    uint8_t key[OBS_KEY_MAX + 1];
    obs_t o;
    make_obs(&o, &(row_t){.area = "JAM", .value = "3", .ms = 7});
    int klen = obs_key_encode(&o, key, sizeof(key));
    assert_true(klen > 0);
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_log_append_key(txn, &o, key, (size_t)klen));
    assert_int_equal(o.ver.hub_seq, 1);
    commit(txn);
    assert_ok(log_walk(f->db, 0, 0, 0, &s, &last_seen));
    assert_int_equal(s.n, 1);
    assert_string_equal(s.areas[0], "JAM");

    txn = begin(f->db, true);
    assert_rc(obsdb_log_append_key(txn, &o, key, 0), OBS_EINVAL);
    assert_rc(obsdb_commit(&txn), OBS_EINVAL);
    txn = begin(f->db, true);
    assert_rc(obsdb_log_append_key(txn, &o, key, OBS_KEY_MAX + 1), OBS_EINVAL);
    assert_rc(obsdb_commit(&txn), OBS_EINVAL);
    obs_fini(&o);
    assert_bounds(f->db, 1, 1);
}

/* Raw copy of one log entry's key and record. */
typedef struct {
    uint8_t key[OBS_KEY_MAX], rec[1024];
    size_t klen, rlen;
} raw_entry_t;

static int
entry_cb(uint64_t hub_seq, const uint8_t *key, size_t klen, const uint8_t *rec,
         size_t rlen, void *arg)
{
    raw_entry_t *e = &((raw_entry_t *)arg)[hub_seq - 1];
    assert_true(klen <= sizeof(e->key) && rlen <= sizeof(e->rec));
    memcpy(e->key, key, klen);
    memcpy(e->rec, rec, rlen);
    e->klen = klen;
    e->rlen = rlen;
    return 0;
}

/* An obs appended as its body and version (the hub's checks ahead) is
 * logged as the same bytes as the obs appended whole; errors as for the
 * key variant. */
static void
test_log_append_body_same_bytes(void **state)
{
    fixture_t *f = *state;
    uint8_t key[OBS_KEY_MAX + 1];
    obs_t o;
    make_obs(&o, &(row_t){.area = "JAM", .value = "3", .ms = 7});
    int klen = obs_key_encode(&o, key, sizeof(key));
    assert_true(klen > 0);
    uint8_t *body = NULL;
    size_t blen = 0;
    assert_ok(codec_obs_encode_body(&o, 0, &body, &blen));
    obs_version_t ver = o.ver;
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_log_append_key(txn, &o, key, (size_t)klen));
    assert_ok(obsdb_log_append_body(txn, key, (size_t)klen, body, blen, &ver));
    assert_int_equal(ver.hub_seq, 2);
    commit(txn);

    raw_entry_t e[2];
    uint64_t last = 0;
    txn = begin(f->db, false);
    assert_ok(obsdb_log_walk(txn, 0, 0, 0, entry_cb, e, &last));
    obsdb_abort(&txn);
    assert_int_equal(last, 2);
    assert_int_equal(e[1].klen, (size_t)klen);
    assert_memory_equal(e[1].key, key, (size_t)klen);
    o.ver.hub_seq = 2; /* the first was logged as 1 */
    uint8_t *want = NULL;
    size_t wlen = 0;
    assert_ok(codec_obs_encode(&o, &want, &wlen));
    assert_int_equal(e[1].rlen, wlen);
    assert_memory_equal(e[1].rec, want, wlen);
    free(want);

    txn = begin(f->db, true);
    assert_rc(obsdb_log_append_body(txn, key, 0, body, blen, &ver), OBS_EINVAL);
    assert_rc(obsdb_commit(&txn), OBS_EINVAL);
    assert_int_equal(ver.hub_seq, 2); /* untouched by the failed append */
    free(body);
    obs_fini(&o);
    assert_bounds(f->db, 1, 2);
}

static void
test_log_append_bad_key_fails_commit(void **state)
{
    fixture_t *f = *state;
    obs_t good, bad;
    make_obs(&good, &(row_t){.area = "COL", .value = "1", .ms = 1});
    make_obs(&bad, &(row_t){.area = "MEX", .value = "1", .period = "20x9"});
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_log_append(txn, &good));
    assert_rc(obsdb_log_append(txn, &bad), OBS_EINVAL);
    assert_rc(obsdb_commit(&txn), OBS_EINVAL);
    obs_fini(&good);
    obs_fini(&bad);
    assert_bounds(f->db, 1, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_log_append_assigns_1_2_3),
        T(test_log_last_is_kept_in_meta),
        T(test_log_bounds_on_new_log),
        T(test_log_bounds_see_own_pending_appends),
        T(test_log_bounds_filled_then_trimmed),
        T(test_log_walk_stops_after_max_entries),
        T(test_log_walk_stops_once_bytes_reach_max),
        T(test_log_walk_is_zero_copy_and_decodes_back),
        T(test_log_walk_past_last_sees_nothing),
        T(test_log_walk_callback_stop_is_returned),
        T(test_log_trim_keeps_newest_n),
        T(test_log_trim_deletes_at_most_max_delete),
        T(test_log_seqs_never_reused_after_trim_and_reopen),
        T(test_log_append_in_read_txn_fails_sticky),
        T(test_log_append_key_stores_given_key),
        T(test_log_append_body_same_bytes),
        T(test_log_append_bad_key_fails_commit),
    };
    return cmocka_run_group_tests_name("obsdb_log", tests, NULL, NULL);
}
