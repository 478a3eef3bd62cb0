/*
 * obsdb_obs.c - the obs and history tables, written (obsdb.h): every write of
 * an observation's versions, local (obsdb_put*) or replicated
 * (obsdb_put_replicated*), with the version it replaces moving to history
 * and the counters kept right; and a re-stamped version put back where the
 * old one was, for an outbox rewrite. Which of two versions is current is
 * version_cmp's rule (model/version.h); a local change also goes to the
 * outbox (obsdb_outbox.c) in the same transaction. The reads (a key's
 * history, scans, the raw state walk) are obsdb_scan.c's, over the history
 * key helpers defined here. Called through obsdb.h by the local API and the
 * replication engines, from the loop thread.
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
 * A canonical key may be at most OBS_KEY_MAX - 8 bytes so its history key
 * fits LMDB's key limit; obsdb_put returns OBS_ETOOBIG beyond that. History
 * keys carry the origin so that two versions of one key with the same HLC
 * from two origins are two entries (hist_key_make); a key too long for that
 * suffix, and every entry of a store written before it, has the short form
 * canonical key | be64 hlc, which readers take too (hist_is_entry).
 */
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "obs_err.h"
#include "obsdb.h"
#include "obsdb_int.h"
#include "store.h"
#include "version.h"

/* ---------------------------------------------------------- history keys */

/* History key suffix: be64 hlc | origin | 0x00 | origin length. The 0x00
 * makes byte order (hlc, origin) order, as version_cmp (model/version.h);
 * the length byte at the end tells where the canonical key ends. */
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

/* From the cursor's entry (rc from the last move), steps back to the first
 * history entry of exactly key. Longer keys that start with key sort inside
 * key's range, so their entries are skipped, not taken as the end. */
int
obsdb_hist_settle(store_cursor_t *c, const uint8_t *key, size_t klen,
                  store_val_t *k, store_val_t *v, int rc)
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
int
obsdb_hist_seek_newest(store_cursor_t *c, const uint8_t *key, size_t klen,
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
    return obsdb_hist_settle(c, key, klen, k, v, rc);
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

/* ------------------------------------------------------ current versions */

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
        rc = obsdb_try_append(txn, STORE_T_OBS, key, klen, val, vlen);
    if (rc == OBS_EEXIST || (rc == 0 && !is_new))
        rc = store_put(&txn->st, STORE_T_OBS, key, klen, val, vlen);
    if (rc == 0)
        obs_wrote(txn, key, klen);
    if (rc == 0 && outbox && strcmp(ver->origin, txn->db->node_id) == 0)
        rc = obsdb_outbox_add(txn, ver->origin_seq, val, vlen);
    return rc;
}

/* ------------------------------------------------------------ local puts */

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
    int rc = obsdb_counts_load(txn);
    if (rc == 0)
        rc = body ? codec_obs_encode_with_body(body, body_len, ver, 0, &val,
                                               &vlen)
                  : codec_obs_encode(obs, &val, &vlen);
    if (rc == 0)
        rc = put_encoded(txn, ver, key, klen, val, vlen, !txn->db->no_outbox,
                         known_new);
    free(val);
    txn->counts_dirty = true;
    return rc ? obsdb_txn_fail(txn, rc) : OBS_OK;
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
        return obsdb_txn_fail(txn, OBS_EINVAL);
    int klen = obs_key_encode(obs, key, PUT_KEY_MAX);
    if (klen < 0)
        return obsdb_txn_fail(txn, klen);
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
        return obsdb_txn_fail(txn, OBS_EINVAL);
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

/* ------------------------------------------------------- replicated puts */

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
    int order = rc == 0 ? version_cmp(ver, &cur) : 0;
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
    int rc = obsdb_counts_load(txn);
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
    return rc ? obsdb_txn_fail(txn, rc) : OBS_OK;
}

/* obsdb_put_replicated of obs encoded as enc (stored as given). */
static int
put_replicated_encoded(obsdb_txn_t *txn, const obs_t *obs, const uint8_t *enc,
                       size_t enc_len, bool *applied)
{
    uint8_t key[HIST_KEY_MAX];

    *applied = false;
    int rc = obsdb_write_check(txn);
    if (rc != 0)
        return rc;
    int klen = obs_key_encode(obs, key, PUT_KEY_MAX);
    if (klen < 0)
        return obsdb_txn_fail(txn, klen);
    return put_replicated(txn, &obs->ver, key, (size_t)klen, enc, enc_len,
                          applied);
}

int
obsdb_put_replicated(obsdb_txn_t *txn, const obs_t *obs, bool *applied)
{
    uint8_t *val = NULL;
    size_t vlen = 0;

    *applied = false;
    int rc = obsdb_write_check(txn);
    if (rc == 0)
        rc = codec_obs_encode(obs, &val, &vlen);
    if (rc == 0)
        rc = put_replicated_encoded(txn, obs, val, vlen, applied);
    free(val);
    return rc ? obsdb_txn_fail(txn, rc) : OBS_OK;
}

int
obsdb_put_replicated_raw(obsdb_txn_t *txn, const uint8_t *key, size_t klen,
                         const uint8_t *enc, size_t enc_len,
                         const obs_version_t *ver, bool *applied)
{
    uint8_t hkey[HIST_KEY_MAX];

    *applied = false;
    int rc = obsdb_write_check(txn);
    if (rc != 0)
        return rc;
    if (!obsdb_key_len_fits(klen))
        return obsdb_txn_fail(txn, OBS_EINVAL);
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

/* --------------------------------------------------- re-stamped versions */

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
    rc = obsdb_hist_seek_newest(&c, key, klen, UINT64_MAX, &k, &v);
    if (rc == 0)
        rc = codec_obs_decode_version(v.ptr, v.len, &newest);
    while (rc == 0 && same_version(&newest, old)) {
        rc = store_cursor_del(&c);
        if (rc == 0)
            rc = obsdb_hist_seek_newest(&c, key, klen, UINT64_MAX, &k, &v);
        if (rc == 0)
            rc = codec_obs_decode_version(v.ptr, v.len, &newest);
    }
    if (rc != 0 || version_cmp(&newest, &o->ver) <= 0) {
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
int
obsdb_version_replace(obsdb_txn_t *txn, const obs_t *o,
                      const obs_version_t *old, const uint8_t *enc,
                      size_t enc_len)
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
    if (have_cur && version_cmp(&o->ver, &cur) > 0) {
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
