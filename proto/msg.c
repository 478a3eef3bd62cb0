/*
 * msg.c - msg_decode, msg_destroy and msg_type_name (msg.h): one Envelope
 * frame to a msg_t. Encoding is msg_enc.c.
 *
 * The frame is unpacked by codec_envelope_unpack into an arena under the
 * frame's budget; the msg_t and its arrays are then allocated from the same
 * arena, and point at the strings and bytes protobuf-c unpacked there. So
 * a decoded message is one arena (a few malloc'd blocks), nothing is copied
 * twice, and msg_destroy frees it in one go. Replicated changes stay the
 * bytes protobuf-c unpacked (msg_bytes_t into the arena): the hot path pays
 * one array per frame.
 *
 * msg_decode_limited holds a frame to more limits than msg_decode (the
 * local API's, ctl.c): a budget of its own, passed to protobuf-c's
 * allocator, and ImportRows' rows and cells counted on the wire before
 * protobuf-c allocates anything for them.
 *
 * Not a transport. Called by the daemon and libobsync.
 */
#include "msg.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "codec_pb.h"
#include "obs_err.h"

/* What a decoded message's pointers point into. */
struct msg_store {
    codec_env_t *env; /* owned: its arena holds the msg_t too */
};

/* ---------------------------------------------------------------- names */

const char *
msg_type_name(msg_type_t type)
{
    switch (type) {
    case MSG_ERROR:
        return "ErrorReply";
    case MSG_PUT:
        return "PutRequest";
    case MSG_WRITE_SUMMARY:
        return "WriteSummary";
    case MSG_GET:
        return "GetRequest";
    case MSG_HISTORY:
        return "HistoryRequest";
    case MSG_DELETE:
        return "DeleteRequest";
    case MSG_QUERY:
        return "QueryRequest";
    case MSG_OBS_REPLY:
        return "ObsReply";
    case MSG_IMPORT_BEGIN:
        return "ImportBegin";
    case MSG_IMPORT_ROWS:
        return "ImportRows";
    case MSG_IMPORT_FINISH:
        return "ImportFinish";
    case MSG_IMPORT_PROGRESS:
        return "ImportProgress";
    case MSG_STRUCTURE_LIST:
        return "StructureList";
    case MSG_STRUCTURE_LOAD:
        return "StructureLoad";
    case MSG_STRUCTURE_REPLY:
        return "StructureReply";
    case MSG_STATUS:
        return "StatusRequest";
    case MSG_STATUS_REPLY:
        return "StatusReply";
    case MSG_HELLO:
        return "Hello";
    case MSG_WELCOME:
        return "Welcome";
    case MSG_PUBLISH:
        return "Publish";
    case MSG_PUBLISH_ACK:
        return "PublishAck";
    case MSG_CREDIT:
        return "Credit";
    case MSG_LOG_BATCH:
        return "LogBatch";
    case MSG_SNAPSHOT_BEGIN:
        return "SnapshotBegin";
    case MSG_SNAPSHOT_CHUNK:
        return "SnapshotChunk";
    case MSG_SNAPSHOT_END:
        return "SnapshotEnd";
    case MSG_STRUCTURE_UPDATE:
        return "StructureUpdate";
    case MSG_HEARTBEAT:
        return "Heartbeat";
    case MSG_GOODBYE:
        return "Goodbye";
    default:
        return "unknown";
    }
}

/* ---------------------------------------------------------------- parts */

/* The arena of the frame; rc is the first failure (sticky); over: it was
 * the budget, not malloc. */
typedef struct {
    codec_arena_t *arena;
    int rc;
    bool over;
} dec_t;

static void *
d_alloc(dec_t *d, size_t size)
{
    size = size ? size : 1;
    void *p = codec_arena_alloc(d->arena, size);
    if (p == NULL && d->rc == OBS_OK) {
        size_t left = d->arena->budget - d->arena->used;
        d->over = size > left || size + alignof(max_align_t) - 1 > left;
        d->rc = OBS_ENOMEM;
    }
    return p;
}

/* protobuf-c gives "" for an absent string; NULL is not expected, but a
 * decoded string is never NULL whatever protobuf-c does. */
static const char *
d_str(const char *s)
{
    return s ? s : "";
}

static msg_strs_t
d_strs(char **items, size_t n)
{
    return (msg_strs_t){(const char *const *)items, items ? n : 0};
}

static msg_bytes_t
d_bytes(ProtobufCBinaryData b)
{
    return (msg_bytes_t){b.data, b.data ? b.len : 0};
}

static msg_changes_t
d_changes(dec_t *d, const ProtobufCBinaryData *items, size_t n)
{
    if (n == 0)
        return (msg_changes_t){NULL, 0};
    msg_bytes_t *out = d_alloc(d, n * sizeof(*out));
    if (out == NULL)
        return (msg_changes_t){NULL, 0};
    for (size_t i = 0; i < n; i++)
        out[i] = d_bytes(items[i]);
    return (msg_changes_t){out, n};
}

static msg_issues_t
d_issues(dec_t *d, Obsync__V1__RowIssue *const *items, size_t n)
{
    if (n == 0)
        return (msg_issues_t){NULL, 0};
    msg_issue_t *out = d_alloc(d, n * sizeof(*out));
    if (out == NULL)
        return (msg_issues_t){NULL, 0};
    for (size_t i = 0; i < n; i++) {
        const Obsync__V1__RowIssue *r = items[i];
        out[i] = (msg_issue_t){r->line, d_str(r->column), d_str(r->rule),
                               d_str(r->message), r->warning};
    }
    return (msg_issues_t){out, n};
}

/* An absent KeyRef reads as three "". */
static msg_key_ref_t
d_key(const Obsync__V1__KeyRef *k)
{
    if (k == NULL)
        return (msg_key_ref_t){"", "", ""};
    return (msg_key_ref_t){d_str(k->dataflow), d_str(k->series_key),
                           d_str(k->time_period)};
}

/* Read-only observations over the unpacked strings (codec_obs_ro_from_pb:
 * obs.h's limits, attributes sorted and merged). */
static msg_obs_list_t
d_obs(dec_t *d, Obsync__V1__Observation *const *items, size_t n)
{
    if (n == 0)
        return (msg_obs_list_t){NULL, 0};
    obs_t *out = d_alloc(d, n * sizeof(*out));
    if (out == NULL)
        return (msg_obs_list_t){NULL, 0};
    for (size_t i = 0; i < n; i++) {
        int rc = codec_obs_ro_from_pb(d->arena, items[i], &out[i]);
        if (rc != OBS_OK) {
            if (d->rc == OBS_OK)
                d->rc = rc;
            return (msg_obs_list_t){NULL, 0};
        }
    }
    return (msg_obs_list_t){out, n};
}

/* ---------------------------------------------------------------- local API */

static void
dec_put(dec_t *d, const Obsync__V1__PutRequest *r, msg_put_t *m)
{
    m->obs = d_obs(d, r->obs, r->n_obs);
    m->action = codec_action_from_pb(r->action);
    m->strict = r->strict;
    m->dry_run = r->dry_run;
}

static void
dec_write_summary(dec_t *d, const Obsync__V1__WriteSummary *r,
                  msg_write_summary_t *m)
{
    m->accepted = r->accepted;
    m->unchanged = r->unchanged;
    m->rejected = r->rejected;
    m->deleted = r->deleted;
    m->warnings = r->warnings;
    m->committed = r->committed;
    m->issues = d_issues(d, r->issues, r->n_issues);
    m->issues_omitted = r->issues_omitted;
    m->batch_id = d_str(r->batch_id);
}

static void
dec_query(const Obsync__V1__QueryRequest *r, msg_query_t *m)
{
    m->dataflow = d_str(r->dataflow);
    m->key_pattern = d_str(r->key_pattern);
    m->start_period = d_str(r->start_period);
    m->end_period = d_str(r->end_period);
    m->updated_after_ms = r->updated_after_ms;
    m->as_of_ms = r->as_of_ms;
    m->include_deleted = r->include_deleted;
    m->limit = r->limit;
    m->resume_after = d_bytes(r->resume_after);
}

static void
dec_obs_reply(dec_t *d, const Obsync__V1__ObsReply *r, msg_obs_reply_t *m)
{
    m->obs = d_obs(d, r->obs, r->n_obs);
    if (r->n_columns > 0) {
        msg_columns_t *c = d_alloc(d, r->n_columns * sizeof(*c));
        for (size_t i = 0; c != NULL && i < r->n_columns; i++) {
            const Obsync__V1__DataflowColumns *dc = r->columns[i];
            c[i].dataflow = d_str(dc->dataflow);
            c[i].dimension_ids = d_strs(dc->dimension_ids, dc->n_dimension_ids);
            c[i].attribute_ids = d_strs(dc->attribute_ids, dc->n_attribute_ids);
        }
        m->columns = c;
        m->n_columns = c ? r->n_columns : 0;
    }
    m->next = d_bytes(r->next);
}

static void
dec_import_begin(const Obsync__V1__ImportBegin *r, msg_import_begin_t *m)
{
    m->source_name = d_str(r->source_name);
    m->header = d_strs(r->header, r->n_header);
    m->separator = d_str(r->separator);
    m->decimal_comma = r->decimal_comma;
    m->strict = r->strict;
    m->dry_run = r->dry_run;
    m->header_line = r->header_line;
    m->ignore_columns = d_strs(r->ignore_columns, r->n_ignore_columns);
    m->commit_rows = r->commit_rows;
}

static void
dec_import_rows(dec_t *d, const Obsync__V1__ImportRows *r, msg_import_rows_t *m)
{
    m->import_id = r->import_id;
    if (r->n_rows == 0)
        return;
    msg_csv_row_t *rows = d_alloc(d, r->n_rows * sizeof(*rows));
    if (rows == NULL)
        return;
    for (size_t i = 0; i < r->n_rows; i++) {
        rows[i].line = r->rows[i]->line;
        rows[i].cells = d_strs(r->rows[i]->cells, r->rows[i]->n_cells);
    }
    m->rows = rows;
    m->n_rows = r->n_rows;
}

static void
dec_import_progress(dec_t *d, const Obsync__V1__ImportProgress *r,
                    msg_import_progress_t *m)
{
    m->import_id = r->import_id;
    m->rows_seen = r->rows_seen;
    m->rows_rejected = r->rows_rejected;
    m->issues = d_issues(d, r->issues, r->n_issues);
    m->rows_committed = r->rows_committed;
}

static void
dec_structure_reply(dec_t *d, const Obsync__V1__StructureReply *r,
                    msg_structure_reply_t *m)
{
    if (r->n_artefacts > 0) {
        msg_artefact_t *a = d_alloc(d, r->n_artefacts * sizeof(*a));
        for (size_t i = 0; a != NULL && i < r->n_artefacts; i++) {
            const Obsync__V1__Artefact *x = r->artefacts[i];
            a[i] = (msg_artefact_t){d_str(x->kind), d_str(x->urn),
                                    d_str(x->name), x->items, d_str(x->text)};
        }
        m->artefacts = a;
        m->n_artefacts = a ? r->n_artefacts : 0;
    }
    m->issues = d_issues(d, r->issues, r->n_issues);
    m->loaded = r->loaded;
}

static void
dec_peer(const Obsync__V1__PeerStatus *r, msg_peer_status_t *p)
{
    p->node_id = d_str(r->node_id);
    p->up = r->up;
    p->last_seen_ms = r->last_seen_ms;
    p->address = d_str(r->address);
    p->cursor = r->cursor;
    p->lag_changes = r->lag_changes;
    p->lag_ms = r->lag_ms;
    p->accepted = r->accepted;
    p->rejected = r->rejected;
    p->conflicts = r->conflicts;
    p->bytes_in = r->bytes_in;
    p->bytes_out = r->bytes_out;
    p->state = d_str(r->state);
    p->duplicates = r->duplicates;
    p->last_origin_seq = r->last_origin_seq;
    p->clock_refused = r->clock_refused;
    p->link = d_str(r->link);
    p->rate_out_bps = r->rate_out_bps;
    p->rate_in_bps = r->rate_in_bps;
    p->reconnects = r->reconnects;
    p->key = d_str(r->key);
    p->refused_reasons = d_strs(r->refused_reasons, r->n_refused_reasons);
    p->refused_counts = (msg_u64s_t){r->refused_counts, r->n_refused_counts};
}

/* The replication half of StatusReply (fields 18 on). */
static void
dec_status_repl(dec_t *d, const Obsync__V1__StatusReply *r,
                msg_status_reply_t *m)
{
    m->hub_endpoint = d_str(r->hub_endpoint);
    m->repl_state = d_str(r->repl_state);
    m->lag_changes = r->lag_changes;
    m->lag_ms = r->lag_ms;
    m->log_first = r->log_first;
    m->log_last = r->log_last;
    if (r->n_peers > 0) {
        msg_peer_status_t *p = d_alloc(d, r->n_peers * sizeof(*p));
        for (size_t i = 0; p != NULL && i < r->n_peers; i++)
            dec_peer(r->peers[i], &p[i]);
        m->peers = p;
        m->n_peers = p ? r->n_peers : 0;
    }
    m->outbox_acked = r->outbox_acked;
    m->snapshots = r->snapshots;
    m->state_applied = r->state_applied;
    m->batches_shared = r->batches_shared;
    m->clock_known = r->clock_known;
    m->clock_skew_ms = r->clock_skew_ms;
    m->restamped = r->restamped;
    m->renumbered = r->renumbered;
    m->pending_rejects = r->pending_rejects;
    m->link = d_str(r->link);
    m->rate_in_bps = r->rate_in_bps;
    m->rate_out_bps = r->rate_out_bps;
    m->reconnects = r->reconnects;
    m->apply_rate = r->apply_rate;
    m->eta_s = r->eta_s;
    m->security = d_str(r->security);
    m->public_key = d_str(r->public_key);
    m->hub_key = d_str(r->hub_key);
    m->allowed_keys = r->allowed_keys;
    m->refused_reasons = d_strs(r->refused_reasons, r->n_refused_reasons);
    m->refused_counts = (msg_u64s_t){r->refused_counts, r->n_refused_counts};
    m->connections = r->connections;
    m->pending_hello = r->pending_hello;
    m->handshake_failures = r->handshake_failures;
    m->backoffs = r->backoffs;
    m->reload = d_str(r->reload);
}

static void
dec_status_reply(dec_t *d, const Obsync__V1__StatusReply *r,
                 msg_status_reply_t *m)
{
    m->node_id = d_str(r->node_id);
    m->role = d_str(r->role);
    m->epoch = d_str(r->epoch);
    m->observations = r->observations;
    m->tombstones = r->tombstones;
    m->history_versions = r->history_versions;
    m->outbox_depth = r->outbox_depth;
    m->last_origin_seq = r->last_origin_seq;
    m->hlc = r->hlc;
    m->map_size = r->map_size;
    m->map_used = r->map_used;
    m->uptime_s = r->uptime_s;
    m->provider = d_str(r->provider);
    m->dataflows = d_strs(r->dataflows, r->n_dataflows);
    m->commits = r->commits;
    m->writes_grouped = r->writes_grouped;
    m->hub_cursor = r->hub_cursor;
    dec_status_repl(d, r, m);
}

/* ---------------------------------------------------------------- replication
 */

static void
dec_hello(const Obsync__V1__Hello *r, msg_hello_t *m)
{
    m->node_id = d_str(r->node_id);
    m->node_epoch = d_str(r->node_epoch);
    m->cursor = r->cursor;
    m->hub_epoch = d_str(r->hub_epoch);
    const Obsync__V1__Subscription *s = r->subscription;
    if (s != NULL) /* absent: everything, as an empty one */
        m->subscription = (msg_subscription_t){
            d_strs(s->dataflows, s->n_dataflows), d_strs(s->areas, s->n_areas)};
    m->structure_hash = d_str(r->structure_hash);
    m->provider = d_str(r->provider);
}

static void
dec_welcome(const Obsync__V1__Welcome *r, msg_welcome_t *m)
{
    m->hub_id = d_str(r->hub_id);
    m->hub_epoch = d_str(r->hub_epoch);
    m->last_origin_seq = r->last_origin_seq;
    m->log_first = r->log_first;
    m->log_last = r->log_last;
    m->snapshot = r->snapshot;
    m->heartbeat_ms = r->heartbeat_ms;
    m->last_origin_hlc = r->last_origin_hlc;
    m->now_ms = r->now_ms;
    m->peer_timeout_ms = r->peer_timeout_ms;
}

static void
dec_publish_ack(dec_t *d, const Obsync__V1__PublishAck *r, msg_publish_ack_t *m)
{
    m->acked_seq = r->acked_seq;
    m->resend_from = r->resend_from;
    m->accepted = r->accepted;
    m->duplicates = r->duplicates;
    m->superseded = r->superseded;
    m->rejected = r->rejected;
    m->rejects = d_issues(d, r->rejects, r->n_rejects);
}

/* ---------------------------------------------------------------- frame */

/* The local API's bodies; false when env's is not one of them. */
static bool
dec_local(dec_t *d, const codec_env_t *env, msg_t *m)
{
    switch (env->body_case) {
    case OBSYNC__V1__ENVELOPE__BODY_ERROR:
        m->u.error =
            (msg_error_t){env->error->code, d_str(env->error->message)};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_PUT:
        dec_put(d, env->put, &m->u.put);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_WRITE_SUMMARY:
        dec_write_summary(d, env->write_summary, &m->u.write_summary);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_GET:
        m->u.get.key = d_key(env->get->key);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_HISTORY:
        m->u.history.key = d_key(env->history->key);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_DELETE:
        m->u.del =
            (msg_delete_t){d_key(env->delete_->key), env->delete_->dry_run};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_QUERY:
        dec_query(env->query, &m->u.query);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_OBS_REPLY:
        dec_obs_reply(d, env->obs_reply, &m->u.obs_reply);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_BEGIN:
        dec_import_begin(env->import_begin, &m->u.import_begin);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_ROWS:
        dec_import_rows(d, env->import_rows, &m->u.import_rows);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_FINISH:
        m->u.import_finish = (msg_import_finish_t){
            env->import_finish->import_id, env->import_finish->abort};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_PROGRESS:
        dec_import_progress(d, env->import_progress, &m->u.import_progress);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_LIST:
        m->u.structure_list = (msg_structure_list_t){
            d_str(env->structure_list->kind), d_str(env->structure_list->urn)};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_LOAD:
        m->u.structure_load =
            (msg_structure_load_t){d_str(env->structure_load->text),
                                   d_str(env->structure_load->source_name),
                                   env->structure_load->dry_run};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_REPLY:
        dec_structure_reply(d, env->structure_reply, &m->u.structure_reply);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STATUS:
        m->u.status.reload = env->status != NULL && env->status->reload;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STATUS_REPLY:
        dec_status_reply(d, env->status_reply, &m->u.status_reply);
        break;
    default:
        return false;
    }
    return true;
}

/* The replication bodies; false when env's is not one of them. */
static bool
dec_repl(dec_t *d, const codec_env_t *env, msg_t *m)
{
    switch (env->body_case) {
    case OBSYNC__V1__ENVELOPE__BODY_HELLO:
        dec_hello(env->hello, &m->u.hello);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_WELCOME:
        dec_welcome(env->welcome, &m->u.welcome);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_PUBLISH:
        m->u.publish = (msg_publish_t){
            env->publish->first_seq, env->publish->last_seq,
            d_changes(d, env->publish->changes, env->publish->n_changes)};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_PUBLISH_ACK:
        dec_publish_ack(d, env->publish_ack, &m->u.publish_ack);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_CREDIT:
        m->u.credit = (msg_credit_t){env->credit->cursor, env->credit->batches,
                                     env->credit->resync};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_LOG_BATCH:
        m->u.log_batch = (msg_log_batch_t){
            env->log_batch->from_seq, env->log_batch->to_seq,
            d_changes(d, env->log_batch->changes, env->log_batch->n_changes),
            env->log_batch->log_last, env->log_batch->log_last_ms};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_BEGIN:
        m->u.snapshot_begin = (msg_snapshot_begin_t){
            env->snapshot_begin->fence_seq, env->snapshot_begin->estimated};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_CHUNK:
        m->u.snapshot_chunk =
            (msg_snapshot_chunk_t){d_changes(d, env->snapshot_chunk->changes,
                                             env->snapshot_chunk->n_changes),
                                   env->snapshot_chunk->sent};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_SNAPSHOT_END:
        m->u.snapshot_end = (msg_snapshot_end_t){env->snapshot_end->fence_seq,
                                                 env->snapshot_end->total};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_UPDATE:
        m->u.structure_update =
            (msg_structure_update_t){d_str(env->structure_update->text),
                                     d_str(env->structure_update->hash)};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_HEARTBEAT:
        m->u.heartbeat =
            (msg_heartbeat_t){env->heartbeat->now_ms, env->heartbeat->cursor};
        break;
    case OBSYNC__V1__ENVELOPE__BODY_GOODBYE:
        m->u.goodbye.reason = d_str(env->goodbye->reason);
        m->u.goodbye.code = env->goodbye->code;
        break;
    default:
        return false;
    }
    return true;
}

/* ---------------------------------------------------------------- scan */

/* ImportRows' rows and cells, and the changes of a Publish, LogBatch or
 * SnapshotChunk, counted on the wire before protobuf-c makes anything of
 * them: a frame of 4 million empty rows is 8 MB and would take protobuf-c
 * 400 MB. Fields are walked, never trusted: a frame whose framing does
 * not hold is left for protobuf-c to refuse (the counts then stop where it
 * broke). Every body of the Envelope counts (protobuf-c keeps the last
 * but unpacks each, under the same budget), as does every entry of the
 * repeated field whatever its wire type. */
typedef struct {
    uint64_t rows, cells, changes;
} scan_t;

/* The next field at *p: its number, wire type and, when length-delimited,
 * its payload. false at the end or where the framing breaks. */
static bool
next_field(const uint8_t **p, const uint8_t *end, uint64_t *num,
           const uint8_t **val, size_t *val_len)
{
    uint64_t key, n;
    if (*p >= end || !codec_varint_get(p, end, &key))
        return false;
    *num = key >> 3;
    *val = NULL;
    *val_len = 0;
    switch (key & 7) {
    case 0: /* varint */
        return codec_varint_get(p, end, &n);
    case 1: /* 64-bit */
    case 5: /* 32-bit */
        n = (key & 7) == 1 ? 8 : 4;
        break;
    case 2: /* length-delimited */
        if (!codec_varint_get(p, end, &n) || n > (uint64_t)(end - *p))
            return false;
        *val = *p;
        *val_len = (size_t)n;
        break;
    default: /* groups and 6, 7: protobuf-c refuses them */
        return false;
    }
    if (n > (uint64_t)(end - *p))
        return false;
    *p += n;
    return true;
}

/* obsync.proto's field numbers */
enum {
    ENVELOPE_IMPORT_ROWS = 19,
    IMPORT_ROWS_ROWS = 2,
    CSV_ROW_CELLS = 2,
    ENVELOPE_PUBLISH = 42,
    PUBLISH_CHANGES = 3,
    ENVELOPE_LOG_BATCH = 45,
    LOG_BATCH_CHANGES = 3,
    ENVELOPE_SNAPSHOT_CHUNK = 47,
    SNAPSHOT_CHUNK_CHANGES = 1,
};

/* The entries of field `field` in the message of val. */
static uint64_t
count_field(const uint8_t *val, size_t len, uint64_t field)
{
    const uint8_t *p = val, *end = val + len, *v;
    uint64_t num, n = 0;
    size_t v_len;
    while (next_field(&p, end, &num, &v, &v_len))
        n += num == field;
    return n;
}

static void
scan_import_rows(const uint8_t *body, size_t len, scan_t *s)
{
    const uint8_t *q = body, *q_end = body + len, *row;
    uint64_t num;
    size_t row_len;
    while (next_field(&q, q_end, &num, &row, &row_len)) {
        if (num != IMPORT_ROWS_ROWS || row == NULL)
            continue;
        s->rows++;
        s->cells += count_field(row, row_len, CSV_ROW_CELLS);
    }
}

static void
scan_frame(const uint8_t *buf, size_t len, scan_t *s)
{
    const uint8_t *p = buf, *end = buf + len, *val;
    uint64_t num;
    size_t val_len;
    while (next_field(&p, end, &num, &val, &val_len)) {
        if (val == NULL)
            continue;
        if (num == ENVELOPE_IMPORT_ROWS)
            scan_import_rows(val, val_len, s);
        else if (num == ENVELOPE_PUBLISH)
            s->changes += count_field(val, val_len, PUBLISH_CHANGES);
        else if (num == ENVELOPE_LOG_BATCH)
            s->changes += count_field(val, val_len, LOG_BATCH_CHANGES);
        else if (num == ENVELOPE_SNAPSHOT_CHUNK)
            s->changes += count_field(val, val_len, SNAPSHOT_CHUNK_CHANGES);
    }
}

static bool
counts_needed(const msg_limits_t *lim)
{
    return lim->max_rows > 0 || lim->max_cells > 0 || lim->max_changes > 0 ||
           lim->budget_per_row > 0 || lim->budget_per_cell > 0;
}

/* ---------------------------------------------------------------- decode */

/* a * b + c, saturated */
static uint64_t
mul_add(uint64_t a, uint64_t b, uint64_t c)
{
    if (b != 0 && a > (UINT64_MAX - c) / b)
        return UINT64_MAX;
    return a * b + c;
}

size_t
msg_decode_budget(size_t len, uint64_t rows, uint64_t cells,
                  const msg_limits_t *lim)
{
    size_t dflt = 32 * len + (size_t)1024 * 1024;
    if (lim == NULL || (lim->budget == 0 && lim->budget_per_byte == 0 &&
                        lim->budget_per_row == 0 && lim->budget_per_cell == 0))
        return dflt;
    uint64_t b = mul_add(len, lim->budget_per_byte, lim->budget);
    b = mul_add(rows, lim->budget_per_row, b);
    b = mul_add(cells, lim->budget_per_cell, b);
    return b < SIZE_MAX ? (size_t)b : SIZE_MAX;
}

int
msg_decode_limited(const uint8_t *buf, size_t len, const msg_limits_t *lim,
                   msg_t **out, msg_refusal_t *why)
{
    *out = NULL;
    msg_refusal_t none = {MSG_LIMIT_NONE, 0, 0};
    if (why == NULL)
        why = &none;
    *why = none;
    size_t max_frame =
        lim->max_frame > 0 && lim->max_frame < (size_t)CODEC_MAX_FRAME
            ? lim->max_frame
            : (size_t)CODEC_MAX_FRAME;
    if (len > max_frame) {
        *why = (msg_refusal_t){MSG_LIMIT_FRAME, len, max_frame};
        return OBS_ETOOBIG;
    }
    scan_t s = {0, 0, 0};
    if (counts_needed(lim))
        scan_frame(buf, len, &s);
    if (lim->max_rows > 0 && s.rows > lim->max_rows) {
        *why = (msg_refusal_t){MSG_LIMIT_ROWS, s.rows, lim->max_rows};
        return OBS_ETOOBIG;
    }
    if (lim->max_cells > 0 && s.cells > lim->max_cells) {
        *why = (msg_refusal_t){MSG_LIMIT_CELLS, s.cells, lim->max_cells};
        return OBS_ETOOBIG;
    }
    if (lim->max_changes > 0 && s.changes > lim->max_changes) {
        *why = (msg_refusal_t){MSG_LIMIT_CHANGES, s.changes, lim->max_changes};
        return OBS_ETOOBIG;
    }
    size_t budget = msg_decode_budget(len, s.rows, s.cells, lim);
    codec_env_t *env = NULL;
    bool over = false;
    int rc =
        codec_envelope_unpack_budget(buf, len, max_frame, budget, &env, &over);
    if (rc != OBS_OK) {
        if (over)
            *why = (msg_refusal_t){MSG_LIMIT_BUDGET, len, budget};
        return rc;
    }
    dec_t d = {codec_envelope_arena(env), OBS_OK, false};
    /* the message and its store in the frame's arena, under its budget */
    struct held {
        msg_t msg;
        struct msg_store store;
    } *h = d_alloc(&d, sizeof(*h));
    if (h != NULL) {
        memset(h, 0, sizeof(*h));
        h->store.env = env;
        h->msg.store = &h->store;
        h->msg.type = (msg_type_t)env->body_case;
        h->msg.corr_id = env->corr_id;
        if (!dec_local(&d, env, &h->msg) && !dec_repl(&d, env, &h->msg))
            d.rc = OBS_EPROTO; /* a body codec_envelope_unpack knows and
                                  we do not: this file is behind the proto */
    }
    if (d.rc != OBS_OK) {
        codec_envelope_free(&env);
        if (d.over) {
            *why = (msg_refusal_t){MSG_LIMIT_BUDGET, len, budget};
            return OBS_ETOOBIG;
        }
        return d.rc;
    }
    *out = &h->msg;
    return OBS_OK;
}

int
msg_decode(const uint8_t *buf, size_t len, size_t max_frame, msg_t **out)
{
    msg_limits_t lim = {.max_frame = max_frame};
    msg_refusal_t why;
    int rc = msg_decode_limited(buf, len, &lim, out, &why);
    /* msg_decode's own budget has always been OBS_ENOMEM */
    return why.limit == MSG_LIMIT_BUDGET ? OBS_ENOMEM : rc;
}

void
msg_destroy(msg_t **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    codec_env_t *env = (*mp)->store ? (*mp)->store->env : NULL;
    *mp = NULL; /* the msg_t lives in env's arena */
    codec_envelope_free(&env);
}
