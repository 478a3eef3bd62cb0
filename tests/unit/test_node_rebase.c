/*
 * test_node_rebase.c - unit tests for node_rebase: renumbering a node's
 * unacknowledged outbox after the hub's last origin_seq of ours, and
 * re-stamping the changes stamped past the hub's limit from the hub's
 * clock, both carried into the stored versions (current and history) and
 * into the bases of later changes that named rewritten ones, with the
 * node's counters (pub_acked, origin_seq, hlc); and node_rebase_is_older_copy
 * telling a store restored from an older copy. Local changes are made as
 * the engine makes them (base = the current version they replace). Real
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

#include "codec.h"
#include "hlc.h"
#include "node_rebase.h"
#include "obs_err.h"
#include "obs_key.h"
#include "obsdb.h"
#include "store.h"
#include "test_support.h"

#define NODE  "node-col"
#define OTHER "node-mex"
#define DF    "OID:DF_T(1.0)"
#define NDIMS 3
#define MAXN  64

/* The hub's clock and the bound past which it refuses stamps. */
#define HUB_NOW 400000
#define LIMIT   HLC_MAKE(500000, 0xffff)
#define AHEAD   1000000 /* ms of our fast clock */

typedef struct {
    char dir[64];
    obsdb_t *db;
} fixture_t;

static int
open_db(fixture_t *f, uint64_t map_size, uint64_t map_max)
{
    char err[256] = "";
    obsdb_opts_t o = {.dir = f->dir,
                      .node_id = NODE,
                      .map_size = map_size,
                      .map_max = map_max,
                      .no_sync = true};
    int rc = obsdb_open(&o, &f->db, err, sizeof(err));
    if (rc != 0)
        print_error("obsdb_open: %s: %s\n", obs_strerror(rc), err);
    return rc;
}

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_mkdtemp(f->dir, sizeof(f->dir), "/tmp/obsync-rebase-XXXXXX") !=
        0) {
        free(f);
        return -1;
    }
    *state = f;
    return open_db(f, 0, 0);
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    obsdb_close(&f->db);
    test_rm_tree(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------------- builders */

static void
make_obs(obs_t *o, const char *area, const char *value, uint64_t hlc,
         const char *origin, uint64_t seq)
{
    const char *dims[NDIMS] = {"A", area, "IND1"};
    obs_init(o);
    assert_ok(obs_set_identity(o, DF, dims, NDIMS, "2019"));
    assert_ok(obs_set_value(o, value));
    o->ver.hlc = hlc;
    (void)snprintf(o->ver.origin, sizeof(o->ver.origin), "%s", origin);
    o->ver.origin_seq = seq;
    (void)snprintf(o->ver.provider, sizeof(o->ver.provider), "%s", "COL");
    o->ver.action = OBS_ACTION_MERGE;
    obs_content_hash(o, o->ver.content_hash);
}

static obsdb_txn_t *
begin(obsdb_t *db, bool write)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, write, &txn));
    return txn;
}

static void
commit(obsdb_txn_t *txn)
{
    assert_ok(obsdb_commit(&txn));
}

/* A local change: the observation (A, area, IND1) 2019 = value. */
typedef struct {
    const char *area;
    const char *value;
    uint64_t hlc;
} change_t;

/* Makes changes c[0..n) in one txn as the engine does: origin NODE,
 * origin_seq first_seq, first_seq + 1, ..., base = the current version
 * each one replaces. Stores the node's counters like the engine. */
static void
local_changes(obsdb_t *db, const change_t *c, size_t n, uint64_t first_seq)
{
    obsdb_txn_t *txn = begin(db, true);
    for (size_t i = 0; i < n; i++) {
        obs_t o, cur;
        make_obs(&o, c[i].area, c[i].value, c[i].hlc, NODE, first_seq + i);
        obs_init(&cur);
        int rc = obsdb_get(txn, &o, &cur);
        if (rc == OBS_OK) {
            o.ver.base_hlc = cur.ver.hlc;
            (void)snprintf(o.ver.base_origin, sizeof(o.ver.base_origin), "%s",
                           cur.ver.origin);
            o.ver.base_origin_seq = cur.ver.origin_seq;
        } else {
            assert_rc(rc, OBS_ENOENT);
        }
        assert_ok(obsdb_put(txn, &o));
        obs_fini(&cur);
        obs_fini(&o);
    }
    assert_ok(obsdb_meta_put_u64(txn, "origin_seq", first_seq + n - 1));
    assert_ok(obsdb_meta_put_u64(txn, "hlc", c[n - 1].hlc));
    commit(txn);
}

static void
replicate(obsdb_t *db, const char *area, const char *value, uint64_t hlc,
          const char *origin, uint64_t seq)
{
    obs_t o;
    bool applied = false;
    make_obs(&o, area, value, hlc, origin, seq);
    obsdb_txn_t *txn = begin(db, true);
    assert_ok(obsdb_put_replicated(txn, &o, &applied));
    commit(txn);
    assert_true(applied);
    obs_fini(&o);
}

/* What an outbox walk or a history walk saw. */
typedef struct {
    size_t n;
    uint64_t seq[MAXN]; /* outbox key (0 for history) */
    obs_version_t ver[MAXN];
    char area[MAXN][16];
    char value[MAXN][16];
} seen_t;

static void
seen_add(seen_t *s, uint64_t seq, const obs_t *o)
{
    assert_true(s->n < MAXN);
    s->seq[s->n] = seq;
    s->ver[s->n] = o->ver;
    (void)snprintf(s->area[s->n], sizeof(s->area[0]), "%s", o->dims[1]);
    (void)snprintf(s->value[s->n], sizeof(s->value[0]), "%s", o->value);
    s->n++;
}

static int
outbox_cb(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
          size_t rlen, void *arg)
{
    (void)key;
    (void)klen;
    obs_t o;
    obs_init(&o);
    int rc = codec_obs_decode(rec, rlen, &o);
    uint64_t stored_seq = o.ver.origin_seq;
    if (rc == OBS_OK)
        seen_add(arg, seq, &o);
    obs_fini(&o);
    assert_ok(rc);
    assert_int_equal(stored_seq, seq); /* stored under its number */
    return 0;
}

static void
outbox(obsdb_t *db, seen_t *s)
{
    memset(s, 0, sizeof(*s));
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_outbox_walk_raw(txn, 0, 0, 0, outbox_cb, s));
    obsdb_abort(&txn);
}

static int
history_cb(const obs_t *o, void *arg)
{
    seen_add(arg, 0, o);
    return 0;
}

static void
history(obsdb_t *db, const char *area, seen_t *s)
{
    obs_t id;
    memset(s, 0, sizeof(*s));
    make_obs(&id, area, "", 0, NODE, 0);
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_history(txn, &id, history_cb, s));
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
    make_obs(&id, area, "", 0, NODE, 0);
    obs_init(&cur);
    obsdb_txn_t *txn = begin(db, false);
    int rc = obsdb_get(txn, &id, &cur);
    obsdb_abort(&txn);
    if (rc == OBS_OK)
        seen_add(s, 0, &cur);
    obs_fini(&cur);
    obs_fini(&id);
    assert_ok(rc);
}

static uint64_t
meta(obsdb_t *db, const char *name)
{
    uint64_t v = 0;
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_meta_get_u64(txn, name, &v));
    obsdb_abort(&txn);
    return v;
}

static void
stats(obsdb_t *db, obsdb_stats_t *st)
{
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_stats(txn, st));
    obsdb_abort(&txn);
}

/* The same change (content and key) in a and b. */
static void
assert_same_change(const seen_t *a, size_t i, const seen_t *b, size_t j)
{
    assert_string_equal(a->area[i], b->area[j]);
    assert_string_equal(a->value[i], b->value[j]);
    assert_memory_equal(a->ver[i].content_hash, b->ver[j].content_hash,
                        OBS_HASH_LEN);
    assert_string_equal(a->ver[i].origin, b->ver[j].origin);
}

/* The four changes most tests start from: COL three times (each replacing
 * the one before), MEX once, stamped at ms base_ms + i. */
static void
four_changes(obsdb_t *db, uint64_t base_ms)
{
    const change_t c[] = {
        {"COL", "v1", HLC_MAKE(base_ms + 0, 0)},
        {"MEX", "m1", HLC_MAKE(base_ms + 1, 0)},
        {"COL", "v2", HLC_MAKE(base_ms + 2, 0)},
        {"COL", "v3", HLC_MAKE(base_ms + 3, 0)},
    };
    local_changes(db, c, 4, 1);
}

/* ----------------------------------------------------------- renumbering */

static void
test_renumber_moves_outbox_after_hub_last_seq(void **state)
{
    fixture_t *f = *state;
    four_changes(f->db, 1000);
    seen_t before, after;
    obsdb_stats_t st0, st1;
    outbox(f->db, &before);
    stats(f->db, &st0);
    assert_int_equal(before.n, 4);

    rebase_plan_t plan = {
        .after = 0, .renumber_after = 100, .stamp_limit = UINT64_MAX};
    hlc_t clock = {HLC_MAKE(1003, 0)};
    uint64_t origin_seq = 4;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));

    assert_int_equal(res.rewritten, 4);
    assert_int_equal(res.renumbered, 4);
    assert_int_equal(res.restamped, 0);
    assert_int_equal(res.last_seq, 104);
    assert_int_equal(origin_seq, 104);
    assert_int_equal(clock.last, HLC_MAKE(1003, 0)); /* not ahead: kept */
    assert_int_equal(meta(f->db, "pub_acked"), 100);
    assert_int_equal(meta(f->db, "origin_seq"), 104);
    assert_int_equal(meta(f->db, "hlc"), HLC_MAKE(1003, 0));

    outbox(f->db, &after);
    assert_int_equal(after.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(after.seq[i], 101 + i);
        assert_int_equal(after.ver[i].origin_seq, 101 + i);
        assert_int_equal(after.ver[i].hlc, before.ver[i].hlc);
        assert_same_change(&after, i, &before, i);
    }
    /* the bases that named rewritten changes follow their new numbers */
    assert_int_equal(after.ver[0].base_hlc, 0);
    assert_int_equal(after.ver[2].base_hlc, before.ver[0].hlc);
    assert_int_equal(after.ver[2].base_origin_seq, 101);
    assert_int_equal(after.ver[3].base_hlc, before.ver[2].hlc);
    assert_int_equal(after.ver[3].base_origin_seq, 103);

    /* the stored versions carry the new numbers */
    seen_t cur;
    current(f->db, "MEX", &cur);
    assert_int_equal(cur.ver[0].origin_seq, 102);
    seen_t h;
    history(f->db, "COL", &h);
    assert_int_equal(h.n, 3);
    const uint64_t want_seq[] = {104, 103, 101};
    const char *want_val[] = {"v3", "v2", "v1"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(h.ver[i].origin_seq, want_seq[i]);
        assert_string_equal(h.value[i], want_val[i]);
    }
    assert_int_equal(h.ver[0].base_origin_seq, 103);
    assert_int_equal(h.ver[1].base_origin_seq, 101);
    current(f->db, "COL", &cur);
    assert_int_equal(cur.ver[0].origin_seq, 104);
    assert_string_equal(cur.value[0], "v3");

    stats(f->db, &st1); /* versions replaced, none added or lost */
    assert_int_equal(st1.history, st0.history);
    assert_int_equal(st1.observations, st0.observations);
    assert_int_equal(st1.outbox, 4);
}

static void
test_renumber_raises_origin_seq_not_lowers(void **state)
{
    fixture_t *f = *state;
    four_changes(f->db, 1000);
    rebase_plan_t plan = {
        .after = 0, .renumber_after = 100, .stamp_limit = UINT64_MAX};
    hlc_t clock = {HLC_MAKE(1003, 0)};
    uint64_t origin_seq = 500; /* already past the new numbers */
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.last_seq, 104);
    assert_int_equal(origin_seq, 500);
    assert_int_equal(meta(f->db, "origin_seq"), 500);
}

/* ------------------------------------------------------------ re-stamping */

static void
test_restamp_brings_fast_stamps_back_to_hub_clock(void **state)
{
    fixture_t *f = *state;
    four_changes(f->db, AHEAD);
    seen_t before, after;
    obsdb_stats_t st0, st1;
    outbox(f->db, &before);
    stats(f->db, &st0);

    rebase_plan_t plan = {.after = 0,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW,
                          .floor_hlc = 0};
    hlc_t clock = {HLC_MAKE(AHEAD + 3, 0)};
    uint64_t origin_seq = 4;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.restamped, 4);
    assert_int_equal(res.renumbered, 0);
    assert_int_equal(res.rewritten, 4);
    assert_int_equal(res.last_seq, 4);
    assert_int_equal(origin_seq, 4);

    outbox(f->db, &after);
    assert_int_equal(after.n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(after.seq[i], i + 1); /* numbers kept */
        assert_same_change(&after, i, &before, i);
        assert_true(after.ver[i].hlc >= HLC_MAKE(HUB_NOW, 0));
        assert_true(HLC_MS(after.ver[i].hlc) <= HUB_NOW + 1);
        if (i > 0)
            assert_true(after.ver[i].hlc > after.ver[i - 1].hlc);
    }
    /* bases naming rewritten changes point to their new stamps */
    assert_int_equal(after.ver[2].base_hlc, after.ver[0].hlc);
    assert_int_equal(after.ver[2].base_origin_seq, 1);
    assert_int_equal(after.ver[3].base_hlc, after.ver[2].hlc);
    assert_int_equal(after.ver[3].base_origin_seq, 3);

    /* the store holds the new stamps, the old ones nowhere */
    seen_t cur;
    current(f->db, "COL", &cur);
    assert_int_equal(cur.ver[0].hlc, after.ver[3].hlc);
    assert_int_equal(cur.ver[0].base_hlc, after.ver[2].hlc);
    assert_string_equal(cur.value[0], "v3");
    current(f->db, "MEX", &cur);
    assert_int_equal(cur.ver[0].hlc, after.ver[1].hlc);
    seen_t h;
    history(f->db, "COL", &h);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.ver[0].hlc, after.ver[3].hlc);
    assert_int_equal(h.ver[1].hlc, after.ver[2].hlc);
    assert_int_equal(h.ver[2].hlc, after.ver[0].hlc);
    assert_int_equal(h.ver[1].base_hlc, after.ver[0].hlc);
    for (size_t i = 0; i < h.n; i++)
        assert_true(h.ver[i].hlc < HLC_MAKE(AHEAD, 0));
    stats(f->db, &st1);
    assert_int_equal(st1.history, st0.history);

    /* our clock is back: at the last new stamp, no further */
    assert_int_equal(clock.last, after.ver[3].hlc);
    assert_int_equal(meta(f->db, "hlc"), clock.last);
}

static void
test_restamp_only_from_the_first_change_past_limit(void **state)
{
    fixture_t *f = *state;
    const change_t c[] = {
        {"COL", "v1", HLC_MAKE(450000, 0)}, /* above hub_now, below limit */
        {"MEX", "m1", HLC_MAKE(480000, 0)},
        {"COL", "v2", HLC_MAKE(600000, 0)}, /* past the limit */
        {"MEX", "m2", HLC_MAKE(700000, 0)},
    };
    local_changes(f->db, c, 4, 1);
    rebase_plan_t plan = {.after = 0,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW,
                          .floor_hlc = 0};
    hlc_t clock = {c[3].hlc};
    uint64_t origin_seq = 4;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.restamped, 2);
    assert_int_equal(res.rewritten, 4);

    seen_t after;
    outbox(f->db, &after);
    assert_int_equal(after.n, 4);
    assert_int_equal(after.ver[0].hlc, c[0].hlc); /* kept */
    assert_int_equal(after.ver[1].hlc, c[1].hlc);
    /* the rest re-stamped, still after the kept ones, within the limit */
    assert_true(after.ver[2].hlc > after.ver[1].hlc);
    assert_true(after.ver[3].hlc > after.ver[2].hlc);
    assert_true(after.ver[3].hlc <= LIMIT);
    assert_int_equal(after.ver[2].base_hlc, c[0].hlc); /* base kept */
    assert_int_equal(after.ver[2].base_origin_seq, 1);
    assert_int_equal(after.ver[3].base_hlc, after.ver[1].hlc);

    seen_t cur;
    current(f->db, "COL", &cur);
    assert_int_equal(cur.ver[0].hlc, after.ver[2].hlc);
    assert_int_equal(clock.last, after.ver[3].hlc);
    assert_int_equal(meta(f->db, "hlc"), clock.last);
}

static void
test_restamp_stays_above_other_origins_base(void **state)
{
    fixture_t *f = *state;
    const uint64_t theirs = HLC_MAKE(450000, 5); /* hub_now < it <= limit */
    replicate(f->db, "COL", "theirs", theirs, OTHER, 77);
    const change_t c[] = {
        {"PER", "p1", HLC_MAKE(AHEAD, 0)},
        {"COL", "ours", HLC_MAKE(AHEAD + 1, 0)}, /* replaces theirs */
    };
    local_changes(f->db, c, 2, 1);
    rebase_plan_t plan = {.after = 0,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW,
                          .floor_hlc = 0};
    hlc_t clock = {c[1].hlc};
    uint64_t origin_seq = 2;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.restamped, 2);

    seen_t after;
    outbox(f->db, &after);
    assert_int_equal(after.n, 2);
    assert_true(after.ver[0].hlc < HLC_MAKE(AHEAD, 0));
    assert_int_equal(after.ver[1].base_hlc, theirs);
    assert_string_equal(after.ver[1].base_origin, OTHER);
    assert_int_equal(after.ver[1].base_origin_seq, 77);
    assert_true(after.ver[1].hlc > theirs); /* still beats what it replaced */
    assert_true(after.ver[1].hlc < HLC_MAKE(AHEAD, 0));

    seen_t cur;
    current(f->db, "COL", &cur);
    assert_string_equal(cur.ver[0].origin, NODE);
    assert_string_equal(cur.value[0], "ours");
    assert_int_equal(cur.ver[0].hlc, after.ver[1].hlc);
    seen_t h;
    history(f->db, "COL", &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.value[0], "ours");
    assert_string_equal(h.value[1], "theirs");
    assert_int_equal(h.ver[1].hlc, theirs);
}

/* Another origin's version of a key we changed arrives before the rebase,
 * stamped between the hub's clock and the limit: it lost to our fast
 * stamp and went to history. Our change re-stamped below it now loses:
 * the store's current version must be the winner, as at the hub. */
static void
test_restamp_below_later_version_hands_current_to_it(void **state)
{
    fixture_t *f = *state;
    const change_t c[] = {{"COL", "ours", HLC_MAKE(AHEAD, 0)}};
    local_changes(f->db, c, 1, 1);
    const uint64_t theirs = HLC_MAKE(450000, 0);
    obs_t o;
    bool applied = true;
    make_obs(&o, "COL", "theirs", theirs, OTHER, 9);
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_put_replicated(txn, &o, &applied));
    commit(txn);
    obs_fini(&o);
    assert_false(applied); /* older than ours: history only */

    rebase_plan_t plan = {.after = 0,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW,
                          .floor_hlc = 0};
    hlc_t clock = {c[0].hlc};
    uint64_t origin_seq = 1;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    seen_t after;
    outbox(f->db, &after);
    assert_int_equal(after.n, 1);
    assert_true(after.ver[0].hlc < theirs); /* ours now the older one */

    seen_t cur;
    current(f->db, "COL", &cur);
    assert_string_equal(cur.ver[0].origin, OTHER);
    assert_string_equal(cur.value[0], "theirs");
    seen_t h;
    history(f->db, "COL", &h);
    assert_int_equal(h.n, 2);
    assert_string_equal(h.value[0], "theirs");
    assert_string_equal(h.value[1], "ours");
}

/* A store written by an older build also kept the current version in
 * history, under the short key (canonical key | be64 hlc). Re-stamped
 * lower, the change must not lose to that stale copy of itself: the copy
 * goes, and the re-stamped version is the current one. */
static void
test_restamp_drops_an_older_stores_copy_of_the_current(void **state)
{
    fixture_t *f = *state;
    const change_t c[] = {{"COL", "ours", HLC_MAKE(AHEAD, 0)}};
    local_changes(f->db, c, 1, 1);
    obs_t o;
    make_obs(&o, "COL", "ours", c[0].hlc, NODE, 1);
    uint8_t key[OBS_KEY_MAX + 8];
    int klen = obs_key_encode(&o, key, OBS_KEY_MAX);
    assert_true(klen > 0);
    store_be64_put(key + klen, c[0].hlc);
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    assert_ok(codec_obs_encode(&o, &enc, &enc_len));
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(store_put(obsdb_txn_store(txn), STORE_T_HISTORY, key,
                        (size_t)klen + 8, enc, enc_len));
    commit(txn);
    free(enc);
    obs_fini(&o);

    rebase_plan_t plan = {.after = 0,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW,
                          .floor_hlc = 0};
    hlc_t clock = {c[0].hlc};
    uint64_t origin_seq = 1;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.restamped, 1);
    seen_t cur;
    current(f->db, "COL", &cur);
    assert_true(cur.ver[0].hlc < c[0].hlc); /* the re-stamped one */
    assert_true(HLC_MS(cur.ver[0].hlc) >= HUB_NOW);
    seen_t h;
    history(f->db, "COL", &h);
    assert_int_equal(h.n, 1); /* no stale copy left */
    assert_int_equal(h.ver[0].hlc, cur.ver[0].hlc);
}

/* Our clock ran past the limit but no change in the outbox is past it:
 * nothing is rewritten, only the HLC comes back. */
static void
test_rebase_without_a_change_past_the_limit_only_lowers_the_hlc(void **state)
{
    fixture_t *f = *state;
    const change_t c[] = {{"COL", "ok", HLC_MAKE(HUB_NOW + 10, 0)}};
    local_changes(f->db, c, 1, 1);
    seen_t before, after;
    outbox(f->db, &before);
    rebase_plan_t plan = {.after = 0,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW,
                          .floor_hlc = 0};
    hlc_t clock = {HLC_MAKE(AHEAD, 0)}; /* observed from a fast peer */
    uint64_t origin_seq = 1;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.rewritten, 0);
    outbox(f->db, &after);
    assert_int_equal(after.n, 1);
    assert_int_equal(after.ver[0].hlc, before.ver[0].hlc);
    assert_true(clock.last <= LIMIT);
    assert_int_equal(meta(f->db, "hlc"), clock.last);
}

/* ------------------------------------------------------- acknowledged part */

static void
test_rebase_after_drops_acked_and_rewrites_the_rest(void **state)
{
    fixture_t *f = *state;
    four_changes(f->db, 1000);
    seen_t before, after;
    outbox(f->db, &before);
    rebase_plan_t plan = {
        .after = 2, .renumber_after = 100, .stamp_limit = UINT64_MAX};
    hlc_t clock = {HLC_MAKE(1003, 0)};
    uint64_t origin_seq = 4;
    rebase_result_t res;
    assert_ok(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res));
    assert_int_equal(res.rewritten, 2);
    assert_int_equal(res.renumbered, 2);
    assert_int_equal(res.last_seq, 102);
    assert_int_equal(origin_seq, 102);

    outbox(f->db, &after);
    assert_int_equal(after.n, 2);
    assert_int_equal(after.seq[0], 101);
    assert_int_equal(after.seq[1], 102);
    assert_same_change(&after, 0, &before, 2);
    assert_same_change(&after, 1, &before, 3);
    /* #3's base is #1, acknowledged and not rewritten: it keeps its number */
    assert_int_equal(after.ver[0].base_origin_seq, 1);
    assert_int_equal(after.ver[1].base_origin_seq, 101);
    obsdb_stats_t st;
    stats(f->db, &st);
    assert_int_equal(st.outbox, 2);

    seen_t cur;
    current(f->db, "MEX", &cur); /* #2 acknowledged: untouched */
    assert_int_equal(cur.ver[0].origin_seq, 2);
    seen_t h;
    history(f->db, "COL", &h);
    assert_int_equal(h.n, 3);
    assert_int_equal(h.ver[0].origin_seq, 102);
    assert_int_equal(h.ver[1].origin_seq, 101);
    assert_int_equal(h.ver[2].origin_seq, 1);
}

/* --------------------------------------------------------- failure path */

/* A store whose map cannot grow, filled until the rewrite does not fit:
 * node_rebase_run fails and changes nothing (outbox, versions, counters,
 * the caller's clock and origin_seq). */
static void
test_rebase_that_does_not_fit_changes_nothing(void **state)
{
    fixture_t *f = *state;
    const uint64_t map = 256 * 1024;
    obsdb_close(&f->db);
    test_rm_tree(f->dir);
    assert_ok(open_db(f, map, map));

    /* local changes in small txns until the map is full */
    uint64_t seq = 0;
    for (int t = 0; t < 10000; t++) {
        obsdb_txn_t *txn = begin(f->db, true);
        for (int i = 0; i < 8; i++) {
            char area[16];
            obs_t o;
            seq++;
            (void)snprintf(area, sizeof(area), "A%llu",
                           (unsigned long long)seq);
            make_obs(&o, area, "1", HLC_MAKE(AHEAD + seq, 0), NODE, seq);
            (void)obsdb_put(txn, &o);
            obs_fini(&o);
        }
        if (obsdb_commit(&txn) != OBS_OK) {
            seq -= 8;
            break;
        }
    }
    assert_true(seq > 0);
    obsdb_stats_t st0, st1;
    stats(f->db, &st0);
    assert_int_equal(st0.outbox, seq);
    obsdb_txn_t *txn = begin(f->db, false);
    uint64_t first_hlc = 0;
    assert_ok(obsdb_outbox_hlc(txn, 1, &first_hlc));
    obsdb_abort(&txn);

    rebase_plan_t plan = {.after = 0,
                          .renumber_after = 1000000,
                          .stamp_limit = LIMIT,
                          .hub_now_ms = HUB_NOW};
    hlc_t clock = {HLC_MAKE(AHEAD + seq, 0)};
    uint64_t origin_seq = seq;
    rebase_result_t res;
    assert_rc(node_rebase_run(f->db, &plan, &clock, &origin_seq, &res),
              OBS_ESTOREFULL);
    assert_int_equal(origin_seq, seq);
    assert_int_equal(clock.last, HLC_MAKE(AHEAD + seq, 0));

    stats(f->db, &st1);
    assert_int_equal(st1.outbox, st0.outbox);
    assert_int_equal(st1.history, st0.history);
    txn = begin(f->db, false);
    uint64_t hlc = 0, v = 0;
    assert_ok(obsdb_outbox_hlc(txn, 1, &hlc));
    assert_int_equal(hlc, first_hlc);
    assert_rc(obsdb_meta_get_u64(txn, "pub_acked", &v), OBS_ENOENT);
    assert_rc(obsdb_meta_get_u64(txn, "origin_seq", &v), OBS_ENOENT);
    assert_rc(obsdb_meta_get_u64(txn, "hlc", &v), OBS_ENOENT);
    obsdb_abort(&txn);
    seen_t cur;
    current(f->db, "A1", &cur);
    assert_int_equal(cur.ver[0].origin_seq, 1);
    assert_int_equal(cur.ver[0].hlc, first_hlc);
}

/* ---------------------------------------------------------- older copy */

static bool
older(obsdb_t *db, uint64_t last, uint64_t last_hlc, uint64_t made,
      uint64_t pub_acked)
{
    bool o = true;
    assert_ok(
        node_rebase_is_older_copy(db, last, last_hlc, made, pub_acked, &o));
    return o;
}

static void
test_older_copy_detection(void **state)
{
    fixture_t *f = *state;
    four_changes(f->db, 1000); /* #2 stamped HLC_MAKE(1001, 0) */
    const uint64_t h2 = HLC_MAKE(1001, 0);

    /* acknowledged to this very store: never older */
    assert_false(older(f->db, 2, h2 + 1, 4, 2));
    assert_false(older(f->db, 3, h2, 1, 5));
    /* the hub holds numbers this store never made */
    assert_true(older(f->db, 9, h2, 4, 0));
    assert_true(older(f->db, 5, 0, 4, 0));
    /* our #2 as the hub has it, or stamped otherwise */
    assert_false(older(f->db, 2, h2, 4, 0));
    assert_true(older(f->db, 2, h2 + 1, 4, 0));
    assert_true(older(f->db, 2, HLC_MAKE(999, 0), 4, 1));
    /* nothing to tell by: the hub gives no stamp */
    assert_false(older(f->db, 2, 0, 4, 0));
    /* #last not in the outbox (acknowledged and trimmed) */
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_outbox_ack(txn, 2));
    commit(txn);
    assert_false(older(f->db, 2, h2 + 1, 4, 0));
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_renumber_moves_outbox_after_hub_last_seq),
        T(test_renumber_raises_origin_seq_not_lowers),
        T(test_restamp_brings_fast_stamps_back_to_hub_clock),
        T(test_restamp_only_from_the_first_change_past_limit),
        T(test_restamp_stays_above_other_origins_base),
        T(test_restamp_below_later_version_hands_current_to_it),
        T(test_restamp_drops_an_older_stores_copy_of_the_current),
        T(test_rebase_without_a_change_past_the_limit_only_lowers_the_hlc),
        T(test_rebase_after_drops_acked_and_rewrites_the_rest),
        T(test_rebase_that_does_not_fit_changes_nothing),
        T(test_older_copy_detection),
    };
    return cmocka_run_group_tests_name("node_rebase", tests, NULL, NULL);
}
