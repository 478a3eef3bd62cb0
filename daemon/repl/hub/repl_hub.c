/*
 * repl_hub.c - hub end of replication (see repl_hub.h, PROTOCOL.md §5):
 * its life cycle, the loop's hooks and status; the modules it is made of
 * are listed in hub_int.h.
 *
 * Write path, log first: a Publish is queued when it arrives; before the
 * loop sleeps, every queued Publish of every node is checked and appended to
 * the hub's log in ONE LMDB transaction committed with sync, and only then
 * are the PublishAcks sent (acked means durable). Per origin, changes apply
 * in origin_seq order: a seq at or below the origin's last accepted one is a
 * duplicate (no effect), a seq beyond last + 1 is a gap the node must
 * resend. The log is sequential, so acking costs one append per change, not
 * a random B-tree write per table. The checks that need only the change
 * and the structure (decode, key, validation) run ahead on a second thread
 * (hub_prep) as Publishes arrive, while this one commits and syncs; this
 * thread then appends each change it finds prepared, and checks the rest
 * the usual way.
 *
 * The keyed state (obs, history) is applied behind the log, in its own
 * transactions of at most HUB_STATE_APPLY_MAX changes, with meta
 * "state_applied" (the last hub_seq applied) in the same transaction: after
 * a crash the state resumes from there, rebuilt from the durable log.
 * Between two versions of one key the greater (hlc, origin) wins
 * (version_cmp, model/version.h) on every daemon, so a change that loses is
 * logged like any other and loses again wherever it is applied; the hub counts
 * it as superseded when it applies it to its own state. The log is never
 * trimmed past state_applied; a snapshot, and a local write at the hub,
 * first bring the state up to the log.
 *
 * Test hook: with OBSYNC_TEST_HOLD_STATE set in its environment the hub
 * does not apply its state behind the log on its own (only before a
 * snapshot, a local write and a clean stop), so tests can hold the state
 * behind the log deterministically.
 *
 * Read path: each session streams the log from its node's cursor, one
 * LogBatch per credit the node grants, read zero-copy from the map; a node
 * too far behind (or new, or from another hub incarnation) first gets a
 * snapshot of the state fenced by a hub_seq. Nothing is buffered per node
 * beyond the frame being sent, so a stalled node costs no memory.
 */
#include "repl_hub.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "hub_int.h"
#include "log.h"
#include "obs_err.h"

static int load_state_applied(repl_hub_t *self);

/* Frees dead sessions. Two passes: peers are marked down while every
 * session is still allocated, then the dead ones are freed. */
static void
reap(repl_hub_t *self)
{
    hub_fanout_drop(self, NULL); /* before any session is freed */
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *s = self->sess[i];
        if (s->fsm.state != RH_DEAD || s->peer == SIZE_MAX)
            continue;
        bool other = false;
        for (size_t j = 0; j < self->n_sess; j++)
            other |= self->sess[j]->peer == s->peer &&
                     self->sess[j]->fsm.state != RH_DEAD;
        peer_t *p = hub_sess_peer(self, s);
        if (!other && p->up) {
            p->up = false;
            (void)snprintf(p->state, sizeof(p->state), "down");
            log_notice("hub: node %s is down", p->node_id);
        }
        if (s->hello_done) {
            char who[OBS_ID_MAX + 16];
            (void)snprintf(who, sizeof(who), "hub: node %s", p->node_id);
            repl_session_ended(who, s->progress, &p->stalled,
                               (double)(hub_now_ms() - s->started_ms) / 1000.0,
                               p->down.rate_bps ? p->down.rate_bps
                                                : p->rate_in_bps,
                               (unsigned)s->fsm.dead_ms);
        }
    }
    size_t w = 0;
    for (size_t i = 0; i < self->n_sess; i++) {
        if (self->sess[i]->fsm.state == RH_DEAD)
            hub_sess_free(self, self->sess[i]);
        else
            self->sess[w++] = self->sess[i];
    }
    self->n_sess = w;
}

void
repl_hub_before_sleep(repl_hub_t *self)
{
    hub_commit_publishes(self);
    if (self->log_grew) {
        self->log_grew = false;
        for (size_t i = 0; i < self->n_sess; i++) {
            sess_t *s = self->sess[i];
            rh_event_t ev = {.type = RH_EV_LOG_GREW,
                             .now_ms = hub_now_ms(),
                             .log_last = self->log_last};
            hub_tell_log_last(self, s, ev.now_ms);
            hub_step(self, s, &ev);
        }
    }
    /* Acks and streams go first; then the state follows the log, for at
     * most HUB_STATE_TURN_MS a turn so acks and heartbeats keep flowing,
     * which is also enough to keep pace with what a turn accepts. */
    uint64_t t0 = hub_now_ms();
    while (hub_state_due(self, hub_now_ms())) {
        int rc = hub_apply_state(self, HUB_STATE_APPLY_MAX);
        if (rc != OBS_OK) {
            log_warnr(rc,
                      "hub: applying the log after hub_seq %" PRIu64
                      " to the state (retrying in 1 s)",
                      self->state_applied);
            self->state_retry_ms = hub_now_ms() + 1000;
        }
        if (self->state_applied == self->log_last)
            self->state_done_ms = hub_now_ms();
        if (hub_now_ms() - t0 >= HUB_STATE_TURN_MS)
            break;
    }
    reap(self);
}

bool
repl_hub_has_work(const repl_hub_t *self)
{
    for (size_t i = 0; i < self->n_sess; i++)
        if (self->sess[i]->pubs)
            return true;
    return hub_state_due(self, hub_now_ms());
}

void
repl_hub_log_grew(repl_hub_t *self)
{
    obsdb_txn_t *txn = NULL;
    if (obsdb_begin(self->env.db, false, &txn) == OBS_OK &&
        obsdb_log_bounds(txn, &self->log_first, &self->log_last) == OBS_OK &&
        obsdb_meta_get_u64(txn, STATE_APPLIED, &self->state_applied) == OBS_OK)
        self->log_grew = true;
    obsdb_abort(&txn);
}

void
repl_hub_cron(repl_hub_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *s = self->sess[i];
        rh_event_t ev = {.type = RH_EV_TICK, .now_ms = now};
        hub_step(self, s, &ev);
        hub_tell_log_last(self, s, now);
    }
    hub_security_cron(self, now);
    if (now >= self->next_trim_ms) {
        hub_trim_log(self);
        self->next_trim_ms = now + 1000;
    }
    reap(self);
}

void
repl_hub_structure_changing(repl_hub_t *self)
{
    hub_prep_pause(self->prep);
    for (size_t i = 0; i < self->n_sess; i++) /* checked against the old */
        for (pub_t *p = self->sess[i]->pubs; p; p = p->next)
            hub_prep_redo(self->prep, &p->job);
}

void
repl_hub_structure_loaded(repl_hub_t *self, bool changed)
{
    hub_prep_resume(self->prep);
    if (!changed)
        return;
    hub_fanout_drop(self, NULL); /* filtered against the old structure */
    if (repl_structure_hash(self->env.st, self->hash) != OBS_OK)
        return;
    for (size_t i = 0; i < self->n_sess; i++)
        if (self->sess[i]->hello_done)
            hub_send_structure(self, self->sess[i]);
}

/* ------------------------------------------------------------ status */

void
repl_hub_status(repl_hub_t *self, msg_status_reply_t *sr)
{
    free(self->status_rows);
    size_t n = self->n_peers;
    self->status_rows = calloc(n ? n : 1, sizeof(*self->status_rows));
    sr->log_first = self->log_first;
    sr->log_last = self->log_last;
    sr->state_applied = self->state_applied;
    sr->batches_shared = self->batches_shared;
    sr->snapshots = self->snapshots;
    sr->hub_endpoint = self->endpoint;
    hub_security_status(self, sr);
    if (self->status_rows == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const peer_t *p = &self->peers[i];
        bool slow = link_is_slow(&p->down) ||
                    (p->rate_in_bps != 0 && p->rate_in_bps < LINK_SLOW_BPS &&
                     p->down.rate_bps == 0);
        self->status_rows[i] = (msg_peer_status_t){
            .node_id = p->node_id,
            .up = p->up,
            .last_seen_ms = p->last_seen_ms,
            .address = p->address,
            .cursor = p->cursor,
            .lag_changes =
                self->log_last > p->cursor ? self->log_last - p->cursor : 0,
            .accepted = p->accepted,
            .rejected = p->rejected,
            .duplicates = p->duplicates,
            .conflicts = p->superseded,
            .bytes_in = p->bytes_in,
            .bytes_out = p->bytes_out,
            .state = p->state,
            .last_origin_seq = p->last_origin_seq,
            .clock_refused = p->clock_refused,
            .link = p->stalled >= 3 ? "no progress"
                    : slow          ? "slow link"
                                    : "ok",
            .rate_out_bps = p->down.rate_bps,
            .rate_in_bps = p->rate_in_bps,
            .reconnects = p->reconnects,
            .key = p->key_fp,
            .refused_reasons = {hub_door_reason_names(), DOOR_REASONS},
            .refused_counts = {p->refused, DOOR_REASONS}};
    }
    sr->peers = self->status_rows;
    sr->n_peers = n;
}

/* ---------------------------------------------------------- lifecycle */

static int
write_endpoint_file(const repl_hub_t *self, char *err, size_t cap)
{
    char path[512], tmp[520];
    int n = snprintf(path, sizeof(path), "%s/repl.endpoint",
                     self->env.cfg->data_dir);
    if (n < 0 || (size_t)n >= sizeof(path)) { /* not a path cut short */
        (void)snprintf(err, cap, "data_dir too long for repl.endpoint: %s",
                       self->env.cfg->data_dir);
        return OBS_ECONFIG;
    }
    (void)snprintf(tmp, sizeof(tmp), "%s.tmp", path); /* 8 bytes more */
    FILE *f = fopen(tmp, "w");
    bool ok = f != NULL && fprintf(f, "%s\n", self->endpoint) >= 0;
    if (f != NULL && fclose(f) != 0) /* closed on every path */
        ok = false;
    if (!ok || rename(tmp, path) != 0) {
        (void)snprintf(err, cap, "cannot write %s", path);
        return OBS_ESYS;
    }
    return OBS_OK;
}

int
repl_hub_new(const repl_env_t *env, repl_hub_t **out, char *err, size_t cap)
{
    *out = NULL;
    repl_hub_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->env = *env;
    self->hold_state = getenv("OBSYNC_TEST_HOLD_STATE") != NULL;
    if (version_cache_init(&self->vcache, HUB_VERSION_CACHE) != OBS_OK)
        log_warnx("hub: no memory for the version cache; the state apply "
                  "reads each version back from the log");
    self->sock = zmq_socket(env->zctx, ZMQ_ROUTER);
    int linger = 0, hwm = 2000, mandatory = 0;
    int rc = self->sock ? OBS_OK : OBS_ESYS;
    if (rc == OBS_OK) {
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(self->sock, ZMQ_ROUTER_MANDATORY, &mandatory,
                       sizeof(mandatory));
        rc = hub_security_setup(self, err, cap); /* before the bind */
    }
    if (rc == OBS_OK) {
        if (zmq_bind(self->sock, env->cfg->repl_bind) == 0) {
            size_t len = sizeof(self->endpoint);
            zmq_getsockopt(self->sock, ZMQ_LAST_ENDPOINT, self->endpoint, &len);
        } else {
            (void)snprintf(err, cap, "repl_bind %s: %s", env->cfg->repl_bind,
                           zmq_strerror(zmq_errno()));
            rc = OBS_ESYS;
        }
    } else if (self->sock == NULL) {
        (void)snprintf(err, cap, "hub: socket: %s", zmq_strerror(zmq_errno()));
    }
    if (rc == OBS_OK)
        rc = write_endpoint_file(self, err, cap);
    if (rc == OBS_OK)
        rc = repl_structure_hash(env->st, self->hash);
    if (rc == OBS_OK)
        rc = load_state_applied(self);
    if (rc == OBS_OK && (rc = hub_prep_new(env->st, HUB_PREP_AHEAD, true,
                                           &self->prep)) != OBS_OK)
        (void)snprintf(err, cap, "hub: cannot start the checking thread: %s",
                       obs_strerror(rc));
    if (rc != OBS_OK) {
        repl_hub_destroy(&self);
        return rc;
    }
    if (!self->curve)
        log_warnx("hub: replication on %s is PLAINTEXT (security = "
                  "plaintext): no encryption, no authentication: any process "
                  "that reaches the port can write as any node. Tests and "
                  "demos only.",
                  self->endpoint);
    *out = self;
    return OBS_OK;
}

/* Reads the log bounds and state_applied. A store without state_applied
 * comes from before the state was applied behind the log, when both were
 * written together: its state holds the whole log, which is recorded now,
 * before any change is accepted. */
static int
load_state_applied(repl_hub_t *self)
{
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->env.db, true, &txn);
    if (rc == OBS_OK)
        rc = obsdb_log_bounds(txn, &self->log_first, &self->log_last);
    if (rc == OBS_OK) {
        rc = obsdb_meta_get_u64(txn, STATE_APPLIED, &self->state_applied);
        if (rc == OBS_ENOENT) {
            self->state_applied = self->log_last;
            rc = obsdb_meta_put_u64(txn, STATE_APPLIED, self->log_last);
        }
    }
    if (rc == OBS_OK)
        rc = obsdb_commit(&txn);
    else
        obsdb_abort(&txn);
    if (rc == OBS_OK && self->state_applied < self->log_last)
        log_notice("hub: the state holds the log up to hub_seq %" PRIu64
                   " of %" PRIu64 ": applying the rest",
                   self->state_applied, self->log_last);
    return rc;
}

void
repl_hub_destroy(repl_hub_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    repl_hub_t *self = *selfp;
    /* a clean stop leaves the state in step with the log */
    if (self->state_applied < self->log_last &&
        repl_hub_catch_up(self) != OBS_OK)
        log_warnx("hub: stopping with the state at hub_seq %" PRIu64
                  " of %" PRIu64 "; it is applied at the next start",
                  self->state_applied, self->log_last);
    hub_fanout_drop(self, NULL);
    bool told = false;
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *s = self->sess[i];
        if (s->hello_done && s->fsm.state != RH_DEAD) {
            /* nodes reconnect now rather than after peer_timeout_ms */
            hub_send_goodbye(self, s, OBS_OK, "hub stopping");
            told = true;
        }
        hub_sess_free(self, s);
    }
    if (told && self->sock) { /* time for the Goodbyes to leave */
        int linger = 500;
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
    }
    if (self->prep) { /* how much the checking thread took off the loop */
        uint64_t ahead = 0, inline_ = 0;
        hub_prep_counts(self->prep, &ahead, &inline_);
        log_info("hub: %" PRIu64 " publish(es) checked ahead, %" PRIu64
                 " at their commit",
                 ahead, inline_);
    }
    hub_prep_destroy(&self->prep); /* after every job is forgotten */
    if (self->sock)
        zmq_close(self->sock);
    hub_security_fini(self); /* after the socket its door watches */
    version_cache_fini(&self->vcache);
    free(self->peers);
    free(self->status_rows);
    free(self);
    *selfp = NULL;
}

void *
repl_hub_socket(repl_hub_t *self)
{
    return self->sock;
}

void *
repl_hub_zap_socket(repl_hub_t *self)
{
    return hub_door_zap_socket(self->door);
}

void *
repl_hub_monitor_socket(repl_hub_t *self)
{
    return hub_door_monitor_socket(self->door);
}

void
repl_hub_on_zap(repl_hub_t *self)
{
    hub_door_on_zap(self->door, hub_now_ms());
}

void
repl_hub_on_monitor(repl_hub_t *self)
{
    hub_door_on_monitor(self->door);
}
