/*
 * test_obsdb_repl.c - unit tests for the rest of obsdb's replication
 * tables (the hub log is test_obsdb_log.c's): the origins table, the raw
 * state walk for snapshots, put_replicated's deterministic version rule,
 * and the no_outbox option. Real LMDB files in a mkdtemp directory removed
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
#include "test_obsdb_support.h"
#include "test_support.h"

/* NODE, OTHER, HUB, EPOCH, fixture_t, row_t, make_obs, begin, commit,
 * reopen, fresh, seen_t, seen_cb: test_obsdb_support.h */

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

/* --------------------------------------------------------------- origins */

typedef struct {
    char lines[8][160];
    size_t n;
} origins_t;

static int
origin_cb(const char *origin, const char *epoch, uint64_t last_seq, void *arg)
{
    origins_t *o = arg;
    assert_true(o->n < 8);
    (void)snprintf(o->lines[o->n++], sizeof(o->lines[0]), "%s %s %llu", origin,
                   epoch, (unsigned long long)last_seq);
    return 0;
}

static void
test_origins_put_get_walk_survive_reopen(void **state)
{
    fixture_t *f = *state;
    char epoch[64];
    uint64_t seq = 0;
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_origin_put(txn, OTHER, "e2", 7, 0));
    assert_ok(obsdb_origin_put(txn, NODE, EPOCH, 3, 0x30000));
    assert_ok(obsdb_origin_put(txn, NODE, EPOCH, 12, 0x120005)); /* replaces */
    commit(txn);
    reopen(f, HUB, true);

    txn = begin(f->db, false);
    uint64_t hlc = 0;
    assert_ok(obsdb_origin_get(txn, NODE, epoch, sizeof(epoch), &seq, &hlc));
    assert_string_equal(epoch, EPOCH);
    assert_int_equal(seq, 12);
    assert_int_equal(hlc, 0x120005); /* the hlc of change 12, kept */
    assert_ok(obsdb_origin_get(txn, OTHER, epoch, sizeof(epoch), &seq, &hlc));
    assert_string_equal(epoch, "e2");
    assert_int_equal(hlc, 0);
    origins_t all = {0};
    assert_ok(obsdb_origin_walk(txn, origin_cb, &all));
    obsdb_abort(&txn);
    assert_int_equal(all.n, 2);
    assert_string_equal(all.lines[0], NODE " " EPOCH " 12");
    assert_string_equal(all.lines[1], OTHER " e2 7");
}

static void
test_origin_get_unknown_is_enoent(void **state)
{
    fixture_t *f = *state;
    char epoch[64];
    uint64_t seq;
    obsdb_txn_t *txn = begin(f->db, false);
    assert_rc(obsdb_origin_get(txn, "nobody", epoch, sizeof(epoch), &seq, NULL),
              OBS_ENOENT);
    obsdb_abort(&txn);
}

static void
test_origin_get_small_buffer_is_etoobig(void **state)
{
    fixture_t *f = *state;
    char epoch[8];
    uint64_t seq;
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_origin_put(txn, NODE, EPOCH, 1, 0));
    assert_rc(obsdb_origin_get(txn, NODE, epoch, sizeof(epoch), &seq, NULL),
              OBS_ETOOBIG);
    commit(txn); /* a short buffer is not a failed txn */
}

static void
test_origin_put_refuses_bad_ids(void **state)
{
    fixture_t *f = *state;
    char big[OBS_ID_MAX + 2];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    obsdb_txn_t *txn = begin(f->db, true);
    assert_rc(obsdb_origin_put(txn, "", EPOCH, 1, 0), OBS_EINVAL);
    assert_rc(obsdb_commit(&txn), OBS_EINVAL);
    txn = begin(f->db, true);
    assert_rc(obsdb_origin_put(txn, big, EPOCH, 1, 0), OBS_EINVAL);
    obsdb_abort(&txn);
    txn = begin(f->db, true);
    assert_rc(obsdb_origin_put(txn, NODE, big, 1, 0), OBS_EINVAL);
    obsdb_abort(&txn);
}

/* -------------------------------------------------------- raw state walk */

static void
put_state(obsdb_t *db, const row_t *rows, size_t n)
{
    obsdb_txn_t *txn = begin(db, true);
    for (size_t i = 0; i < n; i++) {
        obs_t o;
        make_obs(&o, &rows[i]);
        assert_ok(obsdb_put(txn, &o));
        obs_fini(&o);
    }
    commit(txn);
}

typedef struct {
    uint8_t key[OBS_KEY_MAX + 1];
    size_t len;
    bool more;
} page_t;

static void
state_page(obsdb_t *db, page_t *p, size_t max_e, size_t max_b, seen_t *s)
{
    obsdb_txn_t *txn = begin(db, false);
    memset(s, 0, sizeof(*s));
    assert_ok(obsdb_state_walk_raw(txn, p->len ? p->key : NULL, p->len, max_e,
                                   max_b, seen_cb, s, p->key, &p->len,
                                   &p->more));
    obsdb_abort(&txn);
}

static void
test_state_walk_raw_pages_with_tombstones(void **state)
{
    fixture_t *f = *state;
    const row_t rows[] = {
        {.area = "ARG", .value = "1", .ms = 1},
        {.area = "BOL", .ms = 2, .tombstone = true},
        {.area = "COL", .value = "3", .ms = 3},
        {.area = "MEX", .value = "4", .ms = 4},
        {.area = "PER", .ms = 5, .tombstone = true},
    };
    put_state(f->db, rows, 5);
    page_t p = {.len = 0};
    seen_t s;
    state_page(f->db, &p, 2, 0, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.areas[0], "ARG");
    assert_string_equal(s.areas[1], "BOL");
    assert_true(s.tomb[1]);
    assert_int_equal(s.seqs[0], 0);
    assert_true(p.more);
    state_page(f->db, &p, 2, 0, &s);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.areas[0], "COL");
    assert_string_equal(s.areas[1], "MEX");
    assert_true(p.more);
    state_page(f->db, &p, 2, 0, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.areas[0], "PER");
    assert_true(s.tomb[0]);
    assert_false(p.more);
}

static void
test_state_walk_raw_stops_on_bytes(void **state)
{
    fixture_t *f = *state;
    const row_t rows[] = {
        {.area = "ARG", .value = "1", .ms = 1},
        {.area = "BOL", .value = "2", .ms = 2},
        {.area = "COL", .value = "3", .ms = 3},
    };
    put_state(f->db, rows, 3);
    page_t p = {.len = 0};
    seen_t s;
    state_page(f->db, &p, 0, 1, &s);
    assert_int_equal(s.n, 1);
    assert_true(p.more);
    page_t all = {.len = 0};
    state_page(f->db, &all, 0, 0, &s);
    assert_int_equal(s.n, 3);
    assert_false(all.more);
}

static void
test_state_walk_raw_refuses_oversized_resume_key(void **state)
{
    fixture_t *f = *state;
    uint8_t big[OBS_KEY_MAX + 1];
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 9;
    bool more = true;
    seen_t s = {0};
    memset(big, 'k', sizeof(big));
    obsdb_txn_t *txn = begin(f->db, false);
    assert_rc(obsdb_state_walk_raw(txn, big, sizeof(big), 0, 0, seen_cb, &s,
                                   last, &last_len, &more),
              OBS_EINVAL);
    obsdb_abort(&txn);
    assert_int_equal(last_len, 0);
    assert_false(more);
}

/* ------------------------------------------------------- put_replicated */

static bool
replicate_in(obsdb_txn_t *txn, const row_t *r)
{
    obs_t o;
    bool applied = false;
    make_obs(&o, r);
    assert_ok(obsdb_put_replicated(txn, &o, &applied));
    obs_fini(&o);
    return applied;
}

static bool
replicate(obsdb_t *db, const row_t *r)
{
    obsdb_txn_t *txn = begin(db, true);
    bool applied = replicate_in(txn, r);
    commit(txn);
    return applied;
}

/* The stored value of area COL, as "VALUE@origin". */
static void
current(obsdb_t *db, char *buf, size_t cap)
{
    obs_t id, out;
    make_obs(&id, &(row_t){.area = "COL", .value = "x"});
    obs_init(&out);
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_get(txn, &id, &out));
    obsdb_abort(&txn);
    int n = snprintf(buf, cap, "%s@%s", out.value, out.ver.origin);
    assert_true(n >= 0 && (size_t)n < cap);
    obs_fini(&id);
    obs_fini(&out);
}

static void
test_put_replicated_applies_newer(void **state)
{
    fixture_t *f = *state;
    char cur[64];
    obsdb_stats_t st;
    assert_true(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "1", .ms = 10, .origin = OTHER}));
    assert_true(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "2", .ms = 11, .origin = OTHER}));
    current(f->db, cur, sizeof(cur));
    assert_string_equal(cur, "2@" OTHER);
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    assert_int_equal(st.observations, 1);
    assert_int_equal(st.history, 2);
}

typedef struct {
    size_t n, len;
    uint8_t rec[1024];
} raw_t;

static int
raw_cb(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
       size_t rlen, void *arg)
{
    (void)seq;
    (void)key;
    (void)klen;
    raw_t *r = arg;
    r->n++;
    r->len = rlen;
    assert_true(rlen <= sizeof(r->rec));
    memcpy(r->rec, rec, rlen);
    return 0;
}

/* The raw variant stores the bytes it is given (the node and the hub's
 * state keep a change as it came) and decides like obsdb_put_replicated. */
static void
test_put_replicated_raw_stores_given_bytes(void **state)
{
    fixture_t *f = *state;
    char cur[64];
    obs_t o;
    make_obs(&o,
             &(row_t){.area = "COL", .value = "5", .ms = 30, .origin = OTHER});
    uint8_t *enc = NULL;
    size_t len = 0;
    assert_ok(codec_obs_encode(&o, &enc, &len));
    bool applied = false;
    uint8_t key[OBS_KEY_MAX];
    int klen = obs_key_encode(&o, key, sizeof(key));
    assert_true(klen > 0);
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_put_replicated_raw(txn, key, (size_t)klen, enc, len, &o.ver,
                                       &applied));
    assert_true(applied);
    assert_ok(obsdb_put_replicated_raw(txn, key, (size_t)klen, enc, len, &o.ver,
                                       &applied));
    assert_false(applied); /* the same version again: a no-op */
    commit(txn);
    current(f->db, cur, sizeof(cur));
    assert_string_equal(cur, "5@" OTHER);
    raw_t raw = {0};
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    txn = begin(f->db, false);
    assert_ok(obsdb_state_walk_raw(txn, NULL, 0, 0, 0, raw_cb, &raw, last,
                                   &last_len, &more));
    obsdb_abort(&txn);
    assert_int_equal(raw.n, 1);
    assert_int_equal(raw.len, len);
    assert_memory_equal(raw.rec, enc, len);
    free(enc);
    obs_fini(&o);
}

/* A key that sorts after the table's last is new without a lookup; every
 * other key is looked up: keys in order, then one in the middle, the last
 * one again, one past it, within one transaction and in the next (which
 * reads the table's last key), all decide as a lookup would. */
static void
test_put_replicated_keys_in_order_and_not(void **state)
{
    fixture_t *f = *state;
    obsdb_stats_t st;
    obsdb_txn_t *txn = begin(f->db, true);
    const char *areas[] = {"ARG", "BRA", "COL", "MEX"};
    for (size_t i = 0; i < 4; i++)
        assert_true(replicate_in(txn, &(row_t){.area = areas[i],
                                               .value = "1",
                                               .ms = 10,
                                               .origin = OTHER}));
    assert_int_equal(obsdb_txn_lookups(txn), 0); /* all sorted last */
    /* the middle and the last key, older then newer versions */
    assert_false(replicate_in(
        txn, &(row_t){.area = "BRA", .value = "0", .ms = 9, .origin = OTHER}));
    assert_true(replicate_in(
        txn, &(row_t){.area = "BRA", .value = "2", .ms = 11, .origin = OTHER}));
    assert_false(replicate_in(
        txn, &(row_t){.area = "MEX", .value = "0", .ms = 9, .origin = OTHER}));
    assert_true(replicate_in(
        txn, &(row_t){.area = "MEX", .value = "2", .ms = 11, .origin = OTHER}));
    assert_true(replicate_in(
        txn, &(row_t){.area = "PER", .value = "1", .ms = 10, .origin = OTHER}));
    assert_int_equal(obsdb_txn_lookups(txn), 4);
    commit(txn);
    txn = begin(f->db, true); /* reads the last key, PER, from the table */
    assert_false(replicate_in(
        txn, &(row_t){.area = "PER", .value = "0", .ms = 9, .origin = OTHER}));
    assert_true(replicate_in(
        txn, &(row_t){.area = "PER", .value = "2", .ms = 12, .origin = OTHER}));
    assert_true(replicate_in(
        txn, &(row_t){.area = "CHL", .value = "1", .ms = 10, .origin = OTHER}));
    assert_true(replicate_in(
        txn, &(row_t){.area = "URY", .value = "1", .ms = 10, .origin = OTHER}));
    assert_int_equal(obsdb_txn_lookups(txn), 3); /* PER twice, CHL */
    commit(txn);
    txn = begin(f->db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    assert_int_equal(st.observations, 7); /* ARG BRA CHL COL MEX PER URY */
    /* BRA, MEX, PER revised, and their older versions that came late are
     * kept in history too */
    assert_int_equal(st.history, 7 + 3 + 3);
    char cur[64];
    current(f->db, cur, sizeof(cur));
    assert_string_equal(cur, "1@" OTHER);
}

static void
test_put_replicated_ignores_older(void **state)
{
    fixture_t *f = *state;
    char cur[64];
    assert_true(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "new", .ms = 20, .origin = OTHER}));
    assert_false(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "old", .ms = 19, .origin = "zzz"}));
    current(f->db, cur, sizeof(cur));
    assert_string_equal(cur, "new@" OTHER);
}

static void
test_put_replicated_ignores_same_version(void **state)
{
    fixture_t *f = *state;
    char cur[64];
    obsdb_stats_t st;
    assert_true(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "1", .ms = 20, .origin = OTHER}));
    assert_false(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "again", .ms = 20, .origin = OTHER}));
    current(f->db, cur, sizeof(cur));
    assert_string_equal(cur, "1@" OTHER);
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    assert_int_equal(st.history, 1);
}

static void
test_put_replicated_equal_hlc_greater_origin_wins(void **state)
{
    fixture_t *f = *state;
    char cur[64];
    /* NODE "node-col" < OTHER "node-mex" */
    assert_true(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "c", .ms = 30, .origin = NODE}));
    assert_true(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "m", .ms = 30, .origin = OTHER}));
    assert_false(replicate(
        f->db,
        &(row_t){.area = "COL", .value = "c2", .ms = 30, .origin = NODE}));
    current(f->db, cur, sizeof(cur));
    assert_string_equal(cur, "m@" OTHER);
}

static void
test_put_replicated_never_writes_outbox(void **state)
{
    fixture_t *f = *state;
    uint64_t last = 99;
    fresh(f, NODE, false);
    /* Even the node's own change, echoed back by the hub. */
    assert_true(replicate(
        f->db,
        &(row_t){
            .area = "COL", .value = "1", .ms = 5, .origin = NODE, .seq = 3}));
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_outbox_last(txn, &last));
    obsdb_abort(&txn);
    assert_int_equal(last, 0);
}

static void
test_version_cmp_orders_hlc_then_origin(void **state)
{
    (void)state;
    obs_version_t a = {.hlc = 5, .origin = "b"};
    obs_version_t b = {.hlc = 6, .origin = "a"};
    obs_version_t c = {.hlc = 5, .origin = "c"};
    obs_version_t d = {.hlc = 5, .origin = "b", .origin_seq = 9};
    assert_true(version_cmp(&a, &b) < 0);
    assert_true(version_cmp(&b, &a) > 0);
    assert_true(version_cmp(&a, &c) < 0);
    assert_true(version_cmp(&c, &a) > 0);
    assert_int_equal(version_cmp(&a, &d), 0);
}

/* ------------------------------------------------------ outbox options */

static uint64_t
outbox_last(obsdb_t *db)
{
    uint64_t last = 99;
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_outbox_last(txn, &last));
    obsdb_abort(&txn);
    return last;
}

static void
test_no_outbox_keeps_hub_writes_out_of_outbox(void **state)
{
    fixture_t *f = *state;
    obsdb_stats_t st;
    const row_t row = {
        .area = "COL", .value = "1", .ms = 1, .origin = HUB, .seq = 1};
    put_state(f->db, &row, 1);
    assert_int_equal(outbox_last(f->db), 0);
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    assert_int_equal(st.outbox, 0);
    assert_int_equal(st.observations, 1);
}

static void
test_outbox_last_is_highest_origin_seq(void **state)
{
    fixture_t *f = *state;
    fresh(f, NODE, false);
    assert_int_equal(outbox_last(f->db), 0);
    const row_t rows[] = {
        {.area = "COL", .value = "1", .ms = 1, .seq = 4},
        {.area = "MEX", .value = "1", .ms = 2, .seq = 7},
        {.area = "PER", .value = "1", .ms = 3, .seq = 5},
    };
    put_state(f->db, rows, 3);
    assert_int_equal(outbox_last(f->db), 7);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_origins_put_get_walk_survive_reopen),
        T(test_origin_get_unknown_is_enoent),
        T(test_origin_get_small_buffer_is_etoobig),
        T(test_origin_put_refuses_bad_ids),
        T(test_state_walk_raw_pages_with_tombstones),
        T(test_state_walk_raw_stops_on_bytes),
        T(test_state_walk_raw_refuses_oversized_resume_key),
        T(test_put_replicated_applies_newer),
        T(test_put_replicated_raw_stores_given_bytes),
        T(test_put_replicated_keys_in_order_and_not),
        T(test_put_replicated_ignores_older),
        T(test_put_replicated_ignores_same_version),
        T(test_put_replicated_equal_hlc_greater_origin_wins),
        T(test_put_replicated_never_writes_outbox),
        T(test_version_cmp_orders_hlc_then_origin),
        T(test_no_outbox_keeps_hub_writes_out_of_outbox),
        T(test_outbox_last_is_highest_origin_seq),
    };
    return cmocka_run_group_tests_name("obsdb_repl", tests, NULL, NULL);
}
