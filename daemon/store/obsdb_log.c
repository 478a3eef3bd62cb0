/*
 * obsdb_log.c - the hub's tables (obsdb.h): the log, where every change the
 * hub accepts is appended under the next hub_seq and from which the nodes
 * are streamed, and origins, the hub's record of each origin node (its store
 * epoch and the last change taken from it). It does not decide what is
 * accepted (repl/hub does), nor apply the log to the hub's state
 * (obsdb_put_replicated_raw, obsdb_obs.c). Called by the hub's replication,
 * from the loop thread.
 *
 * Layout (table -> key -> value), as back-mdb's id2entry.c writes it down:
 *   log      be64 hub_seq                      -> be16 klen | canonical key |
 *                                                 codec_obs_encode(change),
 *                                                 ver.hub_seq set
 *   origins  origin node id (no NUL)           -> be64 highest accepted
 *                                                 origin_seq | epoch text |
 *                                                 0x00 | be64 its hlc
 *   meta     "log.last"                        -> be64 newest hub_seq ever
 *                                                 assigned (survives trims),
 *                                                 written at commit (obsdb.c)
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "obs_err.h"
#include "obsdb.h"
#include "obsdb_int.h"
#include "store.h"

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
    rc = obsdb_try_append(txn, STORE_T_LOG, seq, sizeof(seq), val, vlen);
    if (rc == OBS_EEXIST)
        rc = store_put(&txn->st, STORE_T_LOG, seq, sizeof(seq), val, vlen);
    free(val);
    return rc;
}

int
obsdb_log_append(obsdb_txn_t *txn, obs_t *obs)
{
    uint8_t key[OBS_KEY_MAX + 1];
    int rc = obsdb_write_check(txn);

    if (rc != 0)
        return rc;
    int klen = obs_key_encode(obs, key, sizeof(key));
    if (klen < 0)
        return obsdb_txn_fail(txn, klen);
    return obsdb_log_append_key(txn, obs, key, (size_t)klen);
}

/* Appends key | the Observation (obs whole, or body with ver) under the
 * next hub_seq, which it sets in *ver (obs's own version, or ver). */
static int
log_append(obsdb_txn_t *txn, const uint8_t *key, size_t klen, const obs_t *obs,
           const uint8_t *body, size_t body_len, obs_version_t *ver)
{
    int rc = obsdb_write_check(txn);

    if (rc != 0)
        return rc;
    if (klen == 0 || klen > OBS_KEY_MAX)
        return obsdb_txn_fail(txn, OBS_EINVAL);
    rc = log_load(txn);
    if (rc == 0 && txn->log_last == UINT64_MAX)
        rc = OBS_ETOOBIG; /* 2^64 changes: not in this universe */
    if (rc != 0)
        return obsdb_txn_fail(txn, rc);
    uint64_t old = ver->hub_seq;
    ver->hub_seq = txn->log_last + 1;
    rc = log_put(txn, ver->hub_seq, key, klen, obs, body, body_len, ver);
    if (rc != 0) {
        ver->hub_seq = old;
        return obsdb_txn_fail(txn, rc);
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
    int rc = obsdb_write_check(txn);

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
        return obsdb_txn_fail(txn, rc);
    uint64_t excess = n > keep_last_n ? n - keep_last_n : 0;
    if (max_delete != 0 && excess > max_delete)
        excess = max_delete;
    rc = log_trim_front(&c, excess, &done);
    store_cursor_close(&c);
    if (deleted != NULL)
        *deleted = done;
    return rc ? obsdb_txn_fail(txn, rc) : OBS_OK;
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
    int rc = obsdb_write_check(txn);

    if (rc != 0)
        return rc;
    if (!origin_ok(origin) || elen > OBS_ID_MAX)
        return obsdb_txn_fail(txn, OBS_EINVAL);
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
