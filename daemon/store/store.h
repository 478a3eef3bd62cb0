/*
 * store.h - a thin LMDB wrapper (Knot's knot_lmdb shape): one environment, a
 * fixed set of named tables, transactions with a sticky error, cursors.
 *
 * store.c is the only file that uses LMDB's header; everything above sees
 * OBS_E* codes. MDB_MAP_FULL maps to OBS_ESTOREFULL (grow with store_grow()
 * and redo the work), every other LMDB failure to OBS_ESTORE, with LMDB's own
 * sentence kept for store_errmsg().
 *
 * Lifetime: a store_val_t returned by store_get or a cursor points into the
 * LMDB map. It is read-only and valid until the transaction ends
 * (store_commit/store_abort), or, in a write transaction, until the next write
 * to the same table. Copy it to keep it. Nothing returned is ever freed.
 *
 * Threading: one thread owns the store_t. At most one write transaction at a
 * time (LMDB would block a second one). The env is opened with MDB_NOTLS, so
 * the owning thread may hold read transactions beside the write transaction.
 * Read transactions should be short. Never use a store_t across fork().
 * Logging: none; callers log once with store_errmsg().
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* LMDB's handles, declared but never defined here: lmdb.h stays in store.c. */
struct MDB_txn;
struct MDB_cursor;

typedef struct store store_t;

/** The named tables (LMDB sub-databases). Append only: a name is on disk. */
typedef enum {
    STORE_T_OBS,       /* "obs": canonical key -> current version */
    STORE_T_HISTORY,   /* "history": canonical key + be64 hlc -> version */
    STORE_T_OUTBOX,    /* "outbox": be64 origin_seq -> local change */
    STORE_T_STRUCT,    /* "struct": name -> structure text */
    STORE_T_META,      /* "meta": name -> value */
    STORE_T_LOG,       /* "log": be64 hub_seq -> accepted change (hub) */
    STORE_T_CONFLICTS, /* "conflicts": conflict records */
    STORE_T_REJECTS,   /* "rejects": reject records */
    STORE_T_ORIGINS,   /* "origins": origin node id -> epoch, seq (hub) */
    STORE_T_COUNT
} store_table_t;

/** The table's on-disk name ("obs", ...); "?" for out-of-range values. */
const char *store_table_name(store_table_t t);

typedef struct {
    const char *dir;   /* environment directory; created 0700 if missing */
    uint64_t map_size; /* initial map size in bytes (0 = 64 MiB) */
    uint64_t map_max;  /* store_grow stops here (0 = 16 GiB) */
    uint64_t map_step; /* growth step in bytes (0 = double) */
    bool no_sync;      /* MDB_NOSYNC: tests and benchmarks only */
} store_opts_t;

/** A borrowed byte range (see Lifetime above). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} store_val_t;

/** A transaction. Plain data, on the caller's stack; fields are private
 * except rc. Once rc is non-zero every later call on the txn is a no-op that
 * returns rc, and store_commit aborts and returns it (sticky error). */
typedef struct store_txn {
    store_t *store;      /* borrowed */
    struct MDB_txn *txn; /* NULL once ended */
    bool write;
    bool lazy; /* store_begin_lazy */
    int rc;    /* first error, 0 while all is well */
} store_txn_t;

typedef struct {
    store_txn_t *txn; /* borrowed */
    struct MDB_cursor *cur;
} store_cursor_t;

typedef struct {
    uint64_t map_size;  /* current map size in bytes */
    uint64_t map_used;  /* (last used page + 1) * page size */
    uint64_t page_size; /* LMDB page size */
} store_info_t;

/** Opens (creating dir 0700 and the tables if needed) the environment.
 * *out is owned by the caller (store_close). OBS_EINVAL (no dir),
 * OBS_ENOMEM, OBS_ESTORE with a reason in errbuf (when non-NULL). */
int store_open(const store_opts_t *opts, store_t **out, char *errbuf,
               size_t errcap);
/** Closes and sets *selfp NULL. No transaction may be open. NULL-safe. */
void store_close(store_t **selfp);

/** Sentence about the last LMDB failure ("mdb_put(obs): MDB_MAP_FULL: ..."),
 * "" if none. Borrowed, valid until the next store call. */
const char *store_errmsg(const store_t *self);

/** Map size, used bytes and page size. OBS_ESTORE. */
int store_info(store_t *self, store_info_t *out);

/** Grows the map by map_step (or doubles it), capped at map_max. No
 * transaction may be open. OBS_EBUSY (a txn is open), OBS_ESTOREFULL (already
 * at map_max), OBS_ESTORE. */
int store_grow(store_t *self);

/** Begins a transaction into *txn (caller's struct). Retries once after
 * mdb_reader_check on MDB_READERS_FULL. OBS_ESTORE, OBS_ESTOREFULL. On error
 * txn->txn is NULL and store_commit/store_abort are harmless. */
int store_begin(store_t *self, store_txn_t *txn, bool write);
/** Begins a lazy write transaction: its commit writes and syncs its pages
 * but not the meta page that makes it current, so a system crash (not a
 * process crash) before the next synced commit may undo it, whole
 * (MDB_NOMETASYNC). For work that is redone from elsewhere if lost. Errors
 * as store_begin. */
int store_begin_lazy(store_t *self, store_txn_t *txn);
/** Whether commits sync the meta page (MDB_NOMETASYNC unset on the env):
 * true except inside a lazy commit. For tests. */
bool store_syncs_meta(store_t *self);
/** Commits (aborts instead if txn->rc is set) and ends the txn. Returns the
 * sticky error, else OBS_ESTOREFULL (MDB_MAP_FULL) or OBS_ESTORE. The store
 * stays readable after any failure; nothing of the txn is kept. */
int store_commit(store_txn_t *txn);
/** Aborts and ends the txn. Safe on an ended txn. */
void store_abort(store_txn_t *txn);

/** Value of key in table t into *val (see Lifetime). OBS_ENOENT and
 * OBS_EINVAL (empty or oversized key) are not sticky; LMDB failures are. */
int store_get(store_txn_t *txn, store_table_t t, const void *key, size_t klen,
              store_val_t *val);
/** Stores key -> val, replacing. OBS_EINVAL (read txn, empty or oversized
 * key), OBS_ESTOREFULL, OBS_ESTORE; every error is sticky. */
int store_put(store_txn_t *txn, store_table_t t, const void *key, size_t klen,
              const void *val, size_t vlen);
/** Stores key -> val only if key sorts after every key of t (a sequence
 * number; a sorted load into an empty key range): the last leaf is filled
 * and a new one started (MDB_APPEND) instead of a full leaf being split in
 * half, so sorted loads write about half the pages, and the key is known to
 * be new. OBS_EEXIST (not sticky, nothing written) when key does not sort
 * last; other errors as store_put. */
int store_append(store_txn_t *txn, store_table_t t, const void *key,
                 size_t klen, const void *val, size_t vlen);
/** Deletes key. OBS_ENOENT (not sticky) when absent; other errors sticky. */
int store_del(store_txn_t *txn, store_table_t t, const void *key, size_t klen);
/** Number of entries in table t. OBS_ESTORE. */
int store_count(store_txn_t *txn, store_table_t t, uint64_t *out);

/** Opens a cursor on table t. Close it before the txn ends. OBS_ESTORE. */
int store_cursor_open(store_txn_t *txn, store_table_t t, store_cursor_t *c);
void store_cursor_close(store_cursor_t *c);
/** Positioning: each fills *key and *val (either may be NULL) with the entry
 * it lands on, or returns OBS_ENOENT (not sticky) when there is none.
 *   seek:  first entry with key >= the given key (klen 0 = first);
 *          OBS_EINVAL (not sticky) for a key over LMDB's limit
 *   first/last: the smallest / largest entry
 *   next/prev:  the entry after / before the current one */
int store_cursor_seek(store_cursor_t *c, const void *key, size_t klen,
                      store_val_t *k, store_val_t *v);
int store_cursor_first(store_cursor_t *c, store_val_t *k, store_val_t *v);
int store_cursor_last(store_cursor_t *c, store_val_t *k, store_val_t *v);
int store_cursor_next(store_cursor_t *c, store_val_t *k, store_val_t *v);
int store_cursor_prev(store_cursor_t *c, store_val_t *k, store_val_t *v);
/** Deletes the entry under the cursor; reposition (seek/first) before the
 * next read. Sticky errors. */
int store_cursor_del(store_cursor_t *c);

/** Big-endian helpers for keys that must sort numerically. */
void store_be64_put(uint8_t out[8], uint64_t v);
uint64_t store_be64_get(const uint8_t in[8]);

#endif
