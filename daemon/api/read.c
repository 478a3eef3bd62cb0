/*
 * read.c - get, history and query requests, each in one short read transaction.
 */
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "log.h"
#include "mem.h"
#include "obs_err.h"
#include "period.h"

int
read_collect_cb(const obs_t *o, void *arg)
{
    collect_t *col = arg;
    if (col->period[0] && strcmp(o->time_period, col->period) != 0)
        return 0;
    if (col->n == col->cap) {
        size_t cap = col->cap ? col->cap * 2 : 64;
        obs_t *items = realloc(col->items, cap * sizeof(*items));
        if (items == NULL)
            return OBS_ENOMEM;
        col->items = items;
        col->cap = cap;
    }
    obs_init(&col->items[col->n]);
    int rc = obs_copy(&col->items[col->n], o);
    if (rc == OBS_OK)
        col->n++;
    return rc;
}

void
read_collect_fini(collect_t *col)
{
    for (size_t i = 0; i < col->n; i++)
        obs_fini(&col->items[i]);
    free(col->items);
}

/* The columns of every dataflow in a reply (or only one): the id arrays
 * point into the structure. */
typedef struct {
    msg_columns_t *cols;
    const char **ids; /* every column's dimension then attribute ids */
    size_t n;
} cols_t;

static void
cols_fill(const engine_t *self, const sdmx_dataflow_t *only, cols_t *c)
{
    size_t n = only ? 1 : structure_dataflow_count(self->st), n_ids = 0;
    for (size_t i = 0; i < n; i++) {
        const sdmx_dataflow_t *df =
            only ? only : structure_dataflow_at(self->st, i);
        n_ids += df->dsd->n_dims + df->dsd->n_attrs;
    }
    c->n = 0;
    c->cols = calloc(n ? n : 1, sizeof(*c->cols));
    c->ids = calloc(n_ids ? n_ids : 1, sizeof(*c->ids));
    if (c->cols == NULL || c->ids == NULL)
        return;
    const char **ids = c->ids;
    for (size_t i = 0; i < n; i++) {
        const sdmx_dataflow_t *df =
            only ? only : structure_dataflow_at(self->st, i);
        const sdmx_dsd_t *dsd = df->dsd;
        msg_columns_t *col = &c->cols[i];
        col->dataflow = df->urn;
        for (size_t d = 0; d < dsd->n_dims; d++)
            ids[d] = dsd->dims[d].id;
        col->dimension_ids = (msg_strs_t){ids, dsd->n_dims};
        ids += dsd->n_dims;
        for (size_t a = 0; a < dsd->n_attrs; a++)
            ids[a] = dsd->attrs[a].id;
        col->attribute_ids = (msg_strs_t){ids, dsd->n_attrs};
        ids += dsd->n_attrs;
    }
    c->n = n;
}

static void
reply_obs(engine_t *self, const ctl_peer_t *peer, collect_t *v,
          const sdmx_dataflow_t *only, const uint8_t *next, size_t next_len)
{
    cols_t c = {0};
    cols_fill(self, only, &c);
    msg_t m = {.type = MSG_OBS_REPLY};
    m.u.obs_reply = (msg_obs_reply_t){.obs = {v->items, v->n},
                                      .columns = c.cols,
                                      .n_columns = c.n,
                                      .next = {next, next_len}};
    api_reply(self, peer, &m);
    free(c.cols);
    free(c.ids);
}

void
read_on_get(engine_t *self, const ctl_peer_t *peer, const msg_key_ref_t *key,
            bool history)
{
    obs_t id;
    obs_init(&id);
    char why[256];
    const sdmx_dataflow_t *df = NULL;
    int rc = api_key_to_identity(self, key, &id, &df, why, sizeof(why));
    if (rc != OBS_OK) {
        obs_fini(&id);
        ctl_reply_error(self->ctl, peer, rc, "%s", why);
        return;
    }
    collect_t v = {.period = ""}; /* copied out of the read txn */
    obsdb_txn_t *txn = NULL;
    rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK && history) {
        rc = obsdb_history(txn, &id, read_collect_cb, &v);
    } else if (rc == OBS_OK) {
        obs_t cur;
        obs_init(&cur);
        rc = obsdb_get(txn, &id, &cur);
        if (rc == OBS_OK && cur.ver.tombstone)
            rc = OBS_ENOENT;
        if (rc == OBS_OK)
            rc = read_collect_cb(&cur, &v);
        obs_fini(&cur);
    }
    obsdb_abort(&txn);
    if (rc == OBS_OK && v.n == 0)
        rc = OBS_ENOENT;
    if (rc == OBS_OK)
        reply_obs(self, peer, &v, df, NULL, 0);
    else
        ctl_reply_error(self->ctl, peer, rc, "%s %s %s: %s", key->dataflow,
                        key->series_key, key->time_period,
                        rc == OBS_ENOENT ? "no such observation"
                                         : obs_strerror(rc));
    read_collect_fini(&v);
    obs_fini(&id);
}

static int
query_bounds(const msg_query_t *r, obsdb_scan_t *q, char *why, size_t cap)
{
    period_t p;
    q->start_day = INT32_MIN;
    q->end_day = INT32_MAX;
    if (r->start_period[0]) {
        if (period_parse(r->start_period, 0, 9999, &p, why, cap) != OBS_OK)
            return OBS_EINVAL;
        q->start_day = p.start_day;
    }
    if (r->end_period[0]) {
        if (period_parse(r->end_period, 0, 9999, &p, why, cap) != OBS_OK)
            return OBS_EINVAL;
        q->end_day = p.end_day;
    }
    return OBS_OK;
}

void
read_on_query(engine_t *self, const ctl_peer_t *peer, const msg_query_t *r)
{
    obsdb_scan_t q = {0};
    char why[256];
    const sdmx_dataflow_t *df = NULL;
    if (r->dataflow[0]) {
        df = structure_find_dataflow(self->st, r->dataflow);
        if (df == NULL) {
            ctl_reply_error(self->ctl, peer, OBS_ENOENT,
                            "unknown dataflow '%.100s'", r->dataflow);
            return;
        }
        q.dataflow = df->urn;
        q.total_dims = df->dsd->n_dims;
    }
    obs_pattern_t pat;
    memset(&pat, 0, sizeof(pat));
    if (obs_pattern_parse(r->key_pattern, &pat) != OBS_OK ||
        (df && pat.n && pat.n != df->dsd->n_dims)) {
        obs_pattern_fini(&pat);
        ctl_reply_error(self->ctl, peer, OBS_EINVAL,
                        "key pattern '%.100s' must have %zu positions",
                        r->key_pattern, df ? df->dsd->n_dims : 0);
        return;
    }
    if (query_bounds(r, &q, why, sizeof(why)) != OBS_OK) {
        obs_pattern_fini(&pat);
        ctl_reply_error(self->ctl, peer, OBS_EINVAL, "%s", why);
        return;
    }
    q.pattern = pat.n ? &pat : NULL;
    q.updated_after_ms = r->updated_after_ms;
    q.as_of_ms = r->as_of_ms;
    q.include_deleted = r->include_deleted;
    q.resume_after = r->resume_after.len ? r->resume_after.ptr : NULL;
    q.resume_len = r->resume_after.len;
    q.limit = r->limit ? r->limit : QUERY_PAGE_DEFAULT;
    if (q.limit > QUERY_PAGE_MAX)
        q.limit = QUERY_PAGE_MAX;
    collect_t v = {.period = ""}; /* copied out of the read txn */
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_scan(txn, &q, read_collect_cb, &v, last, &last_len, &more);
    obsdb_abort(&txn);
    if (rc == OBS_OK)
        reply_obs(self, peer, &v, df, more ? last : NULL, more ? last_len : 0);
    else
        ctl_reply_error(self->ctl, peer, rc, "query failed: %s",
                        obs_strerror(rc));
    read_collect_fini(&v);
    obs_pattern_fini(&pat);
}
