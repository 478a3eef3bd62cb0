/*
 * store.c - the LMDB wrapper behind store.h: environment, named tables,
 * sticky-error transactions, cursors, map growth. It is the only file that
 * uses LMDB's header and the only place LMDB codes become OBS_E* codes
 * (MDB_MAP_FULL -> OBS_ESTOREFULL, MDB_NOTFOUND -> OBS_ENOENT, the rest ->
 * OBS_ESTORE with mdb_strerror() kept for store_errmsg()). It knows nothing of
 * observations or key layouts: obsdb.c (and later the hub's log) call it.
 * Threading: one thread per store_t; see store.h.
 */
#include "store.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include "obs_err.h"

#define DEFAULT_MAP_SIZE (64ull * 1024 * 1024)
#define DEFAULT_MAP_MAX  (16ull * 1024 * 1024 * 1024)
#define ERRMSG_CAP       256

struct store {
    MDB_env *env;
    MDB_dbi dbi[STORE_T_COUNT];
    uint64_t map_max;
    uint64_t map_step;
    unsigned open_txns;   /* mdb_env_set_mapsize needs none open */
    char err[ERRMSG_CAP]; /* last LMDB failure, for store_errmsg */
};

/* The on-disk names, indexed by store_table_t (back-mdb's mdmi_databases). */
static const char *const table_names[STORE_T_COUNT] = {
    [STORE_T_OBS] = "obs",
    [STORE_T_HISTORY] = "history",
    [STORE_T_OUTBOX] = "outbox",
    [STORE_T_STRUCT] = "struct",
    [STORE_T_META] = "meta",
    [STORE_T_LOG] = "log",
    [STORE_T_CONFLICTS] = "conflicts",
    [STORE_T_REJECTS] = "rejects",
    [STORE_T_ORIGINS] = "origins",
};

const char *
store_table_name(store_table_t t)
{
    if ((unsigned)t >= STORE_T_COUNT)
        return "?";
    return table_names[t];
}

/* Maps an LMDB (or errno) code at the edge and remembers its sentence. */
static int
map_rc(store_t *self, int rc, const char *op, const char *what)
{
    if (rc == 0)
        return OBS_OK;
    if (rc == MDB_NOTFOUND)
        return OBS_ENOENT;
    (void)snprintf(self->err, sizeof(self->err), "%s(%s): %s", op, what,
                   mdb_strerror(rc));
    if (rc == MDB_MAP_FULL)
        return OBS_ESTOREFULL;
    if (rc == ENOMEM)
        return OBS_ENOMEM;
    return OBS_ESTORE;
}

/* Records the first error of a txn; later ones are consequences. */
static int
txn_fail(store_txn_t *txn, int rc)
{
    if (txn->rc == 0)
        txn->rc = rc;
    return rc;
}

/* Gate at the top of every txn call: sticky error or ended txn. */
static int
txn_check(const store_txn_t *txn, store_table_t t)
{
    if (txn->rc != 0)
        return txn->rc;
    if (txn->txn == NULL || (unsigned)t >= STORE_T_COUNT)
        return OBS_EINVAL;
    return OBS_OK;
}

/* LMDB answers an oversized key with MDB_BAD_VALSIZE; keys often come from
 * peers (resume cursors), so refuse them here as bad input. */
static bool
key_ok(const store_txn_t *txn, size_t klen)
{
    return klen > 0 && klen <= (size_t)mdb_env_get_maxkeysize(txn->store->env);
}

const char *
store_errmsg(const store_t *self)
{
    return self ? self->err : "";
}

static void
set_errbuf(char *errbuf, size_t errcap, const char *what, const char *dir,
           const char *why)
{
    if (errbuf != NULL && errcap > 0)
        (void)snprintf(errbuf, errcap, "%s %s: %s", what, dir, why);
}

/* A new environment takes the configured size; an existing one keeps the
 * size it grew to unless the configuration asks for more. */
static int
env_set_size(store_t *self, const char *dir, uint64_t want, bool before)
{
    char path[4096];
    struct stat st;
    MDB_envinfo info;

    (void)snprintf(path, sizeof(path), "%s/data.mdb", dir);
    if (before)
        return stat(path, &st) == 0 ? 0 : mdb_env_set_mapsize(self->env, want);
    mdb_env_info(self->env, &info);
    if (info.me_mapsize >= want)
        return 0;
    return mdb_env_set_mapsize(self->env, want);
}

static int
open_tables(store_t *self)
{
    MDB_txn *txn = NULL;
    int rc = mdb_txn_begin(self->env, NULL, 0, &txn);

    for (int t = 0; rc == 0 && t < STORE_T_COUNT; t++)
        rc = mdb_dbi_open(txn, table_names[t], MDB_CREATE, &self->dbi[t]);
    if (rc == 0)
        return mdb_txn_commit(txn);
    if (txn != NULL)
        mdb_txn_abort(txn);
    return rc;
}

static int
env_open(store_t *self, const store_opts_t *opts)
{
    uint64_t size = opts->map_size ? opts->map_size : DEFAULT_MAP_SIZE;
    unsigned flags = MDB_NOTLS | (opts->no_sync ? MDB_NOSYNC : 0);
    int rc = mdb_env_create(&self->env);

    if (rc == 0)
        rc = mdb_env_set_maxdbs(self->env, STORE_T_COUNT);
    if (rc == 0)
        rc = env_set_size(self, opts->dir, size, true);
    if (rc == 0)
        rc = mdb_env_open(self->env, opts->dir, flags, 0600);
    if (rc == 0)
        rc = env_set_size(self, opts->dir, size, false);
    if (rc == 0)
        rc = open_tables(self);
    return rc;
}

int
store_open(const store_opts_t *opts, store_t **out, char *errbuf, size_t errcap)
{
    *out = NULL;
    if (opts == NULL || opts->dir == NULL || opts->dir[0] == '\0')
        return OBS_EINVAL;
    if (mkdir(opts->dir, 0700) != 0 && errno != EEXIST) {
        set_errbuf(errbuf, errcap, "mkdir", opts->dir, strerror(errno));
        return OBS_ESTORE;
    }
    store_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->map_max = opts->map_max ? opts->map_max : DEFAULT_MAP_MAX;
    self->map_step = opts->map_step;
    int rc = env_open(self, opts);
    if (rc != 0) {
        set_errbuf(errbuf, errcap, "open store", opts->dir, mdb_strerror(rc));
        int code = map_rc(self, rc, "mdb_env_open", opts->dir);
        if (self->env != NULL)
            mdb_env_close(self->env);
        free(self);
        return code == OBS_ENOENT ? OBS_ESTORE : code;
    }
    *out = self;
    return OBS_OK;
}

void
store_close(store_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    store_t *self = *selfp;
    mdb_env_close(self->env);
    free(self);
    *selfp = NULL;
}

int
store_info(store_t *self, store_info_t *out)
{
    MDB_envinfo info;
    MDB_stat st;
    int rc = mdb_env_info(self->env, &info);

    if (rc == 0)
        rc = mdb_env_stat(self->env, &st);
    if (rc != 0)
        return map_rc(self, rc, "mdb_env_info", "env");
    out->map_size = info.me_mapsize;
    out->page_size = st.ms_psize;
    out->map_used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    return OBS_OK;
}

int
store_grow(store_t *self)
{
    store_info_t info;

    if (self->open_txns > 0)
        return OBS_EBUSY;
    int rc = store_info(self, &info);
    if (rc != 0)
        return rc;
    if (info.map_size >= self->map_max)
        return OBS_ESTOREFULL;
    uint64_t step = self->map_step ? self->map_step : info.map_size;
    uint64_t size = info.map_size + step;
    if (size > self->map_max || size < info.map_size)
        size = self->map_max;
    return map_rc(self, mdb_env_set_mapsize(self->env, size),
                  "mdb_env_set_mapsize", "env");
}

static int
txn_begin_once(store_t *self, bool write, MDB_txn **txn)
{
    unsigned flags = write ? 0 : MDB_RDONLY;
    int rc = mdb_txn_begin(self->env, NULL, flags, txn);

    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map: adopt its size, then retry. */
        rc = mdb_env_set_mapsize(self->env, 0);
        if (rc == 0)
            rc = mdb_txn_begin(self->env, NULL, flags, txn);
    }
    return rc;
}

int
store_begin(store_t *self, store_txn_t *txn, bool write)
{
    memset(txn, 0, sizeof(*txn));
    txn->store = self;
    txn->write = write;
    int rc = txn_begin_once(self, write, &txn->txn);
    if (rc == MDB_READERS_FULL) {
        /* Slots held by dead processes are the usual cause (lmdb.h). */
        int dead = 0;
        mdb_reader_check(self->env, &dead);
        rc = txn_begin_once(self, write, &txn->txn);
    }
    if (rc != 0) {
        txn->txn = NULL;
        txn->rc = map_rc(self, rc, "mdb_txn_begin", write ? "rw" : "ro");
        return txn->rc;
    }
    self->open_txns++;
    return OBS_OK;
}

bool
store_syncs_meta(store_t *self)
{
    unsigned flags = 0;
    return mdb_env_get_flags(self->env, &flags) == 0 &&
           (flags & MDB_NOMETASYNC) == 0;
}

int
store_begin_lazy(store_t *self, store_txn_t *txn)
{
    int rc = store_begin(self, txn, true);
    txn->lazy = rc == 0;
    return rc;
}

static void
txn_end(store_txn_t *txn)
{
    txn->txn = NULL;
    txn->store->open_txns--;
}

void
store_abort(store_txn_t *txn)
{
    if (txn == NULL || txn->txn == NULL)
        return;
    mdb_txn_abort(txn->txn);
    txn_end(txn);
}

int
store_commit(store_txn_t *txn)
{
    if (txn->txn == NULL)
        return txn->rc ? txn->rc : OBS_EINVAL;
    if (txn->rc != 0) {
        store_abort(txn);
        return txn->rc;
    }
    /* LMDB 0.9 takes MDB_NOMETASYNC from the env at commit only; the env
     * is ours alone (one thread), so it is set around this one commit. */
    if (txn->lazy)
        mdb_env_set_flags(txn->store->env, MDB_NOMETASYNC, 1);
    int rc = mdb_txn_commit(txn->txn); /* frees the txn either way */
    if (txn->lazy)
        mdb_env_set_flags(txn->store->env, MDB_NOMETASYNC, 0);
    txn_end(txn);
    if (rc != 0)
        txn->rc = map_rc(txn->store, rc, "mdb_txn_commit", "rw");
    return txn->rc;
}

static MDB_val
mval(const void *p, size_t len)
{
    /* LMDB takes void * for input it never writes; the union drops const
     * without a cast. */
    union {
        const void *in;
        void *out;
    } u = {.in = p};
    MDB_val v = {.mv_size = len, .mv_data = u.out};
    return v;
}

static void
sval(store_val_t *out, const MDB_val *v)
{
    if (out != NULL) {
        out->ptr = v->mv_data;
        out->len = v->mv_size;
    }
}

int
store_get(store_txn_t *txn, store_table_t t, const void *key, size_t klen,
          store_val_t *val)
{
    int rc = txn_check(txn, t);
    if (rc != 0)
        return rc;
    if (!key_ok(txn, klen))
        return OBS_EINVAL; /* a bad lookup is not a failed txn */
    MDB_val k = mval(key, klen), v;
    rc = map_rc(txn->store, mdb_get(txn->txn, txn->store->dbi[t], &k, &v),
                "mdb_get", table_names[t]);
    if (rc == OBS_ENOENT)
        return rc;
    if (rc != 0)
        return txn_fail(txn, rc);
    sval(val, &v);
    return OBS_OK;
}

/* mdb_put with flags; MDB_KEYEXIST (which MDB_APPEND returns before it
 * touches anything, see mdb_cursor_put) is OBS_EEXIST and not sticky. */
static int
put_flags(store_txn_t *txn, store_table_t t, const void *key, size_t klen,
          const void *val, size_t vlen, unsigned flags)
{
    int rc = txn_check(txn, t);
    if (rc != 0)
        return txn_fail(txn, rc);
    if (!txn->write || !key_ok(txn, klen))
        return txn_fail(txn, OBS_EINVAL);
    MDB_val k = mval(key, klen), v = mval(val, vlen);
    rc = mdb_put(txn->txn, txn->store->dbi[t], &k, &v, flags);
    if (rc == MDB_KEYEXIST)
        return OBS_EEXIST;
    if (rc != 0)
        return txn_fail(txn, map_rc(txn->store, rc, "mdb_put", table_names[t]));
    return OBS_OK;
}

int
store_put(store_txn_t *txn, store_table_t t, const void *key, size_t klen,
          const void *val, size_t vlen)
{
    return put_flags(txn, t, key, klen, val, vlen, 0);
}

int
store_append(store_txn_t *txn, store_table_t t, const void *key, size_t klen,
             const void *val, size_t vlen)
{
    return put_flags(txn, t, key, klen, val, vlen, MDB_APPEND);
}

int
store_del(store_txn_t *txn, store_table_t t, const void *key, size_t klen)
{
    int rc = txn_check(txn, t);
    if (rc != 0)
        return txn_fail(txn, rc);
    if (!txn->write || klen == 0)
        return txn_fail(txn, OBS_EINVAL);
    MDB_val k = mval(key, klen);
    rc = map_rc(txn->store, mdb_del(txn->txn, txn->store->dbi[t], &k, NULL),
                "mdb_del", table_names[t]);
    if (rc == OBS_ENOENT)
        return rc;
    return rc ? txn_fail(txn, rc) : OBS_OK;
}

int
store_count(store_txn_t *txn, store_table_t t, uint64_t *out)
{
    MDB_stat st;
    int rc = txn_check(txn, t);
    if (rc != 0)
        return rc;
    rc = mdb_stat(txn->txn, txn->store->dbi[t], &st);
    if (rc != 0)
        return txn_fail(txn,
                        map_rc(txn->store, rc, "mdb_stat", table_names[t]));
    *out = st.ms_entries;
    return OBS_OK;
}

int
store_cursor_open(store_txn_t *txn, store_table_t t, store_cursor_t *c)
{
    c->txn = txn;
    c->cur = NULL;
    int rc = txn_check(txn, t);
    if (rc != 0)
        return rc;
    rc = mdb_cursor_open(txn->txn, txn->store->dbi[t], &c->cur);
    if (rc != 0) {
        c->cur = NULL;
        return txn_fail(
            txn, map_rc(txn->store, rc, "mdb_cursor_open", table_names[t]));
    }
    return OBS_OK;
}

void
store_cursor_close(store_cursor_t *c)
{
    if (c != NULL && c->cur != NULL) {
        mdb_cursor_close(c->cur);
        c->cur = NULL;
    }
}

static int
cursor_op(store_cursor_t *c, MDB_cursor_op op, MDB_val *k, store_val_t *ko,
          store_val_t *vo)
{
    if (c->txn->rc != 0)
        return c->txn->rc;
    if (c->cur == NULL)
        return OBS_EINVAL;
    MDB_val v;
    int rc = map_rc(c->txn->store, mdb_cursor_get(c->cur, k, &v, op),
                    "mdb_cursor_get", "cursor");
    if (rc == OBS_ENOENT)
        return rc;
    if (rc != 0)
        return txn_fail(c->txn, rc);
    sval(ko, k);
    sval(vo, &v);
    return OBS_OK;
}

int
store_cursor_seek(store_cursor_t *c, const void *key, size_t klen,
                  store_val_t *k, store_val_t *v)
{
    if (klen == 0)
        return store_cursor_first(c, k, v);
    if (c->txn->rc == 0 && !key_ok(c->txn, klen))
        return OBS_EINVAL; /* a bad seek is not a failed txn */
    MDB_val mk = mval(key, klen);
    return cursor_op(c, MDB_SET_RANGE, &mk, k, v);
}

int
store_cursor_first(store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    MDB_val mk = {0, NULL};
    return cursor_op(c, MDB_FIRST, &mk, k, v);
}

int
store_cursor_last(store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    MDB_val mk = {0, NULL};
    return cursor_op(c, MDB_LAST, &mk, k, v);
}

int
store_cursor_next(store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    MDB_val mk = {0, NULL};
    return cursor_op(c, MDB_NEXT, &mk, k, v);
}

int
store_cursor_prev(store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    MDB_val mk = {0, NULL};
    return cursor_op(c, MDB_PREV, &mk, k, v);
}

int
store_cursor_del(store_cursor_t *c)
{
    if (c->txn->rc != 0)
        return c->txn->rc;
    if (c->cur == NULL || !c->txn->write)
        return txn_fail(c->txn, OBS_EINVAL);
    int rc = mdb_cursor_del(c->cur, 0);
    if (rc != 0)
        return txn_fail(c->txn,
                        map_rc(c->txn->store, rc, "mdb_cursor_del", "cursor"));
    return OBS_OK;
}

void
store_be64_put(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

uint64_t
store_be64_get(const uint8_t in[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | in[i];
    return v;
}
