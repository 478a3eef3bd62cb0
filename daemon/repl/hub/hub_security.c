/*
 * hub_security.c - who a node is, at the hub (DESIGN.md §4, PROTOCOL.md
 * §5.2 "Security"). With security = curve the replication socket is a
 * CURVE server with the hub's secret key; the door's ZAP handler lets in
 * only keys of the allow-list, and the key a connection authenticated with
 * (its ZAP User-Id, read back from every message) decides which node and
 * provider it is: a Hello naming another is refused, and so is a message
 * on a session from another key (routing ids are the peer's choice). A
 * reload (SIGHUP, `obsync reload`, or a change of the directory, checked
 * every heartbeat) swaps the allow-list and closes at once the sessions
 * whose key left it. In plaintext the same door counts and backs off
 * peers by address, and the Hello is believed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "hub_int.h"
#include "log.h"
#include "obs_err.h"

static bool
decide(void *arg, const zap_request_t *req, door_reason_t *why)
{
    repl_hub_t *self = arg;
    if (self->allow == NULL) /* plaintext */
        return true;
    if (hub_allow_find(self->allow, req->key) == NULL) {
        *why = DOOR_UNKNOWN_KEY;
        return false;
    }
    return true;
}

static int
curve_server(repl_hub_t *self, char *err, size_t cap)
{
    const cfg_t *cfg = self->env.cfg;
    curve_cert_t own;
    int rc = curve_cert_load(cfg->curve_secret_key, true, &own, err, cap);
    if (rc != OBS_OK)
        return rc;
    int one = 1;
    if (zmq_setsockopt(self->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
        zmq_setsockopt(self->sock, ZMQ_CURVE_SECRETKEY, own.secret_txt, 40) !=
            0) {
        (void)snprintf(err, cap, "hub: CURVE: %s (libzmq without CURVE?)",
                       zmq_strerror(zmq_errno()));
        rc = OBS_ESYS;
    }
    curve_fingerprint(own.public_txt, self->key_fp);
    memcpy(self->public_txt, own.public_txt, sizeof(self->public_txt));
    curve_cert_wipe(&own);
    if (rc == OBS_OK)
        rc = hub_allow_load(cfg->curve_allow_dir, &self->allow, err, cap);
    if (rc == OBS_OK)
        log_notice("hub: CURVE on, hub key %s..., %zu node key(s) allowed "
                   "from %s",
                   self->key_fp, self->allow->n, cfg->curve_allow_dir);
    return rc;
}

int
hub_security_setup(repl_hub_t *self, char *err, size_t cap)
{
    const cfg_t *cfg = self->env.cfg;
    self->curve = strcmp(cfg->security, "curve") == 0;
    door_opts_t o = {.curve = self->curve,
                     .max_pending = cfg->max_pending_hello,
                     .handshake_ms = cfg->handshake_timeout_ms,
                     .abuse_threshold = (uint32_t)cfg->abuse_threshold,
                     .abuse_backoff_ms = cfg->abuse_backoff_ms};
    int rc =
        hub_door_open(self->env.zctx, &o, decide, self, &self->door, err, cap);
    if (rc == OBS_OK && self->curve)
        rc = curve_server(self, err, cap);
    if (rc == OBS_OK && !self->curve) /* ZAP for NULL needs a domain */
        zmq_setsockopt(self->sock, ZMQ_ZAP_DOMAIN, "obsync", 6);
    int ivl = (int)cfg->handshake_timeout_ms;
    int64_t maxmsg = (int64_t)cfg->repl_max_frame;
    zmq_setsockopt(self->sock, ZMQ_HANDSHAKE_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (rc == OBS_OK &&
        hub_door_watch(self->door, self->env.zctx, self->sock) != OBS_OK) {
        (void)snprintf(err, cap, "hub: monitor: %s", zmq_strerror(zmq_errno()));
        rc = OBS_ESYS;
    }
    if (rc == OBS_OK)
        self->allow_checked_ms = hub_now_ms();
    return rc;
}

void
hub_security_status(repl_hub_t *self, msg_status_reply_t *sr)
{
    door_counts_t *c = &self->door_counts;
    hub_door_counts(self->door, c);
    sr->public_key = self->public_txt;
    sr->allowed_keys = self->allow ? self->allow->n : 0;
    sr->refused_reasons = (msg_strs_t){hub_door_reason_names(), DOOR_REASONS};
    sr->refused_counts = (msg_u64s_t){c->refused, DOOR_REASONS};
    sr->connections = c->open;
    sr->pending_hello = c->pending;
    sr->handshake_failures = c->handshake_failures;
    sr->backoffs = c->backoffs;
}

void
hub_security_fini(repl_hub_t *self)
{
    hub_door_close(&self->door);
    hub_allow_free(&self->allow);
}

/* Counts a refusal of `who` for `why`; logs a back-off it starts. */
static void
strike(repl_hub_t *self, const char *who, door_reason_t why)
{
    if (hub_door_refused(self->door, who, why, hub_now_ms()))
        log_warnx("hub: %s%.40s refused for %" PRIu64 " s: %" PRIu64
                  " protocol errors within a minute",
                  self->curve ? "key " : "", who,
                  self->env.cfg->abuse_backoff_ms / 1000,
                  self->env.cfg->abuse_threshold);
}

/* Closes s's session for `why` (EAUTH), counted for its peer; `who` is
 * the peer to blame (s's own, or an intruder's on s). */
static void
shut_out(repl_hub_t *self, sess_t *s, const char *who, door_reason_t why,
         const char *reason)
{
    strike(self, who, why);
    if (s->peer != SIZE_MAX)
        hub_sess_peer(self, s)->refused[why]++;
    hub_sess_refuse(self, s, OBS_EAUTH, "%s", reason);
    rh_event_t ev = {.type = RH_EV_PROTO_ERROR, .now_ms = hub_now_ms()};
    hub_step(self, s, &ev);
}

/* After a reload: sessions whose key left the list, or now speaks for
 * another node or provider, end now. */
static void
enforce(repl_hub_t *self)
{
    for (size_t i = 0; i < self->n_sess; i++) {
        sess_t *s = self->sess[i];
        if (!s->hello_done || s->fsm.state == RH_DEAD || s->peer == SIZE_MAX)
            continue;
        const allow_entry_t *e = hub_allow_find(self->allow, s->key);
        const char *node = hub_sess_peer(self, s)->node_id;
        if (e == NULL || strcmp(e->node_id, node) != 0 ||
            strcmp(e->provider, s->provider) != 0) {
            char why[160];
            (void)snprintf(why, sizeof(why),
                           "key %.8s... of %s left the allow-list", s->key,
                           node);
            shut_out(self, s, s->who, DOOR_KEY_REMOVED, why);
        }
    }
}

int
repl_hub_reload(repl_hub_t *self, char *err, size_t cap)
{
    if (!self->curve) {
        (void)snprintf(err, cap, "security = plaintext: no allow-list");
        return OBS_OK;
    }
    hub_allow_t *fresh = NULL;
    int rc = hub_allow_load(self->env.cfg->curve_allow_dir, &fresh, err, cap);
    if (rc != OBS_OK) {
        log_errx("hub: allow-list not reloaded, the old one stays: %s", err);
        return rc;
    }
    size_t before = self->allow->n;
    hub_allow_free(&self->allow);
    self->allow = fresh;
    (void)snprintf(err, cap, "%zu node key(s) allowed (were %zu)", fresh->n,
                   before);
    log_notice("hub: allow-list reloaded: %s", err);
    enforce(self);
    return OBS_OK;
}

void
hub_security_cron(repl_hub_t *self, uint64_t now)
{
    if (!self->curve ||
        now - self->allow_checked_ms < self->env.cfg->heartbeat_ms)
        return;
    self->allow_checked_ms = now;
    uint64_t sig = hub_allow_dir_signature(self->env.cfg->curve_allow_dir);
    if (sig != 0 && sig != self->allow->signature) {
        char err[300];
        if (repl_hub_reload(self, err, sizeof(err)) != OBS_OK)
            self->allow->signature = sig; /* logged; not again until it
                                             changes once more */
    }
}

void
hub_security_who(repl_hub_t *self, const zmq_msg_t *body, char *who, size_t cap)
{
    const char *v =
        zmq_msg_gets(body, self->curve ? "User-Id" : "Peer-Address");
    (void)snprintf(who, cap, "%s", v ? v : "");
}

bool
hub_security_admit(repl_hub_t *self, sess_t *s, const zmq_msg_t *body)
{
    hub_door_spoke(self->door, zmq_msg_get(body, ZMQ_SRCFD));
    char who[CURVE_KEY_TXT + 64];
    hub_security_who(self, body, who, sizeof(who));
    uint64_t now = hub_now_ms();
    if (self->curve && s != NULL && s->who[0] && strcmp(s->who, who) != 0) {
        /* the same routing id from another connection and key */
        if (s->fsm.state != RH_DEAD) {
            char why[160];
            (void)snprintf(why, sizeof(why),
                           "a message from key %.8s... on the session of key "
                           "%.8s...",
                           who, s->who);
            shut_out(self, s, who, DOOR_KEY_CHANGED, why);
        }
        return false;
    }
    uint64_t left = hub_door_backoff_left(self->door, who, now);
    if (left > 0) {
        if (s == NULL || s->fsm.state == RH_DEAD)
            hub_door_refused(self->door, who, DOOR_BACKOFF, now);
        else {
            char why[160];
            (void)snprintf(why, sizeof(why),
                           "refused for %" PRIu64
                           " s more after repeated protocol errors",
                           left / 1000 + 1);
            shut_out(self, s, who, DOOR_BACKOFF, why);
        }
        return false; /* dropped, not answered */
    }
    return true;
}

void
hub_security_new_session(repl_hub_t *self, sess_t *s, const zmq_msg_t *body)
{
    hub_security_who(self, body, s->who, sizeof(s->who));
    if (self->curve)
        (void)snprintf(s->key, sizeof(s->key), "%.40s", s->who);
}

int
hub_security_hello(repl_hub_t *self, sess_t *s, const msg_hello_t *h)
{
    if (!self->curve) {
        (void)snprintf(s->provider, sizeof(s->provider), "%s",
                       h->provider[0] ? h->provider : h->node_id);
        return OBS_OK;
    }
    const allow_entry_t *e = hub_allow_find(self->allow, s->key);
    door_reason_t why = DOOR_IDENTITY;
    if (e == NULL)
        why = DOOR_KEY_REMOVED;
    else if (strcmp(e->node_id, h->node_id) == 0 &&
             (h->provider[0] == '\0' ||
              strcmp(e->provider, h->provider) == 0)) {
        (void)snprintf(s->provider, sizeof(s->provider), "%s", e->provider);
        return OBS_OK;
    }
    strike(self, s->who, why);
    if (e != NULL) { /* counted against the node the key belongs to */
        size_t p = hub_peer_for(self, e->node_id);
        if (p != SIZE_MAX)
            self->peers[p].refused[why]++;
    }
    if (e == NULL)
        hub_sess_refuse(self, s, OBS_EAUTH,
                        "Hello from %.63s: key %.8s... is not in the "
                        "allow-list",
                        h->node_id, s->key);
    else
        hub_sess_refuse(self, s, OBS_EAUTH,
                        "Hello names node %.63s provider %.63s, but key "
                        "%.8s... is node %s provider %s (%s)",
                        h->node_id, h->provider[0] ? h->provider : h->node_id,
                        s->key, e->node_id, e->provider, e->file);
    return OBS_EAUTH;
}

/* The reason a Goodbye code counts as. */
static door_reason_t
reason_of(int32_t code)
{
    switch (code) {
    case OBS_EVERSION:
        return DOOR_VERSION;
    case OBS_ETOOBIG:
        return DOOR_TOO_BIG;
    case OBS_ENOENT:
        return DOOR_NO_SESSION;
    default:
        return DOOR_MALFORMED;
    }
}

void
hub_security_strike(repl_hub_t *self, const char *who, size_t peer,
                    int32_t code)
{
    if (code != OBS_EPROTO && code != OBS_EVERSION && code != OBS_ETOOBIG &&
        code != OBS_ENOENT)
        return; /* not a broken or hostile peer's (clock, store, ...) */
    door_reason_t why = reason_of(code);
    if (peer != SIZE_MAX)
        self->peers[peer].refused[why]++;
    strike(self, who, why);
}
