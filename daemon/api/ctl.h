/*
 * ctl.h - the daemon end of the local API: a ZeroMQ ROUTER bound to
 * ipc://PATH, one message (proto/msg.h) per request and per reply
 * (proto/obsync.proto, PROTOCOL.md "Local API"). It decodes and checks frames,
 * answers malformed ones with ErrorReply itself, and hands good requests to the
 * engine.
 *
 * Threading: used only from the daemon loop. Ownership: requests passed to
 * the handler are borrowed for the call; replies are borrowed by ctl_reply.
 */
#ifndef CTL_H
#define CTL_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"

typedef struct ctl ctl_t;

/* Who asked: enough to answer later (after a group commit). Plain data. */
typedef struct {
    uint8_t id[256];
    size_t id_len;
    uint64_t corr_id;
} ctl_peer_t;

typedef void (*ctl_handler_fn)(void *arg, const ctl_peer_t *peer,
                               const msg_t *req);

typedef struct {
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t frames_bad;
} ctl_stats_t;

/** Binds ROUTER on ipc://path (removing a stale socket file), sets the
 * file's mode and, when group is non-NULL, its group. OBS_ESYS with a
 * message in err, OBS_ENOMEM. */
int ctl_open(void *zctx, const char *path, unsigned mode, const char *group,
             size_t max_frame, ctl_t **out, char *err, size_t cap);
/** Closes the socket, unlinks the file, sets *selfp NULL. NULL-safe. */
void ctl_close(ctl_t **selfp);
/** The ZeroMQ socket, for zmq_poll. */
void *ctl_socket(ctl_t *self);
/** Receives every pending request without blocking and calls handler for
 * each good one. Returns the number handled. */
int ctl_dispatch(ctl_t *self, ctl_handler_fn handler, void *arg);
/** Sends reply to peer (corr_id set from peer). OBS_ENOMEM, OBS_ESYS (peer
 * gone: logged at debug and dropped). */
int ctl_reply(ctl_t *self, const ctl_peer_t *peer, msg_t *reply);
/** Sends ErrorReply{code, message}. */
int ctl_reply_error(ctl_t *self, const ctl_peer_t *peer, int code,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
ctl_stats_t ctl_stats(const ctl_t *self);
/** The limits every request is decoded under (msg_decode_limited): frames
 * up to max_frame, at most 10,000 rows and 2^20 cells per ImportRows, and
 * a budget of 16 MiB + 2 per byte + 160 per row + 96 per cell. Past one:
 * ErrorReply{OBS_ETOOBIG} naming it, the request unread. */
msg_limits_t ctl_decode_limits(size_t max_frame);

#endif
