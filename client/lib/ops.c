/*
 * ops.c - libobsync's requests other than import: status and reload, put,
 * delete, get, history, query with paging, export and structure. Each builds
 * one request msg_t, calls cl_call (client.c) and turns the reply into the
 * public types of obsync.h. It does no I/O itself except obsync_export
 * writing to the caller's FILE* through export.c.
 */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "obs_err.h"

typedef msg_obs_reply_t page_t;

/* ---------------------------------------------------------------- status */

static char *
dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

static void
free_refused(obsync_refusal_t *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].reason);
    free(r);
}

void
obsync_status_free(obsync_status_t **stp)
{
    if (stp == NULL || *stp == NULL)
        return;
    obsync_status_t *st = *stp;
    free(st->node_id);
    free(st->role);
    free(st->epoch);
    free(st->provider);
    for (size_t i = 0; i < st->n_dataflows; i++)
        free(st->dataflows[i]);
    free(st->dataflows);
    free(st->hub_endpoint);
    free(st->repl_state);
    free(st->link);
    free(st->security);
    free(st->public_key);
    free(st->hub_key);
    free(st->reload);
    free_refused(st->refused, st->n_refused);
    for (size_t i = 0; i < st->n_peers; i++) {
        free(st->peers[i].node_id);
        free(st->peers[i].address);
        free(st->peers[i].state);
        free(st->peers[i].link);
        free(st->peers[i].key);
        free_refused(st->peers[i].refused, st->peers[i].n_refused);
    }
    free(st->peers);
    free(st);
    *stp = NULL;
}

/* Pairs the parallel arrays refused_reasons / refused_counts into *out
 * (*n counted as they are copied, so a partial array frees all the same).
 * A daemon that sent arrays of different lengths is taken at the shorter. */
static int
copy_refused(const msg_strs_t *reasons, const msg_u64s_t *counts,
             obsync_refusal_t **out, size_t *n)
{
    size_t len = reasons->n < counts->n ? reasons->n : counts->n;
    if (len == 0)
        return OBSYNC_OK;
    if ((*out = calloc(len, sizeof(**out))) == NULL)
        return OBSYNC_ENOMEM;
    for (size_t i = 0; i < len; i++) {
        (*n)++;
        (*out)[i].count = counts->items[i];
        if (((*out)[i].reason = dup_or_empty(reasons->items[i])) == NULL)
            return OBSYNC_ENOMEM;
    }
    return OBSYNC_OK;
}

/* Copies one PeerStatus into a zeroed row. On ENOMEM some strings may be
 * NULL; obsync_status_free frees the row all the same. */
static int
copy_peer(const msg_peer_status_t *r, obsync_peer_status_t *p)
{
    p->node_id = dup_or_empty(r->node_id);
    p->address = dup_or_empty(r->address);
    p->state = dup_or_empty(r->state);
    p->link = dup_or_empty(r->link);
    p->up = r->up;
    p->last_seen_ms = r->last_seen_ms;
    p->cursor = r->cursor;
    p->lag_changes = r->lag_changes;
    p->lag_ms = r->lag_ms;
    p->accepted = r->accepted;
    p->rejected = r->rejected;
    p->conflicts = r->conflicts;
    p->duplicates = r->duplicates;
    p->bytes_in = r->bytes_in;
    p->bytes_out = r->bytes_out;
    p->last_origin_seq = r->last_origin_seq;
    p->clock_refused = r->clock_refused;
    p->rate_out_bps = r->rate_out_bps;
    p->rate_in_bps = r->rate_in_bps;
    p->reconnects = r->reconnects;
    p->key = dup_or_empty(r->key);
    if (!p->node_id || !p->address || !p->state || !p->link || !p->key)
        return OBSYNC_ENOMEM;
    return copy_refused(&r->refused_reasons, &r->refused_counts, &p->refused,
                        &p->n_refused);
}

static int
copy_security(const msg_status_reply_t *r, obsync_status_t *st)
{
    st->security = dup_or_empty(r->security);
    st->public_key = dup_or_empty(r->public_key);
    st->hub_key = dup_or_empty(r->hub_key);
    st->reload = dup_or_empty(r->reload);
    st->allowed_keys = r->allowed_keys;
    st->connections = r->connections;
    st->pending_hello = r->pending_hello;
    st->handshake_failures = r->handshake_failures;
    st->backoffs = r->backoffs;
    if (!st->security || !st->public_key || !st->hub_key || !st->reload)
        return OBSYNC_ENOMEM;
    return copy_refused(&r->refused_reasons, &r->refused_counts, &st->refused,
                        &st->n_refused);
}

static int
copy_repl(const msg_status_reply_t *r, obsync_status_t *st)
{
    st->hub_endpoint = dup_or_empty(r->hub_endpoint);
    st->repl_state = dup_or_empty(r->repl_state);
    st->lag_changes = r->lag_changes;
    st->lag_ms = r->lag_ms;
    st->log_first = r->log_first;
    st->log_last = r->log_last;
    st->state_applied = r->state_applied;
    st->batches_shared = r->batches_shared;
    st->clock_known = r->clock_known;
    st->clock_skew_ms = r->clock_skew_ms;
    st->restamped = r->restamped;
    st->renumbered = r->renumbered;
    st->pending_rejects = r->pending_rejects;
    st->link = dup_or_empty(r->link);
    st->rate_in_bps = r->rate_in_bps;
    st->rate_out_bps = r->rate_out_bps;
    st->reconnects = r->reconnects;
    st->apply_rate = r->apply_rate;
    st->eta_s = r->eta_s;
    st->outbox_acked = r->outbox_acked;
    st->snapshots = r->snapshots;
    if (st->hub_endpoint == NULL || st->repl_state == NULL || st->link == NULL)
        return OBSYNC_ENOMEM;
    if (copy_security(r, st) != OBSYNC_OK)
        return OBSYNC_ENOMEM;
    if (r->n_peers == 0)
        return OBSYNC_OK;
    st->peers = calloc(r->n_peers, sizeof(*st->peers));
    if (st->peers == NULL)
        return OBSYNC_ENOMEM;
    for (size_t i = 0; i < r->n_peers; i++) {
        st->n_peers++; /* counted first: free handles NULL strings */
        if (copy_peer(&r->peers[i], &st->peers[i]) != OBSYNC_OK)
            return OBSYNC_ENOMEM;
    }
    return OBSYNC_OK;
}

static int
copy_status(const msg_status_reply_t *r, obsync_status_t *st)
{
    st->node_id = dup_or_empty(r->node_id);
    st->role = dup_or_empty(r->role);
    st->epoch = dup_or_empty(r->epoch);
    st->provider = dup_or_empty(r->provider);
    st->observations = r->observations;
    st->tombstones = r->tombstones;
    st->history_versions = r->history_versions;
    st->outbox_depth = r->outbox_depth;
    st->last_origin_seq = r->last_origin_seq;
    st->hlc = r->hlc;
    st->map_size = r->map_size;
    st->map_used = r->map_used;
    st->uptime_s = r->uptime_s;
    st->commits = r->commits;
    st->writes_grouped = r->writes_grouped;
    st->hub_cursor = r->hub_cursor;
    if (!st->node_id || !st->role || !st->epoch || !st->provider)
        return OBSYNC_ENOMEM;
    st->dataflows = calloc(r->dataflows.n + 1, sizeof(char *));
    if (st->dataflows == NULL)
        return OBSYNC_ENOMEM;
    for (size_t i = 0; i < r->dataflows.n; i++) {
        if ((st->dataflows[i] = dup_or_empty(r->dataflows.items[i])) == NULL)
            return OBSYNC_ENOMEM;
        st->n_dataflows++;
    }
    return copy_repl(r, st);
}

/* One StatusRequest (reload: re-read the allow-list first) and its reply
 * as an obsync_status_t. */
static int
status_call(obsync_client_t *c, bool reload, obsync_status_t **out)
{
    if (c == NULL || out == NULL)
        return OBSYNC_EINVAL;
    *out = NULL;
    msg_t req = {.type = MSG_STATUS, .u.status.reload = reload}, *rep = NULL;
    int rc = cl_call_expect(c, &req, MSG_STATUS_REPLY, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    obsync_status_t *st = calloc(1, sizeof(*st));
    rc = st ? copy_status(&rep->u.status_reply, st) : OBSYNC_ENOMEM;
    msg_destroy(&rep);
    if (rc != OBSYNC_OK) {
        obsync_status_free(&st);
        (void)cl_fail(c, rc, "out of memory");
        return rc;
    }
    *out = st;
    return OBSYNC_OK;
}

int
obsync_status(obsync_client_t *c, obsync_status_t **out)
{
    return status_call(c, false, out);
}

int
obsync_reload(obsync_client_t *c, obsync_status_t **out)
{
    int rc = status_call(c, true, out);
    if (rc != OBSYNC_OK)
        return rc;
    if ((*out)->reload[0] == '\0') {
        obsync_status_free(out);
        return cl_fail(c, OBSYNC_EPROTO,
                       "the daemon ignored the reload request (an obsyncd "
                       "older than `obsync reload`?)");
    }
    return OBSYNC_OK;
}

/* ---------------------------------------------------------------- put */

/* Request-side storage of one observation for PutRequest: an obs_t over
 * the caller's strings (the encoder only reads them). */
typedef struct {
    obs_t obs;
    char *key_copy; /* series_key split at '.' */
} put_obs_t;

static int
split_key(put_obs_t *p, const char *key)
{
    size_t n = 1;
    for (const char *s = key; *s; s++)
        n += *s == '.';
    p->key_copy = strdup(key);
    p->obs.dims = calloc(n, sizeof(char *));
    if (p->key_copy == NULL || p->obs.dims == NULL)
        return OBSYNC_ENOMEM;
    char *s = p->key_copy;
    for (size_t i = 0; i < n; i++) {
        p->obs.dims[i] = s;
        char *dot = strchr(s, '.');
        if (dot != NULL) {
            *dot = '\0';
            s = dot + 1;
        }
    }
    p->obs.n_dims = n;
    return OBSYNC_OK;
}

static int
build_put_obs(put_obs_t *p, const obsync_obs_t *o)
{
    if (o->dataflow == NULL || o->time_period == NULL ||
        (o->n_dims == 0 && o->series_key == NULL))
        return OBSYNC_EINVAL;
    p->obs.dataflow = cl_unconst(o->dataflow);
    p->obs.time_period = cl_unconst(o->time_period);
    p->obs.value = cl_unconst(o->value);
    int rc = OBSYNC_OK;
    if (o->n_dims > 0) {
        p->obs.dims = calloc(o->n_dims, sizeof(char *));
        if (p->obs.dims == NULL)
            return OBSYNC_ENOMEM;
        for (size_t i = 0; i < o->n_dims; i++)
            p->obs.dims[i] = cl_unconst(o->dims[i]);
        p->obs.n_dims = o->n_dims;
    } else {
        rc = split_key(p, o->series_key);
    }
    /* as given: the daemon sorts them (obs_set_attr) */
    p->obs.attrs = calloc(o->n_attrs + 1, sizeof(*p->obs.attrs));
    if (rc != OBSYNC_OK || p->obs.attrs == NULL)
        return OBSYNC_ENOMEM;
    for (size_t i = 0; i < o->n_attrs; i++) {
        p->obs.attrs[i].id = cl_unconst(o->attrs[i].id);
        p->obs.attrs[i].value = cl_unconst(o->attrs[i].value);
    }
    p->obs.n_attrs = o->n_attrs;
    return OBSYNC_OK;
}

static void
free_put_obs(put_obs_t *p, size_t n)
{
    for (size_t i = 0; p != NULL && i < n; i++) {
        free(p[i].obs.attrs);
        free(p[i].obs.dims);
        free(p[i].key_copy);
    }
    free(p);
}

#define STR_(x) #x
#define STR(x)  STR_(x)

/* The first of obs.h's limits o is over, or NULL. */
static const char *
put_over_limit(const obs_t *o)
{
    if (o->n_dims > OBS_MAX_DIMS)
        return "more than " STR(OBS_MAX_DIMS) " dimensions";
    if (o->n_attrs > OBS_MAX_ATTRS)
        return "more than " STR(OBS_MAX_ATTRS) " attributes";
    if (strlen(o->dataflow) > OBS_DATAFLOW_MAX)
        return "dataflow over " STR(OBS_DATAFLOW_MAX) " bytes";
    if (strlen(o->time_period) > OBS_PERIOD_MAX)
        return "TIME_PERIOD over " STR(OBS_PERIOD_MAX) " bytes";
    if (strlen(o->value) > OBS_VALUE_MAX)
        return "OBS_VALUE over " STR(OBS_VALUE_MAX) " bytes";
    for (size_t i = 0; i < o->n_dims; i++)
        if (strlen(o->dims[i]) > OBS_CODE_MAX)
            return "a dimension code over " STR(OBS_CODE_MAX) " bytes";
    for (size_t i = 0; i < o->n_attrs; i++) {
        if (strlen(o->attrs[i].id) > OBS_CODE_MAX)
            return "an attribute id over " STR(OBS_CODE_MAX) " bytes";
        if (strlen(o->attrs[i].value) > OBS_TEXT_MAX)
            return "an attribute value over " STR(OBS_TEXT_MAX) " bytes";
    }
    return NULL;
}

/* What no daemon decodes (msg.h: obs.h's limits, an attribute without an
 * id), named, or NULL. Checked here so the caller learns which observation
 * and why; when refused, *rc is OBSYNC_ETOOBIG for a size, else
 * OBSYNC_EINVAL. */
static const char *
put_refusal(const obs_t *o, int *rc)
{
    const char *why = put_over_limit(o);
    if (why != NULL) {
        *rc = OBSYNC_ETOOBIG;
        return why;
    }
    for (size_t i = 0; i < o->n_attrs; i++) {
        if (o->attrs[i].id[0] == '\0') {
            *rc = OBSYNC_EINVAL;
            return "an attribute without an id";
        }
    }
    return NULL;
}

static int
put_send(obsync_client_t *c, msg_t *req, const obsync_put_opts_t *opts,
         obsync_summary_t *sum)
{
    msg_t *rep = NULL;
    int rc = cl_call_expect(c, req, MSG_WRITE_SUMMARY, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    cl_summary_from_msg(&rep->u.write_summary, sum,
                        opts ? opts->on_issue : NULL, opts ? opts->arg : NULL);
    msg_destroy(&rep);
    return OBSYNC_OK;
}

int
obsync_put(obsync_client_t *c, const obsync_obs_t *obs, size_t n,
           const obsync_put_opts_t *opts, obsync_summary_t *sum)
{
    if (c == NULL || obs == NULL || n == 0)
        return OBSYNC_EINVAL;
    put_obs_t *p = calloc(n, sizeof(*p));
    obs_t *items = calloc(n, sizeof(*items));
    int rc = p && items ? OBSYNC_OK : OBSYNC_ENOMEM;
    for (size_t i = 0; i < n && rc == OBSYNC_OK; i++) {
        rc = build_put_obs(&p[i], &obs[i]);
        items[i] = p[i].obs;
        const char *why = rc == OBSYNC_OK ? put_refusal(&p[i].obs, &rc) : NULL;
        if (why != NULL)
            cl_fail(c, rc, "observation %zu: %s", i + 1, why);
        else if (rc == OBSYNC_EINVAL)
            cl_fail(c, rc, "observation %zu: dataflow, key and period needed",
                    i + 1);
    }
    if (rc == OBSYNC_OK) {
        msg_t req = {.type = MSG_PUT};
        req.u.put.obs = (msg_obs_list_t){items, n};
        req.u.put.action = opts && opts->action == OBSYNC_REPLACE
                               ? OBS_ACTION_REPLACE
                               : OBS_ACTION_MERGE;
        req.u.put.strict = opts && opts->strict;
        req.u.put.dry_run = opts && opts->dry_run;
        rc = put_send(c, &req, opts, sum);
    } else if (rc == OBSYNC_ENOMEM) {
        cl_fail(c, rc, "out of memory");
    }
    free_put_obs(p, n);
    free(items);
    return rc;
}

static msg_key_ref_t
keyref(const char *df, const char *key, const char *period)
{
    return (msg_key_ref_t){df, key, period};
}

int
obsync_delete(obsync_client_t *c, const char *dataflow, const char *key,
              const char *period, bool dry_run, obsync_summary_t *sum)
{
    if (c == NULL || !dataflow || !key || !period)
        return OBSYNC_EINVAL;
    msg_t req = {.type = MSG_DELETE}, *rep = NULL;
    req.u.del = (msg_delete_t){keyref(dataflow, key, period), dry_run};
    int rc = cl_call_expect(c, &req, MSG_WRITE_SUMMARY, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    cl_summary_from_msg(&rep->u.write_summary, sum, NULL, NULL);
    msg_destroy(&rep);
    return OBSYNC_OK;
}

/* ---------------------------------------------------------------- reads */

/* Scratch for turning decoded observations into obsync_obs_t. */
typedef struct {
    obsync_attr_t *attrs;
    size_t attrs_cap;
    char *key;
    size_t key_cap;
} conv_t;

static void
conv_fini(conv_t *cv)
{
    free(cv->attrs);
    free(cv->key);
}

static const msg_columns_t *
page_columns(const page_t *page, const obs_t *o)
{
    for (size_t i = 0; page != NULL && i < page->n_columns; i++) {
        const msg_columns_t *dc = &page->columns[i];
        if (strcmp(dc->dataflow, o->dataflow) == 0 &&
            dc->dimension_ids.n == o->n_dims)
            return dc;
    }
    return NULL;
}

static int
conv_key(conv_t *cv, const obs_t *o)
{
    size_t len = 1;
    for (size_t i = 0; i < o->n_dims; i++)
        len += strlen(o->dims[i]) + 1;
    if (len > cv->key_cap) {
        char *k = realloc(cv->key, len);
        if (k == NULL)
            return OBSYNC_ENOMEM;
        cv->key = k;
        cv->key_cap = len;
    }
    if (cv->key == NULL) /* only if len wrapped around to 0 */
        return OBSYNC_ENOMEM;
    size_t at = 0;
    cv->key[0] = '\0';
    for (size_t i = 0; i < o->n_dims; i++)
        at += (size_t)snprintf(cv->key + at, len - at, "%s%s", i ? "." : "",
                               o->dims[i]);
    return OBSYNC_OK;
}

/* An observation sent without a version decodes with an all-zero one:
 * origin, provider and batch_id "" as before. */
static void
conv_version(const obs_version_t *v, obsync_obs_t *out)
{
    out->hlc = v->hlc;
    out->time_ms = v->hlc >> 16;
    out->origin = v->origin;
    out->origin_seq = v->origin_seq;
    out->provider = v->provider;
    out->action = (obsync_action_t)v->action;
    out->tombstone = v->tombstone;
    out->batch_id = v->batch_id;
    out->hub_seq = v->hub_seq;
}

static int
conv_obs(conv_t *cv, const obs_t *o, const page_t *page, obsync_obs_t *out)
{
    memset(out, 0, sizeof(*out));
    if (o->n_attrs > cv->attrs_cap) {
        obsync_attr_t *a = realloc(cv->attrs, o->n_attrs * sizeof(*a));
        if (a == NULL)
            return OBSYNC_ENOMEM;
        cv->attrs = a;
        cv->attrs_cap = o->n_attrs;
    }
    for (size_t i = 0; i < o->n_attrs; i++) {
        cv->attrs[i].id = o->attrs[i].id;
        cv->attrs[i].value = o->attrs[i].value;
    }
    int rc = conv_key(cv, o);
    if (rc != OBSYNC_OK)
        return rc;
    const msg_columns_t *dc = page_columns(page, o);
    out->dataflow = o->dataflow;
    out->series_key = cv->key;
    out->n_dims = o->n_dims;
    out->dims = (const char *const *)o->dims;
    out->dim_ids = dc ? dc->dimension_ids.items : NULL;
    out->time_period = o->time_period;
    out->value = o->value;
    out->n_attrs = o->n_attrs;
    out->attrs = cv->attrs;
    conv_version(&o->ver, out);
    return OBSYNC_OK;
}

typedef struct {
    obsync_obs_t pub; /* first: obsync_obs_free casts back */
    msg_t *msg;       /* owned: the strings pub points into */
    conv_t cv;
} held_obs_t;

void
obsync_obs_free(obsync_obs_t **obs)
{
    if (obs == NULL || *obs == NULL)
        return;
    held_obs_t *h = (held_obs_t *)*obs;
    msg_destroy(&h->msg);
    conv_fini(&h->cv);
    free(h);
    *obs = NULL;
}

/* A GetRequest or HistoryRequest (type); OBSYNC_ENOENT when the reply has
 * no observation. */
static int
key_request(obsync_client_t *c, msg_type_t type, const msg_key_ref_t *k,
            msg_t **rep)
{
    msg_t req = {.type = type};
    if (type == MSG_GET)
        req.u.get.key = *k;
    else
        req.u.history.key = *k;
    int rc = cl_call_expect(c, &req, MSG_OBS_REPLY, rep);
    if (rc == OBSYNC_OK && (*rep)->u.obs_reply.obs.n == 0) {
        msg_destroy(rep);
        rc = cl_fail(c, OBSYNC_ENOENT, "no observation %s %s %s", k->dataflow,
                     k->series_key, k->time_period);
    } else if (rc == OBSYNC_ENOENT) {
        cl_fail(c, rc, "no observation %s %s %s", k->dataflow, k->series_key,
                k->time_period);
    }
    return rc;
}

int
obsync_get(obsync_client_t *c, const char *dataflow, const char *key,
           const char *period, obsync_obs_t **out)
{
    if (c == NULL || out == NULL || !dataflow || !key || !period)
        return OBSYNC_EINVAL;
    *out = NULL;
    msg_key_ref_t k = keyref(dataflow, key, period);
    msg_t *rep = NULL;
    int rc = key_request(c, MSG_GET, &k, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    held_obs_t *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        msg_destroy(&rep);
        return cl_fail(c, OBSYNC_ENOMEM, "out of memory");
    }
    h->msg = rep;
    const page_t *page = &rep->u.obs_reply;
    rc = conv_obs(&h->cv, &page->obs.items[0], page, &h->pub);
    if (rc != OBSYNC_OK) {
        obsync_obs_t *p = &h->pub;
        obsync_obs_free(&p);
        return cl_fail(c, rc, "out of memory");
    }
    *out = &h->pub;
    return OBSYNC_OK;
}

/* Calls cb for each observation of a page; *count counts them. */
static int
page_each(obsync_client_t *c, const page_t *page, uint64_t max, uint64_t *count,
          obsync_obs_cb cb, void *arg)
{
    conv_t cv = {0};
    int rc = OBSYNC_OK;
    for (size_t i = 0; i < page->obs.n && rc == OBSYNC_OK; i++) {
        if (max && *count >= max)
            break;
        obsync_obs_t o;
        rc = conv_obs(&cv, &page->obs.items[i], page, &o);
        if (rc == OBSYNC_ENOMEM)
            cl_fail(c, rc, "out of memory");
        else
            rc = cb(arg, &o);
        (*count)++;
    }
    conv_fini(&cv);
    return rc;
}

int
obsync_history(obsync_client_t *c, const char *dataflow, const char *key,
               const char *period, obsync_obs_cb cb, void *arg)
{
    if (c == NULL || cb == NULL || !dataflow || !key || !period)
        return OBSYNC_EINVAL;
    msg_key_ref_t k = keyref(dataflow, key, period);
    msg_t *rep = NULL;
    int rc = key_request(c, MSG_HISTORY, &k, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    uint64_t count = 0;
    rc = page_each(c, &rep->u.obs_reply, 0, &count, cb, arg);
    msg_destroy(&rep);
    return rc;
}

/* ---------------------------------------------------------------- query */

/* Called once per page with the page's column lists, before its rows. */
typedef int (*columns_cb)(void *arg, const obsync_columns_t *cols, size_t n);

static int
page_columns_cb(const page_t *page, columns_cb ccb, void *arg)
{
    if (ccb == NULL)
        return OBSYNC_OK;
    obsync_columns_t *cols = calloc(page->n_columns + 1, sizeof(*cols));
    if (cols == NULL)
        return OBSYNC_ENOMEM;
    for (size_t i = 0; i < page->n_columns; i++) {
        const msg_columns_t *dc = &page->columns[i];
        cols[i].dataflow = dc->dataflow;
        cols[i].n_dim_ids = dc->dimension_ids.n;
        cols[i].dim_ids = dc->dimension_ids.items;
        cols[i].n_attr_ids = dc->attribute_ids.n;
        cols[i].attr_ids = dc->attribute_ids.items;
    }
    int rc = ccb(arg, cols, page->n_columns);
    free(cols);
    return rc;
}

static void
query_fill(msg_query_t *qr, const obsync_query_t *q, uint64_t count)
{
    qr->dataflow = q->dataflow;
    qr->key_pattern = q->key_pattern;
    qr->start_period = q->start_period;
    qr->end_period = q->end_period;
    qr->updated_after_ms = q->updated_after_ms;
    qr->as_of_ms = q->as_of_ms;
    qr->include_deleted = q->include_deleted;
    uint64_t limit = q->page_size;
    if (q->max_obs && (limit == 0 || q->max_obs - count < limit))
        limit = q->max_obs - count;
    qr->limit = limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit;
}

/* An owned copy of a page's cursor. */
typedef struct {
    uint8_t *data;
    size_t len;
} cursor_t;

/* Copies the page's cursor into *cur; *more false when there is none. */
static int
take_cursor(const page_t *page, cursor_t *cur, bool *more)
{
    free(cur->data);
    cur->data = NULL;
    cur->len = page->next.len;
    *more = cur->len > 0;
    if (!*more)
        return OBSYNC_OK;
    cur->data = malloc(cur->len);
    if (cur->data == NULL)
        return OBSYNC_ENOMEM;
    memcpy(cur->data, page->next.ptr, cur->len);
    return OBSYNC_OK;
}

static int
query_run(obsync_client_t *c, const obsync_query_t *q, columns_cb ccb,
          obsync_obs_cb cb, void *arg)
{
    cursor_t cur = {NULL, 0};
    uint64_t count = 0;
    bool more = true;
    int rc = OBSYNC_OK;
    while (more && rc == OBSYNC_OK && !(q->max_obs && count >= q->max_obs)) {
        msg_t req = {.type = MSG_QUERY}, *rep = NULL;
        query_fill(&req.u.query, q, count);
        req.u.query.resume_after = (msg_bytes_t){cur.data, cur.len};
        rc = cl_call_expect(c, &req, MSG_OBS_REPLY, &rep);
        if (rc != OBSYNC_OK)
            break;
        const page_t *page = &rep->u.obs_reply;
        rc = page_columns_cb(page, ccb, arg);
        if (rc == OBSYNC_OK)
            rc = page_each(c, page, q->max_obs, &count, cb, arg);
        if (rc == OBSYNC_OK)
            rc = take_cursor(page, &cur, &more);
        if (rc == OBSYNC_OK && more && page->obs.n == 0)
            rc = cl_fail(c, OBSYNC_EPROTO, "empty page with a cursor");
        msg_destroy(&rep);
    }
    free(cur.data);
    return rc;
}

int
obsync_query(obsync_client_t *c, const obsync_query_t *q, obsync_obs_cb cb,
             void *arg)
{
    if (c == NULL || q == NULL || cb == NULL)
        return OBSYNC_EINVAL;
    return query_run(c, q, NULL, cb, arg);
}

/* ---------------------------------------------------------------- export */

typedef struct {
    obsync_client_t *c;
    obsync_format_t fmt;
    FILE *out;
    obsync_csv_writer_t *w; /* owned, made at the first page */
    uint64_t written;
} export_t;

static int
export_columns(void *arg, const obsync_columns_t *cols, size_t n)
{
    export_t *x = arg;
    if (x->fmt != OBSYNC_FORMAT_CSV || x->w != NULL)
        return OBSYNC_OK;
    int rc = obsync_csv_writer_new(x->out, cols, n, &x->w);
    if (rc != OBSYNC_OK)
        cl_fail(x->c, rc, "writing the CSV header: %s", obsync_strerror(rc));
    return rc;
}

static int
export_obs(void *arg, const obsync_obs_t *obs)
{
    export_t *x = arg;
    int rc = x->fmt == OBSYNC_FORMAT_CSV ? obsync_csv_write_obs(x->w, obs)
                                         : obsync_jsonl_write_obs(x->out, obs);
    if (rc == OBSYNC_EPROTO)
        return cl_fail(x->c, rc,
                       "%s %s %s: a column is missing from the "
                       "reply's column lists",
                       obs->dataflow, obs->series_key, obs->time_period);
    if (rc != OBSYNC_OK)
        return cl_fail(x->c, rc, "write failed");
    x->written++;
    return OBSYNC_OK;
}

int
obsync_export(obsync_client_t *c, const obsync_query_t *q, obsync_format_t fmt,
              FILE *out, uint64_t *n_written)
{
    if (c == NULL || q == NULL || out == NULL ||
        (fmt != OBSYNC_FORMAT_CSV && fmt != OBSYNC_FORMAT_JSONL))
        return OBSYNC_EINVAL;
    export_t x = {c, fmt, out, NULL, 0};
    int rc = query_run(c, q, export_columns, export_obs, &x);
    if (rc == OBSYNC_OK && fmt == OBSYNC_FORMAT_CSV && x.w == NULL)
        rc = export_columns(&x, NULL, 0); /* no page: header only */
    if (rc == OBSYNC_OK && fflush(out) != 0)
        rc = cl_fail(c, OBSYNC_ESYS, "write failed");
    obsync_csv_writer_free(&x.w);
    if (n_written != NULL)
        *n_written = x.written;
    return rc;
}

/* ---------------------------------------------------------------- structure */

int
obsync_structure_list(obsync_client_t *c, const char *kind, const char *urn,
                      obsync_artefact_cb cb, void *arg)
{
    if (c == NULL || cb == NULL)
        return OBSYNC_EINVAL;
    msg_t req = {.type = MSG_STRUCTURE_LIST}, *rep = NULL;
    req.u.structure_list = (msg_structure_list_t){kind, urn};
    int rc = cl_call_expect(c, &req, MSG_STRUCTURE_REPLY, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    const msg_structure_reply_t *sr = &rep->u.structure_reply;
    if (urn != NULL && urn[0] != '\0' && sr->n_artefacts == 0)
        rc = cl_fail(c, OBSYNC_ENOENT, "no artefact %s", urn);
    for (size_t i = 0; i < sr->n_artefacts && rc == OBSYNC_OK; i++) {
        const msg_artefact_t *a = &sr->artefacts[i];
        obsync_artefact_t pa = {a->kind, a->urn, a->name, a->items, a->text};
        rc = cb(arg, &pa);
    }
    msg_destroy(&rep);
    return rc;
}

int
obsync_structure_load(obsync_client_t *c, const char *text,
                      const char *source_name, bool dry_run,
                      obsync_issue_cb on_issue, void *arg, uint32_t *loaded)
{
    if (c == NULL || text == NULL)
        return OBSYNC_EINVAL;
    msg_t req = {.type = MSG_STRUCTURE_LOAD}, *rep = NULL;
    req.u.structure_load = (msg_structure_load_t){text, source_name, dry_run};
    int rc = cl_call_expect(c, &req, MSG_STRUCTURE_REPLY, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    const msg_structure_reply_t *sr = &rep->u.structure_reply;
    for (size_t i = 0; on_issue != NULL && i < sr->issues.n; i++) {
        obsync_issue_t is;
        cl_issue_from_msg(&sr->issues.items[i], &is);
        on_issue(arg, &is);
    }
    if (loaded != NULL)
        *loaded = sr->loaded;
    msg_destroy(&rep);
    return OBSYNC_OK;
}
