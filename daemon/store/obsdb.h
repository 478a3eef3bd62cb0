/*
 * obsdb.h - the observation store of a node or hub, over store.c (LMDB).
 *
 * Tables (LMDB named databases; each layout is commented in the obsdb_*.c
 * file that encodes it, see obsdb.c):
 *   obs      canonical key (obs_key.h)          -> current version (codec)
 *   history  canonical key + be64 hlc + origin   -> every earlier version
 *   outbox   be64 origin_seq                     -> local change(s) to publish
 *                                                   (a chunk of a txn's
 *                                                   consecutive ones)
 *   struct   "text"                              -> structure definitions
 *   meta     name                                -> value (epoch, node id,
 *                                                   hlc, origin_seq, cursors)
 *   log      be64 hub_seq                        -> accepted change (hub)
 *   origins  origin node id                      -> its epoch and the highest
 *                                                   origin_seq accepted (hub)
 * A write to obs (the version it replaces moving to history) and outbox
 * happens in one LMDB transaction, so a committed change is always in both
 * (transactional outbox). count.history counts every version stored, the
 * current ones included.
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
#include "version.h"

typedef struct obsdb obsdb_t;
typedef struct obsdb_txn obsdb_txn_t;

typedef struct {
    const char *dir;     /* data directory; created 0700 if missing */
    const char *node_id; /* local origin id: its writes also go to outbox */
    uint64_t map_size;   /* initial map size in bytes (0 = 64 MiB) */
    uint64_t map_max;    /* the map may grow up to this (0 = 16 GiB) */
    uint64_t map_step;   /* growth step (0 = double) */
    bool no_sync;        /* tests and benchmarks only: MDB_NOSYNC */
    bool no_outbox;      /* hub: its own writes never go to the outbox */
} obsdb_opts_t;

/** Opens (creating if needed) the store in opts->dir. A new store gets a
 * random epoch (DESIGN.md §3.4) and this build's table format; an older
 * store is marked with it. OBS_ESTORE (with errno-ish detail in errbuf
 * when non-NULL), OBS_ENOMEM, OBS_EINVAL (another node's store),
 * OBS_EVERSION (a store written by a newer build, in a format this one
 * does not read; errbuf says which). */
int obsdb_open(const obsdb_opts_t *opts, obsdb_t **out, char *errbuf,
               size_t errcap);
/** Closes and sets *selfp NULL. No transaction may be open. NULL-safe. */
void obsdb_close(obsdb_t **selfp);

/** Begins a transaction. OBS_EBUSY if a write txn is already open (write),
 * OBS_ESTORE. Retries once after clearing stale readers (MDB_READERS_FULL). */
int obsdb_begin(obsdb_t *self, bool write, obsdb_txn_t **out);
/** Begins a lazy write transaction (store_begin_lazy): a system crash
 * before the next synced commit may undo it whole. Only for work redone
 * from elsewhere if lost: the hub's state behind its log, a node's applied
 * log batches with their cursor, outbox trims. Errors as obsdb_begin. */
int obsdb_begin_lazy(obsdb_t *self, obsdb_txn_t **out);
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
/** Grows the map (in obsdb_grow's steps, up to map_max) until at least
 * bytes lie between its last used page and its end, so that a transaction
 * expected to write that much is not aborted on a full map and redone,
 * perhaps several times over. No txn may be open. Returns false if the
 * room could not be made (the write may still fit: pages freed earlier are
 * reused). */
bool obsdb_reserve(obsdb_t *self, uint64_t bytes);

struct store_txn;
/** The store.h transaction under txn, for modules that write their own
 * tables (hub log, conflicts) in the same LMDB transaction. Borrowed; valid
 * until txn ends; do not commit or abort it directly. */
struct store_txn *obsdb_txn_store(obsdb_txn_t *txn);

/** Current version of obs's identity (tombstones included). out must be
 * initialised; it gets a full copy (owned by out). OBS_ENOENT. */
int obsdb_get(obsdb_txn_t *txn, const obs_t *identity, obs_t *out);

/** Stores obs (identity, content and ver fully set by the caller) as the
 * current version (the one it replaces moves to history), and, when
 * ver.origin is the local node id and the store was not opened with
 * no_outbox, appends it to the outbox under ver.origin_seq. Sticky on
 * error. */
int obsdb_put(obsdb_txn_t *txn, const obs_t *obs);
/** obsdb_put for an obs whose identity, value and attributes are body
 * (codec_obs_encode_body of exactly them): only its version is encoded. */
int obsdb_put_body(obsdb_txn_t *txn, const obs_t *obs, const uint8_t *body,
                   size_t body_len);
/** obsdb_put_body for an observation known by its canonical key (from
 * obs_key_encode, short enough for obsdb_key_fits), its version ver and its
 * body. known_new: obsdb_exists said OBS_ENOENT for key in this txn (it is
 * not looked up again; a wrong true loses the replaced version's history).
 * OBS_EINVAL (a read txn, or a key that does not fit); errors as obsdb_put;
 * all sticky. */
int obsdb_put_key_body(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                       const obs_version_t *ver, const uint8_t *body,
                       size_t body_len, bool known_new);
/** OBS_OK when key (canonical) has a current version, tombstones included;
 * OBS_ENOENT (not sticky) when not; OBS_EINVAL for an empty or oversized
 * key; store errors (sticky). */
int obsdb_exists(obsdb_txn_t *txn, const uint8_t *key, size_t klen);

/** Whether obs's canonical key is short enough for obsdb_put and
 * obsdb_put_replicated (OBS_KEY_MAX - 8 bytes: room for the history
 * suffix); a longer one is refused there with OBS_ETOOBIG. */
bool obsdb_key_fits(const obs_t *obs);

/** Calls cb for every version of identity, newest first. cb returns 0 to go
 * on, anything else stops the walk and is returned. The obs passed to cb is
 * borrowed for the call. */
typedef int (*obsdb_obs_cb)(const obs_t *obs, void *arg);
int obsdb_history(obsdb_txn_t *txn, const obs_t *identity, obsdb_obs_cb cb,
                  void *arg);

typedef struct {
    const char *dataflow;         /* NULL = every dataflow */
    size_t total_dims;            /* dims of dataflow (for the prefix) */
    const obs_pattern_t *pattern; /* NULL = every series */
    int32_t start_day, end_day;   /* period overlap filter; INT32_MIN/MAX */
    uint64_t updated_after_ms;    /* 0 = off; tombstones included */
    uint64_t as_of_ms;            /* 0 = current; else the version current
                                     at that time (from history) */
    bool include_deleted;         /* tombstones in the result */
    const uint8_t *resume_after;  /* canonical key to start after */
    size_t resume_len;
    size_t limit; /* 0 = no limit */
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

/** Walks outbox entries with origin_seq > after, oldest first, zero copy:
 * cb gets (origin_seq, NULL, 0, encoded change, its length); the bytes are
 * valid until the txn ends. Stops after max_entries entries or once their
 * bytes reach max_bytes (0 = no limit), or at cb's non-zero return, which
 * is returned. OBS_ESTORE for a malformed entry. */
typedef int (*obsdb_log_cb)(uint64_t hub_seq, const uint8_t *key, size_t klen,
                            const uint8_t *rec, size_t rlen, void *arg);
int obsdb_outbox_walk_raw(obsdb_txn_t *txn, uint64_t after, size_t max_entries,
                          size_t max_bytes, obsdb_log_cb cb, void *arg);
/** Removes every outbox entry with origin_seq <= upto. */
int obsdb_outbox_ack(obsdb_txn_t *txn, uint64_t upto);
/** Puts back into the outbox every local version (current or in history) whose
 * origin_seq is in (after, upto]: for a hub that lost changes it had
 * acknowledged (restored from a backup, or wiped). Walks the whole obs and
 * history tables. *restored (may be NULL) gets the number of entries the
 * outbox did not hold yet. Write txn; sticky errors. */
int obsdb_outbox_restore(obsdb_txn_t *txn, uint64_t after, uint64_t upto,
                         size_t *restored);
/** Rewrites the outbox changes with origin_seq > after (those the hub has
 * not acknowledged; the ones <= after are removed), oldest first: cb gets
 * each decoded and may change its version in place (origin_seq, hlc, base;
 * the new origin_seqs must increase). Each is stored again under its new
 * version: in the outbox under its new origin_seq, and where the store
 * holds the old version (current, or in history) the new one takes its
 * place (it becomes current if it beats the current one). cb returns 0 or
 * an OBS_E* code, which stops and fails the rewrite. *n (may be NULL) gets
 * the number of changes rewritten. Holds those changes in memory at once:
 * a recovery path (a store restored from a backup, a clock far ahead),
 * never the hot one. Write txn; sticky errors. */
typedef int (*obsdb_rewrite_cb)(obs_t *obs, void *arg);
int obsdb_outbox_rewrite(obsdb_txn_t *txn, uint64_t after, obsdb_rewrite_cb cb,
                         void *arg, size_t *n);
/** The hlc of outbox change origin_seq seq into *hlc: OBS_ENOENT when the
 * outbox does not hold it. */
int obsdb_outbox_hlc(obsdb_txn_t *txn, uint64_t seq, uint64_t *hlc);
/** Highest origin_seq in the outbox into *last, 0 when it is empty. */
int obsdb_outbox_last(obsdb_txn_t *txn, uint64_t *last);

/* ------------------------------------------------------------ replication
 * The hub's log, its per-origin table, raw walks for streaming, and the
 * apply path for changes that came from elsewhere. Raw bytes handed to
 * callbacks point into the LMDB map: read-only, valid until the txn ends
 * (in a write txn: until the next write to the same table). Copy to keep. */

/** Applies obs (from the hub, or at the hub from a node) when its version
 * wins over the stored one by version_cmp (or the key is new): state
 * and history, never the outbox. *applied tells whether it was written; an
 * older or identical version is a no-op (OBS_OK, *applied false). Write txn
 * only. Errors as obsdb_put (sticky); OBS_EPROTO when the stored value does
 * not decode. */
int obsdb_put_replicated(obsdb_txn_t *txn, const obs_t *obs, bool *applied);
/** How many obsdb_put_replicated* calls of txn had to look their key up
 * (it did not sort after every stored key): each writes a B-tree leaf page
 * of its own, which LMDB holds in memory until the commit. */
size_t obsdb_txn_lookups(const obsdb_txn_t *txn);

/** obsdb_put_replicated for a change known by its canonical key, its
 * encoded bytes (stored as given) and their version ver: a hub log entry,
 * or a change a node received (the caller reads the version and makes the
 * key; obsdb_key_len_fits). Errors as obsdb_put, all sticky (OBS_EINVAL
 * for a key that does not fit; OBS_EPROTO when the stored version does not
 * decode). */
int obsdb_put_replicated_raw(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                             const uint8_t *enc, size_t enc_len,
                             const obs_version_t *ver, bool *applied);
/** Whether a canonical key of klen bytes fits obsdb_put (obsdb_key_fits). */
bool obsdb_key_len_fits(size_t klen);

/** Appends obs to the hub log: sets obs->ver.hub_seq to the newest hub_seq
 * ever assigned + 1 (1 for a new log; numbers are never reused, trimmed or
 * not) and stores be16 key length | canonical key | codec_obs_encode(obs).
 * Write txn only. OBS_EINVAL, OBS_ETOOBIG (key), OBS_ENOMEM, store errors;
 * all sticky. */
int obsdb_log_append(obsdb_txn_t *txn, obs_t *obs);
/** obsdb_log_append of an obs whose canonical key (obs_key_encode, klen
 * bytes) the caller has already: it is stored as given. OBS_EINVAL for an
 * empty or oversized key; otherwise as obsdb_log_append. */
int obsdb_log_append_key(obsdb_txn_t *txn, obs_t *obs, const uint8_t *key,
                         size_t klen);
/** obsdb_log_append_key of an obs given as its body (codec_obs_encode_body)
 * and its version: sets ver->hub_seq and stores the same bytes, encoding
 * only the version. Errors as obsdb_log_append_key. */
int obsdb_log_append_body(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                          const uint8_t *body, size_t body_len,
                          obs_version_t *ver);

/** *first = oldest hub_seq present (*last + 1 when the log is empty or
 * trimmed to nothing), *last = newest ever assigned (0 for a new log).
 * Two cursor steps and a meta read, no scan. Store errors. */
int obsdb_log_bounds(obsdb_txn_t *txn, uint64_t *first, uint64_t *last);

/** One raw entry: key/klen = canonical key, rec/rlen = the encoded
 * Observation (codec_obs_decode gives it back), both borrowed from the map.
 * hub_seq is 0 for state walks. Return 0 to go on; anything else stops the
 * walk and is returned. */
/** Walks log entries with hub_seq > after, oldest first, zero copy. Stops
 * after max_entries entries, or once the sum of rlen reaches max_bytes (the
 * entry that crosses it is included, so one walk always makes progress);
 * 0 = no limit for either. *last_seen = the last hub_seq cb accepted
 * (returned 0 for), or after if none. Entries before the log's first are
 * gone: compare after with obsdb_log_bounds first. OBS_ESTORE for a
 * malformed entry, store errors, or cb's own code. */
int obsdb_log_walk(obsdb_txn_t *txn, uint64_t after, size_t max_entries,
                   size_t max_bytes, obsdb_log_cb cb, void *arg,
                   uint64_t *last_seen);

/** Deletes the oldest log entries so that at most keep_last_n remain, at
 * most max_delete of them in this call (0 = no cap), so one trim never
 * makes a huge txn: call again until *deleted is 0. *deleted (may be NULL)
 * gets the number removed. Write txn only; sticky errors. */
int obsdb_log_trim(obsdb_txn_t *txn, uint64_t keep_last_n, size_t max_delete,
                   size_t *deleted);

/** The hub's record of an origin node: its store epoch (copied to epoch,
 * NUL-terminated), the highest origin_seq it took from it (accepted or
 * rejected) and that change's hlc (0 in a record from an older build).
 * Any out pointer may be NULL. OBS_ENOENT when unknown, OBS_ETOOBIG when
 * epoch_cap is too small, OBS_EINVAL for an empty or over-OBS_ID_MAX
 * origin, OBS_ESTORE for a malformed record. */
int obsdb_origin_get(obsdb_txn_t *txn, const char *origin, char *epoch,
                     size_t epoch_cap, uint64_t *last_seq, uint64_t *last_hlc);
/** Creates or replaces origin's record. origin: 1..OBS_ID_MAX chars; epoch:
 * at most OBS_ID_MAX chars. Write txn only; OBS_EINVAL; sticky errors. */
int obsdb_origin_put(obsdb_txn_t *txn, const char *origin, const char *epoch,
                     uint64_t last_seq, uint64_t last_hlc);
/** Calls cb for every origin in id order; strings are borrowed for the
 * call. cb returns 0 to go on; anything else stops and is returned. */
typedef int (*obsdb_origin_cb)(const char *origin, const char *epoch,
                               uint64_t last_seq, void *arg);
int obsdb_origin_walk(obsdb_txn_t *txn, obsdb_origin_cb cb, void *arg);

/** Walks the obs table (current versions, tombstones included) in key order
 * after the canonical key after/after_len (NULL or 0 = from the start),
 * passing each raw key and encoded value to cb with hub_seq 0, zero copy.
 * Limits as obsdb_log_walk. *last_key (cap OBS_KEY_MAX + 1) gets the key of
 * the last entry cb accepted, *last_len its length (0 if none); *more is
 * true when the walk stopped on a limit with entries left. OBS_EINVAL for
 * after_len > OBS_KEY_MAX; store errors; cb's own code. */
int obsdb_state_walk_raw(obsdb_txn_t *txn, const uint8_t *after,
                         size_t after_len, size_t max_entries, size_t max_bytes,
                         obsdb_log_cb cb, void *arg, uint8_t *last_key,
                         size_t *last_len, bool *more);

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
