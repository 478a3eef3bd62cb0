/*
 * test_golden_store.c - a store written by a format-2 build still opens and
 * reads back exactly (tests/golden/store/v2/README.md says how it was made
 * and from which commit). Each test loads the committed text dump with
 * mdb_load (lmdb-utils, deploy/install-deps.sh) into a mkdtemp directory
 * and opens it through obsdb.h's public functions only: the format marker
 * is raised at the first open; the counters, every current version (value,
 * attributes, version fields, content hash), the scan order, each key's
 * history (short history keys), a scan as of a time between two versions,
 * the outbox (a chunk of four changes and three single records, also walked
 * from inside the chunk), the node's meta and the structure text are what
 * the format-2 build reported; and the store takes a new local version and
 * an outbox ack on top of the old records, across a reopen.
 */
#include <sys/wait.h>

#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "codec.h"
#include "obs.h"
#include "obs_err.h"
#include "obsdb.h"
#include "sha256.h"
#include "test_support.h"

#define DUMP     OBSYNC_SOURCE_DIR "/tests/golden/store/v2/node-col.dump"
#define NODE_ID  "COL"
#define EPOCH    "70dbceea8c81c12de4b5e8b80c3afc68"
#define VIOLENCE "OID:DF_VIOLENCE(1.0)"
#define DRUG_USE "OID:DF_DRUG_USE(1.0)"
#define WDI      "World Bank WDI VC.IHR.PSRC.P5 (UNODC/WHO), 2025-10-07"

static const char *const violence_dims[] = {"A",  "COL", "VC_IHR_PSRC", "_T",
                                            "_T", "_T",  "HARM"};
static const char *const drug_dims[] = {"A",        "COL", "GENPOP", "PREV_PY",
                                        "CANNABIS", "_T",  "Y12T65"};

/* One version as the format-2 build reported it (export --format jsonl,
 * history --json). Attributes: up to 5 id=value pairs, sorted by id. */
typedef struct {
    const char *df;
    const char *period;
    const char *value; /* "" for the tombstone */
    uint64_t hlc;
    uint64_t seq;
    const char *batch;
    obs_action_t action;
    bool tombstone;
    const char *attrs[5][2];
} want_t;

/* The current versions, in canonical key order (the drug-use dataflow's
 * key sorts first). */
static const want_t current[] = {
    {DRUG_USE,
     "2019",
     "2.68",
     117747966143234048u,
     5,
     "imp-1a25326befd-1",
     OBS_ACTION_MERGE,
     false,
     {{"LOWER_BOUND", "2.46"},
      {"SOURCE_DETAIL", "Government source"},
      {"SURVEY_METHOD", "HHS"},
      {"UNIT_MEASURE", "PT"},
      {"UPPER_BOUND", "2.9"}}},
    {VIOLENCE,
     "1990",
     "74.999842",
     117747966142709760u,
     1,
     "imp-1a25326beef-1",
     OBS_ACTION_MERGE,
     false,
     {{"OBS_STATUS", "A"},
      {"SOURCE_DETAIL", WDI},
      {"UNIT_MEASURE", "PER_100000_POP"}}},
    {VIOLENCE,
     "1991",
     "85.9",
     117747966143692801u,
     6,
     "put-1a25326bf05-1",
     OBS_ACTION_MERGE,
     false,
     {{"OBS_STATUS", "E"},
      {"SOURCE_DETAIL", WDI},
      {"UNIT_MEASURE", "PER_100000_POP"}}},
    {VIOLENCE,
     "1992",
     "83.481999",
     117747966142709762u,
     3,
     "imp-1a25326beef-1",
     OBS_ACTION_MERGE,
     false,
     {{"OBS_STATUS", "A"},
      {"SOURCE_DETAIL", WDI},
      {"UNIT_MEASURE", "PER_100000_POP"}}},
    {VIOLENCE,
     "1993",
     "",
     117747966144086017u,
     7,
     "del-1a25326bf0b-1",
     OBS_ACTION_DELETE,
     true,
     {{NULL, NULL}}},
};
#define N_CURRENT (sizeof(current) / sizeof(current[0]))

/* The versions the put and the delete replaced: the only history entries
 * of the store (format 2 keeps a key's current version in obs only). */
static const want_t old_1991 = {VIOLENCE,
                                "1991",
                                "85.877334",
                                117747966142709761u,
                                2,
                                "imp-1a25326beef-1",
                                OBS_ACTION_MERGE,
                                false,
                                {{"OBS_STATUS", "A"},
                                 {"SOURCE_DETAIL", WDI},
                                 {"UNIT_MEASURE", "PER_100000_POP"}}};
static const want_t old_1993 = {VIOLENCE,
                                "1993",
                                "82.577769",
                                117747966142709763u,
                                4,
                                "imp-1a25326beef-1",
                                OBS_ACTION_MERGE,
                                false,
                                {{"OBS_STATUS", "A"},
                                 {"SOURCE_DETAIL", WDI},
                                 {"UNIT_MEASURE", "PER_100000_POP"}}};

/* The structure text as stored (the starter structure of that commit, as
 * the daemon kept it): its length and SHA-256. */
#define STRUCT_LEN 22561u
#define STRUCT_SHA256 \
    "76fff3e10fd981253896f4fa058af2e302ab95e1be8e9042a96aec4a4df8b153"

typedef struct {
    char dir[64];
    obsdb_t *db;
} fixture_t;

/* Runs `mdb_load -f DUMP dir`; returns its exit status (127: it could not
 * be run), -1 if fork or wait failed. Its stderr goes to errpath (0.9.24's
 * mdb_load warns about every db_pagesize line of 0.9.24's mdb_dump), for the
 * caller to show when it failed. */
static int
mdb_load(const char *dir, const char *errpath)
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0)
            (void)dup2(fd, STDERR_FILENO);
        execlp("mdb_load", "mdb_load", "-f", DUMP, dir, (char *)NULL);
        fprintf(stderr, "cannot run mdb_load: install lmdb-utils "
                        "(deploy/install-deps.sh)\n");
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void
print_file(const char *path)
{
    char line[512];
    FILE *fp = fopen(path, "r");
    while (fp != NULL && fgets(line, sizeof(line), fp) != NULL)
        print_error("%s", line);
    if (fp != NULL)
        fclose(fp);
}

static int
open_store(fixture_t *f)
{
    char err[256] = "";
    obsdb_opts_t o = {.dir = f->dir, .node_id = NODE_ID, .no_sync = true};
    int rc = obsdb_open(&o, &f->db, err, sizeof(err));
    if (rc != 0)
        print_error("obsdb_open(%s): %s: %s\n", f->dir, obs_strerror(rc), err);
    return rc;
}

/* Loads the dump into a fresh directory and opens it. On failure it says
 * why and removes what it made (cmocka runs no teardown then). */
static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (test_mkdtemp(f->dir, sizeof(f->dir), "/tmp/obsync-golden-XXXXXX")) {
        free(f);
        return -1;
    }
    char errpath[sizeof(f->dir) + 16];
    (void)snprintf(errpath, sizeof(errpath), "%s/load.err", f->dir);
    int rc = mdb_load(f->dir, errpath);
    if (rc != 0) {
        print_file(errpath);
        print_error("mdb_load -f %s %s exited %d\n", DUMP, f->dir, rc);
    } else {
        rc = open_store(f);
    }
    if (rc != 0) {
        test_rm_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
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

static obsdb_txn_t *
begin(obsdb_t *db, bool write)
{
    obsdb_txn_t *txn = NULL;
    assert_ok(obsdb_begin(db, write, &txn));
    return txn;
}

static void
identity(obs_t *o, const want_t *w)
{
    bool drug = strcmp(w->df, DRUG_USE) == 0;
    obs_init(o);
    assert_ok(obs_set_identity(o, w->df, drug ? drug_dims : violence_dims, 7,
                               w->period));
}

/* o is exactly w: identity, value, attributes, version, content hash. */
static void
assert_version(const obs_t *o, const want_t *w)
{
    const char *const *dims =
        strcmp(w->df, DRUG_USE) == 0 ? drug_dims : violence_dims;
    assert_string_equal(o->dataflow, w->df);
    assert_int_equal(o->n_dims, 7);
    for (size_t i = 0; i < 7; i++)
        assert_string_equal(o->dims[i], dims[i]);
    assert_string_equal(o->time_period, w->period);
    assert_string_equal(o->value, w->value);
    size_t n = 0;
    while (n < 5 && w->attrs[n][0] != NULL)
        n++;
    assert_int_equal(o->n_attrs, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(o->attrs[i].id, w->attrs[i][0]);
        assert_string_equal(o->attrs[i].value, w->attrs[i][1]);
    }
    assert_int_equal(o->ver.hlc, w->hlc);
    assert_string_equal(o->ver.origin, NODE_ID);
    assert_int_equal(o->ver.origin_seq, w->seq);
    assert_string_equal(o->ver.provider, NODE_ID);
    assert_string_equal(o->ver.batch_id, w->batch);
    assert_int_equal(o->ver.action, w->action);
    assert_int_equal(o->ver.tombstone, w->tombstone);
    assert_int_equal(o->ver.hub_seq, 0);
    uint8_t hash[OBS_HASH_LEN];
    obs_content_hash(o, hash);
    assert_memory_equal(o->ver.content_hash, hash, OBS_HASH_LEN);
}

/* Copies of the versions a walk passes to its callback. */
typedef struct {
    obs_t got[16];
    uint64_t seqs[16];
    size_t n;
} seen_t;

static void
seen_fini(seen_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        obs_fini(&s->got[i]);
    s->n = 0;
}

static int
seen_cb(const obs_t *o, void *arg)
{
    seen_t *s = arg;
    assert_true(s->n < 16);
    obs_init(&s->got[s->n]);
    assert_ok(obs_copy(&s->got[s->n], o));
    s->n++;
    return 0;
}

static int
seen_raw_cb(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
            size_t rlen, void *arg)
{
    seen_t *s = arg;
    (void)key;
    (void)klen;
    assert_true(s->n < 16);
    obs_init(&s->got[s->n]);
    assert_ok(codec_obs_decode(rec, rlen, &s->got[s->n]));
    s->seqs[s->n] = seq;
    s->n++;
    return 0;
}

static void
history(obsdb_t *db, const want_t *w, seen_t *s)
{
    obs_t id;
    identity(&id, w);
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_history(txn, &id, seen_cb, s));
    obsdb_abort(&txn);
    obs_fini(&id);
}

static void
outbox_from(obsdb_t *db, uint64_t after, seen_t *s)
{
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_outbox_walk_raw(txn, after, 0, 0, seen_raw_cb, s));
    obsdb_abort(&txn);
}

static void
scan(obsdb_t *db, bool include_deleted, uint64_t as_of_ms, seen_t *s)
{
    obsdb_scan_t q = {.start_day = INT32_MIN,
                      .end_day = INT32_MAX,
                      .as_of_ms = as_of_ms,
                      .include_deleted = include_deleted};
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    obsdb_txn_t *txn = begin(db, false);
    assert_ok(obsdb_scan(txn, &q, seen_cb, s, last, &last_len, &more));
    obsdb_abort(&txn);
    assert_false(more);
}

/* ---------------------------------------------------------------- tests */

static void
test_golden_v2_opens_with_its_epoch_and_is_marked_newer(void **state)
{
    fixture_t *f = *state;
    char node[OBS_ID_MAX + 1];
    uint64_t format = 0;
    assert_string_equal(obsdb_epoch(f->db), EPOCH);
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_meta_get_str(txn, "node_id", node, sizeof(node)));
    assert_ok(obsdb_meta_get_u64(txn, "format", &format));
    obsdb_abort(&txn);
    assert_string_equal(node, NODE_ID);
    /* The dump says 2; the first open marks the store with this build's. */
    assert_true(format > 2);
}

static void
test_golden_v2_refused_as_another_node(void **state)
{
    fixture_t *f = *state;
    obsdb_t *other = NULL;
    obsdb_close(&f->db);
    obsdb_opts_t o = {.dir = f->dir, .node_id = "MEX", .no_sync = true};
    assert_rc(obsdb_open(&o, &other, NULL, 0), OBS_EINVAL);
    assert_null(other);
    assert_ok(open_store(f));
}

static void
test_golden_v2_counters(void **state)
{
    fixture_t *f = *state;
    obsdb_stats_t st;
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    assert_int_equal(st.observations, 5); /* tombstone included */
    assert_int_equal(st.tombstones, 1);
    assert_int_equal(st.history, 7); /* every version, current ones too */
    assert_int_equal(st.outbox, 7);
}

static void
test_golden_v2_current_versions(void **state)
{
    fixture_t *f = *state;
    obsdb_txn_t *txn = begin(f->db, false);
    for (size_t i = 0; i < N_CURRENT; i++) {
        obs_t id, got;
        identity(&id, &current[i]);
        obs_init(&got);
        assert_ok(obsdb_get(txn, &id, &got));
        assert_version(&got, &current[i]);
        obs_fini(&got);
        obs_fini(&id);
    }
    obsdb_abort(&txn);
}

static void
test_golden_v2_scan_in_key_order(void **state)
{
    fixture_t *f = *state;
    seen_t s = {.n = 0};
    scan(f->db, true, 0, &s);
    assert_int_equal(s.n, N_CURRENT);
    for (size_t i = 0; i < s.n; i++)
        assert_version(&s.got[i], &current[i]);
    seen_fini(&s);

    scan(f->db, false, 0, &s); /* the tombstone left out */
    assert_int_equal(s.n, N_CURRENT - 1);
    for (size_t i = 0; i < s.n; i++)
        assert_version(&s.got[i], &current[i]);
    seen_fini(&s);
}

static void
test_golden_v2_history_newest_first(void **state)
{
    fixture_t *f = *state;
    seen_t s = {.n = 0};

    history(f->db, &current[2], &s); /* 1991: the put, then the import */
    assert_int_equal(s.n, 2);
    assert_version(&s.got[0], &current[2]);
    assert_version(&s.got[1], &old_1991);
    seen_fini(&s);

    history(f->db, &current[4], &s); /* 1993: the tombstone, the import */
    assert_int_equal(s.n, 2);
    assert_version(&s.got[0], &current[4]);
    assert_version(&s.got[1], &old_1993);
    seen_fini(&s);

    for (size_t i = 0; i < 2; i++) { /* one version each */
        history(f->db, &current[i], &s);
        assert_int_equal(s.n, 1);
        assert_version(&s.got[0], &current[i]);
        seen_fini(&s);
    }
}

static void
test_golden_v2_scan_as_of_reads_history(void **state)
{
    fixture_t *f = *state;
    seen_t s = {.n = 0};
    /* 1 ms after the violence import: before the drug-use import (14 ms
     * later), the put and the delete. */
    scan(f->db, false, (old_1991.hlc >> 16) + 1, &s);
    const want_t *want[] = {&current[1], &old_1991, &current[3], &old_1993};
    assert_int_equal(s.n, 4);
    for (size_t i = 0; i < s.n; i++)
        assert_version(&s.got[i], want[i]);
    seen_fini(&s);
}

static void
test_golden_v2_outbox_chunk_and_records(void **state)
{
    fixture_t *f = *state;
    /* origin_seq order: the import's chunk (1990..1993), the drug-use row,
     * the put, the delete */
    const want_t *by_seq[] = {&current[1], &old_1991,   &current[3], &old_1993,
                              &current[0], &current[2], &current[4]};
    static const uint64_t from[] = {0, 2, 4, 6, 7};
    for (size_t k = 0; k < sizeof(from) / sizeof(from[0]); k++) {
        seen_t s = {.n = 0};
        outbox_from(f->db, from[k], &s); /* 2: from inside the chunk */
        assert_int_equal(s.n, 7 - from[k]);
        for (size_t i = 0; i < s.n; i++) {
            assert_int_equal(s.seqs[i], from[k] + 1 + i);
            assert_version(&s.got[i], by_seq[from[k] + i]);
        }
        seen_fini(&s);
    }
    uint64_t last = 0, hlc = 0;
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_outbox_last(txn, &last));
    assert_ok(obsdb_outbox_hlc(txn, 3, &hlc)); /* inside the chunk */
    obsdb_abort(&txn);
    assert_int_equal(last, 7);
    assert_int_equal(hlc, current[3].hlc);
}

static void
test_golden_v2_node_meta(void **state)
{
    fixture_t *f = *state;
    uint64_t seq = 0, hlc = 0;
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_meta_get_u64(txn, "origin_seq", &seq));
    assert_ok(obsdb_meta_get_u64(txn, "hlc", &hlc));
    obsdb_abort(&txn);
    assert_int_equal(seq, 7);
    assert_int_equal(hlc, current[4].hlc); /* the delete's, the newest */
}

static void
test_golden_v2_structure_text(void **state)
{
    fixture_t *f = *state;
    char *text = NULL;
    size_t len = 0;
    obsdb_txn_t *txn = begin(f->db, false);
    assert_ok(obsdb_structure_get(txn, &text, &len));
    obsdb_abort(&txn);
    uint8_t d[32];
    char hex[65];
    sha256(text, len, d);
    for (size_t i = 0; i < 32; i++)
        (void)snprintf(hex + 2 * i, 3, "%02x", d[i]);
    free(text);
    assert_int_equal(len, STRUCT_LEN);
    assert_string_equal(hex, STRUCT_SHA256);
}

/* A new local version of 1991 on top of the format-2 records: the old
 * short-key history entry stays listed, the outbox takes it after the
 * chunk, an ack trims the old records; all still so after a reopen. */
static void
test_golden_v2_takes_new_writes(void **state)
{
    fixture_t *f = *state;
    obs_t id, o;
    identity(&id, &current[2]);
    obs_init(&o);
    obsdb_txn_t *txn = begin(f->db, true);
    assert_ok(obsdb_get(txn, &id, &o));
    assert_ok(obs_set_value(&o, "86.1"));
    o.ver.hlc = current[4].hlc + 1;
    o.ver.origin_seq = 8;
    o.ver.base_hlc = current[2].hlc;
    o.ver.base_origin_seq = current[2].seq;
    obs_content_hash(&o, o.ver.content_hash);
    assert_ok(obsdb_put(txn, &o));
    assert_ok(obsdb_commit(&txn));

    obsdb_close(&f->db);
    assert_ok(open_store(f));
    seen_t s = {.n = 0};
    history(f->db, &current[2], &s);
    assert_int_equal(s.n, 3);
    assert_string_equal(s.got[0].value, "86.1");
    assert_int_equal(s.got[0].ver.origin_seq, 8);
    assert_version(&s.got[1], &current[2]);
    assert_version(&s.got[2], &old_1991);
    seen_fini(&s);

    outbox_from(f->db, 6, &s);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.seqs[0], 7);
    assert_int_equal(s.seqs[1], 8);
    assert_string_equal(s.got[1].value, "86.1");
    seen_fini(&s);

    txn = begin(f->db, true);
    assert_ok(obsdb_outbox_ack(txn, 7));
    assert_ok(obsdb_commit(&txn));
    obsdb_close(&f->db);
    assert_ok(open_store(f));
    outbox_from(f->db, 0, &s);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.seqs[0], 8);
    seen_fini(&s);

    obsdb_stats_t st;
    txn = begin(f->db, false);
    assert_ok(obsdb_stats(txn, &st));
    obsdb_abort(&txn);
    assert_int_equal(st.observations, 5);
    assert_int_equal(st.history, 8);
    assert_int_equal(st.outbox, 1);
    obs_fini(&o);
    obs_fini(&id);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_golden_v2_opens_with_its_epoch_and_is_marked_newer),
        T(test_golden_v2_refused_as_another_node),
        T(test_golden_v2_counters),
        T(test_golden_v2_current_versions),
        T(test_golden_v2_scan_in_key_order),
        T(test_golden_v2_history_newest_first),
        T(test_golden_v2_scan_as_of_reads_history),
        T(test_golden_v2_outbox_chunk_and_records),
        T(test_golden_v2_node_meta),
        T(test_golden_v2_structure_text),
        T(test_golden_v2_takes_new_writes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
