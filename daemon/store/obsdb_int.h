/*
 * obsdb_int.h - what the obsdb_*.c files share and nothing else may see: the
 * store and transaction structs, the counters kept per transaction, and the
 * helpers one table's file calls in another's. Private to daemon/store:
 * include it only from obsdb*.c (everything else goes through obsdb.h).
 *
 * Who defines what (each file's opening comment says more):
 *   obsdb.c         txns (sticky error, counters), meta, format, open/close
 *   obsdb_obs.c     obs + history writes, the history key layout
 *   obsdb_scan.c    obs + history reads
 *   obsdb_outbox.c  the outbox and its chunks
 *   obsdb_log.c     the hub's log and origins
 *   obsdb_struct.c  the structure text
 * Errors and stickiness as obsdb.h: the helpers below return OBS_E* codes;
 * those that say "sticky" also fail the txn (obsdb_txn_fail). Nothing here
 * logs; everything runs on the thread that owns the obsdb_t.
 */
#ifndef OBSDB_INT_H
#define OBSDB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "obs.h"
#include "obs_key.h"
#include "obsdb.h"
#include "store.h"

#define EPOCH_BYTES   16
#define HIST_KEY_MAX  (OBS_KEY_MAX + 1)
#define PUT_KEY_MAX   (OBS_KEY_MAX - 8) /* leaves room for be64 hlc */
#define LOG_LAST_NAME "log.last"

/* The counters of meta "count.*" (obsdb.c), loaded once per txn. */
enum { CNT_OBS, CNT_TOMB, CNT_HIST, CNT_OUTBOX, CNT_COUNT };

struct obsdb {
    store_t *store; /* owned */
    char node_id[OBS_ID_MAX + 1];
    char epoch[2 * EPOCH_BYTES + 1];
    bool no_outbox;  /* hub: local writes skip the outbox */
    bool write_open; /* LMDB would block a second writer */
};

struct obsdb_txn {
    obsdb_t *db; /* borrowed */
    store_txn_t st;
    bool counts_loaded;
    bool counts_dirty;
    uint64_t counts[CNT_COUNT]; /* meta counters, written at commit */
    bool log_loaded;
    bool log_dirty;
    uint64_t log_last; /* meta "log.last", written at commit */
    unsigned
        not_last; /* tables where a key did not sort last (obsdb_try_append) */
    /* The obs table's last key in this txn (obs_sorts_last): read once,
     * then kept up to date by put_encoded, the table's only writer. */
    enum { LAST_UNREAD, LAST_KNOWN, LAST_UNKNOWN } obs_last_state;
    size_t obs_last_len; /* 0 with LAST_KNOWN: the table is empty */
    uint8_t obs_last[OBS_KEY_MAX];
    size_t lookups; /* obs-table puts that were not known new */
    /* local changes bound for the outbox, written as one chunk when it is
     * full, before the outbox is read and at commit (obsdb_outbox_flush) */
    uint8_t *ob_buf;
    size_t ob_len, ob_cap;
    uint32_t ob_n;
    uint64_t ob_first, ob_last; /* origin_seqs in ob_buf */
    uint64_t ob_max;            /* highest origin_seq in the outbox */
    bool ob_max_known;          /* ob_max read in this txn */
};

/* LMDB's default key order. */
static inline int
key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static inline bool
has_prefix(const store_val_t *k, const uint8_t *prefix, size_t plen)
{
    return k->len >= plen && memcmp(k->ptr, prefix, plen) == 0;
}

/* Limits shared by the raw walks; 0 = no limit. */
typedef struct {
    size_t max_entries;
    size_t max_bytes;
    size_t entries;
    size_t bytes;
} budget_t;

static inline bool
budget_spent(const budget_t *b)
{
    return (b->max_entries != 0 && b->entries >= b->max_entries) ||
           (b->max_bytes != 0 && b->bytes >= b->max_bytes);
}

static inline void
budget_take(budget_t *b, size_t rlen)
{
    b->entries++;
    b->bytes += rlen;
}

/* ---------------------------------------------------------------- obsdb.c */

/** Records rc as txn's sticky error unless one is there; returns rc. */
int obsdb_txn_fail(obsdb_txn_t *txn, int rc);
/** Gate for the writers: the sticky error first, then a read txn is a
 * caller bug that fails the txn (OBS_EINVAL). */
int obsdb_write_check(obsdb_txn_t *txn);
/** Loads the meta counters into txn->counts once per txn (absent = 0).
 * Store errors (not sticky). */
int obsdb_counts_load(obsdb_txn_t *txn);
/** store_append while the keys of t keep sorting last in this txn: OBS_OK
 * (appended: a new key), OBS_EEXIST (nothing written: put it normally), or
 * an error. */
int obsdb_try_append(obsdb_txn_t *txn, store_table_t t, const uint8_t *key,
                     size_t klen, const uint8_t *val, size_t vlen);
/** Puts key -> val in table t, counting it in counts[cnt] when new. */
int obsdb_put_counted(obsdb_txn_t *txn, store_table_t t, const uint8_t *key,
                      size_t klen, const uint8_t *val, size_t vlen, int cnt);

/* ------------------------------------------------------------ obsdb_obs.c */

/** From the cursor's entry (rc from the last move), steps back to the
 * first history entry of exactly the canonical key key[0, klen).
 * OBS_ENOENT past its entries. */
int obsdb_hist_settle(store_cursor_t *c, const uint8_t *key, size_t klen,
                      store_val_t *k, store_val_t *v, int rc);
/** Positions c (on the history table) on key's newest history entry with
 * hlc <= max_hlc; *k and *v are the entry, borrowed from the map.
 * OBS_ENOENT when there is none. */
int obsdb_hist_seek_newest(store_cursor_t *c, const uint8_t *key, size_t klen,
                           uint64_t max_hlc, store_val_t *k, store_val_t *v);
/** Puts version o->ver (encoded whole in enc) where the store holds the
 * same observation's version old (an outbox rewrite). Nothing when the
 * store does not hold old. Not sticky: the caller fails the txn. */
int obsdb_version_replace(obsdb_txn_t *txn, const obs_t *o,
                          const obs_version_t *old, const uint8_t *enc,
                          size_t enc_len);

/* --------------------------------------------------------- obsdb_outbox.c */

/** Writes the outbox chunk being built, if any. Sticky on error. */
int obsdb_outbox_flush(obsdb_txn_t *txn);
/** Queues local change seq (its encoded bytes val, copied) for the outbox.
 * Sticky on error. */
int obsdb_outbox_add(obsdb_txn_t *txn, uint64_t seq, const uint8_t *val,
                     size_t vlen);

#endif
