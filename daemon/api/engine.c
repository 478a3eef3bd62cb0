/*
 * engine.c - one obsyncd on a loop: opens the store, loads the structure,
 * binds the local API, starts the role's replication, and registers their
 * handlers with the loop (see engine.h; the request modules are listed in
 * api_int.h).
 *
 * Request flow. Reads (get, query, history, status, structure list) run at
 * once in a short read transaction. Writes (put, delete, import finish) are
 * validated at once and queued as a `pending_t`; before the loop sleeps,
 * every queued put/delete is applied in ONE write transaction and committed
 * with sync (group commit), each import in a transaction of its own, and only
 * then are the replies sent: a reply that says "committed" is durable.
 * Imports are staged in memory (import_t) across ImportRows messages and
 * reach the store only at ImportFinish, so kill -9 at any moment leaves an
 * import wholly present or wholly absent; an import begun with commit_rows
 * commits each part of that many rows as it arrives instead (one batch id,
 * counts summed at the finish). MDB_MAP_FULL makes the engine grow
 * the map and redo the group; past map_max the writers get OBS_ESTOREFULL
 * and the store stays readable.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "api_int.h"
#include "log.h"
#include "mem.h"
#include "obs_err.h"

#define STRUCTURE_FILE_MAX ((size_t)64 * 1024 * 1024) /* read at most */

/* Reads the structure file into *text (the caller frees it, even on error);
 * *len its length. OBS_ESYS (err says why), OBS_ENOMEM. */
static int
read_structure_file(const char *path, char **text, size_t *len, char *err,
                    size_t cap)
{
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        (void)snprintf(err, cap, "structure_file %s: %s", path,
                       strerror(errno));
        return OBS_ESYS;
    }
    int rc = OBS_OK;
    *text = malloc(STRUCTURE_FILE_MAX);
    if (*text == NULL) {
        rc = OBS_ENOMEM;
    } else {
        *len = fread(*text, 1, STRUCTURE_FILE_MAX, f);
        if (ferror(f)) { /* not a structure cut short */
            (void)snprintf(err, cap, "structure_file %s: %s", path,
                           strerror(errno));
            rc = OBS_ESYS;
        }
    }
    (void)fclose(f); /* opened for reading: nothing to lose */
    return rc;
}

static int
load_structure(engine_t *self, char *err, size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_structure_get(txn, &text, &len);
    if (rc == OBS_OK) {
        uint64_t v = 0;
        if (obsdb_meta_get_u64(txn, "origin_seq", &v) == OBS_OK)
            self->origin_seq = v;
        if (obsdb_meta_get_u64(txn, "hlc", &v) == OBS_OK)
            hlc_init(&self->hlc, v);
    }
    obsdb_abort(&txn);
    issue_list_t issues;
    issue_list_init(&issues, 20);
    const char *source = "store";
    if (rc == OBS_ENOENT && self->cfg->structure_file) {
        source = self->cfg->structure_file;
        rc = read_structure_file(source, &text, &len, err, cap);
    } else if (rc == OBS_ENOENT) {
        rc = OBS_OK; /* no structure yet: every import is refused (R1) */
    }
    if (rc == OBS_OK && text != NULL) {
        rc = structure_load_text(self->st, text, len, source, &issues, NULL);
        if (rc != OBS_OK)
            (void)snprintf(err, cap, "%s",
                           issues.n ? issues.items[0].message
                                    : obs_strerror(rc));
        else if (strcmp(source, "store") != 0)
            rc = admin_persist_structure(self);
    }
    free(text);
    issue_list_fini(&issues);
    return rc;
}

/* Structure text from the hub: merged like `obsync structure load`, but
 * only between imports (their mappers point into the structure). */
static int
load_replicated_structure(void *arg, const char *text, size_t len)
{
    engine_t *self = arg;
    if (import_any_open(self))
        return OBS_EBUSY;
    commit_flush(self); /* queued writes point into the structure */
    issue_list_t issues;
    issue_list_init(&issues, 5);
    size_t loaded = 0;
    int rc = structure_load_text(self->st, text, len, "hub", &issues, &loaded);
    if (rc != OBS_OK && issues.n)
        log_errx("structure from the hub refused: %s", issues.items[0].message);
    if (rc == OBS_OK && loaded > 0) {
        rc = admin_persist_structure(self);
        log_notice("structure: %zu artefact(s) received from the hub", loaded);
    }
    issue_list_fini(&issues);
    return rc;
}

/* ---- the engine's handlers on the loop */

static void
on_ctl_readable(void *arg)
{
    engine_t *self = arg;
    ctl_dispatch(self->ctl, api_on_request, self);
}

static void on_repl_readable(void *arg);

/* A node opens a new socket for each connection to its hub (and has none
 * between two): the loop polls the current one. Called at the end of every
 * turn, so a socket closed during the turn is off the loop before the next
 * poll. */
static int
track_repl_socket(engine_t *self)
{
    void *sock = self->hub    ? repl_hub_socket(self->hub)
                 : self->node ? repl_node_socket(self->node)
                              : NULL;
    if (sock == self->repl_sock)
        return OBS_OK;
    if (self->repl_sock != NULL)
        loop_remove_socket(self->loop, self->repl_sock);
    self->repl_sock = sock;
    return sock ? loop_add_socket(self->loop, sock, on_repl_readable, self)
                : OBS_OK;
}

static void
on_repl_readable(void *arg)
{
    engine_t *self = arg;
    if (self->hub)
        repl_hub_on_readable(self->hub);
    else
        repl_node_on_readable(self->node);
}

/* cron, 10 Hz: import expiry, heartbeats, timeouts, retries */
static void
on_cron(void *arg, uint64_t now_ms)
{
    engine_t *self = arg;
    import_expire(self);
    if (self->hub)
        repl_hub_cron(self->hub, now_ms);
    if (self->node)
        repl_node_cron(self->node, now_ms);
}

/* before sleep: the group commit, then replies and acks; then the hub's
 * streams. More work when the hub has streams ready to send. */
static bool
on_before_sleep(void *arg)
{
    engine_t *self = arg;
    mem_advise_heap();
    commit_flush(self);
    if (self->hub)
        repl_hub_before_sleep(self->hub);
    if (track_repl_socket(self) != OBS_OK)
        log_errx("no memory to poll the replication socket");
    return self->pending_head != NULL ||
           (self->hub && repl_hub_has_work(self->hub));
}

static void
on_zap_readable(void *arg)
{
    repl_hub_on_zap(arg);
}

static void
on_monitor_readable(void *arg)
{
    repl_hub_on_monitor(arg);
}

static void
on_hup(void *arg)
{
    engine_t *self = arg;
    char msg[300];
    if (self->hub) /* logged by the hub */
        (void)repl_hub_reload(self->hub, msg, sizeof(msg));
    else
        log_notice("SIGHUP: a node has nothing to reload");
}

static int
register_handlers(engine_t *self)
{
    int rc = loop_add_socket(self->loop, ctl_socket(self->ctl), on_ctl_readable,
                             self);
    if (rc == OBS_OK && self->hub)
        rc = loop_add_socket(self->loop, repl_hub_zap_socket(self->hub),
                             on_zap_readable, self->hub);
    if (rc == OBS_OK && self->hub)
        rc = loop_add_socket(self->loop, repl_hub_monitor_socket(self->hub),
                             on_monitor_readable, self->hub);
    if (rc == OBS_OK)
        loop_on_hup(self->loop, on_hup, self);
    if (rc == OBS_OK)
        rc = track_repl_socket(self);
    if (rc == OBS_OK)
        rc = loop_add_cron(self->loop, 100, on_cron, self);
    if (rc == OBS_OK)
        rc = loop_add_before_sleep(self->loop, on_before_sleep, self);
    return rc;
}

int
engine_new(const cfg_t *cfg, loop_t *loop, engine_t **out, char *err,
           size_t cap)
{
    *out = NULL;
    engine_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->cfg = cfg;
    self->loop = loop;
    self->started = time(NULL);
    hlc_init(&self->hlc, 0);
    obsdb_opts_t o = {.dir = cfg->data_dir,
                      .node_id = cfg->node_id,
                      .map_size = cfg->map_size,
                      .map_max = cfg->map_max,
                      .map_step = cfg->map_step,
                      .no_sync = cfg->no_sync,
                      .no_outbox = cfg->role == CFG_ROLE_HUB};
    int rc = obsdb_open(&o, &self->db, err, cap);
    if (rc == OBS_OK && (self->st = structure_new()) == NULL)
        rc = OBS_ENOMEM;
    if (rc == OBS_OK)
        rc = load_structure(self, err, cap);
    if (rc == OBS_OK && (self->zctx = zmq_ctx_new()) == NULL)
        rc = OBS_ESYS;
    if (rc == OBS_OK)
        rc = ctl_open(self->zctx, cfg->api_socket, cfg->api_mode,
                      cfg->api_group, cfg->max_frame, &self->ctl, err, cap);
    self->renv = (repl_env_t){.cfg = cfg,
                              .db = self->db,
                              .st = self->st,
                              .hlc = &self->hlc,
                              .zctx = self->zctx,
                              .load_structure = load_replicated_structure,
                              .origin_seq = &self->origin_seq,
                              .engine = self};
    if (rc == OBS_OK && cfg->role == CFG_ROLE_HUB)
        rc = repl_hub_new(&self->renv, &self->hub, err, cap);
    else if (rc == OBS_OK && cfg->hub_endpoint)
        rc = repl_node_new(&self->renv, &self->node, err, cap);
    if (rc == OBS_OK && (rc = register_handlers(self)) != OBS_OK)
        (void)snprintf(err, cap, "out of memory");
    if (rc != OBS_OK) {
        engine_destroy(&self);
        return rc;
    }
    log_notice("%s %s ready: api=ipc://%s store=%s epoch=%s",
               cfg_role_name(cfg->role), cfg->node_id, cfg->api_socket,
               cfg->data_dir, obsdb_epoch(self->db));
    *out = self;
    return OBS_OK;
}

void
engine_destroy(engine_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    engine_t *self = *selfp;
    loop_remove_arg(self->loop, self);
    loop_on_hup(self->loop, NULL, NULL);
    if (self->hub)
        loop_remove_arg(self->loop, self->hub);
    if (self->ctl != NULL) { /* started: what is queued is committed */
        commit_flush(self);
        log_notice("stopping: %" PRIu64 " commits, %" PRIu64 " writes grouped",
                   self->commits, self->writes_grouped);
    }
    while (self->pending_head) {
        pending_t *next = self->pending_head->next;
        commit_pending_free(self->pending_head);
        self->pending_head = next;
    }
    for (size_t i = 0; i < IMPORTS_MAX; i++)
        import_free(self->imports[i]);
    repl_hub_destroy(&self->hub);
    repl_node_destroy(&self->node);
    ctl_close(&self->ctl);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    structure_destroy(&self->st);
    obsdb_close(&self->db);
    free(self);
    *selfp = NULL;
}
