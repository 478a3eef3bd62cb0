/*
 * repl.h - replication glue shared by the hub (repl/hub/) and the node
 * (repl/node/): what the engine lends them, and helpers both ends use.
 *
 * The state machines are in repl/fsm/repl_fsm.c (pure); these modules perform
 * their actions on sockets and the store. Everything runs on the engine's
 * loop thread. Ownership: every pointer in repl_env_t is borrowed from the
 * engine and outlives the replication objects.
 */
#ifndef REPL_H
#define REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "hlc.h"
#include "msg.h"
#include "obsdb.h"
#include "structure.h"

typedef struct {
    const cfg_t *cfg;
    obsdb_t *db;
    structure_t *st;
    hlc_t *hlc;
    void *zctx;
    /* Loads replicated structure text (node); returns OBS_EBUSY while imports
     * are open (the text is then retried later by the caller). */
    int (*load_structure)(void *engine, const char *text, size_t len);
    /* The engine's highest local origin_seq made (node): node_rebase
     * raises it when it renumbers changes after the hub's. */
    uint64_t *origin_seq;
    void *engine;
} repl_env_t;

#define REPL_BATCH_MAX                                  \
    1000 /* changes per Publish / LogBatch; their bytes \
           are the link's (core/link.h) */
#define REPL_MAX_SKEW_MS (5 * 60 * 1000) /* HLC stamps ahead of our clock */

/** Hex SHA-256 of the structure's canonical text (65 bytes with NUL). */
int repl_structure_hash(const structure_t *st, char hex[65]);

/** Encodes m and sends it as one frame (after the routing id when id is
 * not NULL). Never blocks: at the high-water mark the frame is dropped and
 * OBS_EBUSY returned (the stream's gap detection recovers). *bytes (may be
 * NULL) is incremented by the frame size. */
int repl_send(void *sock, const uint8_t *id, size_t id_len, const msg_t *m,
              uint64_t *bytes);
/** repl_send of a frame already packed (buf stays the caller's). */
int repl_send_bytes(void *sock, const uint8_t *id, size_t id_len,
                    const uint8_t *buf, size_t len, uint64_t *bytes);

/** A session ended after secs: counts it in *stalled when it moved
 * nothing (resets *stalled when it did), and logs every third such session
 * in a row as a warning that names the likely cause and peer_timeout_ms
 * (timeout_ms). who prefixes the line ("node", "hub: node JAM"); rate_bps:
 * the link's rate measured last (0: none). */
void repl_session_ended(const char *who, bool progress, unsigned *stalled,
                        double secs, uint64_t rate_bps, unsigned timeout_ms);

/** Parses a comma/space separated list into a NULL-terminated array of
 * owned strings (*out; free with repl_list_free). NULL or "" = empty. */
int repl_list_parse(const char *text, char ***out, size_t *n);
void repl_list_free(char ***list);

/** Does an encoded canonical key pass a subscription? (dataflow in dfs,
 * REF_AREA in areas; empty lists pass everything). */
bool repl_key_passes(const structure_t *st, const uint8_t *key, size_t klen,
                     char *const *dfs, size_t n_dfs, char *const *areas,
                     size_t n_areas);

#endif
