/*
 * repl_hub.h - the hub end of replication: a ROUTER on repl_bind, one
 * session (core/repl_fsm.c rh_*) per connected node, group-committed
 * publishes reconciled into the hub's state and log, and credit-paced log or
 * snapshot streams to every node (PROTOCOL.md §5).
 *
 * Threading: the engine's loop only. Ownership: the hub owns its socket and
 * sessions; env is borrowed.
 */
#ifndef REPL_HUB_H
#define REPL_HUB_H

#include "repl.h"

typedef struct repl_hub repl_hub_t;

/** Binds repl_bind and writes the bound endpoint to data_dir/repl.endpoint.
 * OBS_ESYS with a message in err. */
int repl_hub_new(const repl_env_t *env, repl_hub_t **out, char *err,
                 size_t cap);
void repl_hub_destroy(repl_hub_t **selfp);
void *repl_hub_socket(repl_hub_t *self);
/** The door of the replication port (hub_door.h), for the loop: its ZAP
 * handler and its monitor, and their handlers. */
void *repl_hub_zap_socket(repl_hub_t *self);
void *repl_hub_monitor_socket(repl_hub_t *self);
void repl_hub_on_zap(repl_hub_t *self);
void repl_hub_on_monitor(repl_hub_t *self);
/** Re-reads the allow-list (SIGHUP, `obsync reload`); sessions whose key
 * left it end at once. On error the old list stays. err gets a one-line
 * summary or the error. OBS_OK, or the error of hub_allow_load. */
int repl_hub_reload(repl_hub_t *self, char *err, size_t cap);
/** Receives every pending frame. */
void repl_hub_on_readable(repl_hub_t *self);
/** 10 Hz: heartbeats, dead peers, log trimming. */
void repl_hub_cron(repl_hub_t *self, uint64_t now_ms);
/** Before the loop sleeps: one transaction for every queued publish, then
 * the acks, then the streams, then at most one transaction applying the
 * log to the keyed state behind it. */
void repl_hub_before_sleep(repl_hub_t *self);
/** True while publishes wait for a commit or the state lags behind the log
 * (the loop must not sleep). */
bool repl_hub_has_work(const repl_hub_t *self);
/** Applies the whole log to the keyed state now (before local writes at the
 * hub read the state). OBS_OK, or a store error: the state then lags, and
 * the hub keeps retrying. */
int repl_hub_catch_up(repl_hub_t *self);
/** Stores a local write at the hub: appended to the log (o->ver.hub_seq is
 * set) and written to the state in the caller's write txn. Call
 * repl_hub_catch_up first, so the state the write was based on was current.
 * Sticky txn errors. */
int repl_hub_store_local(obsdb_txn_t *txn, obs_t *o);
/** The log (and perhaps meta "state_applied") changed through a local write
 * at the hub. */
void repl_hub_log_grew(repl_hub_t *self);
/** The structure is about to change in place: the changes checked ahead
 * against it (on the hub's worker thread) are checked again after, and the
 * worker leaves it alone until repl_hub_structure_loaded. */
void repl_hub_structure_changing(repl_hub_t *self);
/** The structure may be read again; when changed, every node gets the new
 * text. */
void repl_hub_structure_loaded(repl_hub_t *self, bool changed);
/** Fills the hub rows of a StatusReply; the memory stays owned by the hub
 * until the next call. */
/** Fills the hub's fields and peer rows of sr; the rows stay valid until
 * the next call or repl_hub_destroy. */
void repl_hub_status(repl_hub_t *self, msg_status_reply_t *sr);

#endif
