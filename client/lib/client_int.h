/*
 * client_int.h - libobsync internals shared by client.c (transport), ops.c
 * (requests) and import.c. Not installed; only the library sources include
 * it. Requests and replies are proto/msg.h's plain structs: the generated
 * protobuf types stay inside proto/.
 */
#ifndef OBSYNC_CLIENT_INT_H
#define OBSYNC_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "msg.h"
#include "obsync/obsync.h"

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
 * Sends req (its corr_id is set here; the frame carries CODEC_VERSION) and
 * waits for the reply with the same corr_id. OBS_OK: *reply is a decoded
 * message whose body is not an ErrorReply (an ErrorReply becomes its code +
 * message); caller frees it with msg_destroy. Replies are decoded with
 * msg_decode under OBSYNC_MAX_FRAME, the frame cap and allocation budget
 * the daemon decodes requests with. Errors as listed in obsync.h for every
 * request.
 */
int cl_call(obsync_client_t *c, msg_t *req, msg_t **reply);
/** The two halves of cl_call, for requests pipelined in order (the daemon
 * answers in order): cl_send sets *corr; cl_recv waits for that reply,
 * dropping replies to other ids (requests given up on). */
int cl_send(obsync_client_t *c, msg_t *req, uint64_t *corr);
int cl_recv(obsync_client_t *c, uint64_t corr, msg_t **reply);
int cl_recv_expect(obsync_client_t *c, uint64_t corr, msg_type_t want,
                   msg_t **reply);
/** cl_call that also requires the reply body to be want (else EPROTO). */
int cl_call_expect(obsync_client_t *c, msg_t *req, msg_type_t want,
                   msg_t **reply);
/** True when the cancel flag is set. */
bool cl_cancelled(const obsync_client_t *c);

/** A const-free pointer to a borrowed string (NULL gives ""), for the
 * char * fields of an obs_t the request only reads. */
char *cl_unconst(const char *s);

/** Fills sum from a WriteSummary and passes its issues to cb. */
void cl_summary_from_msg(const msg_write_summary_t *ws, obsync_summary_t *sum,
                         obsync_issue_cb cb, void *arg);
void cl_issue_from_msg(const msg_issue_t *ri, obsync_issue_t *out);

#endif
