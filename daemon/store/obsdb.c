/*
 * obsdb.c - the observation store (obsdb.h) over store.c: current versions,
 * history, the transactional outbox, structure text and metadata, with the
 * counters operators see kept in the same transaction as the data. It is not
 * the validator, the conflict resolver or the replication engine: the engines
 * and apply.c decide what to write, obsdb only stores and finds it. It never
 * touches LMDB directly and never logs. Called by the node and hub engines
 * and the local API handlers, from the loop thread only.
 *
 * Layout (table -> key -> value), as back-mdb's id2entry.c writes it down:
 *   obs      canonical key (obs_key_encode)   -> codec_obs_encode(current)
 *   history  canonical key | be64 hlc | origin | 0x00 | origin length
 *                                              -> codec_obs_encode(version),
 *                                                 for versions no longer
 *                                                 current: a put moves the
 *                                                 current one here, so a
 *                                                 new key costs one B-tree
 *                                                 write, not two. (Stores
 *                                                 written before also hold
 *                                                 the current version here;
 *                                                 readers skip that copy.)
 *   outbox   be64 origin_seq                   -> the same bytes, local origin;
 *                                                 or, keyed by the first
 *                                                 origin_seq, a chunk of a
 *                                                 txn's consecutive local
 *                                                 changes (see "outbox")
 *   struct   "text"                            -> structure text, as given
 *   meta     "epoch"                           -> 32 hex chars, made once
 *            "node_id"                         -> node id of the first open
 *            "count.obs" "count.tombstones"
 *            "count.history" "count.outbox"    -> be64 counters
 *            "log.last"                        -> be64 newest hub_seq ever
 *                                                 assigned (survives trims)
 *            other names (hlc, origin_seq, ..) -> be64 or text, callers' own
 *   log      be64 hub_seq                      -> be16 klen | canonical key |
 *                                                 codec_obs_encode(change),
 *                                                 ver.hub_seq set (hub)
 *   origins  origin node id (no NUL)           -> be64 highest accepted
 *                                                 origin_seq | epoch text |
 *                                                 0x00 | be64 its hlc
 * A canonical key may be at most OBS_KEY_MAX - 8 bytes so its history key
 * fits LMDB's key limit; obsdb_put returns OBS_ETOOBIG beyond that. History
 * keys carry the origin so that two versions of one key with the same HLC
 * from two origins are two entries (hist_key_make); a key too long for that
 * suffix, and every entry of a store written before it, has the short form
 * canonical key | be64 hlc, which readers take too (hist_is_entry).
 */
#include "obsdb.h"

#include <sys/random.h>

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "hlc.h"
#include "obs_err.h"
#include "period.h"
#include "store.h"

#define EPOCH_BYTES   16
#define HIST_KEY_MAX  (OBS_KEY_MAX + 1)
#define PUT_KEY_MAX   (OBS_KEY_MAX - 8) /* leaves room for be64 hlc */
#define LOG_LAST_NAME "log.last"

enum { CNT_OBS, CNT_TOMB, CNT_HIST, CNT_OUTBOX, CNT_COUNT };

static const char *const count_names[CNT_COUNT] = {
    [CNT_OBS] = "count.obs",
    [CNT_TOMB] = "count.tombstones",
    [CNT_HIST] = "count.history",
    [CNT_OUTBOX] = "count.outbox",
};

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
    unsigned not_last; /* tables where a key did not sort last (try_append) */
    /* The obs table's last key in this txn (obs_sorts_last): read once,
     * then kept up to date by put_encoded, the table's only writer. */
    enum { LAST_UNREAD, LAST_KNOWN, LAST_UNKNOWN } obs_last_state;
    size_t obs_last_len; /* 0 with LAST_KNOWN: the table is empty */
    uint8_t obs_last[OBS_KEY_MAX];
    size_t lookups; /* obs-table puts that were not known new */
    /* local changes bound for the outbox, written as one chunk when it is
     * full, before the outbox is read and at commit (outbox_flush) */
    uint8_t *ob_buf;
    size_t ob_len, ob_cap;
    uint32_t ob_n;
    uint64_t ob_first, ob_last; /* origin_seqs in ob_buf */
    uint64_t ob_max;            /* highest origin_seq in the outbox */
    bool ob_max_known;          /* ob_max read in this txn */
};

/* ------------------------------------------------------------ txn basics */

static int
txn_fail(obsdb_txn_t *txn, int rc)
{
    if (txn->st.rc == 0)
        txn->st.rc = rc;
    return rc;
}

static int begin(obsdb_t *self, bool write, bool lazy, obsdb_txn_t **out);
static int outbox_flush(obsdb_txn_t *txn);

int
obsdb_begin(obsdb_t *self, bool write, obsdb_txn_t **out)
{
    return begin(self, write, false, out);
}

int
obsdb_begin_lazy(obsdb_t *self, obsdb_txn_t **out)
{
    return begin(self, true, true, out);
}

static int
begin(obsdb_t *self, bool write, bool lazy, obsdb_txn_t **out)
{
    *out = NULL;
    if (write && self->write_open)
        return OBS_EBUSY;
    obsdb_txn_t *txn = calloc(1, sizeof(*txn));
    if (txn == NULL)
        return OBS_ENOMEM;
    txn->db = self;
    int rc = lazy ? store_begin_lazy(self->store, &txn->st)
                  : store_begin(self->store, &txn->st, write);
    if (rc != 0) {
        free(txn);
        return rc;
    }
    self->write_open = self->write_open || write;
    *out = txn;
    return OBS_OK;
}

static void
txn_free(obsdb_txn_t **txnp)
{
    obsdb_txn_t *txn = *txnp;
    if (txn->st.write)
        txn->db->write_open = false;
    free(txn->ob_buf);
    free(txn);
    *txnp = NULL;
}

static int
counts_flush(obsdb_txn_t *txn)
{
    uint8_t be[8];

    for (int i = 0; i < CNT_COUNT && txn->counts_dirty; i++) {
        store_be64_put(be, txn->counts[i]);
        store_put(&txn->st, STORE_T_META, count_names[i],
                  strlen(count_names[i]), be, sizeof(be));
    }
    if (txn->log_dirty) {
        store_be64_put(be, txn->log_last);
        store_put(&txn->st, STORE_T_META, LOG_LAST_NAME,
                  sizeof(LOG_LAST_NAME) - 1, be, sizeof(be));
    }
    return txn->st.rc;
}

int
obsdb_commit(obsdb_txn_t **txnp)
{
    if (txnp == NULL || *txnp == NULL)
        return OBS_EINVAL;
    obsdb_txn_t *txn = *txnp;
    if (txn->st.write && outbox_flush(txn) == OBS_OK)
        counts_flush(txn);
    int rc = store_commit(&txn->st);
    txn_free(txnp);
    return rc;
}

void
obsdb_abort(obsdb_txn_t **txnp)
{
    if (txnp == NULL || *txnp == NULL)
        return;
    store_abort(&(*txnp)->st);
    txn_free(txnp);
}

bool
obsdb_grow(obsdb_t *self)
{
    return store_grow(self->store) == OBS_OK;
}

bool
obsdb_reserve(obsdb_t *self, uint64_t bytes)
{
    store_info_t info;
    while (store_info(self->store, &info) == OBS_OK) {
        if (info.map_size >= info.map_used &&
            info.map_size - info.map_used >= bytes)
            return true;
        if (store_grow(self->store) != OBS_OK)
            return false;
    }
    return false;
}

struct store_txn *
obsdb_txn_store(obsdb_txn_t *txn)
{
    return &txn->st;
}

/* ------------------------------------------------------------------ meta */

int
obsdb_meta_get_u64(obsdb_txn_t *txn, const char *name, uint64_t *out)
{
    store_val_t v;
    int rc = store_get(&txn->st, STORE_T_META, name, strlen(name), &v);
    if (rc != 0)
        return rc;
    if (v.len != 8)
        return OBS_ESTORE; /* not a counter: a caller mixed up names */
    *out = store_be64_get(v.ptr);
    return OBS_OK;
}

int
obsdb_meta_put_u64(obsdb_txn_t *txn, const char *name, uint64_t v)
{
    uint8_t be[8];
    store_be64_put(be, v);
    return store_put(&txn->st, STORE_T_META, name, strlen(name), be,
                     sizeof(be));
}

int
obsdb_meta_get_str(obsdb_txn_t *txn, const char *name, char *buf, size_t cap)
{
    store_val_t v;
    int rc = store_get(&txn->st, STORE_T_META, name, strlen(name), &v);
    if (rc != 0)
        return rc;
    if (v.len + 1 > cap)
        return OBS_ETOOBIG;
    memcpy(buf, v.ptr, v.len);
    buf[v.len] = '\0';
    return OBS_OK;
}

int
obsdb_meta_put_str(obsdb_txn_t *txn, const char *name, const char *v)
{
    return store_put(&txn->st, STORE_T_META, name, strlen(name), v, strlen(v));
}

static int
counts_load(obsdb_txn_t *txn)
{
    if (txn->counts_loaded)
        return OBS_OK;
    for (int i = 0; i < CNT_COUNT; i++) {
        int rc = obsdb_meta_get_u64(txn, count_names[i], &txn->counts[i]);
        if (rc == OBS_ENOENT)
            txn->counts[i] = 0;
        else if (rc != 0)
            return rc;
    }
    txn->counts_loaded = true;
    return OBS_OK;
}

/* ------------------------------------------------------------ open/close */

static void
hex_encode(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0xf];
    }
    out[2 * n] = '\0';
}

/* 16 bytes from the kernel's CSPRNG; /dev/urandom if getrandom is absent. */
static int
make_epoch(char out[2 * EPOCH_BYTES + 1])
{
    uint8_t r[EPOCH_BYTES];
    ssize_t n = getrandom(r, sizeof(r), 0);

    if (n != (ssize_t)sizeof(r)) {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        n = fd < 0 ? -1 : read(fd, r, sizeof(r));
        if (fd >= 0)
            close(fd);
        if (n != (ssize_t)sizeof(r))
            return OBS_ESYS;
    }
    hex_encode(r, sizeof(r), out);
    return OBS_OK;
}

/* The layout of the tables, in meta "format": 1 is a store from before the
 * marker (one outbox record per change), 2 the outbox in chunks, 3 history
 * keys with the origin and origins records with the hlc of the last change.
 * Each reads the records of the formats before it, and marks an older store
 * with its own at the first open (it may write its records from then on). A
 * store marked newer than this build is refused rather than misread: a
 * format-2 build would skip every history entry a format-3 one wrote. */
#define OBSDB_FORMAT 3

static int
format_check(obsdb_txn_t *txn, bool is_new, const char *dir, char *errbuf,
             size_t errcap)
{
    uint64_t format = 1;
    int rc = obsdb_meta_get_u64(txn, "format", &format);
    if (rc == OBS_ENOENT)
        rc = OBS_OK;
    if (rc != OBS_OK)
        return rc;
    if (!is_new && format > OBSDB_FORMAT) {
        if (errbuf != NULL && errcap > 0)
            (void)snprintf(errbuf, errcap,
                           "store in %s has format %" PRIu64
                           ", written by a newer obsyncd; this one reads "
                           "formats up to %d",
                           dir, format, OBSDB_FORMAT);
        return OBS_EVERSION;
    }
    return format == OBSDB_FORMAT && !is_new
               ? OBS_OK
               : obsdb_meta_put_u64(txn, "format", OBSDB_FORMAT);
}

/* First open stamps node id, epoch and format; later opens check the node
 * id and the format. */
static int
meta_init(obsdb_txn_t *txn, const char *dir, char *errbuf, size_t errcap)
{
    obsdb_t *self = txn->db;
    char stored[OBS_ID_MAX + 1];
    int rc = obsdb_meta_get_str(txn, "node_id", stored, sizeof(stored));

    if (rc == OBS_ENOENT) {
        rc = make_epoch(self->epoch);
        if (rc == 0)
            rc = obsdb_meta_put_str(txn, "node_id", self->node_id);
        if (rc == 0)
            rc = obsdb_meta_put_str(txn, "epoch", self->epoch);
        if (rc == 0)
            rc = format_check(txn, true, dir, errbuf, errcap);
        return rc;
    }
    if (rc == 0)
        rc = format_check(txn, false, dir, errbuf, errcap);
    if (rc != 0)
        return rc;
    if (strcmp(stored, self->node_id) != 0) {
        if (errbuf != NULL && errcap > 0)
            (void)snprintf(errbuf, errcap,
                           "store in %s belongs to node %s, config says %s",
                           dir, stored, self->node_id);
        return OBS_EINVAL;
    }
    return obsdb_meta_get_str(txn, "epoch", self->epoch, sizeof(self->epoch));
}

static bool
opts_valid(const obsdb_opts_t *opts)
{
    return opts != NULL && opts->dir != NULL && opts->node_id != NULL &&
           opts->node_id[0] != '\0' && strlen(opts->node_id) <= OBS_ID_MAX;
}

int
obsdb_open(const obsdb_opts_t *opts, obsdb_t **out, char *errbuf, size_t errcap)
{
    *out = NULL;
    if (!opts_valid(opts))
        return OBS_EINVAL;
    obsdb_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    (void)snprintf(self->node_id, sizeof(self->node_id), "%s", opts->node_id);
    self->no_outbox = opts->no_outbox;
    store_opts_t so = {.dir = opts->dir,
                       .map_size = opts->map_size,
                       .map_max = opts->map_max,
                       .map_step = opts->map_step,
                       .no_sync = opts->no_sync};
    int rc = store_open(&so, &self->store, errbuf, errcap);
    /* meta_init may write (a new store, an older format): on a full map
     * the map grows and it is redone, so a full store still opens */
    for (int attempt = 0; rc == 0; attempt++) {
        obsdb_txn_t *txn = NULL;
        rc = obsdb_begin(self, true, &txn);
        if (rc == 0) {
            rc = meta_init(txn, opts->dir, errbuf, errcap);
            txn_fail(txn, rc);
            rc = obsdb_commit(&txn);
        }
        if (rc != OBS_ESTOREFULL || attempt == 7 || !obsdb_grow(self))
            break;
        rc = 0;
    }
    if (rc != 0) {
        obsdb_close(&self);
        return rc;
    }
    *out = self;
    return OBS_OK;
}

void
obsdb_close(obsdb_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    store_close(&(*selfp)->store);
    free(*selfp);
    *selfp = NULL;
}

const char *
obsdb_epoch(const obsdb_t *self)
{
    return self->epoch;
}

/* ------------------------------------------------------------ get / put */

int
obsdb_get(obsdb_txn_t *txn, const obs_t *identity, obs_t *out)
{
    uint8_t key[OBS_KEY_MAX + 1];
    store_val_t v;
    int klen = obs_key_encode(identity, key, sizeof(key));

    if (klen < 0)
        return klen;
    int rc = store_get(&txn->st, STORE_T_OBS, key, (size_t)klen, &v);
    if (rc != 0)
        return rc;
    return codec_obs_decode(v.ptr, v.len, out);
}

/* LMDB's default key order. */
static int
key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

/* Whether key sorts after every key of the obs table, so it is new, known
 * without a lookup (a key-ordered load or stream asks this of each key). */
static bool
obs_sorts_last(obsdb_txn_t *txn, const uint8_t *key, size_t klen)
{
    if (txn->obs_last_state == LAST_UNREAD) {
        store_cursor_t c;
        store_val_t k, v;
        txn->obs_last_state = LAST_UNKNOWN;
        if (store_cursor_open(&txn->st, STORE_T_OBS, &c) != 0)
            return false;
        int rc = store_cursor_last(&c, &k, &v);
        if (rc == OBS_ENOENT || (rc == 0 && k.len <= sizeof(txn->obs_last))) {
            txn->obs_last_len = rc == 0 ? k.len : 0;
            if (txn->obs_last_len > 0) /* k.ptr is NULL for an empty table */
                memcpy(txn->obs_last, k.ptr, txn->obs_last_len);
            txn->obs_last_state = LAST_KNOWN;
        }
        store_cursor_close(&c);
    }
    return txn->obs_last_state == LAST_KNOWN &&
           key_cmp(key, klen, txn->obs_last, txn->obs_last_len) > 0;
}

/* key was just written to the obs table. */
static void
obs_wrote(obsdb_txn_t *txn, const uint8_t *key, size_t klen)
{
    if (txn->obs_last_state != LAST_KNOWN ||
        key_cmp(key, klen, txn->obs_last, txn->obs_last_len) <= 0)
        return;
    if (klen > sizeof(txn->obs_last)) {
        txn->obs_last_state = LAST_UNKNOWN;
        return;
    }
    memcpy(txn->obs_last, key, klen);
    txn->obs_last_len = klen;
}

/* History key suffix: be64 hlc | origin | 0x00 | origin length. The 0x00
 * makes byte order (hlc, origin) order, as obsdb_version_cmp; the length
 * byte at the end tells where the canonical key ends. */
#define HIST_SUFFIX_SHORT 8

/* Writes the history suffix of version (hlc, origin) after the canonical
 * key in key[0, klen) (room: HIST_KEY_MAX); returns the history key's
 * length. The short form (hlc only) when the long one would not fit. */
static size_t
hist_key_make(uint8_t *key, size_t klen, uint64_t hlc, const char *origin)
{
    size_t olen = strlen(origin);
    store_be64_put(key + klen, hlc);
    if (olen == 0 || olen > OBS_ID_MAX ||
        klen + HIST_SUFFIX_SHORT + olen + 2 > OBS_KEY_MAX)
        return klen + HIST_SUFFIX_SHORT;
    memcpy(key + klen + HIST_SUFFIX_SHORT, origin, olen);
    key[klen + HIST_SUFFIX_SHORT + olen] = 0x00;
    key[klen + HIST_SUFFIX_SHORT + olen + 1] = (uint8_t)olen;
    return klen + HIST_SUFFIX_SHORT + olen + 2;
}

/* Whether history entry k (which starts with a canonical key of klen
 * bytes) is a version of exactly that key, not of a longer key sharing
 * its start: the suffix must have one of the two shapes, and the hlc in
 * it must be the stored version's. */
static bool
hist_is_entry(const store_val_t *k, const store_val_t *v, size_t klen)
{
    bool shape = k->len == klen + HIST_SUFFIX_SHORT;
    if (!shape && k->len >= klen + HIST_SUFFIX_SHORT + 3) {
        size_t olen = k->ptr[k->len - 1];
        shape = olen >= 1 && olen <= OBS_ID_MAX &&
                k->len == klen + HIST_SUFFIX_SHORT + olen + 2 &&
                k->ptr[k->len - 2] == 0x00 &&
                memchr(k->ptr + klen + HIST_SUFFIX_SHORT, 0, olen) == NULL;
    }
    obs_version_t ver;
    return shape && codec_obs_decode_version(v->ptr, v->len, &ver) == 0 &&
           ver.hlc == store_be64_get(k->ptr + klen);
}

static bool
same_version(const obs_version_t *a, const obs_version_t *b)
{
    return a->hlc == b->hlc && strcmp(a->origin, b->origin) == 0;
}

/* Stores version ver (encoded in enc) in the history of the canonical key
 * in key[0, klen). An older store's entry under the short key with the same
 * hlc first moves to its long key (or goes, when it is this version), so
 * that the versions of one hlc sort by origin. */
static int
hist_put(obsdb_txn_t *txn, uint8_t *key, size_t klen, const obs_version_t *ver,
         const uint8_t *enc, size_t enc_len)
{
    store_val_t v;
    obs_version_t had;
    size_t hlen = hist_key_make(key, klen, ver->hlc, ver->origin);
    int rc = hlen == klen + HIST_SUFFIX_SHORT
                 ? OBS_ENOENT
                 : store_get(&txn->st, STORE_T_HISTORY, key,
                             klen + HIST_SUFFIX_SHORT, &v);
    if (rc == 0)
        rc = codec_obs_decode_version(v.ptr, v.len, &had);
    if (rc == 0) {
        uint8_t *was = malloc(v.len ? v.len : 1); /* v: the map's */
        size_t was_len = v.len;
        if (was == NULL)
            return OBS_ENOMEM;
        memcpy(was, v.ptr, v.len);
        rc =
            store_del(&txn->st, STORE_T_HISTORY, key, klen + HIST_SUFFIX_SHORT);
        if (rc == 0 && !same_version(&had, ver))
            rc = store_put(&txn->st, STORE_T_HISTORY, key,
                           hist_key_make(key, klen, had.hlc, had.origin), was,
                           was_len);
        free(was);
        hlen = hist_key_make(key, klen, ver->hlc, ver->origin);
    }
    if (rc != 0 && rc != OBS_ENOENT)
        return rc;
    return store_put(&txn->st, STORE_T_HISTORY, key, hlen, enc, enc_len);
}

/* Before the current version of key is replaced by ver: moves it to
 * history (unless it is the same version, (hlc, origin): then it is simply
 * replaced) and keeps the counters right
 * (a new key adds one entry; a live value replaced by a tombstone, or back,
 * moves one between the counts; every new stamp is one more version). key
 * has room for the history suffix (HIST_KEY_MAX). known_new: the caller saw in
 * this txn that key has no current version, so it is not looked up again.
 * *is_new: key had no current version. */
static int
supersede_current(obsdb_txn_t *txn, uint8_t *key, size_t klen,
                  const obs_version_t *ver, bool known_new, bool *is_new)
{
    bool tombstone = ver->tombstone;
    store_val_t v;
    int rc = known_new || obs_sorts_last(txn, key, klen)
                 ? OBS_ENOENT
                 : store_get(&txn->st, STORE_T_OBS, key, klen, &v);

    *is_new = rc == OBS_ENOENT;
    if (rc == OBS_ENOENT) {
        txn->counts[CNT_OBS]++;
        txn->counts[CNT_TOMB] += tombstone;
        txn->counts[CNT_HIST]++;
        return OBS_OK;
    }
    if (rc != 0)
        return rc;
    /* v points into the map or a dirty page a write may spill: copy it */
    uint8_t *old_val = malloc(v.len ? v.len : 1);
    if (old_val == NULL)
        return OBS_ENOMEM;
    memcpy(old_val, v.ptr, v.len);
    size_t old_len = v.len;
    obs_version_t old;
    rc = codec_obs_decode_version(old_val, old_len, &old);
    if (rc == 0 && old.tombstone != tombstone) {
        if (tombstone)
            txn->counts[CNT_TOMB]++;
        else
            txn->counts[CNT_TOMB]--;
    }
    if (rc == 0 && !same_version(&old, ver)) {
        txn->counts[CNT_HIST]++;
        rc = hist_put(txn, key, klen, &old, old_val, old_len);
    }
    free(old_val);
    return rc;
}

/* store_append while the keys of t keep sorting last in this txn: OBS_OK
 * (appended: a new key), OBS_EEXIST (nothing written: put it normally),
 * or an error. After one key that is not last, t is not tried again in
 * this txn (a random-order load would pay a failed try per key). */
static int
try_append(obsdb_txn_t *txn, store_table_t t, const uint8_t *key, size_t klen,
           const uint8_t *val, size_t vlen)
{
    if (txn->not_last & (1u << t))
        return OBS_EEXIST;
    int rc = store_append(&txn->st, t, key, klen, val, vlen);
    if (rc == OBS_EEXIST)
        txn->not_last |= 1u << t;
    return rc;
}

/* Puts key -> val in table t, counting it in counts[cnt] when new. */
static int
put_counted(obsdb_txn_t *txn, store_table_t t, const uint8_t *key, size_t klen,
            const uint8_t *val, size_t vlen, int cnt)
{
    int rc = try_append(txn, t, key, klen, val, vlen);
    if (rc != OBS_EEXIST) {
        txn->counts[cnt] += rc == OBS_OK;
        return rc;
    }
    rc = store_get(&txn->st, t, key, klen, NULL);
    if (rc == OBS_ENOENT)
        txn->counts[cnt]++;
    else if (rc != 0)
        return rc;
    return store_put(&txn->st, t, key, klen, val, vlen);
}

/* ---------------------------------------------------------- outbox chunks
 * A txn's local changes go to the outbox as chunks of up to
 * OUTBOX_CHUNK_N changes or OUTBOX_CHUNK_BYTES, not one record each:
 *   0x00 | be64 last origin_seq | be32 count |
 *   count x (varint origin_seq, varint length, encoded change)
 * keyed by the first origin_seq. One LMDB write per chunk instead of per
 * change, and above all the outbox's pages are allocated, freed once
 * acknowledged, and reused as contiguous runs: one record per change
 * interleaved its leaf pages with the obs table's, and reusing them one
 * by one made every commit rewrite scattered pages, which the page cache
 * writes back a whole large folio at a time (measured: 2.5x the bytes).
 * A chunk holds consecutive origin_seqs, and records never overlap, so
 * the table's key order is the changes' order. A value that does not start
 * with 0x00 (no protobuf message does) is one change under its own
 * origin_seq: stores written before chunks, obsdb_outbox_restore's
 * entries, and a change whose origin_seq is not above the outbox's. */

#define OUTBOX_CHUNK_MARK  0x00
#define OUTBOX_CHUNK_HEAD  13 /* mark, be64 last, be32 count */
#define OUTBOX_CHUNK_N     1024
#define OUTBOX_CHUNK_BYTES (256u * 1024)

static void chunk_seal(uint8_t *buf, uint64_t last, uint32_t n);

/* Writes the chunk being built, if any. Sticky on error. */
static int
outbox_flush(obsdb_txn_t *txn)
{
    if (txn->st.rc != 0)
        return txn->st.rc;
    if (txn->ob_n == 0)
        return OBS_OK;
    uint8_t key[8];
    chunk_seal(txn->ob_buf, txn->ob_last, txn->ob_n);
    store_be64_put(key, txn->ob_first);
    int rc = counts_load(txn);
    if (rc == 0) /* its seqs are above the outbox's: a new key */
        rc = try_append(txn, STORE_T_OUTBOX, key, sizeof(key), txn->ob_buf,
                        txn->ob_len);
    if (rc == OBS_EEXIST)
        rc = store_put(&txn->st, STORE_T_OUTBOX, key, sizeof(key), txn->ob_buf,
                       txn->ob_len);
    if (rc != 0)
        return txn_fail(txn, rc);
    txn->counts[CNT_OUTBOX] += txn->ob_n;
    txn->counts_dirty = true;
    txn->ob_n = 0;
    txn->ob_len = 0;
    return OBS_OK;
}

/* One outbox record being read: a chunk, or a single change. */
typedef struct {
    uint64_t key, last; /* first and last origin_seq */
    uint32_t n;         /* changes in it */
    const uint8_t *p, *end;
    bool single;
} ob_rec_t;

static int
ob_rec_open(const store_val_t *k, const store_val_t *v, ob_rec_t *r)
{
    if (k->len != 8 || v->len == 0)
        return OBS_ESTORE;
    r->key = store_be64_get(k->ptr);
    r->single = v->ptr[0] != OUTBOX_CHUNK_MARK;
    r->p = v->ptr;
    r->end = v->ptr + v->len;
    if (r->single) {
        r->last = r->key;
        r->n = 1;
        return OBS_OK;
    }
    if (v->len < OUTBOX_CHUNK_HEAD)
        return OBS_ESTORE;
    r->last = store_be64_get(v->ptr + 1);
    r->n = 0;
    for (int i = 0; i < 4; i++)
        r->n = (r->n << 8) | v->ptr[9 + i];
    r->p += OUTBOX_CHUNK_HEAD;
    return r->last >= r->key && r->n > 0 ? OBS_OK : OBS_ESTORE;
}

/* The record's next change: OBS_OK, OBS_ENOENT past its last, OBS_ESTORE
 * when malformed. */
static int
ob_rec_next(ob_rec_t *r, uint64_t *seq, const uint8_t **val, size_t *len)
{
    if (r->p == r->end)
        return OBS_ENOENT;
    if (r->single) {
        *seq = r->key;
        *val = r->p;
        *len = (size_t)(r->end - r->p);
        r->p = r->end;
        return OBS_OK;
    }
    uint64_t n;
    if (!codec_varint_get(&r->p, r->end, seq) ||
        !codec_varint_get(&r->p, r->end, &n) || n > (uint64_t)(r->end - r->p) ||
        *seq < r->key || *seq > r->last)
        return OBS_ESTORE;
    *val = r->p;
    *len = (size_t)n;
    r->p += n;
    return OBS_OK;
}

/* Starts a chunk in a malloc'd buffer of cap bytes (NULL: none). */
static uint8_t *
chunk_new(size_t cap, size_t *len)
{
    *len = OUTBOX_CHUNK_HEAD;
    return malloc(cap > OUTBOX_CHUNK_HEAD ? cap : OUTBOX_CHUNK_HEAD);
}

/* Appends one change to a chunk whose buffer has room (20 + vlen). */
static size_t
chunk_add(uint8_t *buf, size_t len, uint64_t seq, const uint8_t *val,
          size_t vlen)
{
    uint8_t *p = codec_varint_put(buf + len, seq);
    p = codec_varint_put(p, vlen);
    memcpy(p, val, vlen);
    return (size_t)(p - buf) + vlen;
}

static void
chunk_seal(uint8_t *buf, uint64_t last, uint32_t n)
{
    buf[0] = OUTBOX_CHUNK_MARK;
    store_be64_put(buf + 1, last);
    for (int i = 0; i < 4; i++)
        buf[9 + i] = (uint8_t)(n >> (24 - 8 * i));
}

/* The record that holds seq (*found), else the one just before it, in *r
 * (pointing into the map: valid until the next write). */
static int
outbox_find(store_cursor_t *c, uint64_t seq, bool *found, ob_rec_t *r)
{
    store_val_t k, v;
    uint8_t key[8];

    *found = false;
    store_be64_put(key, seq);
    int rc = store_cursor_seek(c, key, sizeof(key), &k, &v);
    if (rc == 0 && !(k.len == 8 && store_be64_get(k.ptr) == seq))
        rc = store_cursor_prev(c, &k, &v); /* a chunk from before seq? */
    else if (rc == OBS_ENOENT)
        rc = store_cursor_last(c, &k, &v);
    if (rc == 0)
        rc = ob_rec_open(&k, &v, r);
    if (rc == 0)
        *found = r->key <= seq && seq <= r->last;
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* Whether the outbox holds origin_seq seq, alone or in a chunk. */
static int
outbox_has(obsdb_txn_t *txn, uint64_t seq, bool *held)
{
    store_cursor_t c;
    ob_rec_t r;
    int rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc != 0)
        return rc;
    rc = outbox_find(&c, seq, held, &r);
    store_cursor_close(&c);
    return rc;
}

/* Highest origin_seq in the outbox table (0: empty). */
static int
outbox_stored_last(obsdb_txn_t *txn, uint64_t *last)
{
    store_cursor_t c;
    store_val_t k, v;
    ob_rec_t r;

    *last = 0;
    int rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc != 0)
        return rc;
    rc = store_cursor_last(&c, &k, &v);
    store_cursor_close(&c);
    if (rc == 0)
        rc = ob_rec_open(&k, &v, &r);
    if (rc == 0)
        *last = r.last;
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* A change whose origin_seq is not above the outbox's (the same version
 * stored again): replaces it where it is, or goes in on its own. */
static int
outbox_put_again(obsdb_txn_t *txn, uint64_t seq, const uint8_t *val,
                 size_t vlen)
{
    store_cursor_t c;
    ob_rec_t r;
    bool found = false;
    uint8_t key[8];
    int rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc == 0)
        rc = outbox_find(&c, seq, &found, &r);
    store_cursor_close(&c);
    if (rc != 0)
        return txn_fail(txn, rc);
    if (!found || r.single) { /* new, or one change under its own key */
        store_be64_put(key, seq);
        return put_counted(txn, STORE_T_OUTBOX, key, sizeof(key), val, vlen,
                           CNT_OUTBOX);
    }
    size_t len, cap = (size_t)(r.end - r.p) + OUTBOX_CHUNK_HEAD + 20 + vlen;
    uint8_t *buf = chunk_new(cap, &len);
    if (buf == NULL)
        return txn_fail(txn, OBS_ENOMEM);
    uint64_t s;
    const uint8_t *old;
    size_t olen;
    while ((rc = ob_rec_next(&r, &s, &old, &olen)) == 0)
        len = s == seq ? chunk_add(buf, len, s, val, vlen)
                       : chunk_add(buf, len, s, old, olen);
    if (rc == OBS_ENOENT) {
        chunk_seal(buf, r.last, r.n);
        store_be64_put(key, r.key);
        rc = store_put(&txn->st, STORE_T_OUTBOX, key, sizeof(key), buf, len);
    }
    free(buf);
    return rc ? txn_fail(txn, rc) : OBS_OK;
}

/* Queues local change seq (its encoded bytes val) for the outbox: a chunk
 * goes on while the seqs are consecutive. */
static int
outbox_add(obsdb_txn_t *txn, uint64_t seq, const uint8_t *val, size_t vlen)
{
    int rc = OBS_OK;
    if (!txn->ob_max_known) {
        rc = outbox_stored_last(txn, &txn->ob_max);
        if (rc != 0)
            return txn_fail(txn, rc);
        txn->ob_max_known = true;
    }
    if (seq <= txn->ob_max) {
        rc = outbox_flush(txn);
        return rc ? rc : outbox_put_again(txn, seq, val, vlen);
    }
    if (txn->ob_n > 0 &&
        (txn->ob_n == OUTBOX_CHUNK_N || seq != txn->ob_last + 1 ||
         txn->ob_len + vlen + 20 > OUTBOX_CHUNK_BYTES))
        rc = outbox_flush(txn);
    if (rc != 0)
        return rc;
    size_t need = (txn->ob_n ? txn->ob_len : OUTBOX_CHUNK_HEAD) + 20 + vlen;
    if (need > txn->ob_cap) {
        size_t cap = txn->ob_cap ? txn->ob_cap * 2 : 4096; /* one put: small */
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(txn->ob_buf, cap);
        if (b == NULL)
            return txn_fail(txn, OBS_ENOMEM);
        txn->ob_buf = b;
        txn->ob_cap = cap;
    }
    if (txn->ob_n == 0) {
        txn->ob_len = OUTBOX_CHUNK_HEAD;
        txn->ob_first = seq;
    }
    txn->ob_len = chunk_add(txn->ob_buf, txn->ob_len, seq, val, vlen);
    txn->ob_n++;
    txn->ob_last = txn->ob_max = seq;
    return OBS_OK;
}

/* key has room for 8 more bytes (the history suffix). outbox: whether a
 * local change goes to the outbox (never for replicated ones); known_new as
 * for supersede_current. */
static int
put_encoded(obsdb_txn_t *txn, const obs_version_t *ver, uint8_t *key,
            size_t klen, const uint8_t *val, size_t vlen, bool outbox,
            bool known_new)
{
    bool is_new = false;
    int rc = supersede_current(txn, key, klen, ver, known_new, &is_new);

    if (rc == 0 && is_new)
        rc = try_append(txn, STORE_T_OBS, key, klen, val, vlen);
    if (rc == OBS_EEXIST || (rc == 0 && !is_new))
        rc = store_put(&txn->st, STORE_T_OBS, key, klen, val, vlen);
    if (rc == 0)
        obs_wrote(txn, key, klen);
    if (rc == 0 && outbox && strcmp(ver->origin, txn->db->node_id) == 0)
        rc = outbox_add(txn, ver->origin_seq, val, vlen);
    return rc;
}

bool
obsdb_key_fits(const obs_t *obs)
{
    uint8_t key[OBS_KEY_MAX + 1];
    return obs_key_encode(obs, key, PUT_KEY_MAX) > 0;
}

/* Stores a local version under key (room for the history suffix): body
 * joined with ver when body is not NULL, else obs encoded whole. */
static int
put_local_key(obsdb_txn_t *txn, uint8_t *key, size_t klen, const obs_t *obs,
              const obs_version_t *ver, const uint8_t *body, size_t body_len,
              bool known_new)
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = counts_load(txn);
    if (rc == 0)
        rc = body ? codec_obs_encode_with_body(body, body_len, ver, 0, &val,
                                               &vlen)
                  : codec_obs_encode(obs, &val, &vlen);
    if (rc == 0)
        rc = put_encoded(txn, ver, key, klen, val, vlen, !txn->db->no_outbox,
                         known_new);
    free(val);
    txn->counts_dirty = true;
    return rc ? txn_fail(txn, rc) : OBS_OK;
}

/* obsdb_put, with obs's identity, value and attributes already encoded
 * in body when body is not NULL. */
static int
put_local(obsdb_txn_t *txn, const obs_t *obs, const uint8_t *body,
          size_t body_len)
{
    uint8_t key[HIST_KEY_MAX];

    if (txn->st.rc != 0)
        return txn->st.rc;
    if (!txn->st.write)
        return txn_fail(txn, OBS_EINVAL);
    int klen = obs_key_encode(obs, key, PUT_KEY_MAX);
    if (klen < 0)
        return txn_fail(txn, klen);
    return put_local_key(txn, key, (size_t)klen, obs, &obs->ver, body, body_len,
                         false);
}

int
obsdb_put(obsdb_txn_t *txn, const obs_t *obs)
{
    return put_local(txn, obs, NULL, 0);
}

int
obsdb_put_body(obsdb_txn_t *txn, const obs_t *obs, const uint8_t *body,
               size_t body_len)
{
    return put_local(txn, obs, body, body_len);
}

int
obsdb_put_key_body(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                   const obs_version_t *ver, const uint8_t *body,
                   size_t body_len, bool known_new)
{
    uint8_t hkey[HIST_KEY_MAX];

    if (txn->st.rc != 0)
        return txn->st.rc;
    if (!txn->st.write || klen == 0 || klen > PUT_KEY_MAX)
        return txn_fail(txn, OBS_EINVAL);
    memcpy(hkey, key, klen);
    return put_local_key(txn, hkey, klen, NULL, ver, body, body_len, known_new);
}

int
obsdb_exists(obsdb_txn_t *txn, const uint8_t *key, size_t klen)
{
    store_val_t v;
    if (obs_sorts_last(txn, key, klen))
        return OBS_ENOENT;
    return store_get(&txn->st, STORE_T_OBS, key, klen, &v);
}

/* --------------------------------------------------------------- history */

static bool
has_prefix(const store_val_t *k, const uint8_t *prefix, size_t plen)
{
    return k->len >= plen && memcmp(k->ptr, prefix, plen) == 0;
}

/* From the cursor's entry (rc from the last move), steps back to the first
 * history entry of exactly key. Longer keys that start with key sort inside
 * key's range, so their entries are skipped, not taken as the end. */
static int
hist_settle(store_cursor_t *c, const uint8_t *key, size_t klen, store_val_t *k,
            store_val_t *v, int rc)
{
    while (rc == 0) {
        if (!has_prefix(k, key, klen))
            return OBS_ENOENT;
        if (hist_is_entry(k, v, klen))
            return OBS_OK;
        rc = store_cursor_prev(c, k, v);
    }
    return rc;
}

/* Positions c on key's newest history entry with hlc <= max_hlc. */
static int
hist_seek_newest(store_cursor_t *c, const uint8_t *key, size_t klen,
                 uint64_t max_hlc, store_val_t *k, store_val_t *v)
{
    uint8_t target[HIST_KEY_MAX];

    if (klen + HIST_SUFFIX_SHORT + 1 > sizeof(target))
        return OBS_ENOENT;
    /* key | max_hlc | 0xff sorts after every entry stamped max_hlc or
     * earlier (origins are text) and equals none: the entry before the
     * one found is the newest wanted */
    memcpy(target, key, klen);
    store_be64_put(target + klen, max_hlc);
    target[klen + HIST_SUFFIX_SHORT] = 0xff;
    int rc = store_cursor_seek(c, target, klen + HIST_SUFFIX_SHORT + 1, k, v);
    if (rc == OBS_ENOENT)
        rc = store_cursor_last(c, k, v);
    else if (rc == 0)
        rc = store_cursor_prev(c, k, v);
    return hist_settle(c, key, klen, k, v, rc);
}

/* Calls cb for key's versions newest first: those in history, and cur
 * (NULL = none) at its place by (hlc, origin). A history entry of the same
 * version as cur is skipped: stores written before history held only
 * earlier versions kept the current one there too. */
static int
history_walk(store_cursor_t *c, const uint8_t *key, size_t klen,
             const obs_t *cur, obs_t *obs, obsdb_obs_cb cb, void *arg)
{
    store_val_t k, v;
    bool cur_done = cur == NULL;
    int rc = hist_seek_newest(c, key, klen, UINT64_MAX, &k, &v);
    while (rc == 0) {
        rc = codec_obs_decode(v.ptr, v.len, obs);
        int order =
            cur && rc == 0 ? obsdb_version_cmp(&cur->ver, &obs->ver) : -1;
        if (rc == 0 && !cur_done && order >= 0) {
            cur_done = true;
            rc = cb(cur, arg);
        }
        if (rc == 0 && order != 0)
            rc = cb(obs, arg);
        if (rc == 0)
            rc =
                hist_settle(c, key, klen, &k, &v, store_cursor_prev(c, &k, &v));
    }
    if (rc == OBS_ENOENT && !cur_done)
        rc = cb(cur, arg);
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

int
obsdb_history(obsdb_txn_t *txn, const obs_t *identity, obsdb_obs_cb cb,
              void *arg)
{
    uint8_t key[OBS_KEY_MAX + 1];
    store_cursor_t c;
    store_val_t v;
    int klen = obs_key_encode(identity, key, sizeof(key));

    if (klen < 0)
        return klen;
    obs_t cur, obs;
    obs_init(&cur);
    obs_init(&obs);
    bool have_cur = false;
    int rc = store_get(&txn->st, STORE_T_OBS, key, (size_t)klen, &v);
    if (rc == 0) {
        rc = codec_obs_decode(v.ptr, v.len, &cur);
        have_cur = rc == 0;
    } else if (rc == OBS_ENOENT) {
        rc = 0;
    }
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_HISTORY, &c);
    if (rc == 0) {
        rc = history_walk(&c, key, (size_t)klen, have_cur ? &cur : NULL, &obs,
                          cb, arg);
        store_cursor_close(&c);
    }
    obs_fini(&cur);
    obs_fini(&obs);
    return rc;
}

/* ------------------------------------------------------------------ scan */

typedef struct {
    const obsdb_scan_t *q;
    obsdb_obs_cb cb;
    void *arg;
    uint8_t prefix[OBS_KEY_MAX + 1];
    size_t plen;
    bool period_filter;
    size_t count; /* passed to cb so far */
    bool done;    /* limit reached with more to come */
    store_cursor_t hist;
    obs_t obs;
    uint8_t *last_key;
    size_t *last_len;
    bool *more;
} scan_t;

static int
scan_prefix(scan_t *s)
{
    const obsdb_scan_t *q = s->q;
    size_t fixed = 0;
    const char *const *dims = NULL;

    if (q->dataflow == NULL)
        return OBS_OK;
    if (q->pattern != NULL) {
        fixed = obs_pattern_fixed_prefix(q->pattern);
        dims = (const char *const *)q->pattern->pos;
    }
    if (fixed > q->total_dims)
        fixed = q->total_dims;
    int n = obs_key_prefix(q->dataflow, q->total_dims, dims, fixed, s->prefix,
                           sizeof(s->prefix));
    if (n < 0)
        return n;
    s->plen = (size_t)n;
    return OBS_OK;
}

static bool
period_overlaps(const scan_t *s, const obs_t *o)
{
    period_t p;

    if (!s->period_filter)
        return true;
    if (period_parse(o->time_period, 0, 9999, &p, NULL, 0) != 0)
        return false;
    return p.end_day >= s->q->start_day && p.start_day <= s->q->end_day;
}

static bool
scan_match(const scan_t *s, const obs_t *o)
{
    const obsdb_scan_t *q = s->q;

    if (o->ver.tombstone && !q->include_deleted && q->updated_after_ms == 0)
        return false;
    if (q->updated_after_ms != 0 && HLC_MS(o->ver.hlc) <= q->updated_after_ms)
        return false;
    if (q->pattern != NULL &&
        !obs_pattern_match(q->pattern, (const char *const *)o->dims, o->n_dims))
        return false;
    return period_overlaps(s, o);
}

/* Emits s->obs (the version of key k the scan picked) if it matches. */
static int
scan_emit(scan_t *s, const store_val_t *k)
{
    if (!scan_match(s, &s->obs))
        return OBS_OK;
    if (s->q->limit != 0 && s->count == s->q->limit) {
        s->done = true;
        if (s->more != NULL)
            *s->more = true;
        return OBS_OK;
    }
    if (s->last_key != NULL && s->last_len != NULL) {
        memcpy(s->last_key, k->ptr, k->len);
        *s->last_len = k->len;
    }
    s->count++;
    return s->cb(&s->obs, s->arg);
}

/* One obs-table entry: pick the version (current or as of), filter, emit. */
static int
scan_one(scan_t *s, const store_val_t *k, store_val_t v)
{
    int rc = codec_obs_decode(v.ptr, v.len, &s->obs);
    if (rc == 0 && s->q->as_of_ms != 0) {
        /* the newest version stamped by then: the current one, or one in
         * history (only the current one being newer is not enough: history
         * may hold one stamped later than the current, and between) */
        uint64_t max_hlc = HLC_MAKE(s->q->as_of_ms, 0xffffu);
        store_val_t hk, hv;
        rc = hist_seek_newest(&s->hist, k->ptr, k->len, max_hlc, &hk, &hv);
        bool cur_ok = s->obs.ver.hlc <= max_hlc;
        if (rc == OBS_ENOENT)
            return cur_ok ? scan_emit(s, k) : OBS_OK; /* not written then */
        if (rc != 0)
            return rc;
        obs_version_t hver;
        rc = codec_obs_decode_version(hv.ptr, hv.len, &hver);
        if (rc == 0 && (!cur_ok || obsdb_version_cmp(&hver, &s->obs.ver) > 0))
            rc = codec_obs_decode(hv.ptr, hv.len, &s->obs);
    }
    if (rc != 0)
        return rc;
    return scan_emit(s, k);
}

static int
bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return (alen > blen) - (alen < blen);
}

/* Seeks to the prefix, or past resume_after when that lies beyond it. */
static int
scan_start(scan_t *s, store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    const obsdb_scan_t *q = s->q;

    if (q->resume_after == NULL || q->resume_len == 0 ||
        bytes_cmp(q->resume_after, q->resume_len, s->prefix, s->plen) < 0)
        return store_cursor_seek(c, s->prefix, s->plen, k, v);
    int rc = store_cursor_seek(c, q->resume_after, q->resume_len, k, v);
    if (rc == 0 && k->len == q->resume_len &&
        memcmp(k->ptr, q->resume_after, k->len) == 0)
        rc = store_cursor_next(c, k, v);
    return rc;
}

static int
scan_walk(scan_t *s, store_cursor_t *c)
{
    store_val_t k, v;
    int rc = scan_start(s, c, &k, &v);

    while (rc == 0 && has_prefix(&k, s->prefix, s->plen)) {
        rc = scan_one(s, &k, v);
        if (rc != 0 || s->done)
            break;
        rc = store_cursor_next(c, &k, &v);
    }
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

int
obsdb_scan(obsdb_txn_t *txn, const obsdb_scan_t *q, obsdb_obs_cb cb, void *arg,
           uint8_t *last_key, size_t *last_len, bool *more)
{
    scan_t s = {.q = q,
                .cb = cb,
                .arg = arg,
                .last_key = last_key,
                .last_len = last_len,
                .more = more};
    store_cursor_t c = {0};

    if (last_len != NULL)
        *last_len = 0;
    if (q->resume_len > OBS_KEY_MAX)
        return OBS_EINVAL; /* cursors come from clients */
    if (more != NULL)
        *more = false;
    s.period_filter = q->start_day != INT32_MIN || q->end_day != INT32_MAX;
    obs_init(&s.obs);
    int rc = scan_prefix(&s);
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_OBS, &c);
    if (rc == 0 && q->as_of_ms != 0)
        rc = store_cursor_open(&txn->st, STORE_T_HISTORY, &s.hist);
    if (rc == 0)
        rc = scan_walk(&s, &c);
    store_cursor_close(&s.hist);
    store_cursor_close(&c);
    obs_fini(&s.obs);
    return rc;
}

/* ---------------------------------------------------------- structure */

static const char struct_key[] = "text";

int
obsdb_structure_get(obsdb_txn_t *txn, char **text, size_t *len)
{
    store_val_t v;

    *text = NULL;
    int rc = store_get(&txn->st, STORE_T_STRUCT, struct_key,
                       sizeof(struct_key) - 1, &v);
    if (rc != 0)
        return rc;
    char *copy = malloc(v.len + 1);
    if (copy == NULL)
        return OBS_ENOMEM;
    memcpy(copy, v.ptr, v.len);
    copy[v.len] = '\0';
    *text = copy;
    if (len != NULL)
        *len = v.len;
    return OBS_OK;
}

int
obsdb_structure_put(obsdb_txn_t *txn, const char *text, size_t len)
{
    return store_put(&txn->st, STORE_T_STRUCT, struct_key,
                     sizeof(struct_key) - 1, text, len);
}

/* Limits shared by the raw walks; 0 = no limit. */
typedef struct {
    size_t max_entries;
    size_t max_bytes;
    size_t entries;
    size_t bytes;
} budget_t;

static bool
budget_spent(const budget_t *b)
{
    return (b->max_entries != 0 && b->entries >= b->max_entries) ||
           (b->max_bytes != 0 && b->bytes >= b->max_bytes);
}

static void
budget_take(budget_t *b, size_t rlen)
{
    b->entries++;
    b->bytes += rlen;
}

/* ---------------------------------------------------------------- outbox */

int
obsdb_outbox_walk_raw(obsdb_txn_t *txn, uint64_t after, size_t max_entries,
                      size_t max_bytes, obsdb_log_cb cb, void *arg)
{
    store_cursor_t c;
    store_val_t k, v;
    uint8_t from[8];
    budget_t b = {.max_entries = max_entries, .max_bytes = max_bytes};

    if (after == UINT64_MAX)
        return OBS_OK;
    int rc = txn->st.write ? outbox_flush(txn) : OBS_OK;
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc != 0)
        return rc;
    /* the record holding after + 1 may be a chunk that starts before it */
    store_be64_put(from, after + 1);
    rc = store_cursor_seek(&c, from, sizeof(from), &k, &v);
    if (rc == OBS_ENOENT ||
        (rc == 0 && k.len == 8 && store_be64_get(k.ptr) > after + 1)) {
        ob_rec_t r;
        int prc = rc == 0 ? store_cursor_prev(&c, &k, &v)
                          : store_cursor_last(&c, &k, &v);
        if (prc == 0)
            prc = ob_rec_open(&k, &v, &r); /* damaged: OBS_ESTORE */
        if (prc == OBS_ENOENT || (prc == 0 && r.last <= after))
            rc = store_cursor_seek(&c, from, sizeof(from), &k, &v);
        else
            rc = prc;
    }
    while (rc == 0 && !budget_spent(&b)) {
        ob_rec_t r;
        uint64_t seq;
        const uint8_t *val;
        size_t len;
        rc = ob_rec_open(&k, &v, &r);
        while (rc == 0 && !budget_spent(&b) &&
               (rc = ob_rec_next(&r, &seq, &val, &len)) == 0) {
            if (seq <= after)
                continue;
            rc = cb(seq, NULL, 0, val, len, arg);
            budget_take(&b, len);
        }
        if (rc == OBS_ENOENT) /* this record is done */
            rc = store_cursor_next(&c, &k, &v);
    }
    store_cursor_close(&c);
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* Drops the changes up to upto from the chunk r (the cursor's record):
 * the rest is written again under its first origin_seq. */
static int
ack_part(obsdb_txn_t *txn, store_cursor_t *c, ob_rec_t *r, uint64_t upto)
{
    size_t len;
    uint8_t *buf = chunk_new((size_t)(r->end - r->p) + OUTBOX_CHUNK_HEAD, &len);
    if (buf == NULL)
        return OBS_ENOMEM;
    uint64_t s, first = 0;
    uint32_t n = 0;
    const uint8_t *val;
    size_t vlen;
    int rc;
    while ((rc = ob_rec_next(r, &s, &val, &vlen)) == 0) {
        if (s <= upto)
            continue;
        first = n++ ? first : s;
        len = chunk_add(buf, len, s, val, vlen);
    }
    uint8_t key[8];
    if (rc == OBS_ENOENT)
        rc = store_cursor_del(c);
    if (rc == 0 && n > 0) {
        chunk_seal(buf, r->last, n);
        store_be64_put(key, first);
        rc = store_put(&txn->st, STORE_T_OUTBOX, key, sizeof(key), buf, len);
    }
    free(buf);
    if (rc == 0) {
        uint32_t gone = r->n - n;
        txn->counts[CNT_OUTBOX] -=
            gone <= txn->counts[CNT_OUTBOX] ? gone : txn->counts[CNT_OUTBOX];
        txn->counts_dirty = true;
    }
    return rc;
}

int
obsdb_outbox_ack(obsdb_txn_t *txn, uint64_t upto)
{
    store_cursor_t c;
    store_val_t k, v;
    int rc = outbox_flush(txn);

    if (rc == 0)
        rc = counts_load(txn);
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc != 0)
        return txn_fail(txn, rc);
    /* Whole records only: a chunk stays until all of it is acknowledged.
     * Re-seek after each delete: LMDB's cursor position after
     * mdb_cursor_del is not something to lean on. */
    while ((rc = store_cursor_first(&c, &k, &v)) == 0) {
        ob_rec_t r;
        rc = ob_rec_open(&k, &v, &r);
        if (rc == 0 && r.last > upto && r.key <= upto) {
            rc = ack_part(txn, &c, &r, upto);
            break;
        }
        if (rc != 0 || r.last > upto)
            break;
        rc = store_cursor_del(&c);
        if (rc != 0)
            break;
        txn->counts[CNT_OUTBOX] -=
            r.n <= txn->counts[CNT_OUTBOX] ? r.n : txn->counts[CNT_OUTBOX];
        txn->counts_dirty = true;
    }
    store_cursor_close(&c);
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* ----------------------------------------------------------------- stats */

int
obsdb_stats(obsdb_txn_t *txn, obsdb_stats_t *out)
{
    store_info_t info;
    int rc = txn->st.write ? outbox_flush(txn) : OBS_OK;

    if (rc == 0)
        rc = counts_load(txn);
    if (rc == 0)
        rc = store_info(txn->db->store, &info);
    if (rc != 0)
        return rc;
    out->observations = txn->counts[CNT_OBS];
    out->tombstones = txn->counts[CNT_TOMB];
    out->history = txn->counts[CNT_HIST];
    out->outbox = txn->counts[CNT_OUTBOX];
    out->map_size = info.map_size;
    out->map_used = info.map_used;
    return OBS_OK;
}

int
obsdb_outbox_last(obsdb_txn_t *txn, uint64_t *last)
{
    *last = 0;
    int rc = txn->st.write ? outbox_flush(txn) : OBS_OK;
    return rc ? rc : outbox_stored_last(txn, last);
}

/* The outbox changes a rewrite holds while it empties the outbox. */
typedef struct {
    uint8_t *buf; /* each change as be32 length | bytes */
    size_t len, cap;
} held_t;

static int
hold_one(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
         size_t rlen, void *arg)
{
    (void)seq;
    (void)key;
    (void)klen;
    held_t *h = arg;
    if (rlen > UINT32_MAX)
        return OBS_ESTORE;
    if (h->len + 4 + rlen > h->cap) {
        size_t cap = h->cap ? h->cap : 64 * 1024;
        while (cap < h->len + 4 + rlen)
            cap *= 2;
        uint8_t *b = realloc(h->buf, cap);
        if (b == NULL)
            return OBS_ENOMEM;
        h->buf = b;
        h->cap = cap;
    }
    for (int i = 0; i < 4; i++)
        h->buf[h->len + (size_t)i] = (uint8_t)(rlen >> (24 - 8 * i));
    memcpy(h->buf + h->len + 4, rec, rlen);
    h->len += 4 + rlen;
    return OBS_OK;
}

/* Replaces key's current version old by o (encoded in enc), the same change
 * with another version: when the newest version in history beats it now
 * (re-stamped lower), that one becomes current and o goes to history. A
 * copy of old in history (older stores kept the current version there too)
 * goes first: it must not come back as current. */
static int
current_replace(obsdb_txn_t *txn, uint8_t *key, size_t klen, const obs_t *o,
                const obs_version_t *old, const uint8_t *enc, size_t enc_len)
{
    store_cursor_t c;
    store_val_t k, v;
    obs_version_t newest;
    int rc = store_cursor_open(&txn->st, STORE_T_HISTORY, &c);
    if (rc != 0)
        return rc;
    rc = hist_seek_newest(&c, key, klen, UINT64_MAX, &k, &v);
    if (rc == 0)
        rc = codec_obs_decode_version(v.ptr, v.len, &newest);
    while (rc == 0 && same_version(&newest, old)) {
        rc = store_cursor_del(&c);
        if (rc == 0)
            rc = hist_seek_newest(&c, key, klen, UINT64_MAX, &k, &v);
        if (rc == 0)
            rc = codec_obs_decode_version(v.ptr, v.len, &newest);
    }
    if (rc != 0 || obsdb_version_cmp(&newest, &o->ver) <= 0) {
        store_cursor_close(&c);
        if (rc != 0 && rc != OBS_ENOENT)
            return rc;
        return store_put(&txn->st, STORE_T_OBS, key, klen, enc, enc_len);
    }
    /* v points into the map: copy it before the writes */
    uint8_t *was = malloc(v.len ? v.len : 1);
    size_t was_len = v.len;
    if (was == NULL) {
        store_cursor_close(&c);
        return OBS_ENOMEM;
    }
    memcpy(was, v.ptr, v.len);
    rc = store_cursor_del(&c);
    store_cursor_close(&c);
    if (rc == 0 && newest.tombstone != o->ver.tombstone) {
        if (newest.tombstone)
            txn->counts[CNT_TOMB]++;
        else
            txn->counts[CNT_TOMB]--;
    }
    if (rc == 0)
        rc = store_put(&txn->st, STORE_T_OBS, key, klen, was, was_len);
    free(was);
    return rc ? rc : hist_put(txn, key, klen, &o->ver, enc, enc_len);
}

/* Puts version o->ver (encoded whole in enc) where the store holds the
 * same observation's version old: in place when old is current; else old
 * leaves history and the new one goes there, or becomes current when it
 * beats the current one. Nothing when the store does not hold old. */
static int
version_replace(obsdb_txn_t *txn, const obs_t *o, const obs_version_t *old,
                const uint8_t *enc, size_t enc_len)
{
    uint8_t key[HIST_KEY_MAX];
    store_val_t v;
    obs_version_t cur;
    int klen = obs_key_encode(o, key, PUT_KEY_MAX);
    if (klen < 0)
        return klen;
    int rc = store_get(&txn->st, STORE_T_OBS, key, (size_t)klen, &v);
    bool have_cur = rc == 0;
    if (rc == 0)
        rc = codec_obs_decode_version(v.ptr, v.len, &cur);
    if (rc != 0)
        return rc == OBS_ENOENT ? OBS_OK : rc;
    if (same_version(&cur, old))
        return current_replace(txn, key, (size_t)klen, o, old, enc, enc_len);
    size_t hlen = hist_key_make(key, (size_t)klen, old->hlc, old->origin);
    rc = store_get(&txn->st, STORE_T_HISTORY, key, hlen, &v);
    if (rc == OBS_ENOENT && hlen != (size_t)klen + HIST_SUFFIX_SHORT) {
        hlen = (size_t)klen + HIST_SUFFIX_SHORT; /* an older store's entry */
        rc = store_get(&txn->st, STORE_T_HISTORY, key, hlen, &v);
    }
    obs_version_t hist;
    if (rc == 0)
        rc = codec_obs_decode_version(v.ptr, v.len, &hist);
    if (rc == 0 && !same_version(&hist, old))
        rc = OBS_ENOENT; /* another origin's version under the short key */
    if (rc == 0)
        rc = store_del(&txn->st, STORE_T_HISTORY, key, hlen);
    if (rc != 0)
        return rc == OBS_ENOENT ? OBS_OK : rc;
    if (have_cur && obsdb_version_cmp(&o->ver, &cur) > 0) {
        bool is_new = false; /* cur moves to history: one in, one out */
        rc = supersede_current(txn, key, (size_t)klen, &o->ver, false, &is_new);
        txn->counts[CNT_HIST]--;
        if (rc == 0)
            rc = store_put(&txn->st, STORE_T_OBS, key, (size_t)klen, enc,
                           enc_len);
        return rc;
    }
    return hist_put(txn, key, (size_t)klen, &o->ver, enc, enc_len);
}

/* One held change: cb, then stored again under its new version. */
static int
rewrite_one(obsdb_txn_t *txn, const uint8_t *rec, size_t rlen,
            obsdb_rewrite_cb cb, void *arg, uint64_t *last_seq)
{
    obs_t o;
    obs_init(&o);
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    int rc = codec_obs_decode(rec, rlen, &o);
    obs_version_t old = o.ver;
    if (rc == 0)
        rc = cb(&o, arg);
    if (rc == 0 && o.ver.origin_seq <= *last_seq)
        rc = OBS_EINVAL; /* the new numbers must increase */
    if (rc == 0)
        rc = codec_obs_encode(&o, &enc, &enc_len);
    if (rc == 0)
        rc = version_replace(txn, &o, &old, enc, enc_len);
    if (rc == 0)
        rc = outbox_add(txn, o.ver.origin_seq, enc, enc_len);
    if (rc == 0)
        *last_seq = o.ver.origin_seq;
    free(enc);
    obs_fini(&o);
    return rc;
}

int
obsdb_outbox_rewrite(obsdb_txn_t *txn, uint64_t after, obsdb_rewrite_cb cb,
                     void *arg, size_t *n)
{
    held_t held = {0};
    size_t done = 0;
    uint64_t last_seq = 0;
    if (n != NULL)
        *n = 0;
    int rc = txn->st.rc;
    if (rc == 0 && !txn->st.write)
        return txn_fail(txn, OBS_EINVAL);
    if (rc == 0)
        rc = obsdb_outbox_ack(txn, after);
    if (rc == 0)
        rc = obsdb_outbox_walk_raw(txn, after, 0, 0, hold_one, &held);
    if (rc == 0) /* everything left is held: the outbox starts empty */
        rc = obsdb_outbox_ack(txn, UINT64_MAX);
    txn->ob_max_known = false;
    for (size_t at = 0; rc == 0 && at < held.len; done++) {
        size_t len = 0;
        for (int i = 0; i < 4; i++)
            len = (len << 8) | held.buf[at + (size_t)i];
        rc = rewrite_one(txn, held.buf + at + 4, len, cb, arg, &last_seq);
        at += 4 + len;
    }
    if (rc == 0)
        rc = outbox_flush(txn);
    free(held.buf);
    txn->counts_dirty = true;
    if (n != NULL)
        *n = done;
    return rc == 0 ? OBS_OK : txn_fail(txn, rc);
}

static int
first_hlc(uint64_t seq, const uint8_t *key, size_t klen, const uint8_t *rec,
          size_t rlen, void *arg)
{
    (void)key;
    (void)klen;
    uint64_t *io = arg; /* in: the seq wanted; out: its hlc */
    obs_version_t ver;
    if (seq != io[0])
        return OBS_ENOENT;
    int rc = codec_obs_decode_version(rec, rlen, &ver);
    io[1] = ver.hlc;
    return rc == 0 ? 1 : rc; /* 1: found, stop */
}

int
obsdb_outbox_hlc(obsdb_txn_t *txn, uint64_t seq, uint64_t *hlc)
{
    uint64_t io[2] = {seq, 0};
    if (seq == 0)
        return OBS_ENOENT;
    int rc = obsdb_outbox_walk_raw(txn, seq - 1, 1, 0, first_hlc, io);
    if (rc == 1) {
        *hlc = io[1];
        return OBS_OK;
    }
    return rc == 0 ? OBS_ENOENT : rc;
}

/* ----------------------------------------------------------- replication */

/* Gate for the replication writers: sticky error first, then a read txn is
 * a caller bug that fails the txn. */
static int
write_check(obsdb_txn_t *txn)
{
    if (txn->st.rc != 0)
        return txn->st.rc;
    if (!txn->st.write)
        return txn_fail(txn, OBS_EINVAL);
    return OBS_OK;
}

int
obsdb_version_cmp(const obs_version_t *a, const obs_version_t *b)
{
    if (a->hlc != b->hlc)
        return a->hlc < b->hlc ? -1 : 1;
    int c = strncmp(a->origin, b->origin, sizeof(a->origin));
    return (c > 0) - (c < 0);
}

/* *wins: ver beats the stored version of key, or key is new (*is_new).
 * *older: ver is an older version than the stored one (not the same). */
static int
replicated_wins(obsdb_txn_t *txn, const obs_version_t *ver, const uint8_t *key,
                size_t klen, bool *wins, bool *is_new, bool *older)
{
    store_val_t v;
    obs_version_t cur;
    bool last = obs_sorts_last(txn, key, klen);
    int rc =
        last ? OBS_ENOENT : store_get(&txn->st, STORE_T_OBS, key, klen, &v);

    txn->lookups += !last;
    *wins = *is_new = rc == OBS_ENOENT;
    if (rc != 0)
        return rc == OBS_ENOENT ? OBS_OK : rc;
    rc = codec_obs_decode_version(v.ptr, v.len, &cur);
    int order = rc == 0 ? obsdb_version_cmp(ver, &cur) : 0;
    *wins = order > 0;
    *older = order < 0;
    return rc;
}

/* A version older than the current one that arrives late (a concurrent
 * write that lost, a restored node's change coming back) still goes into
 * history, once: every store keeps every accepted version. */
static int
history_keep(obsdb_txn_t *txn, const obs_version_t *ver, uint8_t *key,
             size_t klen, const uint8_t *enc, size_t enc_len)
{
    store_val_t v;
    obs_version_t had;
    int rc = store_get(&txn->st, STORE_T_HISTORY, key,
                       hist_key_make(key, klen, ver->hlc, ""), &v);
    if (rc == 0 && codec_obs_decode_version(v.ptr, v.len, &had) == 0 &&
        same_version(&had, ver))
        return OBS_OK; /* kept by an older build, under the short key */
    size_t hlen = hist_key_make(key, klen, ver->hlc, ver->origin);
    rc = store_get(&txn->st, STORE_T_HISTORY, key, hlen, &v);
    if (rc != OBS_ENOENT)
        return rc;
    txn->counts[CNT_HIST]++;
    return hist_put(txn, key, klen, ver, enc, enc_len);
}

/* Stores enc under key (room for the history suffix) when ver wins. */
static int
put_replicated(obsdb_txn_t *txn, const obs_version_t *ver, uint8_t *key,
               size_t klen, const uint8_t *enc, size_t enc_len, bool *applied)
{
    bool wins = false, is_new = false, older = false;
    int rc = counts_load(txn);
    if (rc == 0)
        rc = replicated_wins(txn, ver, key, klen, &wins, &is_new, &older);
    if (rc == 0 && wins) {
        rc = put_encoded(txn, ver, key, klen, enc, enc_len, false, is_new);
        txn->counts_dirty = true;
        *applied = rc == 0;
    } else if (rc == 0 && older) {
        rc = history_keep(txn, ver, key, klen, enc, enc_len);
        txn->counts_dirty = true;
    }
    return rc ? txn_fail(txn, rc) : OBS_OK;
}

/* obsdb_put_replicated of obs encoded as enc (stored as given). */
static int
put_replicated_encoded(obsdb_txn_t *txn, const obs_t *obs, const uint8_t *enc,
                       size_t enc_len, bool *applied)
{
    uint8_t key[HIST_KEY_MAX];

    *applied = false;
    int rc = write_check(txn);
    if (rc != 0)
        return rc;
    int klen = obs_key_encode(obs, key, PUT_KEY_MAX);
    if (klen < 0)
        return txn_fail(txn, klen);
    return put_replicated(txn, &obs->ver, key, (size_t)klen, enc, enc_len,
                          applied);
}

int
obsdb_put_replicated(obsdb_txn_t *txn, const obs_t *obs, bool *applied)
{
    uint8_t *val = NULL;
    size_t vlen = 0;

    *applied = false;
    int rc = write_check(txn);
    if (rc == 0)
        rc = codec_obs_encode(obs, &val, &vlen);
    if (rc == 0)
        rc = put_replicated_encoded(txn, obs, val, vlen, applied);
    free(val);
    return rc ? txn_fail(txn, rc) : OBS_OK;
}

int
obsdb_put_replicated_raw(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                         const uint8_t *enc, size_t enc_len,
                         const obs_version_t *ver, bool *applied)
{
    uint8_t hkey[HIST_KEY_MAX];

    *applied = false;
    int rc = write_check(txn);
    if (rc != 0)
        return rc;
    if (!obsdb_key_len_fits(klen))
        return txn_fail(txn, OBS_EINVAL);
    memcpy(hkey, key, klen);
    return put_replicated(txn, ver, hkey, klen, enc, enc_len, applied);
}

size_t
obsdb_txn_lookups(const obsdb_txn_t *txn)
{
    return txn->lookups;
}

bool
obsdb_key_len_fits(size_t klen)
{
    return klen > 0 && klen <= PUT_KEY_MAX;
}

/* --------------------------------------------------------------- hub log */

/* Loads log.last once per txn. Should the meta entry be missing while the
 * log holds entries, the newest key stands in (and is written back), so a
 * hub_seq is never handed out twice. */
static int
log_load(obsdb_txn_t *txn)
{
    store_cursor_t c;
    store_val_t k;

    if (txn->log_loaded)
        return OBS_OK;
    int rc = obsdb_meta_get_u64(txn, LOG_LAST_NAME, &txn->log_last);
    if (rc == OBS_ENOENT) {
        txn->log_last = 0;
        rc = OBS_OK;
    }
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_LOG, &c);
    if (rc != 0)
        return rc;
    rc = store_cursor_last(&c, &k, NULL);
    store_cursor_close(&c);
    if (rc == 0 && k.len == 8 && store_be64_get(k.ptr) > txn->log_last) {
        txn->log_last = store_be64_get(k.ptr);
        txn->log_dirty = txn->st.write;
    }
    if (rc == OBS_ENOENT)
        rc = OBS_OK;
    txn->log_loaded = rc == 0;
    return rc;
}

/* Writes hub_seq -> be16 klen | key | the Observation: obs encoded whole,
 * or body with ver; encoded in place after the key. */
static int
log_put(obsdb_txn_t *txn, uint64_t hub_seq, const uint8_t *key, size_t klen,
        const obs_t *obs, const uint8_t *body, size_t body_len,
        const obs_version_t *ver)
{
    uint8_t seq[8];
    uint8_t *val = NULL;
    size_t vlen = 0;
    int rc = obs ? codec_obs_encode_after(obs, 2 + klen, &val, &vlen)
                 : codec_obs_encode_with_body(body, body_len, ver, 2 + klen,
                                              &val, &vlen);
    if (rc != 0)
        return rc;
    val[0] = (uint8_t)(klen >> 8);
    val[1] = (uint8_t)(klen & 0xff);
    memcpy(val + 2, key, klen);
    store_be64_put(seq, hub_seq);
    rc = try_append(txn, STORE_T_LOG, seq, sizeof(seq), val, vlen);
    if (rc == OBS_EEXIST)
        rc = store_put(&txn->st, STORE_T_LOG, seq, sizeof(seq), val, vlen);
    free(val);
    return rc;
}

int
obsdb_log_append(obsdb_txn_t *txn, obs_t *obs)
{
    uint8_t key[OBS_KEY_MAX + 1];
    int rc = write_check(txn);

    if (rc != 0)
        return rc;
    int klen = obs_key_encode(obs, key, sizeof(key));
    if (klen < 0)
        return txn_fail(txn, klen);
    return obsdb_log_append_key(txn, obs, key, (size_t)klen);
}

/* Appends key | the Observation (obs whole, or body with ver) under the
 * next hub_seq, which it sets in *ver (obs's own version, or ver). */
static int
log_append(obsdb_txn_t *txn, const uint8_t *key, size_t klen, const obs_t *obs,
           const uint8_t *body, size_t body_len, obs_version_t *ver)
{
    int rc = write_check(txn);

    if (rc != 0)
        return rc;
    if (klen == 0 || klen > OBS_KEY_MAX)
        return txn_fail(txn, OBS_EINVAL);
    rc = log_load(txn);
    if (rc == 0 && txn->log_last == UINT64_MAX)
        rc = OBS_ETOOBIG; /* 2^64 changes: not in this universe */
    if (rc != 0)
        return txn_fail(txn, rc);
    uint64_t old = ver->hub_seq;
    ver->hub_seq = txn->log_last + 1;
    rc = log_put(txn, ver->hub_seq, key, klen, obs, body, body_len, ver);
    if (rc != 0) {
        ver->hub_seq = old;
        return txn_fail(txn, rc);
    }
    txn->log_last = ver->hub_seq;
    txn->log_dirty = true;
    return OBS_OK;
}

int
obsdb_log_append_key(obsdb_txn_t *txn, obs_t *obs, const uint8_t *key,
                     size_t klen)
{
    return log_append(txn, key, klen, obs, NULL, 0, &obs->ver);
}

int
obsdb_log_append_body(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                      const uint8_t *body, size_t body_len, obs_version_t *ver)
{
    return log_append(txn, key, klen, NULL, body, body_len, ver);
}

int
obsdb_log_bounds(obsdb_txn_t *txn, uint64_t *first, uint64_t *last)
{
    store_cursor_t c;
    store_val_t k;
    int rc = log_load(txn);

    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_LOG, &c);
    if (rc != 0)
        return rc;
    rc = store_cursor_first(&c, &k, NULL);
    store_cursor_close(&c);
    *last = txn->log_last;
    *first = txn->log_last + 1;
    if (rc == 0 && k.len == 8)
        *first = store_be64_get(k.ptr);
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* Splits a log entry into hub_seq, canonical key and record. */
static int
log_split(const store_val_t *k, const store_val_t *v, uint64_t *seq,
          store_val_t *key, store_val_t *rec)
{
    if (k->len != 8 || v->len < 2)
        return OBS_ESTORE;
    size_t klen = ((size_t)v->ptr[0] << 8) | v->ptr[1];
    if (klen == 0 || klen > v->len - 2)
        return OBS_ESTORE;
    *seq = store_be64_get(k->ptr);
    key->ptr = v->ptr + 2;
    key->len = klen;
    rec->ptr = v->ptr + 2 + klen;
    rec->len = v->len - 2 - klen;
    return OBS_OK;
}

static int
log_walk(store_cursor_t *c, uint64_t after, budget_t *b, obsdb_log_cb cb,
         void *arg, uint64_t *last_seen)
{
    uint8_t from[8];
    store_val_t k, v, key, rec;
    uint64_t seq = 0;

    store_be64_put(from, after + 1);
    int rc = store_cursor_seek(c, from, sizeof(from), &k, &v);
    while (rc == 0 && !budget_spent(b)) {
        rc = log_split(&k, &v, &seq, &key, &rec);
        if (rc != 0)
            return rc;
        rc = cb(seq, key.ptr, key.len, rec.ptr, rec.len, arg);
        if (rc != 0)
            return rc; /* the callback's own code, even OBS_ENOENT */
        *last_seen = seq;
        budget_take(b, rec.len);
        rc = store_cursor_next(c, &k, &v);
    }
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

int
obsdb_log_walk(obsdb_txn_t *txn, uint64_t after, size_t max_entries,
               size_t max_bytes, obsdb_log_cb cb, void *arg,
               uint64_t *last_seen)
{
    budget_t b = {.max_entries = max_entries, .max_bytes = max_bytes};
    store_cursor_t c;

    *last_seen = after;
    if (after == UINT64_MAX)
        return OBS_OK;
    int rc = store_cursor_open(&txn->st, STORE_T_LOG, &c);
    if (rc != 0)
        return rc;
    rc = log_walk(&c, after, &b, cb, arg, last_seen);
    store_cursor_close(&c);
    return rc;
}

/* Deletes up to n entries from the front of the log. */
static int
log_trim_front(store_cursor_t *c, uint64_t n, size_t *done)
{
    int rc = OBS_OK;

    while (rc == 0 && *done < n) {
        /* Re-seek after each delete, as obsdb_outbox_ack does. */
        rc = store_cursor_first(c, NULL, NULL);
        if (rc == 0)
            rc = store_cursor_del(c);
        if (rc == 0)
            (*done)++;
    }
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

int
obsdb_log_trim(obsdb_txn_t *txn, uint64_t keep_last_n, size_t max_delete,
               size_t *deleted)
{
    store_cursor_t c;
    uint64_t n = 0;
    size_t done = 0;
    int rc = write_check(txn);

    if (deleted != NULL)
        *deleted = 0;
    /* log.last is loaded (and repaired if need be) before anything goes, so
     * trimmed numbers are never handed out again. */
    if (rc == 0)
        rc = log_load(txn);
    if (rc == 0)
        rc = store_count(&txn->st, STORE_T_LOG, &n);
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_LOG, &c);
    if (rc != 0)
        return txn_fail(txn, rc);
    uint64_t excess = n > keep_last_n ? n - keep_last_n : 0;
    if (max_delete != 0 && excess > max_delete)
        excess = max_delete;
    rc = log_trim_front(&c, excess, &done);
    store_cursor_close(&c);
    if (deleted != NULL)
        *deleted = done;
    return rc ? txn_fail(txn, rc) : OBS_OK;
}

/* --------------------------------------------------------------- origins */

/* be64 last_seq | epoch text [| 0x00 | be64 hlc of that change]: records
 * written before the hlc was kept end with the epoch. */
#define ORIGIN_VAL_MAX (8 + OBS_ID_MAX + 1 + 8)

static bool
origin_ok(const char *origin)
{
    return origin != NULL && origin[0] != '\0' && strlen(origin) <= OBS_ID_MAX;
}

/* Splits an origins value: *elen = the epoch's length, *hlc = the last
 * change's hlc (0 in an older record). */
static int
origin_split(const store_val_t *v, size_t *elen, uint64_t *hlc)
{
    if (v->len < 8 || v->len > ORIGIN_VAL_MAX)
        return OBS_ESTORE;
    const uint8_t *nul = memchr(v->ptr + 8, 0, v->len - 8);
    *elen = nul ? (size_t)(nul - (v->ptr + 8)) : v->len - 8;
    *hlc = 0;
    if (nul == NULL)
        return *elen <= OBS_ID_MAX ? OBS_OK : OBS_ESTORE;
    if (v->len != 8 + *elen + 1 + 8)
        return OBS_ESTORE;
    *hlc = store_be64_get(nul + 1);
    return OBS_OK;
}

int
obsdb_origin_get(obsdb_txn_t *txn, const char *origin, char *epoch,
                 size_t epoch_cap, uint64_t *last_seq, uint64_t *last_hlc)
{
    store_val_t v;
    size_t elen;
    uint64_t hlc;

    if (!origin_ok(origin))
        return OBS_EINVAL;
    int rc = store_get(&txn->st, STORE_T_ORIGINS, origin, strlen(origin), &v);
    if (rc == 0)
        rc = origin_split(&v, &elen, &hlc);
    if (rc != 0)
        return rc;
    if (epoch != NULL) {
        if (elen + 1 > epoch_cap)
            return OBS_ETOOBIG;
        memcpy(epoch, v.ptr + 8, elen);
        epoch[elen] = '\0';
    }
    if (last_seq != NULL)
        *last_seq = store_be64_get(v.ptr);
    if (last_hlc != NULL)
        *last_hlc = hlc;
    return OBS_OK;
}

int
obsdb_origin_put(obsdb_txn_t *txn, const char *origin, const char *epoch,
                 uint64_t last_seq, uint64_t last_hlc)
{
    uint8_t val[ORIGIN_VAL_MAX];
    size_t elen = epoch != NULL ? strlen(epoch) : 0;
    int rc = write_check(txn);

    if (rc != 0)
        return rc;
    if (!origin_ok(origin) || elen > OBS_ID_MAX)
        return txn_fail(txn, OBS_EINVAL);
    store_be64_put(val, last_seq);
    if (elen > 0)
        memcpy(val + 8, epoch, elen);
    val[8 + elen] = 0x00;
    store_be64_put(val + 8 + elen + 1, last_hlc);
    return store_put(&txn->st, STORE_T_ORIGINS, origin, strlen(origin), val,
                     8 + elen + 1 + 8);
}

/* Copies one origins entry into NUL-terminated strings and calls cb. */
static int
origin_emit(const store_val_t *k, const store_val_t *v, obsdb_origin_cb cb,
            void *arg)
{
    char origin[OBS_ID_MAX + 1];
    char epoch[OBS_ID_MAX + 1];
    size_t elen;
    uint64_t hlc;

    if (k->len > OBS_ID_MAX || origin_split(v, &elen, &hlc) != 0)
        return OBS_ESTORE;
    memcpy(origin, k->ptr, k->len);
    origin[k->len] = '\0';
    memcpy(epoch, v->ptr + 8, elen);
    epoch[elen] = '\0';
    return cb(origin, epoch, store_be64_get(v->ptr), arg);
}

int
obsdb_origin_walk(obsdb_txn_t *txn, obsdb_origin_cb cb, void *arg)
{
    store_cursor_t c;
    store_val_t k, v;
    int rc = store_cursor_open(&txn->st, STORE_T_ORIGINS, &c);

    if (rc != 0)
        return rc;
    int crc = OBS_OK;
    rc = store_cursor_first(&c, &k, &v);
    while (rc == 0 && crc == 0) {
        crc = origin_emit(&k, &v, cb, arg); /* cb's code, even OBS_ENOENT */
        if (crc == 0)
            rc = store_cursor_next(&c, &k, &v);
    }
    store_cursor_close(&c);
    if (crc != 0)
        return crc;
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

/* ------------------------------------------------------- raw state walk */

typedef struct {
    budget_t b;
    obsdb_log_cb cb;
    void *arg;
    uint8_t *last_key;
    size_t *last_len;
    bool *more;
} raw_walk_t;

/* Positions c on the first obs entry after the given key (or the first). */
static int
raw_start(store_cursor_t *c, const uint8_t *after, size_t after_len,
          store_val_t *k, store_val_t *v)
{
    if (after == NULL || after_len == 0)
        return store_cursor_first(c, k, v);
    int rc = store_cursor_seek(c, after, after_len, k, v);
    if (rc == 0 && k->len == after_len && memcmp(k->ptr, after, k->len) == 0)
        rc = store_cursor_next(c, k, v);
    return rc;
}

static int
raw_walk(raw_walk_t *w, store_cursor_t *c, const uint8_t *after,
         size_t after_len)
{
    store_val_t k, v;
    int rc = raw_start(c, after, after_len, &k, &v);

    while (rc == 0) {
        if (budget_spent(&w->b)) {
            if (w->more != NULL)
                *w->more = true;
            return OBS_OK;
        }
        int crc = w->cb(0, k.ptr, k.len, v.ptr, v.len, w->arg);
        if (crc != 0)
            return crc; /* the callback's own code, even OBS_ENOENT */
        if (w->last_key != NULL && w->last_len != NULL &&
            k.len <= OBS_KEY_MAX + 1) {
            memcpy(w->last_key, k.ptr, k.len);
            *w->last_len = k.len;
        }
        budget_take(&w->b, v.len);
        rc = store_cursor_next(c, &k, &v);
    }
    return rc == OBS_ENOENT ? OBS_OK : rc;
}

int
obsdb_state_walk_raw(obsdb_txn_t *txn, const uint8_t *after, size_t after_len,
                     size_t max_entries, size_t max_bytes, obsdb_log_cb cb,
                     void *arg, uint8_t *last_key, size_t *last_len, bool *more)
{
    raw_walk_t w = {.b = {.max_entries = max_entries, .max_bytes = max_bytes},
                    .cb = cb,
                    .arg = arg,
                    .last_key = last_key,
                    .last_len = last_len,
                    .more = more};
    store_cursor_t c;

    if (last_len != NULL)
        *last_len = 0;
    if (more != NULL)
        *more = false;
    if (after_len > OBS_KEY_MAX)
        return OBS_EINVAL; /* resume keys come from peers */
    int rc = store_cursor_open(&txn->st, STORE_T_OBS, &c);
    if (rc != 0)
        return rc;
    rc = raw_walk(&w, &c, after, after_len);
    store_cursor_close(&c);
    return rc;
}

/* Puts the local version v back into the outbox if its origin_seq is in
 * (after, upto]; *n counts it. */
static int
restore_one(obsdb_txn_t *txn, const store_val_t *v, uint64_t after,
            uint64_t upto, obs_t *o, size_t *n)
{
    if (codec_obs_decode(v->ptr, v->len, o) != OBS_OK ||
        strcmp(o->ver.origin, txn->db->node_id) != 0 ||
        o->ver.origin_seq <= after || o->ver.origin_seq > upto)
        return OBS_OK;
    bool held = false;
    int rc = outbox_has(txn, o->ver.origin_seq, &held);
    if (rc != 0 || held)
        return rc;
    uint8_t seq[8];
    store_be64_put(seq, o->ver.origin_seq);
    /* the value may move once we write: copy it first */
    uint8_t *val = malloc(v->len ? v->len : 1);
    if (val == NULL)
        return OBS_ENOMEM;
    memcpy(val, v->ptr, v->len);
    uint64_t before = txn->counts[CNT_OUTBOX];
    rc = put_counted(txn, STORE_T_OUTBOX, seq, sizeof(seq), val, v->len,
                     CNT_OUTBOX);
    free(val);
    *n += txn->counts[CNT_OUTBOX] - before; /* 0 if it was there already */
    return rc;
}

/* obs + history -> outbox. Walks both tables whole: a recovery path for a
 * hub that lost acknowledged changes (restored from a backup or wiped), run
 * once per such event, never on the hot path. The outbox value is the same
 * encoded version the tables hold. A version in both (older stores) is put
 * twice, under the same origin_seq: once. */
int
obsdb_outbox_restore(obsdb_txn_t *txn, uint64_t after, uint64_t upto,
                     size_t *restored)
{
    static const store_table_t tables[] = {STORE_T_OBS, STORE_T_HISTORY};
    size_t n = 0;

    if (txn->st.rc != 0)
        return txn->st.rc;
    if (!txn->st.write)
        return txn_fail(txn, OBS_EINVAL);
    int rc = outbox_flush(txn);
    if (rc == 0)
        rc = counts_load(txn);
    obs_t o;
    obs_init(&o);
    for (size_t t = 0; rc == 0 && t < 2; t++) {
        store_cursor_t c;
        store_val_t k, v;
        rc = store_cursor_open(&txn->st, tables[t], &c);
        if (rc != 0)
            break;
        for (rc = store_cursor_first(&c, &k, &v); rc == 0;
             rc = store_cursor_next(&c, &k, &v))
            if ((rc = restore_one(txn, &v, after, upto, &o, &n)) != 0)
                break;
        store_cursor_close(&c);
        if (rc == OBS_ENOENT)
            rc = 0;
    }
    obs_fini(&o);
    txn->counts_dirty = true;
    txn->ob_max_known = false; /* it may have put seqs above it */
    if (restored)
        *restored = n;
    return rc == 0 ? OBS_OK : txn_fail(txn, rc);
}
