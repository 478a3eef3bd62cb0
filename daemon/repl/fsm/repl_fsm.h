/*
 * repl_fsm.h - the replication state machines of PROTOCOL.md §5, pure.
 *
 * Two machines: the node's link to its hub (rn_*) and the hub's session with
 * one node (rh_*). Each takes an event and the current time and appends
 * actions to an outbox; it never touches a socket, the store or the clock, so
 * tests drive it with scripted or random events. The glue (repl/node/,
 * repl/hub/) performs the actions and reports their results back as events
 * (e.g. "batch applied up to hub_seq N").
 *
 * The switch in repl_fsm.c follows the tables of PROTOCOL.md §5.4 row by row.
 * Ownership: plain data, no allocation. An event may carry the message it
 * came in (`msg`, opaque here); the step moves it into the action that
 * consumes it (APPLY_BATCH, APPLY_CHUNK, APPLY_PUBLISH) and sets the
 * event's pointer to NULL. The glue takes it from the action with
 * take(&action.msg) and frees whatever is left in the event and actions
 * afterwards (a dropped batch, a disconnect).
 */
#ifndef REPL_FSM_H
#define REPL_FSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_WINDOW 8 /* LogBatch credit a node gives at a time */
/* Publish batches a node has in flight: twice the hub's commit of 8,000
 * changes, so the node refills one half while the hub syncs the other. */
#define REPL_PUB_WINDOW  16
#define REPL_ACTIONS_MAX 8    /* actions one event can produce (asserted) */
#define REPL_BACKOFF_MIN 100  /* ms */
#define REPL_BACKOFF_MAX 5000 /* ms */

/* ------------------------------------------------------------ node side */

typedef enum {
    RN_IDLE = 0,  /* no link: waiting for the reconnect backoff */
    RN_HELLO,     /* connected, Hello sent, waiting for Welcome */
    RN_SNAPSHOT,  /* receiving a snapshot fenced by a hub_seq */
    RN_STREAMING, /* receiving the log from the cursor */
} rn_state_t;

typedef enum {
    RN_EV_TICK = 0,    /* time passed (cron, 10 Hz) */
    RN_EV_WELCOME,     /* a.snapshot, a.seq = hub's last origin_seq of ours,
                          a.to = our last origin_seq when the glue renumbered
                          the outbox after it (0: unchanged) */
    RN_EV_SNAP_BEGIN,  /* a.seq = fence */
    RN_EV_SNAP_CHUNK,  /* a chunk arrived (the glue applies it) */
    RN_EV_SNAP_END,    /* a.seq = fence */
    RN_EV_LOG_BATCH,   /* a.from, a.to */
    RN_EV_APPLIED,     /* the glue committed a batch/chunk; a.to = new
                          cursor (0 for a snapshot chunk) */
    RN_EV_PUB_ACK,     /* a.seq = acked origin_seq, a.from = resend_from */
    RN_EV_PUBLISHED,   /* the glue sent a Publish up to a.seq */
    RN_EV_OUTBOX,      /* local changes exist up to a.seq */
    RN_EV_HEARTBEAT,   /* a heartbeat arrived */
    RN_EV_GOODBYE,     /* the hub closed the session */
    RN_EV_PROTO_ERROR, /* malformed or out-of-state message */
} rn_event_type_t;

struct msg; /* proto/msg.h: opaque to the machines */

typedef struct {
    rn_event_type_t type;
    uint64_t now_ms;
    uint64_t seq, from, to;
    bool snapshot;
    struct msg *msg; /* the message that made the event: owned, moved */
} rn_event_t;

typedef enum {
    RN_A_CONNECT = 0,     /* open the socket */
    RN_A_DISCONNECT,      /* close it (pending input is dropped) */
    RN_A_SEND_HELLO,      /* with the cursor */
    RN_A_SEND_CREDIT,     /* n batches; resync restarts the stream at cursor */
    RN_A_APPLY_BATCH,     /* apply the LogBatch just received */
    RN_A_DROP_BATCH,      /* discard it (gap or stale) */
    RN_A_BEGIN_SNAPSHOT,  /* a snapshot starts: n = fence */
    RN_A_APPLY_CHUNK,     /* apply the SnapshotChunk just received */
    RN_A_FINISH_SNAPSHOT, /* commit cursor = n (the fence) */
    RN_A_SEND_PUBLISH,    /* send the next outbox batch after n */
    RN_A_ACK_OUTBOX,      /* drop outbox entries <= n */
    RN_A_SEND_HEARTBEAT,
    RN_A_RESTORE_OUTBOX, /* the hub lost our changes after n (restored or
                            wiped): put them back in the outbox from history */
} rn_action_type_t;

typedef struct {
    rn_action_type_t type;
    uint64_t n;
    bool resync;
    struct msg *msg; /* APPLY_BATCH, APPLY_CHUNK: the message, owned */
} rn_action_t;

typedef struct {
    rn_action_t a[REPL_ACTIONS_MAX];
    size_t n;
} rn_actions_t;

typedef struct {
    rn_state_t state;
    uint64_t cursor;       /* last hub_seq applied durably */
    uint64_t expect;       /* `from` the next LogBatch must have: the `to`
                              of the last batch handed to the glue (the
                              glue may apply several in one transaction
                              before it reports them applied); never
                              below the cursor */
    uint64_t fence;        /* snapshot fence being received */
    bool resyncing;        /* dropped a batch, waiting for from == cursor
                              (while cursor < expect, for the glue to apply
                              the batches it keeps: the resync credit is
                              not sent yet) */
    uint64_t pub_sent;     /* highest origin_seq sent in this session */
    uint64_t pub_acked;    /* highest origin_seq acked (durable at hub) */
    uint64_t outbox_last;  /* highest local origin_seq known */
    unsigned pub_inflight; /* Publish batches not yet acked */
    unsigned pub_head;     /* pub_ends[pub_head] is the oldest in flight */
    uint64_t pub_ends[REPL_PUB_WINDOW]; /* last origin_seq of each, in order */
    uint64_t last_recv_ms, last_send_ms, next_connect_ms;
    uint64_t backoff_ms;
    uint32_t heartbeat_ms; /* send a heartbeat after this much silence */
    uint32_t dead_ms;      /* the hub is dead after this much silence */
} rn_fsm_t;

/** Starts IDLE with the persisted cursor and acked origin_seq; the first
 * TICK connects. */
void rn_fsm_init(rn_fsm_t *f, uint64_t cursor, uint64_t pub_acked,
                 uint64_t outbox_last, uint32_t heartbeat_ms, uint32_t dead_ms);
/** Feeds one event; appends actions to out (cleared first). Returns the
 * state after the event. ev->msg moves to the action that consumes it. */
rn_state_t rn_fsm_step(rn_fsm_t *f, rn_event_t *ev, rn_actions_t *out);
const char *rn_state_name(rn_state_t s);
const char *rn_event_name(rn_event_type_t e);

/* ------------------------------------------------------------- hub side */

typedef enum {
    RH_NEW = 0,   /* socket seen, waiting for Hello */
    RH_SNAPSHOT,  /* sending a snapshot */
    RH_STREAMING, /* sending the log */
    RH_DEAD,      /* closed or timed out: the glue frees it */
} rh_state_t;

typedef enum {
    RH_EV_TICK = 0,
    RH_EV_HELLO,     /* a.cursor, a.epoch_ok, a.log_first, a.log_last */
    RH_EV_CREDIT,    /* a.cursor, a.n, a.resync */
    RH_EV_PUBLISH,   /* a.first, a.last: queued for the group commit */
    RH_EV_COMMITTED, /* group commit done: a.seq = acked origin_seq,
                        a.first = resend_from (0 if none) */
    RH_EV_LOG_GREW,  /* a.log_last: new entries in the hub log */
    RH_EV_SENT,      /* glue sent a LogBatch up to a.seq (or a chunk:
                        a.done = snapshot finished) */
    RH_EV_HEARTBEAT,
    RH_EV_GOODBYE,
    RH_EV_PROTO_ERROR,
} rh_event_type_t;

typedef struct {
    rh_event_type_t type;
    uint64_t now_ms;
    uint64_t cursor, log_first, log_last, seq, first, last;
    uint32_t n;
    bool epoch_ok, resync, done;
    struct msg *msg; /* the message that made the event: owned, moved */
} rh_event_t;

typedef enum {
    RH_A_SEND_WELCOME = 0, /* snapshot flag in `snapshot` */
    RH_A_START_SNAPSHOT,   /* fence = n */
    RH_A_SEND_CHUNK,       /* next snapshot chunk */
    RH_A_SEND_SNAP_END,    /* fence = n */
    RH_A_SEND_BATCH,       /* next LogBatch after n */
    RH_A_APPLY_PUBLISH,    /* hand the Publish to the group commit */
    RH_A_SEND_ACK,         /* PublishAck: n = acked, resend_from = m */
    RH_A_SEND_HEARTBEAT,
    RH_A_CLOSE, /* n = rh_close_why_t */
} rh_action_type_t;

/* Why a session closes: the glue words the Goodbye (none to a node that
 * said Goodbye itself). */
typedef enum {
    RH_CLOSE_PROTOCOL = 0, /* the node broke the protocol (glue has why) */
    RH_CLOSE_TIMEOUT,      /* silent for peer_timeout */
    RH_CLOSE_PEER_LEFT,    /* the node said Goodbye */
} rh_close_why_t;

typedef struct {
    rh_action_type_t type;
    uint64_t n, m;
    bool snapshot;
    struct msg *msg; /* APPLY_PUBLISH: the Publish, owned */
} rh_action_t;

typedef struct {
    rh_action_t a[REPL_ACTIONS_MAX];
    size_t n;
} rh_actions_t;

typedef struct {
    rh_state_t state;
    uint64_t read_pos; /* stream position: last hub_seq sent */
    uint64_t fence;
    uint64_t log_last;
    uint32_t credits; /* batches the node allows */
    uint64_t last_recv_ms, last_send_ms;
    uint32_t heartbeat_ms, dead_ms;
} rh_fsm_t;

void rh_fsm_init(rh_fsm_t *f, uint64_t now_ms, uint32_t heartbeat_ms,
                 uint32_t dead_ms);
/** As rn_fsm_step: ev->msg moves to the action that consumes it. */
rh_state_t rh_fsm_step(rh_fsm_t *f, rh_event_t *ev, rh_actions_t *out);
const char *rh_state_name(rh_state_t s);
const char *rh_event_name(rh_event_type_t e);

/** Moves *p out: returns it and sets *p to NULL (ownership passes). */
static inline struct msg *
repl_take(struct msg **p)
{
    struct msg *m = *p;
    *p = NULL;
    return m;
}

#endif
