/*
 * obsdb.c - the observation store's frame (obsdb.h): opening and closing the
 * store over store.c, transactions (the sticky error, and the counters and
 * outbox chunk written at commit), the meta table, the table format and the
 * store epoch, map growth, and the status counters. The tables themselves
 * are kept by their own files, which share this one's internals through
 * obsdb_int.h:
 *   obsdb_obs.c     obs + history: every write of an observation's versions
 *   obsdb_scan.c    obs + history: the reads (history, scans, state walk)
 *   obsdb_outbox.c  outbox: the node's local changes still to publish
 *   obsdb_log.c     log + origins: the hub's log and its per-origin records
 *   obsdb_struct.c  struct: the structure text
 * obsdb is not the validator, the winner rule or a replication engine: the
 * local API (daemon/api) and the replication engines (daemon/repl/hub,
 * daemon/repl/node) decide what to write, version_cmp (model/version.h)
 * which of two versions is current, and obsdb only stores and finds it. It
 * never touches LMDB directly (store.c does) and never logs. Called by those
 * engines from the loop thread only (obsdb_key_len_fits, which is pure, also
 * from the hub's prepare thread).
 *
 * Layout of meta (key -> value), as back-mdb's id2entry.c writes it down; the
 * other tables' layouts are written beside their encoders, in their files:
 *   "epoch"                                   -> 32 hex chars, made once
 *   "node_id"                                 -> node id of the first open
 *   "format"                                  -> be64 OBSDB_FORMAT (below)
 *   "count.obs" "count.tombstones"
 *   "count.history" "count.outbox"            -> be64 counters, kept by each
 *                                                txn and written at commit
 *   "log.last"                                -> be64 newest hub_seq ever
 *                                                assigned (survives trims;
 *                                                obsdb_log.c)
 *   other names (hlc, origin_seq, ..)         -> be64 or text, callers' own
 */
#include "obsdb.h"

#include <sys/random.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "obs_err.h"
#include "obsdb_int.h"
#include "store.h"

static const char *const count_names[CNT_COUNT] = {
    [CNT_OBS] = "count.obs",
    [CNT_TOMB] = "count.tombstones",
    [CNT_HIST] = "count.history",
    [CNT_OUTBOX] = "count.outbox",
};

/* ------------------------------------------------------------ txn basics */

int
obsdb_txn_fail(obsdb_txn_t *txn, int rc)
{
    if (txn->st.rc == 0)
        txn->st.rc = rc;
    return rc;
}

static int begin(obsdb_t *self, bool write, bool lazy, obsdb_txn_t **out);

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
    if (txn->st.write && obsdb_outbox_flush(txn) == OBS_OK)
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

/* Gate for the writers: sticky error first, then a read txn is a caller
 * bug that fails the txn. */
int
obsdb_write_check(obsdb_txn_t *txn)
{
    if (txn->st.rc != 0)
        return txn->st.rc;
    if (!txn->st.write)
        return obsdb_txn_fail(txn, OBS_EINVAL);
    return OBS_OK;
}

/* store_append while the keys of t keep sorting last in this txn: OBS_OK
 * (appended: a new key), OBS_EEXIST (nothing written: put it normally),
 * or an error. After one key that is not last, t is not tried again in
 * this txn (a random-order load would pay a failed try per key). */
int
obsdb_try_append(obsdb_txn_t *txn, store_table_t t, const uint8_t *key,
                 size_t klen, const uint8_t *val, size_t vlen)
{
    if (txn->not_last & (1u << t))
        return OBS_EEXIST;
    int rc = store_append(&txn->st, t, key, klen, val, vlen);
    if (rc == OBS_EEXIST)
        txn->not_last |= 1u << t;
    return rc;
}

/* Puts key -> val in table t, counting it in counts[cnt] when new. */
int
obsdb_put_counted(obsdb_txn_t *txn, store_table_t t, const uint8_t *key,
                  size_t klen, const uint8_t *val, size_t vlen, int cnt)
{
    int rc = obsdb_try_append(txn, t, key, klen, val, vlen);
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

int
obsdb_counts_load(obsdb_txn_t *txn)
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
            obsdb_txn_fail(txn, rc);
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

/* ----------------------------------------------------------------- stats */

int
obsdb_stats(obsdb_txn_t *txn, obsdb_stats_t *out)
{
    store_info_t info;
    int rc = txn->st.write ? obsdb_outbox_flush(txn) : OBS_OK;

    if (rc == 0)
        rc = obsdb_counts_load(txn);
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
