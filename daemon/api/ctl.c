/*
 * ctl.c - local API socket of obsyncd (see ctl.h). Knows frames and peers,
 * not what requests mean: the engine does. A malformed, oversized or
 * wrong-version frame, or one past the decode limits (ctl_decode_limits),
 * is counted and answered with an ErrorReply; it never reaches the engine
 * and never stops the daemon.
 */
#include "ctl.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "log.h"
#include "obs_err.h"

#define CTL_BUDGET    1000 /* requests handled per loop turn ... */
#define CTL_BUDGET_MS 5    /* ... or fewer once this much time has gone */

/* What one request may cost to decode (ctl_decode_limits): a local client
 * is trusted with the data, not with the daemon's memory. msg_decode's
 * 32 * len + 1 MiB (what replication keeps) let an 8 MB ImportRows of 4
 * million empty rows take a node to 240 MB, and a 64 MB frame (max_frame)
 * could ask for 2 GB. Named here until they are config keys (api_*). */
#define CTL_FRAME_ROWS 10000 /* rows per ImportRows; the CLI sends <= 2000 */
/* cells per ImportRows: the CLI's 2000 rows of the widest header mapped
 * (sdmx_rows.c MAX_COLUMNS 512, plus a trailing empty cell) fit */
#define CTL_FRAME_CELLS ((size_t)1024 * 1024)
/* the budget: 16 MiB + 2 per byte + what protobuf-c takes per row and per
 * cell of an ImportRows (~100 and ~90 bytes, measured in test_msg.c) */
#define CTL_DECODE_FIXED    ((size_t)16 * 1024 * 1024)
#define CTL_DECODE_PER_BYTE 2
#define CTL_DECODE_PER_ROW  160
#define CTL_DECODE_PER_CELL 96

struct ctl {
    void *sock;
    char *path;
    size_t max_frame;
    ctl_stats_t stats;
};

static int
set_perms(const char *path, unsigned mode, const char *group, char *err,
          size_t cap)
{
    if (group != NULL && group[0] != '\0') {
        struct group *g = getgrnam(group);
        if (g == NULL) {
            (void)snprintf(err, cap, "api_group: unknown group '%s'", group);
            return OBS_ESYS;
        }
        if (chown(path, (uid_t)-1, g->gr_gid) != 0) {
            (void)snprintf(err, cap, "chown %s: %s", path, strerror(errno));
            return OBS_ESYS;
        }
    }
    if (chmod(path, (mode_t)mode) != 0) {
        (void)snprintf(err, cap, "chmod %s: %s", path, strerror(errno));
        return OBS_ESYS;
    }
    return OBS_OK;
}

int
ctl_open(void *zctx, const char *path, unsigned mode, const char *group,
         size_t max_frame, ctl_t **out, char *err, size_t cap)
{
    *out = NULL;
    ctl_t *self = calloc(1, sizeof(*self));
    if (self == NULL || (self->path = strdup(path)) == NULL) {
        free(self);
        return OBS_ENOMEM;
    }
    self->max_frame = max_frame;
    self->sock = zmq_socket(zctx, ZMQ_ROUTER);
    char endpoint[300];
    (void)snprintf(endpoint, sizeof(endpoint), "ipc://%s", path);
    int linger = 0, hwm = 10000;
    int64_t maxmsg = (int64_t)max_frame;
    /* A stale socket from a killed daemon would make bind fail. Another live
     * daemon on the same store is excluded by the store's lock first. */
    unlink(path);
    mode_t old = umask(0177); /* the file is born 0600, then set_perms */
    int brc = -1;
    if (self->sock != NULL) {
        zmq_setsockopt(self->sock, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_setsockopt(self->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(self->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
        brc = zmq_bind(self->sock, endpoint);
    }
    umask(old);
    if (brc != 0) {
        (void)snprintf(err, cap, "bind %s: %s", endpoint,
                       zmq_strerror(zmq_errno()));
        ctl_close(&self);
        return OBS_ESYS;
    }
    int rc = set_perms(path, mode, group, err, cap);
    if (rc != OBS_OK) {
        ctl_close(&self);
        return rc;
    }
    *out = self;
    return OBS_OK;
}

void
ctl_close(ctl_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    ctl_t *self = *selfp;
    if (self->sock)
        zmq_close(self->sock);
    if (self->path)
        unlink(self->path);
    free(self->path);
    free(self);
    *selfp = NULL;
}

void *
ctl_socket(ctl_t *self)
{
    return self->sock;
}

ctl_stats_t
ctl_stats(const ctl_t *self)
{
    return self->stats;
}

/* Drops the rest of a multipart message we do not expect. */
static void
drain(void *sock)
{
    int more = 0;
    size_t sz = sizeof(more);
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &sz) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, ZMQ_DONTWAIT);
        zmq_msg_close(&m);
    }
}

static bool
recv_identity(ctl_t *self, ctl_peer_t *peer)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, self->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return false;
    }
    size_t n = zmq_msg_size(&m);
    peer->id_len = n <= sizeof(peer->id) ? n : sizeof(peer->id);
    memcpy(peer->id, zmq_msg_data(&m), peer->id_len);
    peer->corr_id = 0;
    zmq_msg_close(&m);
    return true;
}

msg_limits_t
ctl_decode_limits(size_t max_frame)
{
    return (msg_limits_t){.max_frame = max_frame,
                          .budget = CTL_DECODE_FIXED,
                          .budget_per_byte = CTL_DECODE_PER_BYTE,
                          .budget_per_row = CTL_DECODE_PER_ROW,
                          .budget_per_cell = CTL_DECODE_PER_CELL,
                          .max_rows = CTL_FRAME_ROWS,
                          .max_cells = CTL_FRAME_CELLS};
}

/* Answers a frame msg_decode_limited refused, naming the limit. */
static void
refuse_frame(ctl_t *self, ctl_peer_t *peer, size_t len, int rc,
             const msg_refusal_t *why)
{
    char text[400];
    switch (why->limit) {
    case MSG_LIMIT_FRAME:
        (void)snprintf(text, sizeof(text),
                       "request frame of %zu bytes is over max_frame = %zu",
                       len, why->max);
        break;
    case MSG_LIMIT_ROWS:
        (void)snprintf(text, sizeof(text),
                       "ImportRows of %" PRIu64 " rows refused: the local API "
                       "takes at most %zu rows per request (the CLI sends "
                       "2000); nothing of it was read",
                       why->got, why->max);
        break;
    case MSG_LIMIT_CELLS:
        (void)snprintf(text, sizeof(text),
                       "ImportRows of %" PRIu64 " cells refused: the local "
                       "API takes at most %zu cells per request; nothing of "
                       "it was read",
                       why->got, why->max);
        break;
    case MSG_LIMIT_BUDGET:
        (void)snprintf(text, sizeof(text),
                       "request frame of %zu bytes refused: decoding it takes "
                       "more than the local API's decode budget of %zu bytes "
                       "for it; send it in smaller requests",
                       len, why->max);
        break;
    default:
        (void)snprintf(text, sizeof(text), "bad request frame (%zu bytes): %s",
                       len, obs_strerror(rc));
        break;
    }
    self->stats.frames_bad++;
    log_info("local API: dropped a frame: %s", text);
    ctl_reply_error(self, peer, rc, "%s", text);
}

static void
handle_frame(ctl_t *self, ctl_peer_t *peer, zmq_msg_t *m,
             ctl_handler_fn handler, void *arg)
{
    msg_t *req = NULL;
    msg_limits_t lim = ctl_decode_limits(self->max_frame);
    msg_refusal_t why;
    int rc =
        msg_decode_limited(zmq_msg_data(m), zmq_msg_size(m), &lim, &req, &why);
    if (rc != OBS_OK) {
        refuse_frame(self, peer, zmq_msg_size(m), rc, &why);
        return;
    }
    peer->corr_id = req->corr_id;
    handler(arg, peer, req);
    msg_destroy(&req);
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
ctl_dispatch(ctl_t *self, ctl_handler_fn handler, void *arg)
{
    int handled = 0;
    /* Bounded per loop turn, in count and time: a client that pipelines
     * requests (import chunks) must not keep the loop from committing,
     * replicating, heartbeating and serving the others. */
    uint64_t deadline = mono_ms() + CTL_BUDGET_MS;
    for (int budget = 0; budget < CTL_BUDGET; budget++) {
        if (handled > 0 && mono_ms() >= deadline)
            break;
        ctl_peer_t peer;
        if (!recv_identity(self, &peer))
            break;
        int more = 0;
        size_t sz = sizeof(more);
        zmq_getsockopt(self->sock, ZMQ_RCVMORE, &more, &sz);
        if (!more) {
            self->stats.frames_bad++;
            continue;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, self->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        self->stats.frames_in++;
        zmq_getsockopt(self->sock, ZMQ_RCVMORE, &more, &sz);
        if (more) { /* one frame per request; extra frames are a bad request */
            drain(self->sock);
            self->stats.frames_bad++;
            ctl_reply_error(self, &peer, OBS_EPROTO,
                            "a request is exactly one frame");
        } else {
            handle_frame(self, &peer, &m, handler, arg);
        }
        zmq_msg_close(&m);
        handled++;
    }
    return handled;
}

int
ctl_reply(ctl_t *self, const ctl_peer_t *peer, msg_t *reply)
{
    reply->corr_id = peer->corr_id;
    uint8_t *buf;
    size_t len;
    int rc = msg_encode(reply, &buf, &len);
    if (rc != OBS_OK)
        return rc;
    if (zmq_send(self->sock, peer->id, peer->id_len, ZMQ_SNDMORE) < 0 ||
        zmq_send(self->sock, buf, len, ZMQ_DONTWAIT) < 0) {
        log_debug("local API: reply dropped: %s", zmq_strerror(zmq_errno()));
        free(buf);
        return OBS_ESYS;
    }
    free(buf);
    self->stats.frames_out++;
    return OBS_OK;
}

int
ctl_reply_error(ctl_t *self, const ctl_peer_t *peer, int code, const char *fmt,
                ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    msg_t m = {.type = MSG_ERROR, .u.error = {.code = code, .message = msg}};
    return ctl_reply(self, peer, &m);
}
