/*
 * component.c - the component tier's world: see component.h. Compiled into
 * every tests/component/test_*.c executable.
 */
#define _XOPEN_SOURCE 700 /* nftw */

#include "component.h"

#include <sys/stat.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "obs_err.h"

#ifndef OBSYNC_SOURCE_DIR
#define OBSYNC_SOURCE_DIR "."
#endif

#define TURN_MS 20 /* longest loop turn: how soon a pause is seen */

/* ------------------------------------------------------------ helpers */

static const char *
source_dir(void)
{
    const char *s = getenv("OBSYNC_SOURCE_DIR");
    return s && *s ? s : OBSYNC_SOURCE_DIR;
}

uint64_t
comp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        fprintf(stderr, "component: cannot remove %s: %s\n", path,
                strerror(errno));
    return 0;
}

static void
rm_tree(const char *dir)
{
    if (dir[0] != '\0')
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    int rc = fputs(text, f) < 0 ? -1 : 0;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

/* ------------------------------------------------------------ loop thread */

static void *
loop_main(void *arg)
{
    comp_world_t *w = arg;
    while (!atomic_load(&w->stop)) {
        int rc = loop_run_once(w->loop, TURN_MS);
        if (rc != OBS_OK) {
            atomic_store(&w->loop_rc, rc);
            break;
        }
    }
    return NULL;
}

void
comp_loop_pause(comp_world_t *w)
{
    if (!w->thread_running)
        return;
    atomic_store(&w->stop, true);
    pthread_join(w->thread, NULL);
    w->thread_running = false;
}

static int
loop_resume(comp_world_t *w)
{
    if (w->thread_running)
        return 0;
    atomic_store(&w->stop, false);
    if (pthread_create(&w->thread, NULL, loop_main, w) != 0)
        return -1;
    w->thread_running = true;
    return 0;
}

void
comp_loop_resume(comp_world_t *w)
{
    if (loop_resume(w) != 0)
        fail_msg("cannot start the loop thread");
}

/* ------------------------------------------------------------ daemons */

/* Writes d's configuration file (the options of deploy/conf/obsync-*.conf
 * a test needs) and loads it. The hub's endpoint must be known for a node. */
static int
daemon_prepare(comp_world_t *w, comp_daemon_t *d, const char *name,
               const char *node_id, bool hub)
{
    memset(d, 0, sizeof(*d));
    snprintf(d->name, sizeof(d->name), "%s", name);
    snprintf(d->node_id, sizeof(d->node_id), "%s", node_id);
    d->is_hub = hub;
    snprintf(d->dir, sizeof(d->dir), "%s/%s", w->tmp, name);
    snprintf(d->data_dir, sizeof(d->data_dir), "%s/data", d->dir);
    snprintf(d->sock, sizeof(d->sock), "%s/api.sock", d->dir);
    snprintf(d->conf, sizeof(d->conf), "%s/obsyncd.conf", d->dir);
    if (mkdir(d->dir, 0700) != 0) {
        print_error("component: mkdir %s: %s\n", d->dir, strerror(errno));
        return -1;
    }
    char role[320];
    if (hub)
        snprintf(role, sizeof(role),
                 "role = hub\nprovider = OID\n"
                 "repl_bind = tcp://127.0.0.1:*\n");
    else
        snprintf(role, sizeof(role),
                 "role = node\nprovider = %s\n"
                 "hub_endpoint = %s\n",
                 node_id, w->hub_endpoint);
    char text[2048];
    snprintf(text, sizeof(text),
             "# component test %s (see tests/component/component.h)\n"
             "%snode_id = %s\n"
             "data_dir = %s\napi_socket = %s\n"
             "structure_file = %s/deploy/structure/starter.structure\n"
             "map_size = 64M\nno_sync = yes\nsecurity = plaintext\n"
             "heartbeat_ms = 100\npeer_timeout_ms = 3000\n",
             name, role, node_id, d->data_dir, d->sock, source_dir());
    if (write_text(d->conf, text) != 0) {
        print_error("component: cannot write %s\n", d->conf);
        return -1;
    }
    cfg_init(&d->cfg);
    d->cfg_loaded = true;
    char err[512] = "";
    if (cfg_load(&d->cfg, d->conf, err, sizeof(err)) != OBS_OK) {
        print_error("component: %s\n", err);
        return -1;
    }
    w->n++;
    return 0;
}

/* The engine and the client; the loop thread must be stopped. */
static int
daemon_start(comp_world_t *w, comp_daemon_t *d)
{
    char err[512] = "";
    int rc = engine_new(&d->cfg, w->loop, &d->engine, err, sizeof(err));
    if (rc != OBS_OK) {
        print_error("component: %s: engine_new: %s (%s)\n", d->name, err,
                    obs_strerror(rc));
        return -1;
    }
    rc = obsync_client_new(d->sock, &d->c);
    if (rc != OBSYNC_OK) {
        print_error("component: %s: obsync_client_new: %s\n", d->name,
                    obsync_strerror(rc));
        return -1;
    }
    obsync_client_set_timeout(d->c, COMP_REPLY_MS);
    return 0;
}

static void
daemon_stop(comp_daemon_t *d)
{
    obsync_client_destroy(&d->c);
    engine_destroy(&d->engine);
}

void
comp_daemon_down(comp_world_t *w, comp_daemon_t *d)
{
    comp_loop_pause(w);
    daemon_stop(d);
    comp_loop_resume(w);
}

void
comp_daemon_up(comp_world_t *w, comp_daemon_t *d)
{
    assert_null(d->engine);
    comp_loop_pause(w);
    int rc = daemon_start(w, d);
    comp_loop_resume(w);
    if (rc != 0)
        fail_msg("%s did not start again", d->name);
}

comp_daemon_t *
comp_add_node(comp_world_t *w, const char *name, const char *node_id)
{
    if (w->n == COMP_MAX_DAEMONS)
        fail_msg("more than %d daemons", COMP_MAX_DAEMONS);
    comp_daemon_t *d = &w->d[w->n];
    if (daemon_prepare(w, d, name, node_id, false) != 0)
        fail_msg("cannot configure node %s", name);
    comp_loop_pause(w);
    int rc = daemon_start(w, d);
    comp_loop_resume(w);
    if (rc != 0)
        fail_msg("node %s did not start", name);
    return d;
}

/* The bound endpoint the hub wrote, without its line end. */
static int
read_hub_endpoint(comp_world_t *w)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/repl.endpoint", w->hub->data_dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        print_error("component: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *got = fgets(w->hub_endpoint, sizeof(w->hub_endpoint), f);
    fclose(f);
    if (got == NULL || strncmp(w->hub_endpoint, "tcp://", 6) != 0) {
        print_error("component: %s holds no tcp:// endpoint\n", path);
        return -1;
    }
    w->hub_endpoint[strcspn(w->hub_endpoint, "\r\n")] = '\0';
    return 0;
}

static void
world_free(comp_world_t *w)
{
    comp_loop_pause(w);
    for (size_t i = w->n; i-- > 0;) /* nodes before the hub */
        daemon_stop(&w->d[i]);
    for (size_t i = 0; i < COMP_MAX_DAEMONS; i++)
        if (w->d[i].cfg_loaded)
            cfg_fini(&w->d[i].cfg);
    loop_destroy(&w->loop);
    if (getenv("OBSYNC_KEEP_TMP"))
        fprintf(stderr, "component: kept %s\n", w->tmp);
    else
        rm_tree(w->tmp);
    free(w);
}

/* ------------------------------------------------------------ waiting */

/* 1: pred held; 0: timed out; -1: the loop thread died (its rc in *lrc). */
static int
poll_until(comp_world_t *w, comp_pred_fn pred, void *arg, int timeout_ms,
           int *lrc)
{
    uint64_t deadline = comp_now_ms() + (uint64_t)timeout_ms;
    unsigned pause = 1;
    for (;;) {
        *lrc = atomic_load(&w->loop_rc);
        if (*lrc != OBS_OK)
            return -1;
        if (pred(arg))
            return 1;
        if (comp_now_ms() >= deadline)
            return 0;
        sleep_ms(pause);
        pause = pause * 3 / 2 + 1;
        if (pause > 50)
            pause = 50;
    }
}

bool
comp_poll(comp_world_t *w, comp_pred_fn pred, void *arg, int timeout_ms)
{
    int lrc = OBS_OK;
    int got = poll_until(w, pred, arg, timeout_ms, &lrc);
    if (got < 0)
        fail_msg("the loop thread stopped: %s", obs_strerror(lrc));
    return got == 1;
}

static bool
is_streaming(void *arg)
{
    comp_daemon_t *d = arg;
    obsync_status_t *st = NULL;
    bool ok = obsync_status(d->c, &st) == OBSYNC_OK &&
              strcmp(st->repl_state, "streaming") == 0;
    obsync_status_free(&st);
    return ok;
}

void
comp_wait_streaming(comp_world_t *w, comp_daemon_t *d)
{
    char what[64];
    snprintf(what, sizeof(what), "node %s to stream from the hub", d->name);
    comp_wait(w, is_streaming, d, what);
}

static bool
outbox_drained(void *arg)
{
    comp_daemon_t *d = arg;
    obsync_status_t *st = NULL;
    bool ok = obsync_status(d->c, &st) == OBSYNC_OK && st->outbox_depth == 0 &&
              st->outbox_acked == st->last_origin_seq;
    obsync_status_free(&st);
    return ok;
}

void
comp_wait_outbox_drained(comp_world_t *w, comp_daemon_t *d)
{
    if (!comp_poll(w, outbox_drained, d, COMP_WAIT_MS)) {
        obsync_status_t *st = comp_status(d);
        fail_msg("node %s: outbox not drained after %d ms: outbox_depth "
                 "%" PRIu64 ", outbox_acked %" PRIu64
                 ", last_origin_seq %" PRIu64,
                 d->name, COMP_WAIT_MS, st->outbox_depth, st->outbox_acked,
                 st->last_origin_seq);
    }
}

typedef struct {
    comp_world_t *w;
    comp_daemon_t *d;
    uint64_t cursor, log_last; /* last seen, for the failure message */
} caught_up_t;

static bool
caught_up(void *arg)
{
    caught_up_t *cu = arg;
    obsync_status_t *sh = NULL, *sd = NULL;
    bool ok = obsync_status(cu->w->hub->c, &sh) == OBSYNC_OK &&
              obsync_status(cu->d->c, &sd) == OBSYNC_OK;
    if (ok) {
        cu->log_last = sh->log_last;
        cu->cursor = sd->hub_cursor;
        ok = sd->hub_cursor == sh->log_last;
    }
    obsync_status_free(&sh);
    obsync_status_free(&sd);
    return ok;
}

void
comp_wait_caught_up(comp_world_t *w, comp_daemon_t *d)
{
    caught_up_t cu = {w, d, 0, 0};
    if (!comp_poll(w, caught_up, &cu, COMP_WAIT_MS))
        fail_msg("node %s: cursor %" PRIu64 ", hub log at %" PRIu64
                 " after %d ms",
                 d->name, cu.cursor, cu.log_last, COMP_WAIT_MS);
}

/* Both nodes have a session up at the hub. */
static bool
hub_sees_nodes(void *arg)
{
    comp_world_t *w = arg;
    obsync_status_t *st = NULL;
    bool ok = obsync_status(w->hub->c, &st) == OBSYNC_OK;
    const obsync_peer_status_t *pa = ok ? comp_peer(st, w->a->node_id) : NULL;
    const obsync_peer_status_t *pb = ok ? comp_peer(st, w->b->node_id) : NULL;
    ok = pa && pa->up && pb && pb->up;
    obsync_status_free(&st);
    return ok;
}

/* ------------------------------------------------------------ fixtures */

/* What each end says of the link, for a setup that failed. */
static void
print_link_states(comp_world_t *w)
{
    for (size_t i = 0; i < w->n; i++) {
        obsync_status_t *st = NULL;
        int rc = w->d[i].c ? obsync_status(w->d[i].c, &st) : OBSYNC_EINVAL;
        if (rc != OBSYNC_OK) {
            print_error("  %s: status: %s\n", w->d[i].name,
                        obsync_strerror(rc));
            continue;
        }
        if (w->d[i].is_hub)
            for (size_t k = 0; k < st->n_peers; k++)
                print_error(
                    "  hub: node %s %s, session %s\n", st->peers[k].node_id,
                    st->peers[k].up ? "up" : "down", st->peers[k].state);
        else
            print_error("  %s: repl_state %s, cursor %" PRIu64
                        ", reconnects %" PRIu64 "\n",
                        w->d[i].name, st->repl_state, st->hub_cursor,
                        st->reconnects);
        obsync_status_free(&st);
    }
}

static int
world_start(comp_world_t *w)
{
    if (snprintf(w->tmp, sizeof(w->tmp), "/tmp/obcomp-XXXXXX") < 0 ||
        mkdtemp(w->tmp) == NULL) {
        print_error("component: mkdtemp: %s\n", strerror(errno));
        w->tmp[0] = '\0';
        return -1;
    }
    if (loop_new(&w->loop) != OBS_OK)
        return -1;
    w->hub = &w->d[0];
    if (daemon_prepare(w, w->hub, "hub", "HUB", true) != 0 ||
        daemon_start(w, w->hub) != 0 || read_hub_endpoint(w) != 0)
        return -1;
    w->a = &w->d[1];
    w->b = &w->d[2];
    if (daemon_prepare(w, w->a, "a", "COL", false) != 0 ||
        daemon_start(w, w->a) != 0 ||
        daemon_prepare(w, w->b, "b", "MEX", false) != 0 ||
        daemon_start(w, w->b) != 0)
        return -1;
    if (loop_resume(w) != 0)
        return -1;
    int lrc = OBS_OK; /* a fixture must not fail_msg: no comp_poll here */
    if (poll_until(w, is_streaming, w->a, COMP_LINK_MS, &lrc) != 1 ||
        poll_until(w, is_streaming, w->b, COMP_LINK_MS, &lrc) != 1 ||
        poll_until(w, hub_sees_nodes, w, COMP_LINK_MS, &lrc) != 1) {
        if (lrc != OBS_OK) {
            print_error("component: the loop thread stopped: %s\n",
                        obs_strerror(lrc));
            return -1;
        }
        print_error("component: the nodes did not link with the hub at %s "
                    "within %d ms\n",
                    w->hub_endpoint, COMP_LINK_MS);
        print_link_states(w);
        return -1;
    }
    return 0;
}

int
comp_setup(void **state)
{
    const char *lvl = getenv("OBSYNC_TEST_LOG");
    int level = log_level_parse(lvl && *lvl ? lvl : "warn");
    log_set_level(level < 0 ? LOG_LVL_WARN : level);
    comp_world_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return -1;
    atomic_init(&w->stop, false);
    atomic_init(&w->loop_rc, OBS_OK);
    if (world_start(w) != 0) {
        world_free(w);
        return -1;
    }
    *state = w;
    return 0;
}

int
comp_teardown(void **state)
{
    comp_world_t *w = *state;
    *state = NULL;
    if (w != NULL)
        world_free(w);
    return 0;
}

/* ------------------------------------------------------------ requests */

void
comp_check_rc(int rc, int want, const char *expr, const char *file, int line)
{
    if (rc != want) {
        print_error("%s: got %d (%s), want %d (%s)\n", expr, rc,
                    obsync_strerror(rc), want, obsync_strerror(want));
        _fail(file, line);
    }
}

obsync_status_t *
comp_status(comp_daemon_t *d)
{
    obsync_status_t *st = NULL;
    int rc = obsync_status(d->c, &st);
    if (rc != OBSYNC_OK)
        fail_msg("%s: status: %s: %s", d->name, obsync_strerror(rc),
                 obsync_client_errmsg(d->c));
    return st;
}

const obsync_peer_status_t *
comp_peer(const obsync_status_t *st, const char *node_id)
{
    for (size_t i = 0; i < st->n_peers; i++)
        if (strcmp(st->peers[i].node_id, node_id) == 0)
            return &st->peers[i];
    return NULL;
}

static void
print_issue(void *arg, const obsync_issue_t *is)
{
    const comp_daemon_t *d = arg;
    print_error("%s: row %" PRIu64 ": %s: %s: %s\n", d->name, is->line,
                is->column, is->rule, is->message);
}

void
comp_put(comp_daemon_t *d, const obsync_obs_t *obs, size_t n,
         obsync_summary_t *sum)
{
    obsync_summary_t s;
    memset(&s, 0, sizeof(s));
    obsync_put_opts_t o = {
        .action = OBSYNC_MERGE, .on_issue = print_issue, .arg = d};
    int rc = obsync_put(d->c, obs, n, &o, &s);
    if (rc != OBSYNC_OK)
        fail_msg("%s: put of %zu: %s: %s", d->name, n, obsync_strerror(rc),
                 obsync_client_errmsg(d->c));
    if (s.rejected != 0 || !s.committed ||
        s.accepted + s.unchanged != (uint64_t)n)
        fail_msg("%s: put of %zu: accepted %" PRIu64 ", unchanged %" PRIu64
                 ", rejected %" PRIu64 ", %s",
                 d->name, n, s.accepted, s.unchanged, s.rejected,
                 s.committed ? "committed" : "not committed");
    if (sum != NULL)
        *sum = s;
}

void
comp_put1(comp_daemon_t *d, const char *series_key, const char *period,
          const char *value, obsync_summary_t *sum)
{
    static const obsync_attr_t unit[] = {{"UNIT_MEASURE", COMP_UNIT}};
    obsync_obs_t o = {.dataflow = COMP_DF_VIOLENCE,
                      .series_key = series_key,
                      .time_period = period,
                      .value = value,
                      .n_attrs = 1,
                      .attrs = unit};
    comp_put(d, &o, 1, sum);
}

const char *
comp_key(char *buf, size_t cap, const char *area, const char *sex,
         const char *src)
{
    snprintf(buf, cap, "A.%s.VC_IHR_PSRC.%s._T._T.%s", area, sex, src);
    return buf;
}

const char *
comp_attr(const obsync_obs_t *o, const char *id)
{
    for (size_t i = 0; i < o->n_attrs; i++)
        if (strcmp(o->attrs[i].id, id) == 0)
            return o->attrs[i].value;
    return NULL;
}

/* ------------------------------------------------------------ dumps */

static int
dump_push(comp_dump_t *dump, char *line)
{
    if (dump->n == dump->cap) {
        size_t cap = dump->cap ? dump->cap * 2 : 64;
        char **l = realloc(dump->lines, cap * sizeof(*l));
        if (l == NULL)
            return -1;
        dump->lines = l;
        dump->cap = cap;
    }
    dump->lines[dump->n++] = line;
    return 0;
}

static int
dump_obs(void *arg, const obsync_obs_t *o)
{
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (f == NULL)
        return OBSYNC_ENOMEM;
    fprintf(f, "%s|%s|%s|value=%s|", o->dataflow, o->series_key, o->time_period,
            o->value);
    for (size_t i = 0; i < o->n_attrs; i++)
        fprintf(f, "%s=%s;", o->attrs[i].id, o->attrs[i].value);
    fprintf(f,
            "|hlc=%" PRIu64 "|origin=%s#%" PRIu64 "|provider=%s|action=%d"
            "|tombstone=%d|batch=%s",
            o->hlc, o->origin, o->origin_seq, o->provider, (int)o->action,
            (int)o->tombstone, o->batch_id);
    if (fclose(f) != 0 || dump_push(arg, line) != 0) {
        free(line);
        return OBSYNC_ENOMEM;
    }
    return 0;
}

static int
cmp_lines(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int
comp_dump(comp_daemon_t *d, comp_dump_t *out)
{
    memset(out, 0, sizeof(*out));
    obsync_query_t q;
    memset(&q, 0, sizeof(q));
    q.include_deleted = true;
    int rc = obsync_query(d->c, &q, dump_obs, out);
    if (rc == OBSYNC_OK && out->n > 1)
        qsort(out->lines, out->n, sizeof(*out->lines), cmp_lines);
    return rc;
}

void
comp_dump_fini(comp_dump_t *dump)
{
    for (size_t i = 0; i < dump->n; i++)
        free(dump->lines[i]);
    free(dump->lines);
    memset(dump, 0, sizeof(*dump));
}

size_t
comp_dump_live(const comp_dump_t *dump)
{
    size_t n = 0;
    for (size_t i = 0; i < dump->n; i++)
        if (strstr(dump->lines[i], "|tombstone=0|") != NULL)
            n++;
    return n;
}

/* Index of the first line that differs (n of the shorter when one is a
 * prefix of the other), or SIZE_MAX when equal. */
static size_t
dump_diff(const comp_dump_t *x, const comp_dump_t *y)
{
    size_t n = x->n < y->n ? x->n : y->n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(x->lines[i], y->lines[i]) != 0)
            return i;
    return x->n == y->n ? SIZE_MAX : n;
}

typedef struct {
    comp_daemon_t *const *ds;
    size_t n;
} conv_t;

static bool
converged(void *arg)
{
    const conv_t *cv = arg;
    comp_dump_t first;
    if (comp_dump(cv->ds[0], &first) != OBSYNC_OK) {
        comp_dump_fini(&first);
        return false;
    }
    bool same = true;
    for (size_t i = 1; same && i < cv->n; i++) {
        comp_dump_t other;
        same = comp_dump(cv->ds[i], &other) == OBSYNC_OK &&
               dump_diff(&first, &other) == SIZE_MAX;
        comp_dump_fini(&other);
    }
    comp_dump_fini(&first);
    return same;
}

static void
print_differences(comp_daemon_t *const *ds, size_t n)
{
    comp_dump_t first;
    int rc0 = comp_dump(ds[0], &first);
    print_error("%s: %zu observation(s) (%s)\n", ds[0]->name, first.n,
                obsync_strerror(rc0));
    for (size_t i = 1; i < n; i++) {
        comp_dump_t other;
        int rc = comp_dump(ds[i], &other);
        size_t at = dump_diff(&first, &other);
        print_error("%s: %zu observation(s) (%s)\n", ds[i]->name, other.n,
                    obsync_strerror(rc));
        if (at != SIZE_MAX)
            print_error("  first difference at #%zu:\n  %s: %s\n  %s: %s\n", at,
                        ds[0]->name, at < first.n ? first.lines[at] : "(none)",
                        ds[i]->name, at < other.n ? other.lines[at] : "(none)");
        comp_dump_fini(&other);
    }
    comp_dump_fini(&first);
}

void
comp_assert_converged(comp_world_t *w, comp_daemon_t *const *ds, size_t n)
{
    conv_t cv = {ds, n};
    if (!comp_poll(w, converged, &cv, COMP_WAIT_MS)) {
        print_differences(ds, n);
        fail_msg("stores did not converge within %d ms", COMP_WAIT_MS);
    }
}

/* ------------------------------------------------------------ sample CSV */

/* Splits one CSV record (no line end) into malloc'd fields: RFC 4180
 * quotes, "" inside quotes. NULL when memory is short. */
static char **
csv_split(const char *line, size_t *n_out)
{
    size_t cap = 8, n = 0;
    char **f = malloc(cap * sizeof(*f));
    size_t len = strlen(line);
    char *buf = malloc(len + 1);
    if (f == NULL || buf == NULL) {
        free(f);
        free(buf);
        return NULL;
    }
    const char *p = line;
    for (;;) {
        size_t k = 0;
        bool quoted = *p == '"';
        if (quoted)
            p++;
        while (*p) {
            if (quoted && p[0] == '"' && p[1] == '"') {
                buf[k++] = '"';
                p += 2;
            } else if (quoted && *p == '"') {
                quoted = false;
                p++;
            } else if (!quoted && *p == ',') {
                break;
            } else {
                buf[k++] = *p++;
            }
        }
        buf[k] = '\0';
        if (n == cap) {
            cap *= 2;
            char **g = realloc(f, cap * sizeof(*g));
            if (g == NULL)
                break;
            f = g;
        }
        if ((f[n] = strdup(buf)) == NULL)
            break;
        n++;
        if (*p != ',')
            break;
        p++;
    }
    free(buf);
    *n_out = n;
    return f;
}

static void
fields_free(char **f, size_t n)
{
    for (size_t i = 0; f && i < n; i++)
        free(f[i]);
    free(f);
}

void
comp_csv_fini(comp_csv_t *csv)
{
    fields_free(csv->cols, csv->n_cols);
    for (size_t i = 0; i < csv->n_rows; i++)
        fields_free(csv->rows[i], csv->n_cols);
    free(csv->rows);
    memset(csv, 0, sizeof(*csv));
}

static size_t
col_index(const comp_csv_t *csv, const char *id)
{
    for (size_t i = 0; i < csv->n_cols; i++)
        if (strcmp(csv->cols[i], id) == 0)
            return i;
    return SIZE_MAX;
}

size_t
comp_csv_col(const comp_csv_t *csv, const char *id)
{
    size_t i = col_index(csv, id);
    if (i == SIZE_MAX)
        fail_msg("no column %s in the sample file", id);
    return i;
}

/* Reads the sample, keeps and writes the header and the rows of area.
 * 0, or -1 with a reason in why. */
static int
slice(FILE *in, FILE *out, const char *area, comp_csv_t *csv, const char **why)
{
    char line[8192];
    if (fgets(line, sizeof(line), in) == NULL) {
        *why = "empty";
        return -1;
    }
    fputs(line, out);
    line[strcspn(line, "\r\n")] = '\0';
    csv->cols = csv_split(line, &csv->n_cols);
    size_t ra = csv->cols ? col_index(csv, "REF_AREA") : SIZE_MAX;
    if (ra == SIZE_MAX) {
        *why = "no REF_AREA column";
        return -1;
    }
    size_t cap = 0;
    while (fgets(line, sizeof(line), in) != NULL) {
        char copy[sizeof(line)];
        memcpy(copy, line, sizeof(copy));
        line[strcspn(line, "\r\n")] = '\0';
        size_t n = 0;
        char **f = csv_split(line, &n);
        if (f == NULL || n != csv->n_cols) {
            fields_free(f, n);
            *why = "a row without one field per column";
            return -1;
        }
        if (strcmp(f[ra], area) != 0) {
            fields_free(f, n);
            continue;
        }
        if (csv->n_rows == cap) {
            cap = cap ? cap * 2 : 64;
            char ***r = realloc(csv->rows, cap * sizeof(*r));
            if (r == NULL) {
                fields_free(f, n);
                *why = "out of memory";
                return -1;
            }
            csv->rows = r;
        }
        csv->rows[csv->n_rows++] = f;
        fputs(copy, out);
    }
    return 0;
}

void
comp_sample_slice(const char *name, const char *area, const char *out_path,
                  comp_csv_t *csv)
{
    memset(csv, 0, sizeof(*csv));
    char path[512];
    snprintf(path, sizeof(path), "%s/deploy/sample-data/%s", source_dir(),
             name);
    const char *why = NULL;
    int rc = -1;
    FILE *in = fopen(path, "r");
    FILE *out = in ? fopen(out_path, "w") : NULL;
    if (in == NULL)
        why = "cannot open it (set OBSYNC_SOURCE_DIR)";
    else if (out == NULL)
        why = "cannot write the slice";
    else
        rc = slice(in, out, area, csv, &why);
    if (in != NULL)
        fclose(in);
    if (out != NULL && fclose(out) != 0 && rc == 0) {
        rc = -1;
        why = "cannot write the slice";
    }
    if (rc == 0 && csv->n_rows == 0) {
        rc = -1;
        why = "no row of that REF_AREA";
    }
    if (rc != 0) {
        comp_csv_fini(csv);
        fail_msg("%s (%s, slice %s): %s", path, area, out_path, why);
    }
}
