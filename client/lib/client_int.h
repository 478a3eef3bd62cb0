/*
 * client_int.h - libobsync internals shared by client.c (transport), ops.c
 * (requests) and import.c. Not installed; only the library sources include it,
 * and with it the generated obsync.pb-c.h.
 */
#ifndef OBSYNC_CLIENT_INT_H
#define OBSYNC_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "obsync.pb-c.h"
#include "obsync/obsync.h"

#define OBSYNC_PROTO_VERSION 1

typedef Obsync__V1__Envelope env_t;

struct obsync_client {
    void *ctx;        /* owned ZeroMQ context */
    void *sock;       /* owned DEALER, NULL until the first request */
    char *endpoint;   /* owned, "ipc://PATH" or another transport */
    const char *path; /* into endpoint: the ipc path, or NULL */
    int timeout_ms;
    uint64_t corr_id;  /* last one used */
    bool ever_replied; /* distinguishes "unreachable" from "timed out" */
    volatile sig_atomic_t *cancel; /* borrowed, may be NULL */
    char err[512];
};

/** Records the detail of an error and returns rc. */
int cl_fail(obsync_client_t *c, int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/**
 * Sends req (version and corr_id are set here) and waits for the reply with
 * the same corr_id. OBS_OK: *reply is a decoded envelope whose body is not
 * an ErrorReply (an ErrorReply becomes its code + message); caller frees it
 * with cl_env_free. Errors as listed in obsync.h for every request.
 */
int cl_call(obsync_client_t *c, env_t *req, env_t **reply);
/** The two halves of cl_call, for requests pipelined in order (the daemon
 * answers in order): cl_send sets *corr; cl_recv waits for that reply,
 * dropping replies to other ids (requests given up on). */
int cl_send(obsync_client_t *c, env_t *req, uint64_t *corr);
int cl_recv(obsync_client_t *c, uint64_t corr, env_t **reply);
int cl_recv_expect(obsync_client_t *c, uint64_t corr, int want, env_t **reply);
/** cl_call that also requires the reply body to be want (else EPROTO). */
int cl_call_expect(obsync_client_t *c, env_t *req, int want, env_t **reply);
void cl_env_free(env_t **e);
/** True when the cancel flag is set. */
bool cl_cancelled(const obsync_client_t *c);

/** Adds const-free pointers to borrowed strings for protobuf-c, which only
 * reads them when packing. */
char *cl_unconst(const char *s);

/** Fills sum from a WriteSummary and passes its issues to cb. */
void cl_summary_from_pb(const Obsync__V1__WriteSummary *ws,
                        obsync_summary_t *sum, obsync_issue_cb cb, void *arg);
void cl_issue_from_pb(const Obsync__V1__RowIssue *ri, obsync_issue_t *out);

#endif
