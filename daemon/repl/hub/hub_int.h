/*
 * hub_int.h - what the hub's modules share inside daemon/repl/hub/: the
 * sessions, peers and the hub's own state. Not included elsewhere.
 *
 *   repl_hub.c     life cycle, the loop's hooks (before sleep, cron), status
 *   hub_session.c  sessions: receive, the state machine's actions, replies
 *   hub_stream.c   the log and snapshots streamed to nodes (read path)
 *   hub_accept.c   queued Publishes checked and logged in a group commit
 *   hub_rules.c    the pure decision: is this change accepted? (also used
 *                  by hub_prep.c, the checking thread)
 *   hub_state.c    the keyed state applied behind the log; log trimming
 *   hub_prep.c     the checking thread (hub_prep.h)
 *
 * Threading: everything but hub_prep's worker runs on the loop thread.
 */
#ifndef HUB_INT_H
#define HUB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

#include "hub_allow.h"
#include "hub_door.h"
#include "hub_prep.h"
#include "issue.h"
#include "link.h"
#include "msg.h"
#include "obs_key.h"
#include "repl_fsm.h"
#include "repl_hub.h"
#include "seq_ranges.h"
#include "validate.h"
#include "version_cache.h"

#define HUB_SESSIONS_MAX 1024
#define HUB_PEERS_MAX    4096 /* node ids remembered for status */
#define HUB_REJECTS_MAX  100  /* RowIssues per PublishAck */
/* LMDB keeps a transaction's dirty pages in the heap until commit, so
 * these bound the hub's memory outside the map. An accept transaction only
 * appends to the log (sequential: a few hundred bytes per change); a state
 * transaction dirties pages of the obs and history trees, with random keys
 * about 2 pages, 8 KiB, per change at worst. */
/* Changes accepted per transaction: half a node's window of full Publishes,
 * so the node refills the window while the hub commits the rest; and
 * their bytes, for big records (LMDB keeps a transaction's dirty pages for
 * reuse: the biggest accept transaction stays in the hub's RSS). */
#define HUB_COMMIT_MAX      8000
#define HUB_COMMIT_BYTES    (4u << 20)
#define HUB_STATE_APPLY_MAX 8000 /* log entries applied to state per txn */
/* ... and bytes of them: LMDB holds a write txn's dirty pages in malloc'd
 * memory and keeps them for reuse, so this bounds the hub's RSS */
#define HUB_STATE_APPLY_BYTES (2u << 20)
/* ... and changes to keys out of order (a random-order load): each dirties
 * a leaf page or two (obsdb_txn_lookups) */
#define HUB_STATE_LOOKUPS_MAX 2000
#define STATE_TXN_FULL        1   /* state_cb: stop before this entry */
#define HUB_STATE_TURN_MS     50  /* state applied per loop turn, at most */
#define HUB_STATE_DELAY_MS    500 /* see state_due */
/* versions of the newest accepted changes kept for the state apply: twice
 * what one state transaction takes, ~6 MiB */
#define HUB_VERSION_CACHE 16384

typedef struct {
    char node_id[OBS_ID_MAX + 1];
    char address[64];
    char state[16];
    char key_fp[CURVE_FINGERPRINT]; /* its key's, at its last Hello */
    bool up;
    unsigned stalled; /* sessions in a row that ended without progress */
    uint64_t last_seen_ms, cursor, last_origin_seq;
    uint64_t accepted, rejected, duplicates, superseded;
    uint64_t clock_refused; /* changes stamped too far ahead (not consumed) */
    uint64_t bytes_in, bytes_out;
    /* the stream to the node: its rate outlives a session; bytes_out counts
     * a LogBatch or snapshot chunk when the node's credit confirms it, so
     * a batch sent again after a reconnect is not counted twice */
    link_t down;
    uint64_t rate_in_bps; /* of its Publishes (their acks) */
    uint64_t reconnects;  /* sessions after the first */
    uint64_t sessions;
    uint64_t refused[DOOR_REASONS]; /* refusals tied to this node */
} peer_t;

/* changes checked ahead by the worker (hub_prep) while the loop commits
 * the group before: one group commit's worth, ~5 MiB of outputs */
#define HUB_PREP_AHEAD HUB_COMMIT_MAX

/* A Publish as received, waiting for the group commit. */
typedef struct pub {
    uint64_t first, last;
    size_t n, bytes;            /* changes, and their bytes */
    msg_t *msg;                 /* owned: the Publish as received */
    const msg_bytes_t *changes; /* msg's */
    prep_job_t job; /* its changes checked ahead (forgotten before env) */
    struct pub *next;
} pub_t;

typedef struct {
    uint8_t id[256];
    size_t id_len;
    size_t peer; /* index into hub->peers */
    rh_fsm_t fsm;
    char node_epoch[OBS_ID_MAX + 1];
    char provider[OBS_ID_MAX + 1]; /* its key's (plaintext: its Hello's):
                                      what it may write (R12) */
    /* curve: the key the connection authenticated with (Z85); the peer as
     * the door counts it: that key, or its address in plaintext */
    char key[CURVE_KEY_TXT];
    char who[CURVE_KEY_TXT + 64];
    uint64_t last_seq; /* origin_seq accepted from this node */
    uint64_t last_hlc; /* ... and that change's hlc */
    /* origin_seq of a change refused in this commit for its clock (0:
     * none): the session ends after the ack (the node re-stamps it) */
    uint64_t clock_refused;
    /* hub_seqs of the changes accepted from the node in this session:
     * they are in its store, so they are not echoed back to it. Ranges at
     * or below its cursor are dropped. */
    seq_ranges_t own;
    char **dfs, **areas;
    size_t n_dfs, n_areas;
    uint8_t snap_key[OBS_KEY_MAX + 1];
    size_t snap_len;
    uint64_t snap_sent;
    pub_t *pubs, *pubs_tail;
    size_t n_applied;     /* queued publishes the current commit covers */
    issue_list_t rejects; /* of the current group commit */
    char hello_hash[65];  /* structure hash its Hello named */
    bool hello_done;
    /* why the node broke the protocol, for the Goodbye that closes the
     * session (hub_sess_refuse; code 0: not said yet) */
    int32_t close_code;
    char close_why[200];
    bool progress; /* a credit confirmed a batch, or a publish was acked */
    uint64_t started_ms, in_bytes, in_start_ms;
    uint64_t told_last, told_ms; /* log_last the node was last told, when */
} sess_t;

/* LogBatches packed this loop turn, for the next node at the same
 * position with the same subscription: the same bytes go out again instead
 * of another log walk and pack (fan-out). A node pumps a whole window of
 * batches at once, so the last few are kept, oldest dropped first, at most
 * FANOUT_MAX of them and FANOUT_BYTES in all. Only a batch that left out
 * none of its node's own changes is kept; all are dropped at the end of
 * the turn (reap), so built_for is never a freed session. */
#define FANOUT_MAX   8
#define FANOUT_BYTES (4u << 20)
typedef struct {
    const sess_t *built_for;
    uint64_t after, to, last;
    uint8_t *buf;
    size_t len;
} fanout_t;

struct repl_hub {
    repl_env_t env;
    void *sock;
    char endpoint[160];
    char hash[65];
    sess_t *sess[HUB_SESSIONS_MAX];
    size_t n_sess;
    peer_t *peers;
    size_t n_peers, cap_peers;
    uint64_t log_first, log_last;
    uint64_t state_applied;   /* the state holds the log up to here */
    uint64_t state_retry_ms;  /* after a failed state apply */
    uint64_t state_done_ms;   /* when the state last caught up with the log */
    bool committed;           /* the last turn committed publishes */
    bool hold_state;          /* test hook: see the top of this file */
    bool curve;               /* security = curve (hub_security.c) */
    validate_memo_t vmemo;    /* emptied at each group commit: the
                                 structure cannot change within one */
    validate_texts_t vtexts;  /* normalised texts of the change checked */
    hub_prep_t *prep;         /* checks queued publishes ahead */
    version_cache_t vcache;   /* versions of the changes accepted last */
    fanout_t fan[FANOUT_MAX]; /* oldest first */
    size_t n_fan, fan_bytes;
    uint64_t batches_shared; /* LogBatches sent from fan */
    bool log_grew;
    uint64_t next_trim_ms, snapshots;
    size_t rr;                      /* round-robin start of the group commit */
    msg_peer_status_t *status_rows; /* of the last repl_hub_status */
    /* security (hub_security.c) */
    hub_door_t *door;
    hub_allow_t *allow; /* curve only */
    char key_fp[CURVE_FINGERPRINT];
    char public_txt[CURVE_KEY_TXT];
    uint64_t allow_checked_ms;
    door_counts_t door_counts; /* of the last status */
};

#define STATE_APPLIED "state_applied" /* meta: the state holds the log to */

static inline uint64_t
hub_now_ms(void)
{
    return hlc_mono_ms(); /* timers only: a clock step must not fire them */
}

static inline peer_t *
hub_sess_peer(repl_hub_t *self, const sess_t *s)
{
    return &self->peers[s->peer];
}

/* ---- hub_security.c */
/** Security on the replication socket, before it binds: CURVE server and
 * allow-list, or plaintext; the door (ZAP, monitor); limits. OBS_ESYS,
 * OBS_EINVAL (a key file), ...; err says what. */
int hub_security_setup(repl_hub_t *self, char *err, size_t cap);
void hub_security_fini(repl_hub_t *self);
/** The security fields of a status reply (pointing into self). */
void hub_security_status(repl_hub_t *self, msg_status_reply_t *sr);
/** Re-reads the allow-list when its directory changed (each heartbeat). */
void hub_security_cron(repl_hub_t *self, uint64_t now);
/** Whether to take a message (body) for session s (NULL: a stranger):
 * false drops it (a peer serving a back-off, or another key on a
 * session, which is then closed). */
bool hub_security_admit(repl_hub_t *self, sess_t *s, const zmq_msg_t *body);
/** Who sent body, as the door counts peers: its key (curve) or its
 * address (plaintext); "" when libzmq does not say. */
void hub_security_who(repl_hub_t *self, const zmq_msg_t *body, char *who,
                      size_t cap);
/** Records who a new session's connection is. */
void hub_security_new_session(repl_hub_t *self, sess_t *s,
                              const zmq_msg_t *body);
/** The identity check of a Hello: OBS_OK sets s->provider; OBS_EAUTH has
 * recorded the refusal (hub_sess_refuse). */
int hub_security_hello(repl_hub_t *self, sess_t *s, const msg_hello_t *h);
/** Counts a refusal with Goodbye code `code` against who (and peer, if
 * not SIZE_MAX); protocol errors are strikes toward a back-off. */
void hub_security_strike(repl_hub_t *self, const char *who, size_t peer,
                         int32_t code);

/* ---- hub_session.c */
/** The index of node_id's row in peers (added if new), or SIZE_MAX when
 * HUB_PEERS_MAX rows exist. */
size_t hub_peer_for(repl_hub_t *self, const char *node_id);
/** Feeds ev to s's state machine and performs the actions, following up
 * (a batch sent continues the stream) until nothing follows. ev->msg, if
 * any, is consumed. */
void hub_step(repl_hub_t *self, sess_t *s, rh_event_t *ev);
/** Sends m to s's node (a drop at the high-water mark is logged at
 * debug level); counts its bytes. */
void hub_send(repl_hub_t *self, sess_t *s, const msg_t *m);
/** Goodbye{code, reason} to s's node (code: 0 = a clean stop, else the
 * OBS_E* of PROTOCOL.md §5.3 "Goodbye codes"). */
void hub_send_goodbye(repl_hub_t *self, sess_t *s, int32_t code,
                      const char *reason);
/** Records why s's session must end (the first reason stays): the code
 * and reason of the Goodbye an RH_EV_PROTO_ERROR closes it with (a
 * protocol error, or another code of PROTOCOL.md §5.3); logged. */
void hub_sess_refuse(repl_hub_t *self, sess_t *s, int32_t code, const char *fmt,
                     ...) __attribute__((format(printf, 4, 5)));
void hub_send_structure(repl_hub_t *self, sess_t *s);
/** Tells s's node where the log ends, when it grew (see the definition). */
void hub_tell_log_last(repl_hub_t *self, sess_t *s, uint64_t now);
/** Frees the first n queued publishes of s (SIZE_MAX: all). */
void hub_pubs_drop(repl_hub_t *self, sess_t *s, size_t n);
void hub_pubs_free(repl_hub_t *self, sess_t *s);
size_t hub_pubs_queued(const sess_t *s);
void hub_sess_free(repl_hub_t *self, sess_t *s);

/* ---- hub_stream.c */
/** Drops the cached batches (built_for s only, or all when s is NULL). */
void hub_fanout_drop(repl_hub_t *self, const sess_t *s);
/** Sends the next LogBatch after `after`; returns the new position, or
 * `after` if there was nothing to send. *closed: the log no longer reaches
 * back to `after` (a Goodbye was sent). */
uint64_t hub_send_batch(repl_hub_t *self, sess_t *s, uint64_t after,
                        bool *closed);
/** Sends the next snapshot chunk; *done when the state walk finished. */
void hub_send_chunk(repl_hub_t *self, sess_t *s, bool *done, bool *failed);

/* ---- hub_accept.c */
/** The group commit of every queued Publish, then the acks. */
void hub_commit_publishes(repl_hub_t *self);

/* ---- hub_state.c */
/** Applies up to max log entries after state_applied to the state. */
int hub_apply_state(repl_hub_t *self, size_t max);
/** Is it time to apply the log to the state? */
bool hub_state_due(const repl_hub_t *self, uint64_t now);
void hub_trim_log(repl_hub_t *self);

#endif
