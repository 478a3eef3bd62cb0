/*
 * node_int.h - what the node's replication files share (private to
 * daemon/repl/node/; nothing outside includes it):
 *
 *   repl_node.c    the session: socket, receiving and dispatching, the
 *                  state machine's actions, lifecycle, status;
 *   node_stream.c  the hub's LogBatches and snapshot chunks into the store,
 *                  with the cursor in the same transaction;
 *   node_publish.c the outbox: Publish, PublishAck, trimming, restoring,
 *                  and the rebase a Welcome may call for (node_rebase.h).
 *
 * Threading: the engine's loop only. Ownership: messages (msg_t) reach
 * these functions through the state machine's actions (repl_fsm.h); a
 * function that takes a `msg_t **` consumes the message and sets the
 * pointer to NULL, one that takes a `const msg_t *` or a body borrows it.
 */
#ifndef NODE_INT_H
#define NODE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "curve_cert.h"
#include "link.h"
#include "node_rebase.h"
#include "repl_fsm.h"
#include "repl_node.h"

/* The outbox is trimmed (a commit) when OUTBOX_TRIM_MS passed since the
 * last trim or OUTBOX_TRIM_EVERY changes were acknowledged since. */
#define OUTBOX_TRIM_MS    1000
#define OUTBOX_TRIM_EVERY 100000
#define CURSOR_SAVE_MS    1000 /* see repl_node.cursor_unsaved */
/* LogBatches kept for one group commit (see repl_node.batches) */
#define NODE_BATCHES_MAX ((size_t)REPL_WINDOW * 4)

struct repl_node {
    repl_env_t env; /* borrowed pointers (repl.h) */
    void *sock;     /* owned; NULL while disconnected */
    /* security = curve: our key pair (secret wiped at destroy) and the
     * hub's public key, set on each new socket */
    bool curve;
    curve_cert_t own;
    char hub_key[CURVE_KEY_TXT];
    char key_fp[CURVE_FINGERPRINT], hub_fp[CURVE_FINGERPRINT];
    rn_fsm_t fsm;
    char hub_epoch[OBS_ID_MAX + 1];  /* of the hub our cursor refers to */
    char next_epoch[OBS_ID_MAX + 1]; /* from the current Welcome */
    char **dfs, **areas;             /* owned (repl_list_parse) */
    size_t n_dfs, n_areas;
    char hash[65];
    char sub_hash[65]; /* of the subscription, kept beside the cursor */
    uint64_t log_last, last_applied_ms, snapshots, applied, bytes_in;
    uint64_t trimmed; /* outbox removed (and pub_acked stored) up to here */
    uint64_t trimmed_ms;
    /* The outbox was restored (pub_restore: only current versions come
     * back, so its origin_seqs have gaps): trimmed at every ack until it
     * is empty, so status can count what waits as stored - (acked -
     * trimmed). */
    bool trim_now;
    /* Cursor moved by batches with no change for us (all filtered out or
     * our own) and not stored yet: a commit (an fsync) for nothing but a
     * cursor would cost an importing node one per batch it is streamed.
     * Stored at most every CURSOR_SAVE_MS, before a Welcome and at exit; a
     * crash before that only has the hub send those entries again. */
    uint64_t cursor_unsaved, cursor_saved_ms;
    /* LogBatches accepted by the state machine and not yet committed
     * (owned: destroyed once applied or dropped): they are applied together
     * in one transaction when the socket is drained, so a catch-up costs one
     * fsync per read burst, not one per batch. */
    msg_t *batches[NODE_BATCHES_MAX];
    size_t n_batches;
    uint64_t snap_received;  /* changes of the snapshot being received */
    char *pending_structure; /* owned; deferred while imports are open */
    size_t pending_len;
    /* the hub's clock, from Welcome and Heartbeat: repl_node_clock_check,
     * pub_limit */
    hlc_ref_t hub_clock;
    uint64_t restamped, renumbered; /* by node_rebase, this run */
    /* outbox changes stamped past what the hub accepts (it refused one:
     * R-clock), from the first to the end: re-stamped at the next Welcome,
     * or held there until the hub's clock catches up (node_rebase.h) */
    uint64_t pending_rejects;
    uint64_t held_warned_ms;
    /* the link (link.h): Publishes sized and windowed by what the acks
     * confirm; the hub's stream measured as it arrives */
    link_t up;
    uint64_t in_bytes, in_start_ms, rate_in_bps;
    uint64_t applied_from, applied_start_ms, apply_rate; /* entries/s */
    uint64_t sessions, reconnects;
    bool progress;    /* this session moved something */
    unsigned stalled; /* sessions in a row that ended without progress */
    uint64_t session_ms;
};

static inline uint64_t
node_now_ms(void)
{
    return hlc_mono_ms(); /* timers only: a clock step must not fire them */
}

/* The stamp past which the hub refuses a change of ours, its clock being
 * hub_now_ms: its bound less our margin (node_rebase.h). */
static inline uint64_t
node_stamp_bound(uint64_t hub_now_ms)
{
    return HLC_MAKE(hub_now_ms + (uint64_t)REPL_MAX_SKEW_MS -
                        (uint64_t)REBASE_MARGIN_MS,
                    0xffff);
}

/* ---- repl_node.c */

/** Feeds ev (and the follow-up events its actions produce) to the state
 * machine and performs the actions. Consumes ev->msg: it is moved to the
 * action that applies it or destroyed; ev is overwritten. */
void node_step(repl_node_t *self, rn_event_t *ev);
/** Sends m to the hub (borrowed); returns the frame's size, 0 when not
 * sent (no socket, high-water mark: logged at debug level). */
uint64_t node_send(repl_node_t *self, const msg_t *m);

/* ---- node_stream.c */

/** Keeps a LogBatch (consumed: *mp is NULL after) for the group commit of
 * stream_flush. */
void stream_keep_batch(repl_node_t *self, msg_t **mp);
/** Commits every kept LogBatch in one transaction with the last one's
 * cursor, destroys them, then reports them applied (node_step), or a
 * protocol error when the commit failed (logged). */
void stream_flush(repl_node_t *self);
/** Destroys the kept LogBatches unapplied (they come again from the
 * cursor). */
void stream_drop(repl_node_t *self);
/** Applies a SnapshotChunk (consumed) at once; *next becomes APPLIED, or
 * PROTO_ERROR when it could not be stored (logged). */
void stream_apply_chunk(repl_node_t *self, msg_t **mp, rn_event_t *next);
/** Commits the snapshot's cursor (fence); false when it failed (logged). */
bool stream_finish_snapshot(repl_node_t *self, uint64_t fence);
/** Stores a cursor that empty batches moved (see cursor_unsaved). */
void stream_save_cursor(repl_node_t *self);

/* ---- node_publish.c */

/** Sends the next Publish after origin_seq `after`; returns its last seq or
 * 0 if nothing was sent (link full, outbox empty after it, or only changes
 * stamped past what the hub accepts now: pending_rejects). */
uint64_t pub_send(repl_node_t *self, uint64_t after);
/** What a PublishAck says beyond its acked_seq and resend_from (the state
 * machine's): the link's confirmations and the hub's rejects (logged). */
void pub_on_ack(repl_node_t *self, const msg_publish_ack_t *a);
/** Trims the outbox up to upto (with pub_acked), now. */
void pub_ack(repl_node_t *self, uint64_t upto);
/** Trims when it is time (OUTBOX_TRIM_MS, OUTBOX_TRIM_EVERY). */
void pub_maybe_ack(repl_node_t *self, uint64_t now);
/** Puts our changes after `after` back in the outbox (the hub lost them). */
void pub_restore(repl_node_t *self, uint64_t after);
/** Before the state machine sees a Welcome: renumbers or re-stamps what is
 * not acknowledged (node_rebase.h); ev->to gets the outbox's new last
 * origin_seq when it changed. False when that failed (logged). */
bool pub_rebase_on_welcome(repl_node_t *self, const msg_welcome_t *w,
                           rn_event_t *ev);

#endif
