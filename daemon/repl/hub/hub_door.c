/*
 * hub_door.c - the ZAP handler, the monitor and the abuse table of the
 * hub's replication port (hub_door.h).
 */
#include "hub_door.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "hlc.h"
#include "log.h"
#include "obs_err.h"

#define ZAP_ENDPOINT     "inproc://zeromq.zap.01"
#define MONITOR_ENDPOINT "inproc://obsync-hub-monitor"
#define ABUSE_ROWS       1024  /* peers remembered; least recent go */
#define ABUSE_WINDOW_MS  60000 /* strikes count within this window */
#define LOG_EVERY_MS     60000 /* one refusal log per peer per minute */
#define WHO_MAX          (CURVE_KEY_TXT + 64)

static const char *const REASONS[DOOR_REASONS] = {
    [DOOR_UNKNOWN_KEY] = "unknown_key",   [DOOR_BACKOFF] = "backoff",
    [DOOR_PENDING_FULL] = "pending_full", [DOOR_MECHANISM] = "mechanism",
    [DOOR_IDENTITY] = "identity",         [DOOR_KEY_CHANGED] = "key_changed",
    [DOOR_KEY_REMOVED] = "key_removed",   [DOOR_MALFORMED] = "malformed",
    [DOOR_VERSION] = "version",           [DOOR_TOO_BIG] = "too_big",
    [DOOR_NO_SESSION] = "no_session",
};

const char *const *
hub_door_reason_names(void)
{
    return REASONS;
}

const char *
hub_door_reason_name(door_reason_t r)
{
    return r < DOOR_REASONS ? REASONS[r] : "?";
}

/* One remembered peer: its strikes in the current window, its back-off,
 * when a refusal of it was last logged. */
typedef struct {
    char who[WHO_MAX];
    uint64_t touched_ms, window_ms, banned_until, logged_ms;
    uint32_t strikes;
} row_t;

struct hub_door {
    door_opts_t opts;
    door_decide_fn *decide;
    void *arg;
    void *zap, *monitor;
    row_t rows[ABUSE_ROWS];
    /* connections by fd: when accepted (0: none or spoke already) */
    uint64_t *since;
    size_t n_since;
    door_counts_t counts;
};

/* ------------------------------------------------------------ table */

/* The row of who, or a fresh one in place of the least recent row that
 * serves no back-off. */
static row_t *
row_for(hub_door_t *self, const char *who, uint64_t now)
{
    row_t *free_row = NULL;
    for (size_t i = 0; i < ABUSE_ROWS; i++) {
        row_t *r = &self->rows[i];
        if (r->who[0] != '\0' && strcmp(r->who, who) == 0) {
            r->touched_ms = now;
            return r;
        }
        bool idle = r->who[0] == '\0' || r->banned_until <= now;
        if (idle && (free_row == NULL || r->touched_ms < free_row->touched_ms))
            free_row = r;
    }
    if (free_row == NULL) /* every row serves a back-off: reuse the first */
        free_row = &self->rows[0];
    memset(free_row, 0, sizeof(*free_row));
    (void)snprintf(free_row->who, sizeof(free_row->who), "%s", who);
    free_row->touched_ms = now;
    return free_row;
}

static const row_t *
row_find(const hub_door_t *self, const char *who)
{
    for (size_t i = 0; i < ABUSE_ROWS; i++)
        if (self->rows[i].who[0] != '\0' && strcmp(self->rows[i].who, who) == 0)
            return &self->rows[i];
    return NULL;
}

static bool
is_strike(door_reason_t why)
{
    /* Only what a known peer breaks: a stranger's failed handshakes are
     * counted and logged, not held against its address, which an honest
     * node behind the same NAT may share (a flood of them is the
     * firewall's: README "Keys and deployment"). */
    return why == DOOR_MALFORMED || why == DOOR_VERSION ||
           why == DOOR_TOO_BIG || why == DOOR_NO_SESSION ||
           why == DOOR_IDENTITY || why == DOOR_KEY_CHANGED;
}

bool
hub_door_refused(hub_door_t *self, const char *who, door_reason_t why,
                 uint64_t now_ms)
{
    self->counts.refused[why]++;
    if (!is_strike(why) || who == NULL || who[0] == '\0')
        return false;
    row_t *r = row_for(self, who, now_ms);
    if (r->banned_until > now_ms)
        return false;
    if (now_ms - r->window_ms > ABUSE_WINDOW_MS) {
        r->window_ms = now_ms;
        r->strikes = 0;
    }
    if (++r->strikes < self->opts.abuse_threshold)
        return false;
    r->banned_until = now_ms + self->opts.abuse_backoff_ms;
    r->strikes = 0;
    self->counts.backoffs++;
    return true;
}

uint64_t
hub_door_backoff_left(hub_door_t *self, const char *who, uint64_t now_ms)
{
    const row_t *r = who && who[0] ? row_find(self, who) : NULL;
    return r && r->banned_until > now_ms ? r->banned_until - now_ms : 0;
}

bool
hub_door_log_due(hub_door_t *self, const char *key, const char *address,
                 uint64_t now_ms)
{
    char who[WHO_MAX + 8];
    (void)snprintf(who, sizeof(who), "log %.40s@%.60s", key ? key : "",
                   address ? address : "");
    row_t *r = row_for(self, who, now_ms);
    if (r->logged_ms != 0 && now_ms - r->logged_ms < LOG_EVERY_MS)
        return false;
    r->logged_ms = now_ms;
    return true;
}

/* ------------------------------------------------------------ ZAP */

static void
copy_frame(char *dst, size_t cap, const uint8_t *src, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int
hub_door_zap_parse(const uint8_t *const *frames, const size_t *lens, size_t n,
                   zap_request_t *out)
{
    memset(out, 0, sizeof(*out));
    /* version, request id, domain, address, identity, mechanism,
     * credentials... (RFC 27) */
    if (n < 6 || lens[0] != 3 || memcmp(frames[0], "1.0", 3) != 0 ||
        lens[1] >= sizeof(out->request_id) || lens[3] >= sizeof(out->address) ||
        lens[5] >= sizeof(out->mechanism))
        return OBS_EPROTO;
    copy_frame(out->request_id, sizeof(out->request_id), frames[1], lens[1]);
    copy_frame(out->address, sizeof(out->address), frames[3], lens[3]);
    copy_frame(out->mechanism, sizeof(out->mechanism), frames[5], lens[5]);
    if (strcmp(out->mechanism, "CURVE") == 0) {
        if (n != 7 || lens[6] != 32)
            return OBS_EPROTO;
        if (zmq_z85_encode(out->key, frames[6], 32) == NULL)
            return OBS_EPROTO;
    }
    return OBS_OK;
}

static size_t
pending_silent(const hub_door_t *self, uint64_t now)
{
    /* a connection older than the handshake timeout finished its
     * handshake (libzmq closes the others), and has not spoken */
    size_t n = 0;
    for (size_t fd = 0; fd < self->n_since; fd++)
        if (self->since[fd] != 0 &&
            now - self->since[fd] > self->opts.handshake_ms + 1000)
            n++;
    return n;
}

static bool
door_decide(hub_door_t *self, const zap_request_t *req, uint64_t now,
            door_reason_t *why)
{
    const char *want = self->opts.curve ? "CURVE" : "NULL";
    if (strcmp(req->mechanism, want) != 0) {
        *why = DOOR_MECHANISM;
        return false;
    }
    if (hub_door_backoff_left(self, req->address, now) > 0 ||
        hub_door_backoff_left(self, req->key, now) > 0) {
        *why = DOOR_BACKOFF;
        return false;
    }
    if (pending_silent(self, now) >= self->opts.max_pending) {
        *why = DOOR_PENDING_FULL;
        return false;
    }
    return self->decide(self->arg, req, why);
}

static void
zap_reply(void *sock, const char *request_id, bool ok, const char *user)
{
    const char *parts[] = {
        "1.0",          request_id, ok ? "200" : "400", ok ? "OK" : "refused",
        ok ? user : "", ""};
    for (size_t i = 0; i < 6; i++)
        (void)zmq_send(sock, parts[i], strlen(parts[i]),
                       i < 5 ? ZMQ_SNDMORE : 0);
}

/* One request: its frames (at most 8 kept; the rest drained). */
static bool
zap_one(hub_door_t *self, uint64_t now)
{
    zmq_msg_t f[8];
    const uint8_t *data[8];
    size_t lens[8], n = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        if (n < 8) {
            f[n] = m;
            data[n] = zmq_msg_data(&f[n]);
            lens[n] = zmq_msg_size(&f[n]);
            n++;
        } else {
            zmq_msg_close(&m);
        }
    }
    if (n == 0)
        return false;
    zap_request_t req;
    int rc = hub_door_zap_parse(data, lens, n, &req);
    door_reason_t why = DOOR_MALFORMED;
    bool ok = rc == OBS_OK && door_decide(self, &req, now, &why);
    if (!ok) {
        self->counts.refused[why]++;
        if (hub_door_log_due(self, req.key, req.address, now))
            log_warnx("hub: refused a %s handshake from %s%s%.8s: %s",
                      req.mechanism[0] ? req.mechanism : "malformed",
                      req.address[0] ? req.address : "?",
                      req.key[0] ? " key " : "", req.key,
                      hub_door_reason_name(why));
    }
    /* the User-Id: the peer's key, which the hub reads back from every
     * message it receives (zmq_msg_gets "User-Id") */
    zap_reply(self->zap, req.request_id, ok, req.key);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return true;
}

void
hub_door_on_zap(hub_door_t *self, uint64_t now_ms)
{
    for (int i = 0; i < 1000 && zap_one(self, now_ms); i++)
        ;
}

/* ------------------------------------------------------------ monitor */

static void
track_fd(hub_door_t *self, int fd, uint64_t since)
{
    if (fd < 0)
        return;
    if ((size_t)fd >= self->n_since) {
        if (since == 0)
            return;
        size_t n = (size_t)fd + 64;
        uint64_t *s = realloc(self->since, n * sizeof(*s));
        if (s == NULL)
            return; /* not tracked: it cannot count as pending */
        memset(s + self->n_since, 0, (n - self->n_since) * sizeof(*s));
        self->since = s;
        self->n_since = n;
    }
    self->since[fd] = since;
}

void
hub_door_spoke(hub_door_t *self, int fd)
{
    if (fd >= 0 && (size_t)fd < self->n_since)
        self->since[fd] = 0;
}

static void
on_event(hub_door_t *self, uint16_t event, int32_t value)
{
    switch (event) {
    case ZMQ_EVENT_ACCEPTED:
        self->counts.open++;
        track_fd(self, value, hlc_mono_ms() | 1);
        break;
    case ZMQ_EVENT_DISCONNECTED:
        if (self->counts.open > 0)
            self->counts.open--;
        track_fd(self, value, 0);
        break;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        self->counts.handshakes++;
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        self->counts.handshake_failures++;
        break;
    default:
        break;
    }
}

void
hub_door_on_monitor(hub_door_t *self)
{
    for (int i = 0; i < 10000; i++) {
        zmq_msg_t ev, addr;
        zmq_msg_init(&ev);
        if (zmq_msg_recv(&ev, self->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&ev);
            return;
        }
        zmq_msg_init(&addr);
        if (zmq_msg_more(&ev))
            (void)zmq_msg_recv(&addr, self->monitor, 0);
        if (zmq_msg_size(&ev) == 6) {
            const uint8_t *d = zmq_msg_data(&ev);
            uint16_t event;
            int32_t value;
            memcpy(&event, d, 2);
            memcpy(&value, d + 2, 4);
            on_event(self, event, value);
        }
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
    }
}

/* ------------------------------------------------------------ life */

int
hub_door_open(void *zctx, const door_opts_t *opts, door_decide_fn *decide,
              void *arg, hub_door_t **out, char *err, size_t cap)
{
    *out = NULL;
    hub_door_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->opts = *opts;
    self->decide = decide;
    self->arg = arg;
    self->zap = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    if (self->zap == NULL ||
        zmq_setsockopt(self->zap, ZMQ_LINGER, &linger, sizeof(linger)) != 0 ||
        zmq_bind(self->zap, ZAP_ENDPOINT) != 0) {
        (void)snprintf(err, cap, "hub: ZAP handler %s: %s", ZAP_ENDPOINT,
                       zmq_strerror(zmq_errno()));
        hub_door_close(&self);
        return OBS_ESYS;
    }
    *out = self;
    return OBS_OK;
}

int
hub_door_watch(hub_door_t *self, void *zctx, void *sock)
{
    int events =
        ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED |
        ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    int linger = 0;
    if (zmq_socket_monitor(sock, MONITOR_ENDPOINT, events) != 0 ||
        (self->monitor = zmq_socket(zctx, ZMQ_PAIR)) == NULL)
        return OBS_ESYS;
    zmq_setsockopt(self->monitor, ZMQ_LINGER, &linger, sizeof(linger));
    /* no high-water mark: a dropped DISCONNECTED would leave a connection
     * counted as pending for ever (libzmq drops events past it) */
    int unlimited = 0;
    zmq_setsockopt(self->monitor, ZMQ_RCVHWM, &unlimited, sizeof(unlimited));
    return zmq_connect(self->monitor, MONITOR_ENDPOINT) == 0 ? OBS_OK
                                                             : OBS_ESYS;
}

void
hub_door_close(hub_door_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    hub_door_t *self = *selfp;
    if (self->zap)
        zmq_close(self->zap);
    if (self->monitor)
        zmq_close(self->monitor);
    free(self->since);
    free(self);
    *selfp = NULL;
}

void *
hub_door_zap_socket(hub_door_t *self)
{
    return self->zap;
}

void *
hub_door_monitor_socket(hub_door_t *self)
{
    return self->monitor;
}

void
hub_door_counts(const hub_door_t *self, door_counts_t *out)
{
    *out = self->counts;
    out->pending = 0;
    for (size_t fd = 0; fd < self->n_since; fd++)
        out->pending += self->since[fd] != 0;
}
