/*
 * repl_node.h - the node end of replication: a DEALER to hub_endpoint driven
 * by the node state machine (repl/fsm/repl_fsm.c rn_*): publishes the outbox
 * with a window of unacked batches, drops outbox entries only after the
 * hub's ack, and applies the hub's log (or a snapshot) with the cursor in the
 * same transaction as the data (PROTOCOL.md §5).
 *
 * Threading: the engine's loop only. Ownership: env is borrowed.
 */
#ifndef REPL_NODE_H
#define REPL_NODE_H

#include "repl.h"

typedef struct repl_node repl_node_t;

int repl_node_new(const repl_env_t *env, repl_node_t **out, char *err,
                  size_t cap);
void repl_node_destroy(repl_node_t **selfp);
/** The socket to poll, or NULL while disconnected. */
void *repl_node_socket(repl_node_t *self);
void repl_node_on_readable(repl_node_t *self);
/** 10 Hz: connect/reconnect, heartbeats, liveness, deferred structure. */
void repl_node_cron(repl_node_t *self, uint64_t now_ms);
/** Local changes were committed up to origin_seq. */
void repl_node_outbox_grew(repl_node_t *self, uint64_t origin_seq);
/** Fills the node rows of a StatusReply (outbox_depth, filled in by the
 * caller, is lowered by what is acknowledged and not trimmed yet). Every
 * string it sets is static or the configuration's. */
void repl_node_status(repl_node_t *self, msg_status_reply_t *sr);
/** Whether local writes may be stamped now: OBS_ECLOCK (why says by how
 * much, for the writer) while this node's clock is further from the hub's
 * than the hub accepts (PROTOCOL.md §5.4 "Clocks"); OBS_OK otherwise, also
 * before the first Welcome or Heartbeat of this run. */
int repl_node_clock_check(repl_node_t *self, char *why, size_t cap);
/** The local structure changed (its hash goes in the next Hello). */
void repl_node_structure_changed(repl_node_t *self);

#endif
