/*
 * hub_session.c - the hub's sessions: one per connected node, fed the messages
 * it sends, stepping its state machine (repl_fsm.h) and performing the actions;
 * the session's replies (Welcome, PublishAck, Heartbeat, Goodbye, snapshot
 * begin/end).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "hub_int.h"
#include "log.h"
#include "obs_err.h"

/* -------------------------------------------------------------- peers */

/* The record of node_id (made on its first Hello), or SIZE_MAX when the
 * table is full or memory is short: the Hello is then refused. */
size_t
hub_peer_for(repl_hub_t *self, const char *node_id)
{
    for (size_t i = 0; i < self->n_peers; i++)
        if (strcmp(self->peers[i].node_id, node_id) == 0)
            return i;
    if (self->n_peers == HUB_PEERS_MAX)
        return SIZE_MAX;
    if (self->n_peers == self->cap_peers) {
        size_t cap = self->cap_peers ? self->cap_peers * 2 : 16;
        peer_t *p = realloc(self->peers, cap * sizeof(*p));
        if (p == NULL)
            return SIZE_MAX;
        self->peers = p;
        self->cap_peers = cap;
    }
    peer_t *p = &self->peers[self->n_peers];
    memset(p, 0, sizeof(*p));
    (void)snprintf(p->node_id, sizeof(p->node_id), "%s", node_id);
    return self->n_peers++;
}

/* ----------------------------------------------------------- sessions */

/* Frees the first n queued publishes (SIZE_MAX: all). */
void
hub_pubs_drop(repl_hub_t *self, sess_t *s, size_t n)
{
    while (s->pubs && n-- > 0) {
        pub_t *next = s->pubs->next;
        hub_prep_forget(self->prep, &s->pubs->job); /* it reads env */
        msg_destroy(&s->pubs->msg);
        free(s->pubs);
        s->pubs = next;
    }
    if (s->pubs == NULL)
        s->pubs_tail = NULL;
}

void
hub_pubs_free(repl_hub_t *self, sess_t *s)
{
    hub_pubs_drop(self, s, SIZE_MAX);
}

size_t
hub_pubs_queued(const sess_t *s)
{
    size_t n = 0;
    for (const pub_t *p = s->pubs; p; p = p->next)
        n++;
    return n;
}

void
hub_sess_free(repl_hub_t *self, sess_t *s)
{
    if (s == NULL)
        return;
    hub_pubs_free(self, s);
    seq_ranges_fini(&s->own);
    repl_list_free(&s->dfs);
    repl_list_free(&s->areas);
    issue_list_fini(&s->rejects);
    free(s);
}

static sess_t *
sess_find(repl_hub_t *self, const uint8_t *id, size_t len)
{
    for (size_t i = 0; i < self->n_sess; i++)
        if (self->sess[i]->id_len == len &&
            memcmp(self->sess[i]->id, id, len) == 0)
            return self->sess[i];
    return NULL;
}

static sess_t *
sess_new(repl_hub_t *self, const uint8_t *id, size_t len)
{
    if (self->n_sess == HUB_SESSIONS_MAX || len > sizeof(((sess_t *)0)->id))
        return NULL;
    sess_t *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    memcpy(s->id, id, len);
    s->id_len = len;
    s->peer = SIZE_MAX;
    rh_fsm_init(&s->fsm, hub_now_ms(), (uint32_t)self->env.cfg->heartbeat_ms,
                (uint32_t)self->env.cfg->peer_timeout_ms);
    issue_list_init(&s->rejects, HUB_REJECTS_MAX);
    self->sess[self->n_sess++] = s;
    return s;
}

void
hub_send(repl_hub_t *self, sess_t *s, const msg_t *m)
{
    uint64_t bytes = 0;
    int rc = repl_send(self->sock, s->id, s->id_len, m, &bytes);
    if (rc != OBS_OK)
        log_debug("hub: frame to a node dropped: %s", obs_strerror(rc));
    if (s->peer == SIZE_MAX)
        return;
    if (m->type == MSG_SNAPSHOT_CHUNK)
        link_sent(&hub_sess_peer(self, s)->down, bytes, 0, hlc_mono_us());
    else /* stream messages count when confirmed (peer_t.down) */
        hub_sess_peer(self, s)->bytes_out += bytes;
}

void
hub_send_goodbye(repl_hub_t *self, sess_t *s, int32_t code, const char *reason)
{
    msg_t m = {.type = MSG_GOODBYE,
               .u.goodbye = {.reason = reason, .code = code}};
    hub_send(self, s, &m);
}

void
hub_sess_refuse(repl_hub_t *self, sess_t *s, int32_t code, const char *fmt, ...)
{
    if (s->close_code != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(s->close_why, sizeof(s->close_why), fmt, ap);
    va_end(ap);
    s->close_code = code;
    hub_security_strike(self, s->who, s->peer, code);
    log_warnx("hub: node %s: ending its session: %s (%s)",
              s->peer != SIZE_MAX ? hub_sess_peer(self, s)->node_id : "?",
              s->close_why, obs_strerror(code));
}

/* ------------------------------------------------------------ actions */

static void
send_welcome(repl_hub_t *self, sess_t *s, bool snapshot)
{
    msg_t m = {.type = MSG_WELCOME};
    m.u.welcome = (msg_welcome_t){
        .hub_id = self->env.cfg->node_id,
        .hub_epoch = obsdb_epoch(self->env.db),
        .last_origin_seq = s->last_seq,
        .log_first = self->log_first,
        .log_last = self->log_last,
        .snapshot = snapshot,
        .heartbeat_ms = (uint32_t)self->env.cfg->heartbeat_ms,
        .last_origin_hlc = s->last_hlc,
        .now_ms = hlc_wall_ms(),
        .peer_timeout_ms = (uint32_t)self->env.cfg->peer_timeout_ms};
    s->told_last = self->log_last;
    s->told_ms = hub_now_ms();
    hub_send(self, s, &m);
}

void
hub_send_structure(repl_hub_t *self, sess_t *s)
{
    char *text = NULL;
    size_t len = 0;
    if (structure_to_text(self->env.st, &text, &len) != OBS_OK)
        return;
    msg_t m = {.type = MSG_STRUCTURE_UPDATE,
               .u.structure_update = {.text = text, .hash = self->hash}};
    hub_send(self, s, &m);
    free(text);
}

static void
send_ack(repl_hub_t *self, sess_t *s, uint64_t acked, uint64_t resend_from)
{
    peer_t *p = hub_sess_peer(self, s);
    size_t n = 0;
    msg_issue_t *ri = issue_list_rows(&s->rejects, s->rejects.n, &n);
    msg_t m = {.type = MSG_PUBLISH_ACK};
    m.u.publish_ack = (msg_publish_ack_t){.acked_seq = acked,
                                          .resend_from = resend_from,
                                          .accepted = p->accepted,
                                          .duplicates = p->duplicates,
                                          .superseded = p->superseded,
                                          .rejected = p->rejected,
                                          .rejects = {ri, n}};
    hub_send(self, s, &m);
    free(ri);
    issue_list_clear(&s->rejects);
}

static void
send_heartbeat(repl_hub_t *self, sess_t *s)
{
    msg_t m = {
        .type = MSG_HEARTBEAT,
        .u.heartbeat = {.now_ms = hlc_wall_ms(), .cursor = self->log_last}};
    hub_send(self, s, &m);
    s->told_last = self->log_last;
    s->told_ms = hub_now_ms();
}

/* A busy stream sends no heartbeats: a node is told where the log ends
 * (a Heartbeat, ahead of the batches it will get) when the log grew, at
 * most every heartbeat_ms, so its lag counts against the hub's end and
 * not the last batch that crossed its line. */
void
hub_tell_log_last(repl_hub_t *self, sess_t *s, uint64_t now)
{
    if (s->fsm.state != RH_DEAD && s->hello_done &&
        self->log_last > s->told_last &&
        (now - s->told_ms >= self->env.cfg->heartbeat_ms ||
         /* ahead of a stream that starts (at most every 100 ms) */
         (hub_sess_peer(self, s)->down.n == 0 && now - s->told_ms >= 100)))
        send_heartbeat(self, s);
}

/* Queues the Publish msg (taken) for the group commit and hands its
 * changes to the checking thread. */
static void
queue_publish(repl_hub_t *self, sess_t *s, msg_t *msg)
{
    if (msg == NULL || msg->type != MSG_PUBLISH) {
        msg_destroy(&msg);
        return;
    }
    pub_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        log_warnx("hub: out of memory queuing a publish; the node resends");
        msg_destroy(&msg);
        return;
    }
    /* the message itself is kept until the ack: no copy of its changes */
    const msg_publish_t *m = &msg->u.publish;
    p->msg = msg;
    p->first = m->first_seq;
    p->last = m->last_seq;
    p->changes = m->changes.items;
    p->n = m->changes.n;
    for (size_t i = 0; i < p->n; i++)
        p->bytes += p->changes[i].len;
    p->job.changes = p->changes;
    p->job.n = p->n;
    p->job.first_seq = p->first;
    (void)snprintf(p->job.node_id, sizeof(p->job.node_id), "%s",
                   s->peer != SIZE_MAX ? hub_sess_peer(self, s)->node_id : "");
    (void)snprintf(p->job.provider, sizeof(p->job.provider), "%s", s->provider);
    hub_prep_submit(self->prep, &p->job);
    if (s->pubs_tail)
        s->pubs_tail->next = p;
    else
        s->pubs = p;
    s->pubs_tail = p;
}

static void
start_snapshot(repl_hub_t *self, sess_t *s, uint64_t fence)
{
    s->snap_len = 0;
    s->snap_sent = 0;
    msg_t m = {.type = MSG_SNAPSHOT_BEGIN,
               .u.snapshot_begin = {.fence_seq = fence}};
    hub_send(self, s, &m);
    log_notice("hub: node %s: snapshot fenced at hub_seq %" PRIu64,
               hub_sess_peer(self, s)->node_id, fence);
}

static void
snap_end(repl_hub_t *self, sess_t *s, uint64_t fence)
{
    msg_t m = {.type = MSG_SNAPSHOT_END,
               .u.snapshot_end = {.fence_seq = fence, .total = s->snap_sent}};
    hub_send(self, s, &m);
    self->snapshots++;
    log_notice("hub: node %s: snapshot of %" PRIu64 " observations sent",
               hub_sess_peer(self, s)->node_id, s->snap_sent);
}

/* Performs one action; may produce a follow-up event (*next). */
static bool
do_action(repl_hub_t *self, sess_t *s, rh_action_t *a, rh_event_t *next)
{
    bool closed = false, done = false;
    memset(next, 0, sizeof(*next));
    next->now_ms = hub_now_ms();
    switch (a->type) {
    case RH_A_SEND_WELCOME:
        send_welcome(self, s, a->snapshot);
        if (strcmp(s->hello_hash, self->hash) != 0)
            hub_send_structure(self, s);
        return false;
    case RH_A_START_SNAPSHOT:
        /* the state must hold every change up to the fence */
        if (repl_hub_catch_up(self) != OBS_OK) {
            log_warnx("hub: node %s: no snapshot: the state could not be "
                      "brought up to the log",
                      hub_sess_peer(self, s)->node_id);
            hub_send_goodbye(self, s, OBS_ESTORE,
                             "snapshot failed; reconnect to retry");
            next->type = RH_EV_GOODBYE;
            return true;
        }
        start_snapshot(self, s, a->n);
        return false;
    case RH_A_SEND_CHUNK:
        if (!link_may_send(&hub_sess_peer(self, s)->down))
            return false; /* the node's link is full: its next credit */
        hub_send_chunk(self, s, &done, &closed);
        if (closed) { /* an incomplete snapshot must never look complete */
            hub_send_goodbye(self, s, OBS_ESTORE,
                             "snapshot failed; reconnect to retry");
            next->type = RH_EV_GOODBYE;
            return true;
        }
        next->type = RH_EV_SENT;
        next->done = done;
        return true;
    case RH_A_SEND_SNAP_END:
        snap_end(self, s, a->n);
        return false;
    case RH_A_SEND_BATCH: {
        if (!link_may_send(&hub_sess_peer(self, s)->down))
            return false; /* the node's link is full: its next credit */
        uint64_t to = hub_send_batch(self, s, a->n, &closed);
        if (closed) {
            next->type = RH_EV_GOODBYE;
            return true;
        }
        if (to == a->n)
            return false; /* nothing new: wait for LOG_GREW */
        next->type = RH_EV_SENT;
        next->seq = to;
        return true;
    }
    case RH_A_APPLY_PUBLISH:
        queue_publish(self, s, (msg_t *)repl_take(&a->msg));
        return false;
    case RH_A_SEND_ACK:
        send_ack(self, s, a->n, a->m);
        return false;
    case RH_A_SEND_HEARTBEAT:
        send_heartbeat(self, s);
        return false;
    case RH_A_CLOSE:
        if (a->n == RH_CLOSE_TIMEOUT)
            hub_send_goodbye(self, s, OBS_ETIMEOUT,
                             "nothing heard within peer_timeout_ms");
        else if (a->n == RH_CLOSE_PROTOCOL)
            hub_send_goodbye(self, s,
                             s->close_code ? s->close_code : OBS_EPROTO,
                             s->close_code ? s->close_why : "protocol error");
        return false;
    }
    return false;
}

void
hub_step(repl_hub_t *self, sess_t *s, rh_event_t *ev)
{
    /* Iterative, not recursive: a SENT event continues the stream until the
     * credit or the log runs out. */
    /* A chain is bounded by the node's credit (at most 4 * REPL_WINDOW),
     * and a few steps around it. */
    enum { STEPS_MAX = 4 * REPL_WINDOW + 8 };
    for (int step = 0; step < STEPS_MAX; step++) {
        rh_state_t before = s->fsm.state;
        rh_actions_t out;
        rh_fsm_step(&s->fsm, ev, &out);
        msg_destroy((msg_t **)&ev->msg); /* not consumed by an action */
        if (before != s->fsm.state && s->peer != SIZE_MAX) {
            peer_t *p = hub_sess_peer(self, s);
            log_info("hub: node %s: state %s -> %s (event %s)", p->node_id,
                     rh_state_name(before), rh_state_name(s->fsm.state),
                     rh_event_name(ev->type));
            (void)snprintf(p->state, sizeof(p->state), "%s",
                           rh_state_name(s->fsm.state));
        }
        rh_event_t next;
        bool more = false;
        for (size_t i = 0; i < out.n; i++) {
            rh_event_t follow;
            if (do_action(self, s, &out.a[i], &follow)) {
                next = follow;
                more = true;
            }
            msg_destroy((msg_t **)&out.a[i].msg);
        }
        if (!more)
            return;
        *ev = next;
    }
    /* A bug, not a peer's doing: say so; the stream goes on next turn. */
    log_errx("hub: node %s: the stream stopped after %d steps in one turn "
             "(state %s, event %s); it resumes at the next event",
             s->peer != SIZE_MAX ? hub_sess_peer(self, s)->node_id : "?",
             (int)STEPS_MAX, rh_state_name(s->fsm.state),
             rh_event_name(ev->type));
}

/* ---------------------------------------------------------- receiving */

/* The rate the node's messages arrive at, over spans of a second or more
 * (what its Publishes use of its link). */
static void
rate_in(sess_t *s, peer_t *p, size_t bytes)
{
    uint64_t now = hub_now_ms();
    if (s->in_start_ms == 0)
        s->in_start_ms = now;
    s->in_bytes += bytes;
    if (now - s->in_start_ms >= 1000) {
        p->rate_in_bps = s->in_bytes * 1000 / (now - s->in_start_ms);
        s->in_bytes = 0;
        s->in_start_ms = now;
    }
}

/* A Credit returns one credit per batch or chunk the node applied, in the
 * order they were sent (the first one of a session, and a resync, give a
 * fresh window instead): those are confirmed, which measures the node's
 * link and moves its confirmed position. */
static void
on_credit(repl_hub_t *self, sess_t *s, const msg_credit_t *c)
{
    peer_t *p = hub_sess_peer(self, s);
    uint64_t mark = 0;
    if (c->resync) {
        link_reset(&p->down);
    } else {
        uint64_t bytes =
            link_confirm_n(&p->down, c->batches, hlc_mono_us(), &mark);
        p->bytes_out += bytes;
        if (bytes > 0) {
            s->progress = true;
            p->stalled = 0;
        }
    }
    uint64_t cursor = c->cursor > mark ? c->cursor : mark;
    if (cursor > p->cursor)
        p->cursor = cursor;
}

/* The Hello field out of the formats of PROTOCOL.md §5.3, or NULL. */
static const char *
hello_format_error(const repl_hub_t *self, const msg_hello_t *h)
{
    if (!obs_id_valid(h->node_id))
        return "node_id";
    if (strcmp(h->node_id, self->env.cfg->node_id) == 0)
        return "node_id (the hub's own)";
    if (h->provider[0] && !obs_id_valid(h->provider))
        return "provider";
    if (!obs_hex_valid(h->node_epoch, 32))
        return "node_epoch";
    if (h->hub_epoch[0] && !obs_hex_valid(h->hub_epoch, 32))
        return "hub_epoch";
    if (h->structure_hash[0] && !obs_hex_valid(h->structure_hash, 64))
        return "structure_hash";
    return NULL;
}

static int
on_hello(repl_hub_t *self, sess_t *s, const msg_hello_t *h, const char *addr)
{
    /* the formats of PROTOCOL.md §5.3, before anything is kept */
    const char *bad = hello_format_error(self, h);
    if (bad != NULL) {
        hub_sess_refuse(self, s, OBS_EPROTO,
                        "Hello from %.63s: %s is not in the format of "
                        "PROTOCOL.md §5.3",
                        h->node_id, bad);
        return OBS_EPROTO;
    }
    /* its key decides who it is (curve), before anything is kept */
    int rc = hub_security_hello(self, s, h);
    if (rc != OBS_OK)
        return rc;
    /* A node that reconnects replaces its old session. */
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *o = self->sess[i];
        if (o != s && o->peer != SIZE_MAX &&
            strcmp(hub_sess_peer(self, o)->node_id, h->node_id) == 0 &&
            o->fsm.state != RH_DEAD) {
            hub_send_goodbye(self, o, OBS_EEXIST,
                             "replaced by a newer connection");
            /* its queued publishes are not accepted any more: the new
             * session starts from the origin's last accepted seq, and the
             * node resends what follows */
            hub_pubs_free(self, o);
            o->fsm.state = RH_DEAD;
        }
    }
    s->peer = hub_peer_for(self, h->node_id);
    if (s->peer == SIZE_MAX) {
        hub_sess_refuse(self, s, OBS_EBUSY,
                        "Hello from %.63s refused: the hub knows %d node ids "
                        "already",
                        h->node_id, HUB_PEERS_MAX);
        return OBS_EBUSY;
    }
    (void)snprintf(s->node_epoch, sizeof(s->node_epoch), "%s", h->node_epoch);
    hub_fanout_drop(self, s); /* built with the old subscription */
    (void)snprintf(s->hello_hash, sizeof(s->hello_hash), "%s",
                   h->structure_hash);
    const msg_subscription_t *sub = &h->subscription;
    repl_list_free(&s->dfs);
    repl_list_free(&s->areas);
    s->n_dfs = s->n_areas = 0;
    s->dfs = calloc(sub->dataflows.n + 1, sizeof(char *));
    s->areas = calloc(sub->areas.n + 1, sizeof(char *));
    if (s->dfs == NULL || s->areas == NULL)
        return OBS_ENOMEM;
    for (size_t i = 0; i < sub->dataflows.n; i++)
        if ((s->dfs[s->n_dfs++] = strdup(sub->dataflows.items[i])) == NULL)
            return OBS_ENOMEM;
    for (size_t i = 0; i < sub->areas.n; i++)
        if ((s->areas[s->n_areas++] = strdup(sub->areas.items[i])) == NULL)
            return OBS_ENOMEM;
    char epoch[OBS_ID_MAX + 1] = "";
    uint64_t last = 0, last_hlc = 0, first = 0, log_last = 0;
    obsdb_txn_t *txn = NULL;
    rc = obsdb_begin(self->env.db, false, &txn);
    if (rc == OBS_OK) {
        rc = obsdb_origin_get(txn, h->node_id, epoch, sizeof(epoch), &last,
                              &last_hlc);
        if (rc == OBS_ENOENT)
            rc = OBS_OK;
    }
    if (rc == OBS_OK)
        rc = obsdb_log_bounds(txn, &first, &log_last);
    obsdb_abort(&txn);
    if (rc != OBS_OK)
        return rc;
    if (epoch[0] && strcmp(epoch, h->node_epoch) != 0) {
        log_notice("hub: node %s has a new store (epoch %s, was %s): its "
                   "change numbers start again",
                   h->node_id, h->node_epoch, epoch);
        last = 0;
        last_hlc = 0;
    }
    s->last_seq = last;
    s->last_hlc = last_hlc;
    self->log_first = first;
    self->log_last = log_last;
    peer_t *p = hub_sess_peer(self, s);
    p->up = true;
    p->cursor = h->cursor;
    link_reset(&p->down); /* what was in flight went with the old session */
    p->reconnects += p->sessions > 0;
    p->sessions++;
    s->started_ms = hub_now_ms();
    p->last_seen_ms = hlc_wall_ms();
    if (addr)
        (void)snprintf(p->address, sizeof(p->address), "%s", addr);
    p->last_origin_seq = last;
    curve_fingerprint(s->key, p->key_fp);
    s->hello_done = true;
    const char *he = obsdb_epoch(self->env.db);
    rh_event_t ev = {.type = RH_EV_HELLO,
                     .now_ms = hub_now_ms(),
                     .cursor = h->cursor,
                     .log_first = first,
                     .log_last = log_last,
                     .epoch_ok =
                         h->cursor == 0 || strcmp(h->hub_epoch, he) == 0};
    log_notice("hub: node %s connected from %s: cursor %" PRIu64
               ", hub log %" PRIu64 "..%" PRIu64,
               h->node_id, p->address, h->cursor, first, log_last);
    hub_step(self, s, &ev);
    return OBS_OK;
}

/* What a Publish's own fields promise, checked before it is queued (its
 * changes are checked one by one when they are applied). */
static bool
publish_ok(repl_hub_t *self, sess_t *s, const msg_publish_t *pub)
{
    size_t n = pub->changes.n;
    if (n > REPL_BATCH_MAX) {
        hub_sess_refuse(self, s, OBS_ETOOBIG,
                        "a Publish of %zu changes (at most %d)", n,
                        REPL_BATCH_MAX);
        return false;
    }
    if (n == 0 || pub->first_seq == 0 ||
        pub->last_seq != pub->first_seq + (n - 1)) {
        hub_sess_refuse(self, s, OBS_EPROTO,
                        "a Publish of %zu changes with first_seq %" PRIu64
                        " and last_seq %" PRIu64
                        " (last_seq must be first_seq + changes - 1)",
                        n, pub->first_seq, pub->last_seq);
        return false;
    }
    /* the window bounds what a node can queue */
    if (hub_pubs_queued(s) >= 2 * (size_t)REPL_PUB_WINDOW) {
        hub_sess_refuse(self, s, OBS_EPROTO,
                        "more than %d Publish unacknowledged (the window is "
                        "%d)",
                        2 * REPL_PUB_WINDOW, REPL_PUB_WINDOW);
        return false;
    }
    return true;
}

/* One message of s's node (taken): an event for its state machine; a
 * Publish travels in the event to the action that queues it. */
static void
dispatch(repl_hub_t *self, sess_t *s, msg_t *m, const char *addr)
{
    rh_event_t ev = {.now_ms = hub_now_ms()};
    if (s->fsm.state == RH_DEAD) {
        msg_destroy(&m); /* a replaced connection's late messages: its
                            node's link and cursor belong to the new session */
        return;
    }
    if (m->type == MSG_HELLO) {
        if (s->hello_done) {
            hub_sess_refuse(self, s, OBS_EPROTO, "a second Hello");
            ev.type = RH_EV_PROTO_ERROR;
        } else {
            int rc = on_hello(self, s, &m->u.hello, addr);
            if (rc == OBS_OK) {
                msg_destroy(&m);
                return;
            }
            hub_sess_refuse(self, s, rc == OBS_ENOMEM ? OBS_ESTORE : rc,
                            "Hello not taken: %s", obs_strerror(rc));
            ev.type = RH_EV_PROTO_ERROR;
        }
    } else if (!s->hello_done) {
        hub_sess_refuse(self, s, OBS_EPROTO, "%s before Hello",
                        msg_type_name(m->type));
        ev.type = RH_EV_PROTO_ERROR;
    } else {
        switch (m->type) {
        case MSG_CREDIT:
            ev.type = RH_EV_CREDIT;
            ev.cursor = m->u.credit.cursor;
            ev.n = m->u.credit.batches;
            ev.resync = m->u.credit.resync;
            on_credit(self, s, &m->u.credit);
            break;
        case MSG_PUBLISH:
            if (!publish_ok(self, s, &m->u.publish)) {
                ev.type = RH_EV_PROTO_ERROR;
                break;
            }
            ev.type = RH_EV_PUBLISH;
            ev.first = m->u.publish.first_seq;
            ev.last = m->u.publish.last_seq;
            ev.msg = repl_take((struct msg **)&m);
            break;
        case MSG_HEARTBEAT:
            ev.type = RH_EV_HEARTBEAT;
            if (m->u.heartbeat.cursor > hub_sess_peer(self, s)->cursor)
                hub_sess_peer(self, s)->cursor = m->u.heartbeat.cursor;
            break;
        case MSG_GOODBYE:
            ev.type = RH_EV_GOODBYE;
            break;
        default:
            hub_sess_refuse(self, s, OBS_EPROTO, "%s from a node",
                            msg_type_name(m->type));
            ev.type = RH_EV_PROTO_ERROR;
        }
    }
    msg_destroy(&m);
    hub_step(self, s, &ev);
}

/* The Goodbye code for a frame msg_decode refused with rc. */
static int32_t
frame_error(int rc)
{
    return rc == OBS_EVERSION || rc == OBS_ETOOBIG ? rc : OBS_EPROTO;
}

/* Ends the connection of routing id `id` with Goodbye{code, reason}: its
 * session's (the state machine closes it), or, for a stranger, a Goodbye
 * alone (nothing is kept of strangers). */
static void
refuse(repl_hub_t *self, const uint8_t *id, size_t id_len,
       const zmq_msg_t *body, int32_t code, const char *reason)
{
    sess_t *s = sess_find(self, id, id_len);
    if (s == NULL) {
        char who[CURVE_KEY_TXT + 64];
        hub_security_who(self, body, who, sizeof(who));
        hub_security_strike(self, who, SIZE_MAX, code);
        msg_t bye = {.type = MSG_GOODBYE,
                     .u.goodbye = {.code = code, .reason = reason}};
        (void)repl_send(self->sock, id, id_len, &bye, NULL);
        return;
    }
    hub_sess_refuse(self, s, code, "%s", reason);
    rh_event_t ev = {.type = RH_EV_PROTO_ERROR, .now_ms = hub_now_ms()};
    hub_step(self, s, &ev);
}

static void
recv_one(repl_hub_t *self, zmq_msg_t *idm, zmq_msg_t *body)
{
    const uint8_t *id = zmq_msg_data(idm);
    size_t id_len = zmq_msg_size(idm);
    sess_t *s = sess_find(self, id, id_len);
    if (!hub_security_admit(self, s, body))
        return;
    msg_t *m = NULL;
    /* a Publish over 1,000 changes is refused before it is unpacked */
    msg_limits_t lim = {.max_frame = self->env.cfg->repl_max_frame,
                        .max_changes = REPL_BATCH_MAX};
    int rc = msg_decode_limited(zmq_msg_data(body), zmq_msg_size(body), &lim,
                                &m, NULL);
    if (s != NULL && s->peer != SIZE_MAX) {
        peer_t *p = hub_sess_peer(self, s);
        p->bytes_in += zmq_msg_size(body);
        rate_in(s, p, zmq_msg_size(body));
        p->last_seen_ms = hlc_wall_ms();
    }
    if (rc != OBS_OK) {
        char why[120];
        (void)snprintf(why, sizeof(why), "a frame of %zu bytes: %s",
                       zmq_msg_size(body), obs_strerror(rc));
        refuse(self, id, id_len, body, frame_error(rc), why);
        return;
    }
    if (s == NULL && m->type != MSG_HELLO) {
        /* Most likely a node's whose session this hub does not have (it
         * restarted, and libzmq reconnected underneath): start one. */
        msg_destroy(&m);
        refuse(self, id, id_len, body, OBS_ENOENT,
               "no session for this connection: say Hello");
        return;
    }
    if (s == NULL && (s = sess_new(self, id, id_len)) == NULL) {
        msg_destroy(&m);
        log_warnx("hub: too many sessions; a connection was ignored");
        return;
    }
    if (s->who[0] == '\0')
        hub_security_new_session(self, s, body);
    dispatch(self, s, m, zmq_msg_gets(body, "Peer-Address"));
}

void
repl_hub_on_readable(repl_hub_t *self)
{
    for (int budget = 0; budget < 10000; budget++) {
        zmq_msg_t idm, body;
        zmq_msg_init(&idm);
        if (zmq_msg_recv(&idm, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idm);
            return;
        }
        zmq_msg_init(&body);
        int more = zmq_msg_more(&idm);
        if (!more || zmq_msg_recv(&body, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&idm);
            zmq_msg_close(&body);
            continue;
        }
        if (zmq_msg_more(&body)) { /* one frame per message */
            while (zmq_msg_more(&body)) {
                zmq_msg_close(&body);
                zmq_msg_init(&body);
                zmq_msg_recv(&body, self->sock, ZMQ_DONTWAIT);
            }
            /* PROTOCOL.md §1: a protocol error */
            refuse(self, zmq_msg_data(&idm), zmq_msg_size(&idm), &body,
                   OBS_EPROTO, "a message of more than one frame");
        } else {
            recv_one(self, &idm, &body);
        }
        zmq_msg_close(&idm);
        zmq_msg_close(&body);
    }
}
