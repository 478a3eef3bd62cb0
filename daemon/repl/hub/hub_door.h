/*
 * hub_door.h - who may come in through the hub's replication port, and
 * what it cost those who may not.
 *
 * - The ZAP handler (ZeroMQ RFC 27, inproc://zeromq.zap.01): libzmq asks
 *   it at the end of every security handshake. The hub's decide callback
 *   answers with the allow-list; the door refuses first a peer that is
 *   serving a back-off, and new handshakes while too many admitted
 *   connections have not said Hello (max_pending_hello).
 * - A monitor of the replication socket: connections open, admitted but
 *   silent (pending), handshakes failed.
 * - The abuse table: protocol errors per peer (its key, or its address in
 *   plaintext); abuse_threshold of them within a minute refuse the peer
 *   for abuse_backoff_ms. Refusal logs are rate-limited per peer.
 * - Counters of every refusal, by reason, for status.
 *
 * Runs on the loop thread. Ownership: hub_door_t owns its two inproc
 * sockets; the ZAP socket must be bound before the replication socket
 * binds (libzmq lets every key in when no handler is bound).
 */
#ifndef HUB_DOOR_H
#define HUB_DOOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "curve_cert.h"

/* Why the hub refused someone; names in hub_door_reason_name. */
typedef enum {
    DOOR_UNKNOWN_KEY,  /* handshake: the key is not in the allow-list */
    DOOR_BACKOFF,      /* handshake or message: serving a back-off */
    DOOR_PENDING_FULL, /* handshake: too many connections without Hello */
    DOOR_MECHANISM,    /* handshake: not the configured mechanism */
    DOOR_IDENTITY,     /* Hello: names another node or provider than its
                          key's */
    DOOR_KEY_CHANGED,  /* a message on a session from another key */
    DOOR_KEY_REMOVED,  /* the key left the allow-list: session closed */
    DOOR_MALFORMED,    /* a frame that does not decode, or out of protocol */
    DOOR_VERSION,      /* another protocol major version */
    DOOR_TOO_BIG,      /* over a limit (frame, changes per Publish) */
    DOOR_NO_SESSION,   /* a message other than Hello without a session */
    DOOR_REASONS
} door_reason_t;

const char *hub_door_reason_name(door_reason_t r);
/** Every reason's name, indexed by door_reason_t. */
const char *const *hub_door_reason_names(void);

/* One ZAP request (RFC 27), as parsed. */
typedef struct {
    char request_id[64];
    char address[64]; /* the peer's IP address */
    char mechanism[16];
    char key[CURVE_KEY_TXT]; /* CURVE: the client's public key, Z85 */
} zap_request_t;

/** Parses the frames of a ZAP request. OBS_OK or OBS_EPROTO. Pure. */
int hub_door_zap_parse(const uint8_t *const *frames, const size_t *lens,
                       size_t n, zap_request_t *out);

/* The hub's answer to a ZAP request: true lets the peer in. On false,
 * *why is the reason counted and logged. */
typedef bool(door_decide_fn)(void *arg, const zap_request_t *req,
                             door_reason_t *why);

typedef struct hub_door hub_door_t;

typedef struct {
    bool curve;            /* else plaintext: NULL mechanism */
    uint64_t max_pending;  /* admitted connections without Hello */
    uint64_t handshake_ms; /* ZMQ_HANDSHAKE_IVL of the watched socket */
    uint32_t abuse_threshold;
    uint64_t abuse_backoff_ms;
} door_opts_t;

/** Binds the ZAP handler in zctx. OBS_OK; OBS_ESYS (err says why);
 * OBS_ENOMEM. */
int hub_door_open(void *zctx, const door_opts_t *opts, door_decide_fn *decide,
                  void *arg, hub_door_t **out, char *err, size_t cap);
/** Watches sock (the replication ROUTER, before it binds). OBS_ESYS. */
int hub_door_watch(hub_door_t *self, void *zctx, void *sock);
void hub_door_close(hub_door_t **selfp);

/** The sockets for the loop: ZAP requests, monitor events. */
void *hub_door_zap_socket(hub_door_t *self);
void *hub_door_monitor_socket(hub_door_t *self);
/** Answers every pending ZAP request. */
void hub_door_on_zap(hub_door_t *self, uint64_t now_ms);
/** Takes every pending monitor event. */
void hub_door_on_monitor(hub_door_t *self);
/** A message arrived on connection fd (ZMQ_SRCFD): it is no longer
 * pending. */
void hub_door_spoke(hub_door_t *self, int fd);

/** Counts a refusal of `who` (a key or an address). A protocol-breaking
 * reason (malformed, version, too big, no session, identity, key changed)
 * is also a strike; returns true when this strike starts a back-off. */
bool hub_door_refused(hub_door_t *self, const char *who, door_reason_t why,
                      uint64_t now_ms);
/** Milliseconds of back-off `who` still serves (0: none). */
uint64_t hub_door_backoff_left(hub_door_t *self, const char *who,
                               uint64_t now_ms);
/** True when a refusal of (key, address) may be logged now: once a
 * minute per pair. */
bool hub_door_log_due(hub_door_t *self, const char *key, const char *address,
                      uint64_t now_ms);

typedef struct {
    uint64_t refused[DOOR_REASONS];
    uint64_t open;       /* TCP connections now */
    uint64_t pending;    /* admitted, no message yet */
    uint64_t handshakes; /* succeeded, in all */
    uint64_t handshake_failures;
    uint64_t backoffs; /* peers that started a back-off */
} door_counts_t;
void hub_door_counts(const hub_door_t *self, door_counts_t *out);

#endif
