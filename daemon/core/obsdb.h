/*
 * obsdb.h - the observation store of a node or hub, over store.c (LMDB).
 *
 * Tables (LMDB named databases, layouts commented in obsdb.c):
 *   obs      canonical key (obs_key.h)          -> current version (codec)
 *   history  canonical key + be64 hlc            -> every accepted version
 *   outbox   be64 origin_seq                     -> local change to publish
 *   struct   "text"                              -> structure definitions
 *   meta     name                                -> value (epoch, node id,
 *                                                   hlc, origin_seq, cursors)
 * A write to obs, history and outbox happens in one LMDB transaction, so a
 * committed change is always in all three (transactional outbox).
 *
 * Threading: one thread owns the obsdb_t (the daemon loop). At most one write
 * transaction at a time; read transactions are short and never span loop
 * turns. Errors: OBS_E* codes; MDB_MAP_FULL maps to OBS_ESTOREFULL, other
 * LMDB failures to OBS_ESTORE. obsdb never logs; callers log once.
 */
#ifndef OBSDB_H
#define OBSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "obs.h"
#include "obs_key.h"

typedef struct obsdb obsdb_t;
typedef struct obsdb_txn obsdb_txn_t;

typedef struct {
    const char *dir;     /* data directory; created 0700 if missing */
    const char *node_id; /* local origin id: its writes also go to outbox */
    uint64_t map_size;   /* initial map size in bytes (0 = 64 MiB) */
    uint64_t map_max;    /* the map may grow up to this (0 = 16 GiB) */
    uint64_t map_step;   /* growth step (0 = double) */
    bool no_sync;        /* tests and benchmarks only: MDB_NOSYNC */
} obsdb_opts_t;

/** Opens (creating if needed) the store in opts->dir. A new store gets a
 * random epoch (DESIGN.md §3.4). OBS_ESTORE (with errno-ish detail in
 * errbuf when non-NULL), OBS_ENOMEM, OBS_EINVAL. */
int obsdb_open(const obsdb_opts_t *opts, obsdb_t **out, char *errbuf,
               size_t errcap);
/** Closes and sets *selfp NULL. No transaction may be open. NULL-safe. */
void obsdb_close(obsdb_t **selfp);

/** Begins a transaction. OBS_EBUSY if a write txn is already open (write),
 * OBS_ESTORE. Retries once after clearing stale readers (MDB_READERS_FULL). */
int obsdb_begin(obsdb_t *self, bool write, obsdb_txn_t **out);
/** Commits (synced unless no_sync) and frees *txnp (set to NULL). Returns
 * the first error any call in the txn hit (sticky): then nothing is
 * committed. OBS_ESTOREFULL when the map is full: call obsdb_grow() and
 * redo the work. */
int obsdb_commit(obsdb_txn_t **txnp);
/** Aborts and frees; NULL-safe. */
void obsdb_abort(obsdb_txn_t **txnp);
/** Grows the map by one step if below map_max. No txn may be open. Returns
 * true if it grew. */
bool obsdb_grow(obsdb_t *self);

struct store_txn;
/** The store.h transaction under txn, for modules that write their own
 * tables (hub log, conflicts) in the same LMDB transaction. Borrowed; valid
 * until txn ends; do not commit or abort it directly. */
struct store_txn *obsdb_txn_store(obsdb_txn_t *txn);

/** Current version of obs's identity (tombstones included). out must be
 * initialised; it gets a full copy (owned by out). OBS_ENOENT. */
int obsdb_get(obsdb_txn_t *txn, const obs_t *identity, obs_t *out);

/** Stores obs (identity, content and ver fully set by the caller) as the
 * current version, appends it to history, and, when ver.origin is the local
 * node id, appends it to the outbox under ver.origin_seq. Sticky on error. */
int obsdb_put(obsdb_txn_t *txn, const obs_t *obs);

/** Calls cb for every version of identity, newest first. cb returns 0 to go
 * on, anything else stops the walk and is returned. The obs passed to cb is
 * borrowed for the call. */
typedef int (*obsdb_obs_cb)(const obs_t *obs, void *arg);
int obsdb_history(obsdb_txn_t *txn, const obs_t *identity, obsdb_obs_cb cb,
                  void *arg);

typedef struct {
    const char *dataflow;          /* NULL = every dataflow */
    size_t total_dims;             /* dims of dataflow (for the prefix) */
    const obs_pattern_t *pattern;  /* NULL = every series */
    int32_t start_day, end_day;    /* period overlap filter; INT32_MIN/MAX */
    uint64_t updated_after_ms;     /* 0 = off; tombstones included */
    uint64_t as_of_ms;             /* 0 = current; else the version current
                                      at that time (from history) */
    bool include_deleted;          /* tombstones in the result */
    const uint8_t *resume_after;   /* canonical key to start after */
    size_t resume_len;
    size_t limit;                  /* 0 = no limit */
} obsdb_scan_t;

/** Walks matching observations in key order. *last_key (cap OBS_KEY_MAX+1)
 * gets the key of the last one passed to cb, *last_len its length (0 if
 * none); with limit reached, *more is set true. */
int obsdb_scan(obsdb_txn_t *txn, const obsdb_scan_t *q, obsdb_obs_cb cb,
               void *arg, uint8_t *last_key, size_t *last_len, bool *more);

/* Metadata (meta table). Names are short ASCII. */
int obsdb_meta_get_u64(obsdb_txn_t *txn, const char *name, uint64_t *out);
int obsdb_meta_put_u64(obsdb_txn_t *txn, const char *name, uint64_t v);
/** Copies a string value into buf (NUL-terminated). OBS_ENOENT, OBS_ETOOBIG. */
int obsdb_meta_get_str(obsdb_txn_t *txn, const char *name, char *buf,
                       size_t cap);
int obsdb_meta_put_str(obsdb_txn_t *txn, const char *name, const char *v);

/** Store epoch made at creation (32 hex chars + NUL). */
const char *obsdb_epoch(const obsdb_t *self);

/** Structure text (malloc'd copy in *text, caller frees); OBS_ENOENT when
 * none was ever stored. */
int obsdb_structure_get(obsdb_txn_t *txn, char **text, size_t *len);
int obsdb_structure_put(obsdb_txn_t *txn, const char *text, size_t len);

/** Outbox: oldest-first walk from origin_seq > after, at most max entries. */
int obsdb_outbox_walk(obsdb_txn_t *txn, uint64_t after, size_t max,
                      obsdb_obs_cb cb, void *arg);
/** Removes every outbox entry with origin_seq <= upto. */
int obsdb_outbox_ack(obsdb_txn_t *txn, uint64_t upto);

typedef struct {
    uint64_t observations; /* current entries, tombstones included */
    uint64_t tombstones;
    uint64_t history;
    uint64_t outbox;
    uint64_t map_size;
    uint64_t map_used;
} obsdb_stats_t;
int obsdb_stats(obsdb_txn_t *txn, obsdb_stats_t *out);

#endif
