/*
 * client.c - libobsync's client object and its transport to obsyncd's local
 * API: one ZMQ_DEALER connected to ipc://PATH, one frame per request and per
 * reply (a msg.h message: msg_encode, msg_decode), replies matched by
 * corr_id, each wait bounded by the client timeout through zmq_poll. It does
 * not know what the requests mean (ops.c, import.c build them). Silent: errors
 * are codes plus a detail string in the client (obsync_client_errmsg), never
 * prints or aborts. Threading: one thread per client at a time.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "client_int.h"
#include "codec.h"
#include "obs_err.h"

/* The public codes must be the wire codes. */
_Static_assert((int)OBSYNC_EFORMAT == (int)OBS_EFORMAT, "codes drift");
_Static_assert((int)OBSYNC_ECLOCK == (int)OBS_ECLOCK, "codes drift");
_Static_assert((int)OBSYNC_EUNREACH == (int)OBS_EUNREACH, "codes drift");
_Static_assert((int)OBSYNC_ENOENT == (int)OBS_ENOENT, "codes drift");

const char *
obsync_strerror(int rc)
{
    return obs_strerror(rc);
}

int
cl_fail(obsync_client_t *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(c->err, sizeof(c->err), fmt, ap); /* may cut it short */
    va_end(ap);
    return rc;
}

char *
cl_unconst(const char *s)
{
    union {
        const char *in;
        char *out;
    } u = {.in = s ? s : ""};
    return u.out;
}

bool
cl_cancelled(const obsync_client_t *c)
{
    return c->cancel != NULL && *c->cancel != 0;
}

/* ---------------------------------------------------------------- object */

static int
make_endpoint(obsync_client_t *c, const char *endpoint)
{
    bool has_scheme = strstr(endpoint, "://") != NULL;
    size_t len = strlen(endpoint) + sizeof("ipc://");
    c->endpoint = malloc(len);
    if (c->endpoint == NULL)
        return OBSYNC_ENOMEM;
    (void)snprintf(c->endpoint, len, "%s%s", has_scheme ? "" : "ipc://",
                   endpoint); /* len fits both */
    if (strncmp(c->endpoint, "ipc://", 6) == 0)
        c->path = c->endpoint + 6;
    return OBSYNC_OK;
}

int
obsync_client_new(const char *endpoint, obsync_client_t **out)
{
    if (out == NULL)
        return OBSYNC_EINVAL;
    *out = NULL;
    if (endpoint == NULL || endpoint[0] == '\0')
        return OBSYNC_EINVAL;
    obsync_client_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return OBSYNC_ENOMEM;
    c->timeout_ms = OBSYNC_DEFAULT_TIMEOUT_MS;
    int rc = make_endpoint(c, endpoint);
    if (rc == OBSYNC_OK && (c->ctx = zmq_ctx_new()) == NULL)
        rc = OBSYNC_ESYS;
    if (rc != OBSYNC_OK) {
        obsync_client_destroy(&c);
        return rc;
    }
    *out = c;
    return OBSYNC_OK;
}

void
obsync_client_destroy(obsync_client_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    obsync_client_t *c = *cp;
    if (c->sock != NULL)
        zmq_close(c->sock);
    if (c->ctx != NULL)
        zmq_ctx_term(c->ctx);
    free(c->endpoint);
    free(c);
    *cp = NULL;
}

const char *
obsync_client_errmsg(const obsync_client_t *c)
{
    return c ? c->err : "";
}

const char *
obsync_client_endpoint(const obsync_client_t *c)
{
    return c->endpoint;
}

void
obsync_client_set_timeout(obsync_client_t *c, int ms)
{
    c->timeout_ms = ms > 0 ? ms : OBSYNC_DEFAULT_TIMEOUT_MS;
}

void
obsync_client_set_cancel(obsync_client_t *c, volatile sig_atomic_t *flag)
{
    c->cancel = flag;
}

/* ---------------------------------------------------------------- wire */

static int
unreachable(obsync_client_t *c, int rc, const char *why)
{
    return cl_fail(c, rc, "daemon unreachable at %s (is obsyncd running?)%s",
                   c->endpoint, why);
}

static int
connect_once(obsync_client_t *c)
{
    if (c->sock != NULL)
        return OBSYNC_OK;
    struct stat st;
    if (c->path != NULL && stat(c->path, &st) != 0)
        return unreachable(c, OBSYNC_EUNREACH, "");
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (c->sock == NULL)
        return cl_fail(c, OBSYNC_ESYS, "zmq_socket: %s", zmq_strerror(errno));
    int linger = 0;
    int64_t maxmsg = (int64_t)OBSYNC_MAX_FRAME;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (zmq_connect(c->sock, c->endpoint) != 0) {
        int e = errno;
        zmq_close(c->sock);
        c->sock = NULL;
        return cl_fail(c, OBSYNC_EUNREACH, "cannot connect to %s: %s",
                       c->endpoint, zmq_strerror(e));
    }
    return OBSYNC_OK;
}

static int
send_msg(obsync_client_t *c, const msg_t *req)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = msg_encode(req, &buf, &len);
    if (rc == OBSYNC_OK && len > (size_t)OBSYNC_MAX_FRAME) {
        free(buf);
        return cl_fail(c, OBSYNC_ETOOBIG,
                       "request of %zu bytes exceeds the 64 MiB frame limit",
                       len);
    }
    if (rc == OBSYNC_ETOOBIG) /* past the 256 MiB any frame may have */
        return cl_fail(c, rc, "request exceeds the 64 MiB frame limit");
    if (rc != OBSYNC_OK)
        return cl_fail(c, rc, "encoding the request: %s", obs_strerror(rc));
    int n = zmq_send(c->sock, buf, len, ZMQ_DONTWAIT);
    int e = errno;
    free(buf);
    if (n < 0 && e == EAGAIN)
        return unreachable(c, OBSYNC_EUNREACH, ": send queue full");
    if (n < 0)
        return cl_fail(c, OBSYNC_ESYS, "zmq_send: %s", zmq_strerror(e));
    return OBSYNC_OK;
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for one frame until deadline. OBS_OK with msg filled. */
static int
recv_frame(obsync_client_t *c, int64_t deadline, zmq_msg_t *msg)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t it = {c->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&it, 1, (long)left);
        if (n < 0 && errno == EINTR) {
            if (cl_cancelled(c))
                return cl_fail(c, OBSYNC_ESYS, "interrupted");
            continue;
        }
        if (n < 0)
            return cl_fail(c, OBSYNC_ESYS, "zmq_poll: %s", zmq_strerror(errno));
        if (n == 0)
            break;
        if (zmq_msg_recv(msg, c->sock, ZMQ_DONTWAIT) >= 0)
            return OBSYNC_OK;
        if (errno != EAGAIN && errno != EINTR)
            return cl_fail(c, OBSYNC_ESYS, "zmq_recv: %s", zmq_strerror(errno));
    }
    if (!c->ever_replied)
        return unreachable(c, OBSYNC_EUNREACH, "");
    return cl_fail(c, OBSYNC_ETIMEOUT, "no reply from %s within %d ms",
                   c->endpoint, c->timeout_ms);
}

/* The protocol version a frame msg_decode refused with OBS_EVERSION
 * says it speaks: its first field, as every obsync build packs it. */
static unsigned
frame_version(const uint8_t *p, size_t len)
{
    uint64_t v = 0;
    const uint8_t *q = p + 1;
    if (len < 2 || p[0] != 0x08 || !codec_varint_get(&q, p + len, &v))
        return 0;
    return v > UINT32_MAX ? 0 : (unsigned)v;
}

/* Decodes one frame; *m NULL when it must be skipped (stale or extra
 * part). */
static int
decode(obsync_client_t *c, zmq_msg_t *zm, uint64_t corr, msg_t **m)
{
    *m = NULL;
    if (zmq_msg_more(zm))
        return OBSYNC_OK; /* we never send multipart: skip odd frames */
    size_t len = zmq_msg_size(zm);
    const uint8_t *data = zmq_msg_data(zm);
    msg_t *r = NULL;
    int rc = msg_decode(data, len, (size_t)OBSYNC_MAX_FRAME, &r);
    switch (rc) {
    case OBSYNC_OK:
        break;
    case OBSYNC_ETOOBIG:
        return cl_fail(c, OBSYNC_EPROTO, "reply frame over 64 MiB refused");
    case OBSYNC_EVERSION:
        return cl_fail(c, OBSYNC_EVERSION,
                       "daemon speaks protocol version %u, this client %d",
                       frame_version(data, len), CODEC_VERSION);
    case OBSYNC_ENOMEM:
        return cl_fail(c, OBSYNC_ENOMEM,
                       "out of memory decoding a reply of %zu bytes", len);
    default:
        return cl_fail(c, OBSYNC_EPROTO, "undecodable reply (%zu bytes)", len);
    }
    /* corr_id 0 + ErrorReply: the daemon could not decode our request, so
     * it could not echo the id; it is taken as the reply awaited. */
    bool undecoded = r->corr_id == 0 && r->type == MSG_ERROR;
    if (r->corr_id != corr && !undecoded) {
        msg_destroy(&r); /* stale reply */
        return OBSYNC_OK;
    }
    *m = r;
    return OBSYNC_OK;
}

static int
error_reply(obsync_client_t *c, const msg_t *m)
{
    const msg_error_t *er = &m->u.error;
    int code = er->code < 0 ? er->code : OBSYNC_EPROTO;
    const char *text = er->message[0] ? er->message : obs_strerror(code);
    (void)cl_fail(c, code, "%s", text);
    return code; /* < 0: never OBSYNC_OK */
}

int
cl_send(obsync_client_t *c, msg_t *req, uint64_t *corr)
{
    c->err[0] = '\0';
    int rc = connect_once(c);
    if (rc != OBSYNC_OK)
        return rc;
    req->corr_id = *corr = ++c->corr_id;
    return send_msg(c, req);
}

int
cl_recv(obsync_client_t *c, uint64_t corr, msg_t **reply)
{
    *reply = NULL;
    int rc = OBSYNC_OK;
    int64_t deadline = now_ms() + c->timeout_ms;
    msg_t *m = NULL;
    while (m == NULL) {
        zmq_msg_t zm;
        zmq_msg_init(&zm);
        rc = recv_frame(c, deadline, &zm);
        if (rc == OBSYNC_OK)
            rc = decode(c, &zm, corr, &m);
        zmq_msg_close(&zm);
        if (rc != OBSYNC_OK)
            return rc;
    }
    c->ever_replied = true;
    if (m->type == MSG_ERROR) {
        rc = error_reply(c, m);
        msg_destroy(&m);
        return rc;
    }
    *reply = m;
    return OBSYNC_OK;
}

int
cl_call(obsync_client_t *c, msg_t *req, msg_t **reply)
{
    uint64_t corr;
    *reply = NULL;
    int rc = cl_send(c, req, &corr);
    return rc == OBSYNC_OK ? cl_recv(c, corr, reply) : rc;
}

int
cl_recv_expect(obsync_client_t *c, uint64_t corr, msg_type_t want,
               msg_t **reply)
{
    int rc = cl_recv(c, corr, reply);
    if (rc == OBSYNC_OK && (*reply)->type != want) {
        int got = (int)(*reply)->type;
        msg_destroy(reply);
        return cl_fail(c, OBSYNC_EPROTO,
                       "unexpected reply body %d (expected %d)", got,
                       (int)want);
    }
    return rc;
}

int
cl_call_expect(obsync_client_t *c, msg_t *req, msg_type_t want, msg_t **reply)
{
    uint64_t corr;
    *reply = NULL;
    int rc = cl_send(c, req, &corr);
    return rc == OBSYNC_OK ? cl_recv_expect(c, corr, want, reply) : rc;
}

/* ---------------------------------------------------------------- summary */

void
cl_issue_from_msg(const msg_issue_t *ri, obsync_issue_t *out)
{
    out->line = ri->line;
    out->column = ri->column;
    out->rule = ri->rule;
    out->message = ri->message;
    out->warning = ri->warning;
}

void
cl_summary_from_msg(const msg_write_summary_t *ws, obsync_summary_t *sum,
                    obsync_issue_cb cb, void *arg)
{
    if (sum != NULL) {
        memset(sum, 0, sizeof(*sum));
        sum->accepted = ws->accepted;
        sum->unchanged = ws->unchanged;
        sum->rejected = ws->rejected;
        sum->deleted = ws->deleted;
        sum->warnings = ws->warnings;
        sum->issues_omitted = ws->issues_omitted;
        sum->committed = ws->committed;
        (void)snprintf(sum->batch_id, sizeof(sum->batch_id), "%s",
                       ws->batch_id);
    }
    for (size_t i = 0; cb != NULL && i < ws->issues.n; i++) {
        obsync_issue_t is;
        cl_issue_from_msg(&ws->issues.items[i], &is);
        cb(arg, &is);
    }
}
