/*
 * test_obsdb_support.h - what the obsdb unit tests (test_obsdb.c,
 * test_obsdb_repl.c) share: a scratch store per test (fixture_t, its setup
 * and teardown), a row_t that names one observation of a 3-dimension
 * dataflow and its version, make_obs() to build it, and begin()/commit()
 * for one-line transactions. Header-only and static, for cmocka tests only
 * (it asserts); include it after test_support.h.
 */
#ifndef OBSYNC_TEST_OBSDB_SUPPORT_H
#define OBSYNC_TEST_OBSDB_SUPPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "hlc.h"
#include "obs.h"
#include "obs_err.h"
#include "obsdb.h"
#include "test_support.h"

#define NODE  "node-col"
#define OTHER "node-mex"
#define DF    "OID:DF_T(1.0)"
#define NDIMS 3

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

/* Group-less cmocka setup: *state = a fixture with a fresh directory made
 * from tmpl ("/tmp/obsync-x-XXXXXX") and node's store open in it, default
 * sizes. Prints obsdb_open's error; returns 0, -1 or its code. */
static inline int
fixture_setup(void **state, const char *tmpl, const char *node, bool no_outbox)
{
    char err[256] = "";
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_mkdtemp(f->dir, sizeof(f->dir), tmpl) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    int rc = fixture_open(f, node, 0, 0, no_outbox, err, sizeof(err));
    if (rc != 0)
        print_error("obsdb_open: %s: %s\n", obs_strerror(rc), err);
    return rc;
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

#endif /* OBSYNC_TEST_OBSDB_SUPPORT_H */
