/*
 * msg_enc.c - msg_encode (msg.h): a msg_t to one Envelope frame.
 *
 * The generated messages are built over the caller's data (strings and
 * bytes borrowed, never copied) in an arena that lives for the call, then
 * packed by protobuf-c through codec_envelope_pack. So the bytes are
 * exactly what the code that built Envelopes by hand wrote: the same packer,
 * the same sub-messages present. That is the compatibility rule between
 * peers of different builds, and tests/golden/frames/v1 holds it: every
 * message present that was always present before (a KeyRef in Get, History
 * and Delete, the Subscription of a Hello, the empty StatusRequest, the
 * Version of every observation in an ObsReply), and absent what was absent
 * (the Version of a PutRequest's observations: the daemon assigns it).
 *
 * Decoding is msg.c. Called by the daemon and libobsync.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec_pb.h"
#include "msg.h"
#include "obs_err.h"

/* The generated messages of one frame, in an arena; rc is the first
 * failure (sticky: later builders do nothing useful, msg_encode returns
 * it). */
typedef struct {
    codec_arena_t arena;
    int rc;
} enc_t;

static void *
e_alloc(enc_t *e, size_t size)
{
    void *p = codec_arena_alloc(&e->arena, size ? size : 1);
    if (p == NULL && e->rc == OBS_OK)
        e->rc = OBS_ENOMEM;
    return p;
}

/* A generated message in the arena, initialised as its __init function
 * would: NEW(e, hello) is an Obsync__V1__Hello. */
static void *
new_msg(enc_t *e, const ProtobufCMessageDescriptor *d)
{
    void *p = e_alloc(e, d->sizeof_message);
    if (p != NULL)
        protobuf_c_message_init(d, p);
    return p;
}
#define NEW(e, name) new_msg((e), &obsync__v1__##name##__descriptor)

/* protobuf-c wants char * even for fields it only reads while packing;
 * NULL encodes as "" (protobuf-c leaves both out of the frame). */
static char *
s_(const char *s)
{
    union {
        const char *c;
        char *m;
    } u = {.c = s ? s : ""};
    return u.m;
}

/* The caller's numbers, borrowed (protobuf-c only reads them). */
static uint64_t *
e_u64s(msg_u64s_t v, size_t *n)
{
    union {
        const uint64_t *c;
        uint64_t *m;
    } u = {.c = v.items};
    *n = v.items ? v.n : 0;
    return u.m;
}

/* The caller's array itself when it holds no NULL (protobuf-c only reads
 * it): an ImportRows chunk is 2,000 rows of cells, and copying their
 * pointers doubled the cost of encoding it. */
static char **
e_strs(enc_t *e, msg_strs_t v, size_t *n)
{
    *n = 0;
    if (v.n == 0 || v.items == NULL)
        return NULL;
    size_t i = 0;
    while (i < v.n && v.items[i] != NULL)
        i++;
    union {
        const char *const *c;
        char **m;
    } u = {.c = v.items};
    char **out = u.m;
    if (i < v.n) { /* a NULL among them: a copy with "" in its place */
        if ((out = e_alloc(e, v.n * sizeof(*out))) == NULL)
            return NULL;
        for (i = 0; i < v.n; i++)
            out[i] = s_(v.items[i]);
    }
    *n = v.n;
    return out;
}

static ProtobufCBinaryData
e_bytes(msg_bytes_t b)
{
    union {
        const uint8_t *c;
        uint8_t *m;
    } u = {.c = b.ptr};
    return (ProtobufCBinaryData){b.ptr ? b.len : 0, u.m};
}

static ProtobufCBinaryData *
e_changes(enc_t *e, msg_changes_t c, size_t *n)
{
    *n = 0;
    if (c.n == 0)
        return NULL;
    ProtobufCBinaryData *out = e_alloc(e, c.n * sizeof(*out));
    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < c.n; i++)
        out[i] = e_bytes(c.items[i]);
    *n = c.n;
    return out;
}

static Obsync__V1__RowIssue **
e_issues(enc_t *e, msg_issues_t v, size_t *n)
{
    *n = 0;
    if (v.n == 0)
        return NULL;
    Obsync__V1__RowIssue **out =
        e_alloc(e, v.n * sizeof(Obsync__V1__RowIssue *));
    for (size_t i = 0; out != NULL && i < v.n; i++) {
        Obsync__V1__RowIssue *r = NEW(e, row_issue);
        if (r == NULL)
            return NULL;
        r->line = v.items[i].line;
        r->column = s_(v.items[i].column);
        r->rule = s_(v.items[i].rule);
        r->message = s_(v.items[i].message);
        r->warning = v.items[i].warning;
        out[i] = r;
    }
    *n = out ? v.n : 0;
    return out;
}

/* Observations; with_version false for a PutRequest's (see the top). */
static Obsync__V1__Observation **
e_obs(enc_t *e, msg_obs_list_t v, bool with_version, size_t *n)
{
    *n = 0;
    if (v.n == 0)
        return NULL;
    Obsync__V1__Observation **out =
        e_alloc(e, v.n * sizeof(Obsync__V1__Observation *));
    for (size_t i = 0; out != NULL && i < v.n; i++) {
        int rc =
            codec_obs_pb_view(&e->arena, &v.items[i], with_version, &out[i]);
        if (rc != OBS_OK) {
            if (e->rc == OBS_OK)
                e->rc = rc;
            return NULL;
        }
    }
    *n = out ? v.n : 0;
    return out;
}

/* Always present where it is used (Get, History, Delete). */
static Obsync__V1__KeyRef *
e_key(enc_t *e, const msg_key_ref_t *k)
{
    Obsync__V1__KeyRef *r = NEW(e, key_ref);
    if (r != NULL) {
        r->dataflow = s_(k->dataflow);
        r->series_key = s_(k->series_key);
        r->time_period = s_(k->time_period);
    }
    return r;
}

/* ---------------------------------------------------------------- local API */

static void
enc_error(enc_t *e, const msg_error_t *m, codec_env_t *env)
{
    Obsync__V1__ErrorReply *r = env->error = NEW(e, error_reply);
    if (r == NULL)
        return;
    r->code = m->code;
    r->message = s_(m->message);
}

static void
enc_put(enc_t *e, const msg_put_t *m, codec_env_t *env)
{
    Obsync__V1__PutRequest *r = env->put = NEW(e, put_request);
    if (r == NULL)
        return;
    r->obs = e_obs(e, m->obs, false, &r->n_obs);
    r->action = codec_action_to_pb(m->action);
    r->strict = m->strict;
    r->dry_run = m->dry_run;
}

static void
enc_write_summary(enc_t *e, const msg_write_summary_t *m, codec_env_t *env)
{
    Obsync__V1__WriteSummary *r = env->write_summary = NEW(e, write_summary);
    if (r == NULL)
        return;
    r->accepted = m->accepted;
    r->unchanged = m->unchanged;
    r->rejected = m->rejected;
    r->deleted = m->deleted;
    r->warnings = m->warnings;
    r->committed = m->committed;
    r->issues = e_issues(e, m->issues, &r->n_issues);
    r->issues_omitted = m->issues_omitted;
    r->batch_id = s_(m->batch_id);
}

static void
enc_get(enc_t *e, const msg_get_t *m, codec_env_t *env)
{
    Obsync__V1__GetRequest *r = env->get = NEW(e, get_request);
    if (r != NULL)
        r->key = e_key(e, &m->key);
}

static void
enc_history(enc_t *e, const msg_get_t *m, codec_env_t *env)
{
    Obsync__V1__HistoryRequest *r = env->history = NEW(e, history_request);
    if (r != NULL)
        r->key = e_key(e, &m->key);
}

static void
enc_delete(enc_t *e, const msg_delete_t *m, codec_env_t *env)
{
    Obsync__V1__DeleteRequest *r = env->delete_ = NEW(e, delete_request);
    if (r == NULL)
        return;
    r->key = e_key(e, &m->key);
    r->dry_run = m->dry_run;
}

static void
enc_query(enc_t *e, const msg_query_t *m, codec_env_t *env)
{
    Obsync__V1__QueryRequest *r = env->query = NEW(e, query_request);
    if (r == NULL)
        return;
    r->dataflow = s_(m->dataflow);
    r->key_pattern = s_(m->key_pattern);
    r->start_period = s_(m->start_period);
    r->end_period = s_(m->end_period);
    r->updated_after_ms = m->updated_after_ms;
    r->as_of_ms = m->as_of_ms;
    r->include_deleted = m->include_deleted;
    r->limit = m->limit;
    r->resume_after = e_bytes(m->resume_after);
}

static void
enc_obs_reply(enc_t *e, const msg_obs_reply_t *m, codec_env_t *env)
{
    Obsync__V1__ObsReply *r = env->obs_reply = NEW(e, obs_reply);
    if (r == NULL)
        return;
    r->obs = e_obs(e, m->obs, true, &r->n_obs);
    if (m->n_columns > 0)
        r->columns =
            e_alloc(e, m->n_columns * sizeof(Obsync__V1__DataflowColumns *));
    for (size_t i = 0; r->columns != NULL && i < m->n_columns; i++) {
        const msg_columns_t *c = &m->columns[i];
        Obsync__V1__DataflowColumns *dc = NEW(e, dataflow_columns);
        if (dc == NULL)
            return;
        dc->dataflow = s_(c->dataflow);
        dc->dimension_ids = e_strs(e, c->dimension_ids, &dc->n_dimension_ids);
        dc->attribute_ids = e_strs(e, c->attribute_ids, &dc->n_attribute_ids);
        r->columns[i] = dc;
        r->n_columns = i + 1;
    }
    r->next = e_bytes(m->next);
}

static void
enc_import_begin(enc_t *e, const msg_import_begin_t *m, codec_env_t *env)
{
    Obsync__V1__ImportBegin *r = env->import_begin = NEW(e, import_begin);
    if (r == NULL)
        return;
    r->source_name = s_(m->source_name);
    r->header = e_strs(e, m->header, &r->n_header);
    r->separator = s_(m->separator);
    r->decimal_comma = m->decimal_comma;
    r->strict = m->strict;
    r->dry_run = m->dry_run;
    r->header_line = m->header_line;
    r->ignore_columns = e_strs(e, m->ignore_columns, &r->n_ignore_columns);
    r->commit_rows = m->commit_rows;
}

static void
enc_import_rows(enc_t *e, const msg_import_rows_t *m, codec_env_t *env)
{
    Obsync__V1__ImportRows *r = env->import_rows = NEW(e, import_rows);
    if (r == NULL)
        return;
    r->import_id = m->import_id;
    if (m->n_rows == 0)
        return;
    /* one array for the rows themselves: a chunk is thousands of them */
    Obsync__V1__CsvRow *rows = e_alloc(e, m->n_rows * sizeof(*rows));
    r->rows = e_alloc(e, m->n_rows * sizeof(Obsync__V1__CsvRow *));
    if (rows == NULL || r->rows == NULL)
        return;
    for (size_t i = 0; i < m->n_rows; i++) {
        obsync__v1__csv_row__init(&rows[i]);
        rows[i].line = m->rows[i].line;
        rows[i].cells = e_strs(e, m->rows[i].cells, &rows[i].n_cells);
        r->rows[i] = &rows[i];
    }
    r->n_rows = m->n_rows;
}

static void
enc_import_finish(enc_t *e, const msg_import_finish_t *m, codec_env_t *env)
{
    Obsync__V1__ImportFinish *r = env->import_finish = NEW(e, import_finish);
    if (r == NULL)
        return;
    r->import_id = m->import_id;
    r->abort = m->abort;
}

static void
enc_import_progress(enc_t *e, const msg_import_progress_t *m, codec_env_t *env)
{
    Obsync__V1__ImportProgress *r = env->import_progress =
        NEW(e, import_progress);
    if (r == NULL)
        return;
    r->import_id = m->import_id;
    r->rows_seen = m->rows_seen;
    r->rows_rejected = m->rows_rejected;
    r->issues = e_issues(e, m->issues, &r->n_issues);
    r->rows_committed = m->rows_committed;
}

static void
enc_structure_list(enc_t *e, const msg_structure_list_t *m, codec_env_t *env)
{
    Obsync__V1__StructureList *r = env->structure_list = NEW(e, structure_list);
    if (r == NULL)
        return;
    r->kind = s_(m->kind);
    r->urn = s_(m->urn);
}

static void
enc_structure_load(enc_t *e, const msg_structure_load_t *m, codec_env_t *env)
{
    Obsync__V1__StructureLoad *r = env->structure_load = NEW(e, structure_load);
    if (r == NULL)
        return;
    r->text = s_(m->text);
    r->source_name = s_(m->source_name);
    r->dry_run = m->dry_run;
}

static void
enc_structure_reply(enc_t *e, const msg_structure_reply_t *m, codec_env_t *env)
{
    Obsync__V1__StructureReply *r = env->structure_reply =
        NEW(e, structure_reply);
    if (r == NULL)
        return;
    if (m->n_artefacts > 0)
        r->artefacts =
            e_alloc(e, m->n_artefacts * sizeof(Obsync__V1__Artefact *));
    for (size_t i = 0; r->artefacts != NULL && i < m->n_artefacts; i++) {
        const msg_artefact_t *a = &m->artefacts[i];
        Obsync__V1__Artefact *x = NEW(e, artefact);
        if (x == NULL)
            return;
        x->kind = s_(a->kind);
        x->urn = s_(a->urn);
        x->name = s_(a->name);
        x->items = a->items;
        x->text = s_(a->text);
        r->artefacts[i] = x;
        r->n_artefacts = i + 1;
    }
    r->issues = e_issues(e, m->issues, &r->n_issues);
    r->loaded = m->loaded;
}

static Obsync__V1__PeerStatus *
e_peer(enc_t *e, const msg_peer_status_t *p)
{
    Obsync__V1__PeerStatus *r = NEW(e, peer_status);
    if (r == NULL)
        return NULL;
    r->node_id = s_(p->node_id);
    r->up = p->up;
    r->last_seen_ms = p->last_seen_ms;
    r->address = s_(p->address);
    r->cursor = p->cursor;
    r->lag_changes = p->lag_changes;
    r->lag_ms = p->lag_ms;
    r->accepted = p->accepted;
    r->rejected = p->rejected;
    r->conflicts = p->conflicts;
    r->bytes_in = p->bytes_in;
    r->bytes_out = p->bytes_out;
    r->state = s_(p->state);
    r->duplicates = p->duplicates;
    r->last_origin_seq = p->last_origin_seq;
    r->clock_refused = p->clock_refused;
    r->link = s_(p->link);
    r->rate_out_bps = p->rate_out_bps;
    r->rate_in_bps = p->rate_in_bps;
    r->reconnects = p->reconnects;
    r->key = s_(p->key);
    r->refused_reasons = e_strs(e, p->refused_reasons, &r->n_refused_reasons);
    r->refused_counts = e_u64s(p->refused_counts, &r->n_refused_counts);
    return r;
}

/* The replication half of StatusReply (fields 18 on). */
static void
enc_status_repl(enc_t *e, const msg_status_reply_t *m,
                Obsync__V1__StatusReply *r)
{
    r->hub_endpoint = s_(m->hub_endpoint);
    r->repl_state = s_(m->repl_state);
    r->lag_changes = m->lag_changes;
    r->lag_ms = m->lag_ms;
    r->log_first = m->log_first;
    r->log_last = m->log_last;
    if (m->n_peers > 0)
        r->peers = e_alloc(e, m->n_peers * sizeof(Obsync__V1__PeerStatus *));
    for (size_t i = 0; r->peers != NULL && i < m->n_peers; i++) {
        if ((r->peers[i] = e_peer(e, &m->peers[i])) == NULL)
            return;
        r->n_peers = i + 1;
    }
    r->outbox_acked = m->outbox_acked;
    r->snapshots = m->snapshots;
    r->state_applied = m->state_applied;
    r->batches_shared = m->batches_shared;
    r->clock_known = m->clock_known;
    r->clock_skew_ms = m->clock_skew_ms;
    r->restamped = m->restamped;
    r->renumbered = m->renumbered;
    r->pending_rejects = m->pending_rejects;
    r->link = s_(m->link);
    r->rate_in_bps = m->rate_in_bps;
    r->rate_out_bps = m->rate_out_bps;
    r->reconnects = m->reconnects;
    r->apply_rate = m->apply_rate;
    r->eta_s = m->eta_s;
    r->security = s_(m->security);
    r->public_key = s_(m->public_key);
    r->hub_key = s_(m->hub_key);
    r->allowed_keys = m->allowed_keys;
    r->refused_reasons = e_strs(e, m->refused_reasons, &r->n_refused_reasons);
    r->refused_counts = e_u64s(m->refused_counts, &r->n_refused_counts);
    r->connections = m->connections;
    r->pending_hello = m->pending_hello;
    r->handshake_failures = m->handshake_failures;
    r->backoffs = m->backoffs;
    r->reload = s_(m->reload);
}

static void
enc_status_reply(enc_t *e, const msg_status_reply_t *m, codec_env_t *env)
{
    Obsync__V1__StatusReply *r = env->status_reply = NEW(e, status_reply);
    if (r == NULL)
        return;
    r->node_id = s_(m->node_id);
    r->role = s_(m->role);
    r->epoch = s_(m->epoch);
    r->observations = m->observations;
    r->tombstones = m->tombstones;
    r->history_versions = m->history_versions;
    r->outbox_depth = m->outbox_depth;
    r->last_origin_seq = m->last_origin_seq;
    r->hlc = m->hlc;
    r->map_size = m->map_size;
    r->map_used = m->map_used;
    r->uptime_s = m->uptime_s;
    r->provider = s_(m->provider);
    r->dataflows = e_strs(e, m->dataflows, &r->n_dataflows);
    r->commits = m->commits;
    r->writes_grouped = m->writes_grouped;
    r->hub_cursor = m->hub_cursor;
    enc_status_repl(e, m, r);
}

/* ---------------------------------------------------------------- replication
 */

static void
enc_hello(enc_t *e, const msg_hello_t *m, codec_env_t *env)
{
    Obsync__V1__Hello *r = env->hello = NEW(e, hello);
    Obsync__V1__Subscription *sub = NEW(e, subscription);
    if (r == NULL || sub == NULL)
        return;
    r->node_id = s_(m->node_id);
    r->node_epoch = s_(m->node_epoch);
    r->cursor = m->cursor;
    r->hub_epoch = s_(m->hub_epoch);
    sub->dataflows = e_strs(e, m->subscription.dataflows, &sub->n_dataflows);
    sub->areas = e_strs(e, m->subscription.areas, &sub->n_areas);
    r->subscription = sub; /* always sent, even when empty */
    r->structure_hash = s_(m->structure_hash);
    r->provider = s_(m->provider);
}

static void
enc_welcome(enc_t *e, const msg_welcome_t *m, codec_env_t *env)
{
    Obsync__V1__Welcome *r = env->welcome = NEW(e, welcome);
    if (r == NULL)
        return;
    r->hub_id = s_(m->hub_id);
    r->hub_epoch = s_(m->hub_epoch);
    r->last_origin_seq = m->last_origin_seq;
    r->log_first = m->log_first;
    r->log_last = m->log_last;
    r->snapshot = m->snapshot;
    r->heartbeat_ms = m->heartbeat_ms;
    r->last_origin_hlc = m->last_origin_hlc;
    r->now_ms = m->now_ms;
    r->peer_timeout_ms = m->peer_timeout_ms;
}

static void
enc_publish(enc_t *e, const msg_publish_t *m, codec_env_t *env)
{
    Obsync__V1__Publish *r = env->publish = NEW(e, publish);
    if (r == NULL)
        return;
    r->first_seq = m->first_seq;
    r->last_seq = m->last_seq;
    r->changes = e_changes(e, m->changes, &r->n_changes);
}

static void
enc_publish_ack(enc_t *e, const msg_publish_ack_t *m, codec_env_t *env)
{
    Obsync__V1__PublishAck *r = env->publish_ack = NEW(e, publish_ack);
    if (r == NULL)
        return;
    r->acked_seq = m->acked_seq;
    r->resend_from = m->resend_from;
    r->accepted = m->accepted;
    r->duplicates = m->duplicates;
    r->superseded = m->superseded;
    r->rejected = m->rejected;
    r->rejects = e_issues(e, m->rejects, &r->n_rejects);
}

static void
enc_credit(enc_t *e, const msg_credit_t *m, codec_env_t *env)
{
    Obsync__V1__Credit *r = env->credit = NEW(e, credit);
    if (r == NULL)
        return;
    r->cursor = m->cursor;
    r->batches = m->batches;
    r->resync = m->resync;
}

static void
enc_log_batch(enc_t *e, const msg_log_batch_t *m, codec_env_t *env)
{
    Obsync__V1__LogBatch *r = env->log_batch = NEW(e, log_batch);
    if (r == NULL)
        return;
    r->from_seq = m->from_seq;
    r->to_seq = m->to_seq;
    r->changes = e_changes(e, m->changes, &r->n_changes);
    r->log_last = m->log_last;
    r->log_last_ms = m->log_last_ms;
}

static void
enc_snapshot_begin(enc_t *e, const msg_snapshot_begin_t *m, codec_env_t *env)
{
    Obsync__V1__SnapshotBegin *r = env->snapshot_begin = NEW(e, snapshot_begin);
    if (r == NULL)
        return;
    r->fence_seq = m->fence_seq;
    r->estimated = m->estimated;
}

static void
enc_snapshot_chunk(enc_t *e, const msg_snapshot_chunk_t *m, codec_env_t *env)
{
    Obsync__V1__SnapshotChunk *r = env->snapshot_chunk = NEW(e, snapshot_chunk);
    if (r == NULL)
        return;
    r->changes = e_changes(e, m->changes, &r->n_changes);
    r->sent = m->sent;
}

static void
enc_snapshot_end(enc_t *e, const msg_snapshot_end_t *m, codec_env_t *env)
{
    Obsync__V1__SnapshotEnd *r = env->snapshot_end = NEW(e, snapshot_end);
    if (r == NULL)
        return;
    r->fence_seq = m->fence_seq;
    r->total = m->total;
}

static void
enc_structure_update(enc_t *e, const msg_structure_update_t *m,
                     codec_env_t *env)
{
    Obsync__V1__StructureUpdate *r = env->structure_update =
        NEW(e, structure_update);
    if (r == NULL)
        return;
    r->text = s_(m->text);
    r->hash = s_(m->hash);
}

static void
enc_heartbeat(enc_t *e, const msg_heartbeat_t *m, codec_env_t *env)
{
    Obsync__V1__Heartbeat *r = env->heartbeat = NEW(e, heartbeat);
    if (r == NULL)
        return;
    r->now_ms = m->now_ms;
    r->cursor = m->cursor;
}

static void
enc_goodbye(enc_t *e, const msg_goodbye_t *m, codec_env_t *env)
{
    Obsync__V1__Goodbye *r = env->goodbye = NEW(e, goodbye);
    if (r == NULL)
        return;
    r->reason = s_(m->reason);
    r->code = m->code;
}

/* ---------------------------------------------------------------- frame */

/* Sets env's body from m; false when m's type has no body. */
static bool
enc_body(enc_t *e, const msg_t *m, codec_env_t *env)
{
    switch (m->type) {
    case MSG_ERROR:
        enc_error(e, &m->u.error, env);
        break;
    case MSG_PUT:
        enc_put(e, &m->u.put, env);
        break;
    case MSG_WRITE_SUMMARY:
        enc_write_summary(e, &m->u.write_summary, env);
        break;
    case MSG_GET:
        enc_get(e, &m->u.get, env);
        break;
    case MSG_HISTORY:
        enc_history(e, &m->u.history, env);
        break;
    case MSG_DELETE:
        enc_delete(e, &m->u.del, env);
        break;
    case MSG_QUERY:
        enc_query(e, &m->u.query, env);
        break;
    case MSG_OBS_REPLY:
        enc_obs_reply(e, &m->u.obs_reply, env);
        break;
    case MSG_IMPORT_BEGIN:
        enc_import_begin(e, &m->u.import_begin, env);
        break;
    case MSG_IMPORT_ROWS:
        enc_import_rows(e, &m->u.import_rows, env);
        break;
    case MSG_IMPORT_FINISH:
        enc_import_finish(e, &m->u.import_finish, env);
        break;
    case MSG_IMPORT_PROGRESS:
        enc_import_progress(e, &m->u.import_progress, env);
        break;
    case MSG_STRUCTURE_LIST:
        enc_structure_list(e, &m->u.structure_list, env);
        break;
    case MSG_STRUCTURE_LOAD:
        enc_structure_load(e, &m->u.structure_load, env);
        break;
    case MSG_STRUCTURE_REPLY:
        enc_structure_reply(e, &m->u.structure_reply, env);
        break;
    case MSG_STATUS: /* the empty StatusRequest, present all the same */
        env->status = NEW(e, status_request);
        if (env->status != NULL)
            env->status->reload = m->u.status.reload;
        break;
    case MSG_STATUS_REPLY:
        enc_status_reply(e, &m->u.status_reply, env);
        break;
    case MSG_HELLO:
        enc_hello(e, &m->u.hello, env);
        break;
    case MSG_WELCOME:
        enc_welcome(e, &m->u.welcome, env);
        break;
    case MSG_PUBLISH:
        enc_publish(e, &m->u.publish, env);
        break;
    case MSG_PUBLISH_ACK:
        enc_publish_ack(e, &m->u.publish_ack, env);
        break;
    case MSG_CREDIT:
        enc_credit(e, &m->u.credit, env);
        break;
    case MSG_LOG_BATCH:
        enc_log_batch(e, &m->u.log_batch, env);
        break;
    case MSG_SNAPSHOT_BEGIN:
        enc_snapshot_begin(e, &m->u.snapshot_begin, env);
        break;
    case MSG_SNAPSHOT_CHUNK:
        enc_snapshot_chunk(e, &m->u.snapshot_chunk, env);
        break;
    case MSG_SNAPSHOT_END:
        enc_snapshot_end(e, &m->u.snapshot_end, env);
        break;
    case MSG_STRUCTURE_UPDATE:
        enc_structure_update(e, &m->u.structure_update, env);
        break;
    case MSG_HEARTBEAT:
        enc_heartbeat(e, &m->u.heartbeat, env);
        break;
    case MSG_GOODBYE:
        enc_goodbye(e, &m->u.goodbye, env);
        break;
    default:
        return false;
    }
    return true;
}

int
msg_encode(const msg_t *m, uint8_t **buf, size_t *len)
{
    *buf = NULL;
    *len = 0;
    enc_t e;
    codec_arena_init(&e.arena, SIZE_MAX);
    e.rc = OBS_OK;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.corr_id = m->corr_id;
    env.body_case = (Obsync__V1__Envelope__BodyCase)m->type;
    int rc = enc_body(&e, m, &env) ? e.rc : OBS_EINVAL;
    if (rc == OBS_OK)
        rc = codec_envelope_pack(&env, buf, len);
    codec_arena_release(&e.arena);
    return rc;
}
