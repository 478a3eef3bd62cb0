/*
 * obsdb_outbox.c - the outbox table (obsdb.h): the local changes a node has
 * still to publish, written in the same transaction as the data
 * (transactional outbox), walked zero-copy for publishing, trimmed when the
 * hub acknowledges them, rewritten when they are re-stamped (a store
 * restored from a backup, a clock far ahead), and put back from the obs and
 * history tables for a hub that lost them. It does not decide what is a
 * local change: obsdb_obs.c hands each one over (obsdb_outbox_add) as it
 * stores it. Called by the node's replication (repl/node: publishing,
 * acknowledgements, re-stamping), from the loop thread.
 *
 * Layout: outbox  be64 origin_seq -> the change, codec_obs_encode'd (local
 * origin only); or, keyed by the first origin_seq, a chunk of a txn's
 * consecutive local changes (see "outbox chunks" below).
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "obs_err.h"
#include "obsdb.h"
#include "obsdb_int.h"
#include "store.h"

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
#define OUTBOX_CHUNK_BYTES ((size_t)256 * 1024)

static void chunk_seal(uint8_t *buf, uint64_t last, uint32_t n);

/* Writes the chunk being built, if any. Sticky on error. */
int
obsdb_outbox_flush(obsdb_txn_t *txn)
{
    if (txn->st.rc != 0)
        return txn->st.rc;
    if (txn->ob_n == 0)
        return OBS_OK;
    uint8_t key[8];
    chunk_seal(txn->ob_buf, txn->ob_last, txn->ob_n);
    store_be64_put(key, txn->ob_first);
    int rc = obsdb_counts_load(txn);
    if (rc == 0) /* its seqs are above the outbox's: a new key */
        rc = obsdb_try_append(txn, STORE_T_OUTBOX, key, sizeof(key),
                              txn->ob_buf, txn->ob_len);
    if (rc == OBS_EEXIST)
        rc = store_put(&txn->st, STORE_T_OUTBOX, key, sizeof(key), txn->ob_buf,
                       txn->ob_len);
    if (rc != 0)
        return obsdb_txn_fail(txn, rc);
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

/* ---------------------------------------------------------------- writes */

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
        return obsdb_txn_fail(txn, rc);
    if (!found || r.single) { /* new, or one change under its own key */
        store_be64_put(key, seq);
        return obsdb_put_counted(txn, STORE_T_OUTBOX, key, sizeof(key), val,
                                 vlen, CNT_OUTBOX);
    }
    size_t len, cap = (size_t)(r.end - r.p) + OUTBOX_CHUNK_HEAD + 20 + vlen;
    uint8_t *buf = chunk_new(cap, &len);
    if (buf == NULL)
        return obsdb_txn_fail(txn, OBS_ENOMEM);
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
    return rc ? obsdb_txn_fail(txn, rc) : OBS_OK;
}

/* Queues local change seq (its encoded bytes val) for the outbox: a chunk
 * goes on while the seqs are consecutive. */
int
obsdb_outbox_add(obsdb_txn_t *txn, uint64_t seq, const uint8_t *val,
                 size_t vlen)
{
    int rc = OBS_OK;
    if (!txn->ob_max_known) {
        rc = outbox_stored_last(txn, &txn->ob_max);
        if (rc != 0)
            return obsdb_txn_fail(txn, rc);
        txn->ob_max_known = true;
    }
    if (seq <= txn->ob_max) {
        rc = obsdb_outbox_flush(txn);
        return rc ? rc : outbox_put_again(txn, seq, val, vlen);
    }
    if (txn->ob_n > 0 &&
        (txn->ob_n == OUTBOX_CHUNK_N || seq != txn->ob_last + 1 ||
         txn->ob_len + vlen + 20 > OUTBOX_CHUNK_BYTES))
        rc = obsdb_outbox_flush(txn);
    if (rc != 0)
        return rc;
    size_t need = (txn->ob_n ? txn->ob_len : OUTBOX_CHUNK_HEAD) + 20 + vlen;
    if (need > txn->ob_cap) {
        size_t cap = txn->ob_cap ? txn->ob_cap * 2 : 4096; /* one put: small */
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(txn->ob_buf, cap);
        if (b == NULL)
            return obsdb_txn_fail(txn, OBS_ENOMEM);
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

/* ---------------------------------------------- walk and acknowledgement */

/* Puts c on the record holding after + 1 (*k, *v): it may be a chunk that
 * starts before it. OBS_ENOENT when no record holds anything after. */
static int
seek_after(store_cursor_t *c, uint64_t after, store_val_t *k, store_val_t *v)
{
    uint8_t from[8];
    store_be64_put(from, after + 1);
    int rc = store_cursor_seek(c, from, sizeof(from), k, v);
    if (rc == OBS_ENOENT ||
        (rc == 0 && k->len == 8 && store_be64_get(k->ptr) > after + 1)) {
        ob_rec_t r;
        int prc =
            rc == 0 ? store_cursor_prev(c, k, v) : store_cursor_last(c, k, v);
        if (prc == 0)
            prc = ob_rec_open(k, v, &r); /* damaged: OBS_ESTORE */
        if (prc == OBS_ENOENT || (prc == 0 && r.last <= after))
            rc = store_cursor_seek(c, from, sizeof(from), k, v);
        else
            rc = prc;
    }
    return rc;
}

int
obsdb_outbox_walk_raw(obsdb_txn_t *txn, uint64_t after, size_t max_entries,
                      size_t max_bytes, obsdb_log_cb cb, void *arg)
{
    store_cursor_t c;
    store_val_t k, v;
    budget_t b = {.max_entries = max_entries, .max_bytes = max_bytes};

    if (after == UINT64_MAX)
        return OBS_OK;
    int rc = txn->st.write ? obsdb_outbox_flush(txn) : OBS_OK;
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc != 0)
        return rc;
    rc = seek_after(&c, after, &k, &v);
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
    int rc = obsdb_outbox_flush(txn);

    if (rc == 0)
        rc = obsdb_counts_load(txn);
    if (rc == 0)
        rc = store_cursor_open(&txn->st, STORE_T_OUTBOX, &c);
    if (rc != 0)
        return obsdb_txn_fail(txn, rc);
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

int
obsdb_outbox_last(obsdb_txn_t *txn, uint64_t *last)
{
    *last = 0;
    int rc = txn->st.write ? obsdb_outbox_flush(txn) : OBS_OK;
    return rc ? rc : outbox_stored_last(txn, last);
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

/* --------------------------------------------------------------- rewrite */

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
        size_t cap = h->cap ? h->cap : (size_t)64 * 1024;
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
        rc = obsdb_version_replace(txn, &o, &old, enc, enc_len);
    if (rc == 0)
        rc = obsdb_outbox_add(txn, o.ver.origin_seq, enc, enc_len);
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
        return obsdb_txn_fail(txn, OBS_EINVAL);
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
        rc = obsdb_outbox_flush(txn);
    free(held.buf);
    txn->counts_dirty = true;
    if (n != NULL)
        *n = done;
    return rc == 0 ? OBS_OK : obsdb_txn_fail(txn, rc);
}

/* --------------------------------------------------------------- restore */

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
    rc = obsdb_put_counted(txn, STORE_T_OUTBOX, seq, sizeof(seq), val, v->len,
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
        return obsdb_txn_fail(txn, OBS_EINVAL);
    int rc = obsdb_outbox_flush(txn);
    if (rc == 0)
        rc = obsdb_counts_load(txn);
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
    return rc == 0 ? OBS_OK : obsdb_txn_fail(txn, rc);
}
