/*
 * obsdb_scan.c - the obs and history tables, read (obsdb.h): a key's
 * versions newest first (obsdb_history), the filtered scans of the local
 * API, of current versions or of those current at a given time
 * (obsdb_scan), and the zero-copy walk of the current versions that a hub's
 * snapshot streams (obsdb_state_walk_raw). It writes nothing; the tables'
 * layouts and the history key helpers are obsdb_obs.c's. Called by the local
 * API's reads and the hub's replication, from the loop thread, in read or
 * write transactions.
 */
#include <string.h>

#include "codec.h"
#include "hlc.h"
#include "obs_err.h"
#include "obsdb.h"
#include "obsdb_int.h"
#include "period.h"
#include "store.h"
#include "version.h"

/* --------------------------------------------------------------- history */

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
    int rc = obsdb_hist_seek_newest(c, key, klen, UINT64_MAX, &k, &v);
    while (rc == 0) {
        rc = codec_obs_decode(v.ptr, v.len, obs);
        int order = cur && rc == 0 ? version_cmp(&cur->ver, &obs->ver) : -1;
        if (rc == 0 && !cur_done && order >= 0) {
            cur_done = true;
            rc = cb(cur, arg);
        }
        if (rc == 0 && order != 0)
            rc = cb(obs, arg);
        if (rc == 0)
            rc = obsdb_hist_settle(c, key, klen, &k, &v,
                                   store_cursor_prev(c, &k, &v));
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
        rc =
            obsdb_hist_seek_newest(&s->hist, k->ptr, k->len, max_hlc, &hk, &hv);
        bool cur_ok = s->obs.ver.hlc <= max_hlc;
        if (rc == OBS_ENOENT)
            return cur_ok ? scan_emit(s, k) : OBS_OK; /* not written then */
        if (rc != 0)
            return rc;
        obs_version_t hver;
        rc = codec_obs_decode_version(hv.ptr, hv.len, &hver);
        if (rc == 0 && (!cur_ok || version_cmp(&hver, &s->obs.ver) > 0))
            rc = codec_obs_decode(hv.ptr, hv.len, &s->obs);
    }
    if (rc != 0)
        return rc;
    return scan_emit(s, k);
}

/* Seeks to the prefix, or past resume_after when that lies beyond it. */
static int
scan_start(scan_t *s, store_cursor_t *c, store_val_t *k, store_val_t *v)
{
    const obsdb_scan_t *q = s->q;

    if (q->resume_after == NULL || q->resume_len == 0 ||
        key_cmp(q->resume_after, q->resume_len, s->prefix, s->plen) < 0)
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
    scan_t s = {
        .q = q,
        .cb = cb,
        .arg = arg,
        .last_len = last_len,
        .more = more,
    };
    s.last_key = last_key; /* written (an initialiser hides it from tidy) */
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

/* -------------------------------------------------------- raw state walk */

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
                    .last_len = last_len,
                    .more = more};
    w.last_key = last_key; /* written (an initialiser hides it from tidy) */
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
