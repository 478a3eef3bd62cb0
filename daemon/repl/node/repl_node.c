/*
 * repl_node.c - the node end of replication (see repl_node.h, PROTOCOL.md
 * §5): the session with the hub. It owns the DEALER socket, decodes what
 * arrives (msg_decode), turns each message into an event for the node state
 * machine (repl_fsm.c rn_*) and performs the actions the machine returns;
 * it also keeps the node's lifecycle (persisted cursor and subscription)
 * and fills the node's rows of a status reply.
 *
 * The state machine decides; this file performs. What the actions do to the
 * store is in node_stream.c (the hub's log and snapshots in) and
 * node_publish.c (the outbox out); node_int.h is what the three share. The
 * engine (daemon/api/) calls the functions of repl_node.h.
 *
 * Threading: the engine's loop only. Ownership: a decoded message goes
 * into its event (rn_event_t.msg); rn_fsm_step moves it into the action
 * that applies it (APPLY_BATCH, APPLY_CHUNK), whose performer takes it
 * (node_stream.c keeps a LogBatch until its group commit). node_step
 * destroys whatever the event and the actions still hold after them (a
 * batch dropped, a message out of state), so every message is freed once.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "log.h"
#include "node_int.h"
#include "obs_err.h"
#include "sha256.h"

/* ----------------------------------------------------------- sending */

uint64_t
node_send(repl_node_t *self, const msg_t *m)
{
    uint64_t bytes = 0;
    if (self->sock == NULL)
        return 0;
    int rc = repl_send(self->sock, NULL, 0, m, &bytes);
    if (rc != OBS_OK)
        log_debug("node: frame to the hub dropped: %s", obs_strerror(rc));
    return rc == OBS_OK ? bytes : 0;
}

static void
send_hello(repl_node_t *self)
{
    msg_t m = {.type = MSG_HELLO};
    msg_hello_t *h = &m.u.hello;
    h->node_id = self->env.cfg->node_id;
    h->node_epoch = obsdb_epoch(self->env.db);
    h->cursor = self->fsm.cursor;
    h->hub_epoch = self->hub_epoch;
    h->subscription.dataflows =
        (msg_strs_t){(const char *const *)self->dfs, self->n_dfs};
    h->subscription.areas =
        (msg_strs_t){(const char *const *)self->areas, self->n_areas};
    h->structure_hash = self->hash;
    h->provider = self->env.cfg->provider;
    node_send(self, &m);
}

static void
send_credit(repl_node_t *self, uint32_t n, bool resync)
{
    msg_t m = {.type = MSG_CREDIT};
    m.u.credit.cursor = self->fsm.cursor;
    m.u.credit.batches = n;
    m.u.credit.resync = resync;
    node_send(self, &m);
}

static void
send_heartbeat(repl_node_t *self)
{
    msg_t m = {.type = MSG_HEARTBEAT};
    m.u.heartbeat.now_ms = hlc_wall_ms();
    m.u.heartbeat.cursor = self->fsm.cursor;
    node_send(self, &m);
}

/* ------------------------------------------------------------ actions */

static void
connect_hub(repl_node_t *self)
{
    self->sock = zmq_socket(self->env.zctx, ZMQ_DEALER);
    if (self->sock == NULL) {
        log_warnx("node: socket: %s", zmq_strerror(zmq_errno()));
        return;
    }
    char id[OBS_ID_MAX + 24];
    (void)snprintf(id, sizeof(id), "%s-%08x", self->env.cfg->node_id,
                   (unsigned)(node_now_ms() & 0xffffffffu));
    int linger = 0, hwm = 1000, ivl = 100, ivl_max = 5000;
    int64_t maxmsg = (int64_t)self->env.cfg->max_frame;
    zmq_setsockopt(self->sock, ZMQ_ROUTING_ID, id, strlen(id));
    zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(self->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(self->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(self->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
                   sizeof(ivl_max));
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (self->curve) { /* the hub's key pinned: nobody else can answer */
        zmq_setsockopt(self->sock, ZMQ_CURVE_SERVERKEY, self->hub_key, 40);
        zmq_setsockopt(self->sock, ZMQ_CURVE_PUBLICKEY, self->own.public_txt,
                       40);
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, self->own.secret_txt,
                       40);
    }
    if (zmq_connect(self->sock, self->env.cfg->hub_endpoint) != 0)
        log_warnx("node: connect %s: %s", self->env.cfg->hub_endpoint,
                  zmq_strerror(zmq_errno()));
}

static void
disconnect_hub(repl_node_t *self)
{
    if (self->sock)
        zmq_close(self->sock);
    self->sock = NULL;
}

static void
session_started(repl_node_t *self)
{
    self->reconnects += self->sessions > 0;
    self->sessions++;
    self->progress = false;
    self->session_ms = node_now_ms();
    self->in_start_ms = 0;
    self->applied_start_ms = 0;
    link_reset(&self->up);
}

/* A session ended: one that moved nothing (no batch or chunk applied, no
 * publish acked) counts toward "no progress" (repl_session_ended). */
static void
session_ended(repl_node_t *self)
{
    link_reset(&self->up);
    repl_session_ended("node", self->progress, &self->stalled,
                       (double)(node_now_ms() - self->session_ms) / 1000.0,
                       self->up.rate_bps ? self->up.rate_bps
                                         : self->rate_in_bps,
                       (unsigned)self->fsm.dead_ms);
}

/* Performs one action; may produce a follow-up event (*next, which never
 * carries a message). An action's message is taken by its performer; one
 * left in *a is destroyed by node_step. */
static bool
do_action(repl_node_t *self, rn_action_t *a, rn_event_t *next)
{
    memset(next, 0, sizeof(*next));
    next->now_ms = node_now_ms();
    switch (a->type) {
    case RN_A_CONNECT:
        connect_hub(self);
        session_started(self);
        return false;
    case RN_A_DISCONNECT:
        stream_drop(self); /* not applied: they come again from the cursor */
        disconnect_hub(self);
        session_ended(self);
        return false;
    case RN_A_SEND_HELLO:
        send_hello(self);
        return false;
    case RN_A_SEND_CREDIT:
        send_credit(self, (uint32_t)a->n, a->resync);
        return false;
    case RN_A_APPLY_BATCH: {
        msg_t *m = repl_take(&a->msg);
        stream_keep_batch(self, &m);
        return false;
    }
    case RN_A_DROP_BATCH:
        log_info("node: dropped a batch from %" PRIu64 " (cursor %" PRIu64
                 "): resynchronising",
                 a->n, self->fsm.cursor);
        return false;
    case RN_A_BEGIN_SNAPSHOT:
        log_notice("node: receiving a snapshot fenced at hub_seq %" PRIu64,
                   a->n);
        return false;
    case RN_A_APPLY_CHUNK: {
        msg_t *m = repl_take(&a->msg);
        stream_apply_chunk(self, &m, next);
        return true;
    }
    case RN_A_FINISH_SNAPSHOT:
        if (stream_finish_snapshot(self, a->n))
            return false;
        next->type = RN_EV_PROTO_ERROR; /* reconnect: the snapshot restarts */
        return true;
    case RN_A_SEND_PUBLISH: {
        uint64_t last = pub_send(self, a->n);
        if (last == 0)
            return false;
        next->type = RN_EV_PUBLISHED;
        next->seq = last;
        return true;
    }
    case RN_A_ACK_OUTBOX:
        /* Trimming is lazy: each trim is a commit (lazy too), and an entry
         * trimmed late is only resent and deduplicated. */
        pub_maybe_ack(self, node_now_ms());
        return false;
    case RN_A_RESTORE_OUTBOX:
        pub_restore(self, a->n);
        return false;
    case RN_A_SEND_HEARTBEAT:
        send_heartbeat(self);
        return false;
    }
    return false;
}

void
node_step(repl_node_t *self, rn_event_t *ev)
{
    /* A chain is a few follow-ups (published, applied, credit); far more
     * is a bug, which is said rather than looped on. */
    enum { STEPS_MAX = 64 };
    for (int step = 0; step < STEPS_MAX; step++) {
        rn_state_t before = self->fsm.state;
        rn_actions_t out;
        rn_fsm_step(&self->fsm, ev, &out);
        /* not consumed (out of state, a gap): dropped here */
        msg_destroy(&ev->msg);
        if (before != self->fsm.state)
            log_notice("node: hub %s: state %s -> %s (event %s)",
                       self->env.cfg->hub_endpoint, rn_state_name(before),
                       rn_state_name(self->fsm.state), rn_event_name(ev->type));
        if (before == RN_HELLO && self->fsm.state == RN_IDLE &&
            ev->type == RN_EV_TICK && self->curve)
            /* a refused CURVE handshake is silent at this end */
            log_warnx("node: no answer from the hub to our Hello: if it "
                      "runs, it may not allow our key %s... yet, or "
                      "hub_public_key (%s...) is not its key",
                      self->key_fp, self->hub_fp);
        rn_event_t next;
        bool more = false;
        for (size_t i = 0; i < out.n; i++) {
            rn_event_t follow;
            if (do_action(self, &out.a[i], &follow)) {
                next = follow;
                more = true;
            }
            msg_destroy(&out.a[i].msg); /* NULL when its performer took it */
        }
        if (!more)
            return;
        *ev = next;
    }
    log_errx("node: %d steps in one turn (state %s, event %s): a bug; the "
             "rest waits for the next event",
             (int)STEPS_MAX, rn_state_name(self->fsm.state),
             rn_event_name(ev->type));
}

/* ---------------------------------------------------------- receiving */

static void
try_structure(repl_node_t *self)
{
    if (self->pending_structure == NULL)
        return;
    int rc = self->env.load_structure(self->env.engine, self->pending_structure,
                                      self->pending_len);
    if (rc == OBS_EBUSY)
        return; /* imports open: try again from cron */
    if (rc != OBS_OK)
        log_errr(rc, "node: structure from the hub not loaded");
    free(self->pending_structure);
    self->pending_structure = NULL;
    repl_structure_hash(self->env.st, self->hash);
}

static void
on_structure(repl_node_t *self, const msg_structure_update_t *u)
{
    free(self->pending_structure);
    self->pending_len = strlen(u->text);
    self->pending_structure = strdup(u->text);
    try_structure(self);
}

/* Turns the message into an event and steps the machine with it; the
 * message goes with the event (consumed: *mp is NULL after). */
static void
dispatch(repl_node_t *self, msg_t **mp)
{
    const msg_t *m = *mp;
    rn_event_t ev = {.now_ms = node_now_ms()};
    switch (m->type) {
    case MSG_WELCOME:
        ev.type = RN_EV_WELCOME;
        ev.snapshot = m->u.welcome.snapshot;
        ev.seq = m->u.welcome.last_origin_seq;
        stream_save_cursor(self); /* under the epoch it refers to */
        (void)snprintf(self->next_epoch, sizeof(self->next_epoch), "%s",
                       m->u.welcome.hub_epoch);
        self->log_last = m->u.welcome.log_last;
        link_reset(&self->up); /* nothing of ours is in flight */
        if (!pub_rebase_on_welcome(self, &m->u.welcome, &ev))
            ev.type = RN_EV_PROTO_ERROR; /* not published: try again */
        break;
    case MSG_LOG_BATCH:
        ev.type = RN_EV_LOG_BATCH;
        ev.from = m->u.log_batch.from_seq;
        ev.to = m->u.log_batch.to_seq;
        break;
    case MSG_SNAPSHOT_BEGIN:
        ev.type = RN_EV_SNAP_BEGIN;
        ev.seq = m->u.snapshot_begin.fence_seq;
        self->snap_received = 0;
        break;
    case MSG_SNAPSHOT_CHUNK:
        /* A lost chunk must not go unnoticed: the counts must agree. */
        self->snap_received += m->u.snapshot_chunk.changes.n;
        ev.type = m->u.snapshot_chunk.sent == self->snap_received
                      ? RN_EV_SNAP_CHUNK
                      : RN_EV_PROTO_ERROR;
        break;
    case MSG_SNAPSHOT_END:
        ev.type = m->u.snapshot_end.total == self->snap_received
                      ? RN_EV_SNAP_END
                      : RN_EV_PROTO_ERROR;
        ev.seq = m->u.snapshot_end.fence_seq;
        break;
    case MSG_PUBLISH_ACK:
        ev.type = RN_EV_PUB_ACK;
        ev.seq = m->u.publish_ack.acked_seq;
        ev.from = m->u.publish_ack.resend_from;
        pub_on_ack(self, &m->u.publish_ack);
        break;
    case MSG_HEARTBEAT:
        ev.type = RN_EV_HEARTBEAT;
        hlc_ref_sample(&self->hub_clock, m->u.heartbeat.now_ms, node_now_ms());
        if (m->u.heartbeat.cursor > self->log_last)
            self->log_last = m->u.heartbeat.cursor;
        break;
    case MSG_STRUCTURE_UPDATE:
        on_structure(self, &m->u.structure_update);
        ev.type = RN_EV_HEARTBEAT; /* counts as life */
        break;
    case MSG_GOODBYE:
        /* PROTOCOL.md §5.3 "Goodbye codes": these say our messages are at
         * fault, and sending them again will not help */
        if (m->u.goodbye.code == OBS_EAUTH)
            log_errx("node: the hub refused our key %s... (%s): %s; retrying "
                     "until it is allowed",
                     self->curve ? self->key_fp : "(plaintext)",
                     obs_strerror(m->u.goodbye.code), m->u.goodbye.reason);
        else if (m->u.goodbye.code == OBS_EPROTO ||
                 m->u.goodbye.code == OBS_EVERSION ||
                 m->u.goodbye.code == OBS_ETOOBIG)
            log_errx("node: the hub refused our messages (%s): %s",
                     obs_strerror(m->u.goodbye.code), m->u.goodbye.reason);
        else
            log_notice("node: hub said goodbye (%s): %s",
                       m->u.goodbye.code ? obs_strerror(m->u.goodbye.code)
                                         : "stopping",
                       m->u.goodbye.reason);
        ev.type = RN_EV_GOODBYE;
        break;
    default:
        log_warnx("node: unexpected message %s (%d) from the hub",
                  msg_type_name(m->type), (int)m->type);
        ev.type = RN_EV_PROTO_ERROR;
    }
    ev.msg = repl_take(mp);
    node_step(self, &ev);
}

/* The rate the hub's messages arrive at, over spans of a second or more. */
static void
rate_in(repl_node_t *self, size_t bytes)
{
    uint64_t now = node_now_ms();
    if (self->in_start_ms == 0)
        self->in_start_ms = now;
    self->in_bytes += bytes;
    if (now - self->in_start_ms >= 1000) {
        self->rate_in_bps = self->in_bytes * 1000 / (now - self->in_start_ms);
        self->in_bytes = 0;
        self->in_start_ms = now;
    }
}

void
repl_node_on_readable(repl_node_t *self)
{
    for (int budget = 0; budget < 256 && self->sock; budget++) {
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        if (zmq_msg_recv(&zm, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&zm);
            break;
        }
        self->bytes_in += zmq_msg_size(&zm);
        rate_in(self, zmq_msg_size(&zm));
        msg_t *m = NULL;
        int rc = zmq_msg_more(&zm)
                     ? OBS_EPROTO
                     : msg_decode(zmq_msg_data(&zm), zmq_msg_size(&zm),
                                  self->env.cfg->max_frame, &m);
        zmq_msg_close(&zm);
        if (rc != OBS_OK) {
            stream_flush(self);
            log_warnr(rc, "node: bad frame from the hub");
            rn_event_t ev = {.type = RN_EV_PROTO_ERROR,
                             .now_ms = node_now_ms()};
            node_step(self, &ev);
            return;
        }
        /* Only consecutive LogBatches are grouped: anything else, or a
         * batch that does not follow, sees the kept ones committed first. */
        if (m->type != MSG_LOG_BATCH ||
            m->u.log_batch.from_seq != self->fsm.expect ||
            self->n_batches == NODE_BATCHES_MAX)
            stream_flush(self);
        dispatch(self, &m);
    }
    stream_flush(self);
}

void
repl_node_cron(repl_node_t *self, uint64_t now)
{
    try_structure(self);
    pub_maybe_ack(self, now);
    if (now - self->cursor_saved_ms >= CURSOR_SAVE_MS)
        stream_save_cursor(self);
    rn_event_t ev = {.type = RN_EV_TICK, .now_ms = now};
    node_step(self, &ev);
    if (self->pending_rejects > 0) { /* has the hub's clock caught up? */
        rn_event_t more = {
            .type = RN_EV_OUTBOX, .now_ms = now, .seq = self->fsm.outbox_last};
        node_step(self, &more);
    }
}

void
repl_node_outbox_grew(repl_node_t *self, uint64_t origin_seq)
{
    rn_event_t ev = {
        .type = RN_EV_OUTBOX, .now_ms = node_now_ms(), .seq = origin_seq};
    node_step(self, &ev);
}

void
repl_node_structure_changed(repl_node_t *self)
{
    repl_structure_hash(self->env.st, self->hash);
}

/* ------------------------------------------------------------- status */

/* What the link looks like: a static string. */
static const char *
link_word(const repl_node_t *self, uint64_t lag_changes)
{
    if (self->stalled >= 3 && !self->progress)
        return "no progress";
    if (link_is_slow(&self->up) ||
        (self->rate_in_bps != 0 &&
         self->rate_in_bps < (uint64_t)LINK_SLOW_BPS && lag_changes > 0))
        return "slow link";
    return "ok";
}

void
repl_node_status(repl_node_t *self, msg_status_reply_t *sr)
{
    /* every string is static or the configuration's: nothing to keep */
    sr->hub_endpoint = self->env.cfg->hub_endpoint;
    if (self->curve) { /* public keys only: the secret never leaves */
        sr->public_key = self->own.public_txt;
        sr->hub_key = self->hub_key;
    }
    sr->repl_state = rn_state_name(self->fsm.state);
    sr->hub_cursor = self->fsm.cursor;
    sr->log_last = self->log_last;
    sr->lag_changes = self->log_last > self->fsm.cursor
                          ? self->log_last - self->fsm.cursor
                          : 0;
    uint64_t now = hlc_wall_ms(); /* compared with HLC (wall) times */
    sr->lag_ms =
        sr->lag_changes && self->last_applied_ms && now > self->last_applied_ms
            ? now - self->last_applied_ms
            : 0;
    sr->outbox_acked = self->fsm.pub_acked;
    /* entries acknowledged and not trimmed yet (lazily) are not waiting */
    uint64_t untrimmed = self->fsm.pub_acked > self->trimmed
                             ? self->fsm.pub_acked - self->trimmed
                             : 0;
    sr->outbox_depth =
        sr->outbox_depth > untrimmed ? sr->outbox_depth - untrimmed : 0;
    sr->snapshots = self->snapshots;
    sr->clock_known = self->hub_clock.known;
    sr->clock_skew_ms = hlc_ref_skew(&self->hub_clock, now, node_now_ms());
    sr->restamped = self->restamped;
    sr->renumbered = self->renumbered;
    sr->pending_rejects = self->pending_rejects;
    sr->link = link_word(self, sr->lag_changes);
    sr->rate_in_bps = self->rate_in_bps;
    sr->rate_out_bps = self->up.rate_bps;
    sr->reconnects = self->reconnects;
    sr->apply_rate = self->apply_rate;
    sr->eta_s =
        sr->lag_changes && self->apply_rate
            ? (sr->lag_changes + self->apply_rate - 1) / self->apply_rate
            : 0;
}

int
repl_node_clock_check(repl_node_t *self, char *why, size_t cap)
{
    if (!self->hub_clock.known)
        return OBS_OK; /* no sample yet: a rebase puts things right later */
    int64_t skew = hlc_ref_skew(&self->hub_clock, hlc_wall_ms(), node_now_ms());
    if (skew <= (int64_t)REPL_MAX_SKEW_MS && skew >= -(int64_t)REPL_MAX_SKEW_MS)
        return OBS_OK;
    (void)snprintf(
        why, cap,
        "this node's clock is %.1f s %s the hub's (the bound is %d s): "
        "local writes are refused until the clock is fixed (NTP)",
        (double)(skew < 0 ? -skew : skew) / 1000.0,
        skew < 0 ? "behind" : "ahead of", REPL_MAX_SKEW_MS / 1000);
    return OBS_ECLOCK;
}

/* ---------------------------------------------------------- lifecycle */

/* Hex SHA-256 of the subscription as configured ("" lists = everything). */
static void
subscription_hash(repl_node_t *self)
{
    sha256_t h;
    sha256_init(&h);
    for (size_t i = 0; i < self->n_dfs; i++)
        sha256_update(&h, self->dfs[i], strlen(self->dfs[i]) + 1);
    sha256_update(&h, "|", 1);
    for (size_t i = 0; i < self->n_areas; i++)
        sha256_update(&h, self->areas[i], strlen(self->areas[i]) + 1);
    uint8_t d[32];
    sha256_final(&h, d);
    for (size_t i = 0; i < 32; i++)
        (void)snprintf(self->sub_hash + 2 * i, 3, "%02x", d[i]);
}

/* security = curve: our key pair and the hub's public key, read once
 * (a bad file stops the start with what and where). */
static int
load_keys(repl_node_t *self, char *err, size_t cap)
{
    const cfg_t *cfg = self->env.cfg;
    self->curve = strcmp(cfg->security, "curve") == 0;
    if (!self->curve)
        return OBS_OK;
    int rc = curve_cert_load(cfg->curve_secret_key, true, &self->own, err, cap);
    curve_cert_t hub;
    if (rc == OBS_OK)
        rc = curve_cert_load(cfg->hub_public_key, false, &hub, err, cap);
    if (rc != OBS_OK)
        return rc;
    memcpy(self->hub_key, hub.public_txt, sizeof(self->hub_key));
    curve_fingerprint(self->own.public_txt, self->key_fp);
    curve_fingerprint(self->hub_key, self->hub_fp);
    return OBS_OK;
}

int
repl_node_new(const repl_env_t *env, repl_node_t **out, char *err, size_t cap)
{
    *out = NULL;
    repl_node_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->env = *env;
    int rc = load_keys(self, err, cap);
    if (rc != OBS_OK) {
        repl_node_destroy(&self);
        return rc;
    }
    rc = repl_list_parse(env->cfg->subscribe_dataflows, &self->dfs,
                         &self->n_dfs);
    if (rc == OBS_OK)
        rc = repl_list_parse(env->cfg->subscribe_areas, &self->areas,
                             &self->n_areas);
    if (rc == OBS_OK)
        rc = repl_structure_hash(env->st, self->hash);
    uint64_t cursor = 0, acked = 0, outbox_last = 0;
    char stored_sub[65] = "";
    obsdb_txn_t *txn = NULL;
    if (rc == OBS_OK)
        subscription_hash(self);
    if (rc == OBS_OK)
        rc = obsdb_begin(env->db, false, &txn);
    if (rc == OBS_OK) {
        obsdb_meta_get_u64(txn, "hub_cursor", &cursor);
        obsdb_meta_get_u64(txn, "pub_acked", &acked);
        obsdb_meta_get_str(txn, "hub_epoch", self->hub_epoch,
                           sizeof(self->hub_epoch));
        if (obsdb_meta_get_str(txn, "sub_hash", stored_sub,
                               sizeof(stored_sub)) != OBS_OK)
            (void)snprintf(stored_sub, sizeof(stored_sub), "%s",
                           self->sub_hash);
        rc = obsdb_outbox_last(txn, &outbox_last);
    }
    obsdb_abort(&txn);
    if (rc != OBS_OK) {
        (void)snprintf(err, cap, "replication state: %s", obs_strerror(rc));
        repl_node_destroy(&self);
        return rc;
    }
    if (outbox_last < acked)
        outbox_last = acked;
    if (cursor > 0 && strcmp(stored_sub, self->sub_hash) != 0) {
        /* The log before the cursor was filtered with the old subscription:
         * what the new one adds is only in a snapshot. */
        log_notice("node: subscription changed since cursor %" PRIu64
                   ": a fresh snapshot will be taken",
                   cursor);
        cursor = 0;
    }
    self->trimmed = acked;
    rn_fsm_init(&self->fsm, cursor, acked, outbox_last,
                (uint32_t)env->cfg->heartbeat_ms,
                (uint32_t)env->cfg->peer_timeout_ms);
    if (self->curve)
        log_notice("node: CURVE on: our key %s..., the hub's %s... (%s)",
                   self->key_fp, self->hub_fp, env->cfg->hub_public_key);
    else
        log_warnx("node: replication with %s is PLAINTEXT (security = "
                  "plaintext): no encryption, no authentication. Tests and "
                  "demos only.",
                  env->cfg->hub_endpoint);
    log_notice("node: cursor %" PRIu64 ", outbox acked up to %" PRIu64
               ", last local change %" PRIu64,
               cursor, acked, outbox_last);
    *out = self;
    return OBS_OK;
}

void
repl_node_destroy(repl_node_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    repl_node_t *self = *selfp;
    pub_ack(self, self->fsm.pub_acked);
    stream_save_cursor(self);
    stream_drop(self);
    if (self->sock != NULL && self->fsm.state != RN_IDLE) {
        /* the hub marks us down at once, not after peer_timeout_ms */
        msg_t bye = {.type = MSG_GOODBYE,
                     .u.goodbye = {.reason = "node stopping", .code = OBS_OK}};
        node_send(self, &bye);
        int linger = 200;
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
    }
    disconnect_hub(self);
    curve_cert_wipe(&self->own);
    repl_list_free(&self->dfs);
    repl_list_free(&self->areas);
    free(self->pending_structure);
    free(self);
    *selfp = NULL;
}

void *
repl_node_socket(repl_node_t *self)
{
    return self->sock;
}
