/*
 * test_obsdb_support.h - what the obsdb unit tests share. For all of them
 * (test_obsdb*.c): the names they use (NODE, OTHER, HUB, DF, NDIMS, EPOCH),
 * a scratch store per test (fixture_t, its setup and teardown, reopen() and
 * fresh()) and begin()/commit() for one-line transactions. Then, unless the
 * includer defines TEST_OBSDB_FIXTURE_ONLY first (test_obsdb_history.c,
 * which builds versions of its own), the builders and recorders: a row_t
 * that names one observation of a 3-dimension dataflow and its version,
 * make_obs() to build it, put_rows()/put_row() to store rows and
 * get_stats() to count them; a collect_t that scans and walks of whole
 * observations fill (collect_cb, collect_raw_cb, scan(), assert_items());
 * a seen_t that raw walks of keys and records fill (seen_cb).
 * Header-only and static, for cmocka tests only (it asserts); include it
 * after test_support.h.
 */
#ifndef OBSYNC_TEST_OBSDB_SUPPORT_H
#define OBSYNC_TEST_OBSDB_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "hlc.h"
#include "obs.h"
#include "obs_err.h"
#include "obs_key.h"
#include "obsdb.h"
#include "test_support.h"

#define NODE  "node-col"
#define OTHER "node-mex"
#define HUB   "hub"
#define DF    "OID:DF_T(1.0)"
#define NDIMS 3
#define EPOCH "0123456789abcdef0123456789abcdef"

/* ------------------------------------------------------------- fixture */

/* One scratch store: its directory (removed at teardown) and the store. */
typedef struct {
    char dir[64];
    obsdb_t *db;
} fixture_t;

/* Opens f->dir as node's store (sizes 0 = obsdb's defaults; synced
 * commits off). Returns obsdb_open's code; err gets its detail. */
static inline int
fixture_open(fixture_t *f, const char *node, uint64_t map_size,
             uint64_t map_max, bool no_outbox, char *err, size_t errcap)
{
    obsdb_opts_t o = {.dir = f->dir,
                      .node_id = node,
                      .map_size = map_size,
                      .map_max = map_max,
                      .no_sync = true,
                      .no_outbox = no_outbox};
    return obsdb_open(&o, &f->db, err, errcap);
}

/* fixture_open with obsdb's default sizes that prints obsdb_open's error.
 * Returns its code. */
static inline int
fixture_open_default(fixture_t *f, const char *node, bool no_outbox)
{
    char err[256] = "";
    int rc = fixture_open(f, node, 0, 0, no_outbox, err, sizeof(err));
    if (rc != 0)
        print_error("obsdb_open: %s: %s\n", obs_strerror(rc), err);
    return rc;
}

/* Group-less cmocka setup: *state = a fixture with a fresh directory made
 * from tmpl ("/tmp/obsync-x-XXXXXX") and node's store open in it, default
 * sizes. Prints obsdb_open's error; returns 0, -1 or its code. */
static inline int
fixture_setup(void **state, const char *tmpl, const char *node, bool no_outbox)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_mkdtemp(f->dir, sizeof(f->dir), tmpl) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return fixture_open_default(f, node, no_outbox);
}

/* cmocka teardown for fixture_setup: closes the store, removes the
 * directory. */
static inline int
fixture_teardown(void **state)
{
    fixture_t *f = *state;
    obsdb_close(&f->db);
    test_rm_tree(f->dir);
    free(f);
    return 0;
}

/* Closes f's store and opens it again as node's, default sizes. */
static inline void
reopen(fixture_t *f, const char *node, bool no_outbox)
{
    obsdb_close(&f->db);
    assert_ok(fixture_open_default(f, node, no_outbox));
}

/* A new store for another node id (a store keeps its first node id). */
static inline void
fresh(fixture_t *f, const char *node, bool no_outbox)
{
    obsdb_close(&f->db);
    test_rm_tree(f->dir);
    assert_ok(fixture_open_default(f, node, no_outbox));
}

static inline obsdb_txn_t *
begin(obsdb_t *db, bool write)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, write, &txn));
    return txn;
}

static inline void
commit(obsdb_txn_t *txn)
{
    assert_ok(obsdb_commit(&txn));
}

#ifndef TEST_OBSDB_FIXTURE_ONLY

/* ------------------------------------------------------------ builders */

/* One observation (A, area, IND1) of df for period, and its version. */
typedef struct {
    const char *df; /* NULL = DF */
    const char *area;
    const char *period; /* NULL = "2019" */
    const char *value;
    uint64_t ms;        /* hlc = HLC_MAKE(ms, 0) */
    const char *origin; /* NULL = NODE */
    uint64_t seq;
    bool tombstone;
} row_t;

/* Builds r into o (initialised here; the caller finalises it). */
static inline void
make_obs(obs_t *o, const row_t *r)
{
    const char *dims[NDIMS] = {"A", r->area, "IND1"};
    obs_init(o);
    assert_ok(obs_set_identity(o, r->df ? r->df : DF, dims, NDIMS,
                               r->period ? r->period : "2019"));
    assert_ok(obs_set_value(o, r->tombstone ? "" : r->value));
    o->ver.hlc = HLC_MAKE(r->ms, 0);
    (void)snprintf(o->ver.origin, sizeof(o->ver.origin), "%s",
                   r->origin ? r->origin : NODE);
    o->ver.origin_seq = r->seq;
    o->ver.tombstone = r->tombstone;
    o->ver.action = r->tombstone ? OBS_ACTION_DELETE : OBS_ACTION_MERGE;
}

/* Puts rows[0..n) in one write txn, as local writes (obsdb_put). */
static inline void
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

static inline void
put_row(obsdb_t *db, row_t r)
{
    put_rows(db, &r, 1);
}

/* obsdb_stats in a read txn of its own. */
static inline void
get_stats(obsdb_t *db, obsdb_stats_t *st)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, false, &txn));
    assert_ok(obsdb_stats(txn, st));
    obsdb_abort(&txn);
}

/* ------------------------------------------------------------ recorders */

/* Collects "AREA/PERIOD=VALUE" (or "AREA/PERIOD=X" for a tombstone). */
typedef struct {
    char items[32][64];
    size_t n;
    int stop_after; /* 0 = never */
} collect_t;

static inline int
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
static inline int
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

static inline void
assert_items(const collect_t *c, const char *const *want, size_t n)
{
    for (size_t i = 0; i < c->n && i < n; i++)
        assert_string_equal(c->items[i], want[i]);
    assert_int_equal(c->n, n);
}

/* A scan of every dataflow and period. */
static inline obsdb_scan_t
scan_all(void)
{
    obsdb_scan_t q = {.start_day = INT32_MIN, .end_day = INT32_MAX};
    return q;
}

/* Runs q in a read txn of its own into c (emptied first). */
static inline void
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

static inline int
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

#endif /* TEST_OBSDB_FIXTURE_ONLY */

#endif /* OBSYNC_TEST_OBSDB_SUPPORT_H */
