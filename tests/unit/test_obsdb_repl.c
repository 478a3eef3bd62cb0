/*
 * test_obsdb_repl.c - unit tests for obsdb's replication tables: the hub log
 * (append numbering, bounds, zero-copy walks with entry and byte limits,
 * trims that never reuse numbers), the origins table, the raw state walk for
 * snapshots, put_replicated's deterministic version rule, and the no_outbox
 * option. Real LMDB files in a mkdtemp directory removed after each test.
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

/* NODE, OTHER, DF, NDIMS, fixture_t, row_t, make_obs, begin, commit:
 * test_obsdb_support.h */
#define HUB   "hub"
#define EPOCH "0123456789abcdef0123456789abcdef"

static int
open_db(fixture_t *f, const char *node, bool no_outbox)
{
    char err[256] = "";
    int rc = fixture_open(f, node, 0, 0, no_outbox, err, sizeof(err));
    if (rc != 0)
        print_error("obsdb_open: %s: %s\n", obs_strerror(rc), err);
    return rc;
}

static void
reopen(fixture_t *f, const char *node, bool no_outbox)
{
    obsdb_close(&f->db);
    assert_ok(open_db(f, node, no_outbox));
}

/* A new store for another node id (a store keeps its first node id). */
static void
fresh(fixture_t *f, const char *node, bool no_outbox)
{
    obsdb_close(&f->db);
    test_rm_tree(f->dir);
    assert_ok(open_db(f, node, no_outbox));
}

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

/* Records what a raw walk saw: hub_seqs, areas decoded from the record,
 * byte counts, and whether key and record were one contiguous map value. */
typedef struct {
    uint64_t seqs[64];
    char areas[64][16];
    size_t rlens[64];
    size_t n;
    bool tomb[64];
    int stop_at; /* return 42 on the stop_at'th call (1-based); 0 = never */
} seen_t;

static int
seen_cb(uint64_t hub_seq, const uint8_t *key, size_t klen, const uint8_t *rec,
        size_t rlen, void *arg)
{
    seen_t *s = arg;
    obs_t o;
    uint8_t want[OBS_KEY_MAX + 1];

    assert_true(s->n < 64);
    if (s->stop_at != 0 && (int)s->n + 1 == s->stop_at)
        return 42;
    obs_init(&o);
    assert_ok(codec_obs_decode(rec, rlen, &o));
    int wlen = obs_key_encode(&o, want, sizeof(want));
    assert_true(wlen > 0);
    assert_memory_equal(key, want, klen);
    assert_int_equal(klen, (size_t)wlen);
    assert_int_equal(o.ver.hub_seq, hub_seq);
    s->seqs[s->n] = hub_seq;
    (void)snprintf(s->areas[s->n], sizeof(s->areas[0]), "%s", o.dims[1]);
    s->rlens[s->n] = rlen;
    s->tomb[s->n] = o.ver.tombstone;
    s->n++;
    obs_fini(&o);
    return 0;
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
