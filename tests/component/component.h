/*
 * component.h - the component tier's world (STYLE.md §2.9): in ONE process,
 * a hub engine and two node engines (daemon/api/engine.h) on one loop
 * (daemon/runtime/loop.h), each with its own store in a temp dir of its
 * own, driven by the test through libobsync over their ipc:// local API
 * sockets, as a user would drive real daemons.
 *
 *   hub  node_id HUB, provider OID, repl_bind tcp://127.0.0.1:* (the kernel
 *        picks the port; nodes read it from the hub's data_dir/repl.endpoint)
 *   a    node_id COL, provider COL (writes REF_AREA COL)
 *   b    node_id MEX, provider MEX (writes REF_AREA MEX)
 *
 * Threads: the loop runs on a second thread (loop_run_once until an atomic
 * stop flag), which owns every engine; the test thread only talks to the
 * daemons through libobsync. Engines are created and destroyed only while
 * that thread is stopped (comp_daemon_down/up and comp_add_node stop it and
 * start it again themselves). Clients are used only from the test thread,
 * except those a test makes for its own worker threads.
 *
 * Waiting: conditions are polled with a deadline (comp_wait), never slept
 * on blindly. Failing: the comp_* helpers fail the current cmocka test with
 * obsync_strerror and the client's errmsg; comp_setup and comp_teardown
 * never fail a test (a fixture cannot), they print and return -1.
 *
 * Cleanup: comp_teardown stops the loop thread, destroys every engine,
 * client, configuration and the loop, and removes the temp dir (kept when
 * OBSYNC_KEEP_TMP is set). cmocka runs it after a failed test too.
 *
 * Environment: OBSYNC_SOURCE_DIR (repo root; the build's define is the
 * fallback), OBSYNC_TEST_LOG (daemon log level, default warn),
 * OBSYNC_KEEP_TMP=1 (keep the temp dir for a post-mortem).
 */
#ifndef OBSYNC_COMPONENT_H
#define OBSYNC_COMPONENT_H

/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "cfg.h"
#include "engine.h"
#include "loop.h"
#include "obsync/obsync.h"

#define COMP_DF_VIOLENCE "OID:DF_VIOLENCE(1.0)"
#define COMP_UNIT        "PER_100000_POP" /* UNIT_MEASURE, mandatory */

/* Deadlines. Everything is expected within a second or two; the margins
 * are for a loaded CI machine under ASan, never waited out on success. */
#define COMP_WAIT_MS  15000 /* a condition polled with comp_wait */
#define COMP_LINK_MS  10000 /* comp_setup: nodes linked with the hub */
#define COMP_REPLY_MS 10000 /* one libobsync request */

#define COMP_MAX_DAEMONS 5

typedef struct {
    char name[16];    /* directory under the world's temp dir */
    char node_id[16]; /* also its provider */
    bool is_hub;
    char dir[192], data_dir[208], sock[208], conf[208];
    cfg_t cfg; /* loaded from conf; borrowed by the engine */
    bool cfg_loaded;
    engine_t *engine;   /* NULL while down */
    obsync_client_t *c; /* the test thread's client; NULL while down */
} comp_daemon_t;

typedef struct {
    char tmp[64];
    loop_t *loop;
    pthread_t thread;
    bool thread_running;
    atomic_bool stop;
    atomic_int loop_rc; /* OBS_OK, or what loop_run_once returned */
    char hub_endpoint[128];
    comp_daemon_t d[COMP_MAX_DAEMONS];
    size_t n;
    comp_daemon_t *hub, *a, *b;
} comp_world_t;

/* ---- fixtures (cmocka_unit_test_setup_teardown) */

/** Makes the world (temp dir, loop, hub, nodes a and b), starts the loop
 * thread and waits until both nodes stream from the hub and the hub has
 * both sessions up. *state = the comp_world_t. 0, or -1 after printing why
 * and undoing everything. */
int comp_setup(void **state);
/** Stops the loop thread, destroys everything, removes the temp dir. */
int comp_teardown(void **state);

/* ---- the loop thread and the engines on it */

/** Stops the loop thread (joins it). No-op when stopped. */
void comp_loop_pause(comp_world_t *w);
/** Starts the loop thread again. No-op when running. */
void comp_loop_resume(comp_world_t *w);
/** Destroys d's engine and client (loop paused meanwhile). The store and
 * the configuration stay for comp_daemon_up. */
void comp_daemon_down(comp_world_t *w, comp_daemon_t *d);
/** Creates d's engine again on its data dir (loop paused meanwhile) and a
 * new client. Fails the test if engine_new does. */
void comp_daemon_up(comp_world_t *w, comp_daemon_t *d);
/** A new node (empty store) named name with node_id (= provider), linked
 * to the hub, up. */
comp_daemon_t *comp_add_node(comp_world_t *w, const char *name,
                             const char *node_id);

/* ---- waiting */

typedef bool (*comp_pred_fn)(void *arg);
/** Polls pred(arg) (pauses growing from 1 to 50 ms) until it returns true
 * (true) or timeout_ms pass (false). Fails the test at once if the loop
 * thread died. */
bool comp_poll(comp_world_t *w, comp_pred_fn pred, void *arg, int timeout_ms);
#define comp_wait(w, pred, arg, what)                                      \
    do {                                                                   \
        if (!comp_poll((w), (pred), (arg), COMP_WAIT_MS))                  \
            fail_msg("timed out after %d ms waiting for %s", COMP_WAIT_MS, \
                     (what));                                              \
    } while (0)
/** Waits until node d's hub link is streaming. */
void comp_wait_streaming(comp_world_t *w, comp_daemon_t *d);
/** Waits until node d has published everything: its outbox is empty and
 * the hub acked its last origin_seq. */
void comp_wait_outbox_drained(comp_world_t *w, comp_daemon_t *d);
/** Waits until node d's cursor is the hub's log end (it applied, or
 * skipped as its own, every entry the hub logged). */
void comp_wait_caught_up(comp_world_t *w, comp_daemon_t *d);
uint64_t comp_now_ms(void);

/* ---- requests (each fails the test on an error) */

/** Fails the test unless rc == want, naming both with obsync_strerror. */
void comp_check_rc(int rc, int want, const char *expr, const char *file,
                   int line);
#define assert_obsync_rc(expr, want) \
    comp_check_rc((expr), (want), #expr, __FILE__, __LINE__)
#define assert_obsync_ok(expr) assert_obsync_rc((expr), OBSYNC_OK)

/** Status of d; caller frees with obsync_status_free. */
obsync_status_t *comp_status(comp_daemon_t *d);
/** The hub's row of node_id in st, or NULL. */
const obsync_peer_status_t *comp_peer(const obsync_status_t *st,
                                      const char *node_id);
/** Puts obs[0..n) in one request (merge); requires every row accepted or
 * unchanged, none rejected, and the write committed. sum may be NULL. */
void comp_put(comp_daemon_t *d, const obsync_obs_t *obs, size_t n,
              obsync_summary_t *sum);
/** Puts one DF_VIOLENCE observation with UNIT_MEASURE = COMP_UNIT. */
void comp_put1(comp_daemon_t *d, const char *series_key, const char *period,
               const char *value, obsync_summary_t *sum);
/** "A.AREA.VC_IHR_PSRC.SEX._T._T.SRC" into buf. */
const char *comp_key(char *buf, size_t cap, const char *area, const char *sex,
                     const char *src);
/** The value of attribute id of o, or NULL. */
const char *comp_attr(const obsync_obs_t *o, const char *id);

/* ---- comparing stores */

/** Every observation of a store, tombstones included, one line each:
 * identity, value, attributes and the replicated version (hlc, origin,
 * origin_seq, provider, action, tombstone, batch_id), sorted. hub_seq is
 * left out: it is local (the origin keeps 0 on its own writes). */
typedef struct {
    char **lines;
    size_t n, cap;
} comp_dump_t;
/** Fills out (zeroed first). OBSYNC_OK or the query's error. */
int comp_dump(comp_daemon_t *d, comp_dump_t *out);
void comp_dump_fini(comp_dump_t *dump);
/** Observations of a dump that are not tombstones. */
size_t comp_dump_live(const comp_dump_t *dump);
/** Waits until every daemon of ds[0..n) holds what ds[0] holds; on the
 * deadline prints each store's size and first difference and fails. */
void comp_assert_converged(comp_world_t *w, comp_daemon_t *const *ds, size_t n);

/* ---- sample data */

/** Rows of an SDMX-CSV file, each line split into fields (owned). */
typedef struct {
    size_t n_cols;
    char **cols; /* header */
    size_t n_rows;
    char ***rows; /* n_rows arrays of n_cols fields */
} comp_csv_t;
/** Writes the header and the rows of deploy/sample-data/NAME whose REF_AREA
 * is area into out_path, and keeps them in *csv. The sample files have one
 * record per line. Fails the test when the file is unusable. */
void comp_sample_slice(const char *name, const char *area, const char *out_path,
                       comp_csv_t *csv);
/** Column index of id in csv's header; fails the test if absent. */
size_t comp_csv_col(const comp_csv_t *csv, const char *id);
void comp_csv_fini(comp_csv_t *csv);

#endif
