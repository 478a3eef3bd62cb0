/*
 * msg.h - every obsync message as plain C data, and the one place that
 * turns a message into a frame and a frame into a message.
 *
 * The generated protobuf-c types stay inside proto/ (STYLE.md §2.1): the
 * daemon and libobsync build and read these structs, never an
 * Obsync__V1__* type. A msg_t mirrors obsync.proto's Envelope: `type` is the
 * body's field number, and the body is the member of the union it names.
 *
 * Building: fill a msg_t on the stack; every pointer in it is borrowed for
 * the call to msg_encode (NULL strings encode as ""; an array with n = 0 may
 * be NULL). Reading: msg_decode returns a msg_t that owns everything it
 * points to (strings, arrays, observations live in one arena, freed by
 * msg_destroy). Strings of a decoded message are never NULL ("" when
 * absent), and an absent sub-message reads as all zero / "".
 *
 * Limits: msg_decode refuses a frame over max_frame (and CODEC_MAX_FRAME)
 * before it looks inside, allocates at most 32 * len + 1 MiB for the whole
 * decoded message (protobuf-c's unpacking and the plain structs alike),
 * and holds observations to obs.h's limits (OBS_EPROTO beyond them), so the
 * daemon and the client decode under the same budget. msg_decode_limited
 * holds a frame to tighter limits of the caller's (the local API's: a
 * smaller budget, rows and cells per ImportRows) and says which one
 * refused it.
 */
#ifndef MSG_H
#define MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "obs.h"

/* Body types: obsync.proto's Envelope field numbers. */
typedef enum {
    MSG_NONE = 0,
    MSG_ERROR = 10,
    MSG_PUT = 11,
    MSG_WRITE_SUMMARY = 12,
    MSG_GET = 13,
    MSG_HISTORY = 14,
    MSG_DELETE = 15,
    MSG_QUERY = 16,
    MSG_OBS_REPLY = 17,
    MSG_IMPORT_BEGIN = 18,
    MSG_IMPORT_ROWS = 19,
    MSG_IMPORT_FINISH = 20,
    MSG_IMPORT_PROGRESS = 21,
    MSG_STRUCTURE_LIST = 22,
    MSG_STRUCTURE_LOAD = 23,
    MSG_STRUCTURE_REPLY = 24,
    MSG_STATUS = 25,
    MSG_STATUS_REPLY = 26,
    MSG_HELLO = 40,
    MSG_WELCOME = 41,
    MSG_PUBLISH = 42,
    MSG_PUBLISH_ACK = 43,
    MSG_CREDIT = 44,
    MSG_LOG_BATCH = 45,
    MSG_SNAPSHOT_BEGIN = 46,
    MSG_SNAPSHOT_CHUNK = 47,
    MSG_SNAPSHOT_END = 48,
    MSG_STRUCTURE_UPDATE = 49,
    MSG_HEARTBEAT = 50,
    MSG_GOODBYE = 51,
} msg_type_t;

/** The message's name as in obsync.proto ("Hello"), or "unknown". */
const char *msg_type_name(msg_type_t type);

/* Borrowed bytes (an encoded change, a cursor). */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} msg_bytes_t;

/* A list of strings. */
typedef struct {
    const char *const *items;
    size_t n;
} msg_strs_t;

/* A list of numbers. */
typedef struct {
    const uint64_t *items;
    size_t n;
} msg_u64s_t;

/* ---- shared parts */
typedef struct {
    uint64_t line;
    const char *column, *rule, *message;
    bool warning;
} msg_issue_t;

typedef struct {
    const msg_issue_t *items;
    size_t n;
} msg_issues_t;

typedef struct {
    const char *dataflow, *series_key, *time_period;
} msg_key_ref_t;

/* ---- local API */
typedef struct {
    int32_t code; /* OBS_E* */
    const char *message;
} msg_error_t;

typedef struct {
    uint64_t accepted, unchanged, rejected, deleted, warnings;
    bool committed;
    msg_issues_t issues;
    uint64_t issues_omitted;
    const char *batch_id;
} msg_write_summary_t;

/* Decoded observations are read-only: their strings and arrays live in the
 * message's arena (never obs_fini one; obs_copy it to keep it).
 * An ObsReply's observations are encoded with their version, as
 * codec_obs_encode writes it; a PutRequest's without one (the daemon
 * assigns it), so theirs decodes as all zero. */
typedef struct {
    const obs_t *items;
    size_t n;
} msg_obs_list_t;

typedef struct {
    msg_obs_list_t obs;
    obs_action_t action;
    bool strict, dry_run;
} msg_put_t;

typedef struct {
    msg_key_ref_t key;
} msg_get_t; /* also HistoryRequest */

typedef struct {
    msg_key_ref_t key;
    bool dry_run;
} msg_delete_t;

typedef struct {
    const char *dataflow, *key_pattern, *start_period, *end_period;
    uint64_t updated_after_ms, as_of_ms;
    bool include_deleted;
    uint32_t limit;
    msg_bytes_t resume_after;
} msg_query_t;

typedef struct {
    const char *dataflow;
    msg_strs_t dimension_ids, attribute_ids;
} msg_columns_t;

typedef struct {
    msg_obs_list_t obs;
    const msg_columns_t *columns;
    size_t n_columns;
    msg_bytes_t next;
} msg_obs_reply_t;

typedef struct {
    const char *source_name;
    msg_strs_t header;
    const char *separator;
    bool decimal_comma, strict, dry_run;
    uint64_t header_line;
    msg_strs_t ignore_columns;
    uint64_t commit_rows;
} msg_import_begin_t;

typedef struct {
    uint64_t line;
    msg_strs_t cells;
} msg_csv_row_t;

typedef struct {
    uint64_t import_id;
    const msg_csv_row_t *rows;
    size_t n_rows;
} msg_import_rows_t;

typedef struct {
    uint64_t import_id;
    bool abort;
} msg_import_finish_t;

typedef struct {
    uint64_t import_id, rows_seen, rows_rejected;
    msg_issues_t issues;
    uint64_t rows_committed;
} msg_import_progress_t;

typedef struct {
    const char *kind, *urn, *name;
    uint32_t items;
    const char *text;
} msg_artefact_t;

typedef struct {
    const char *kind, *urn;
} msg_structure_list_t;

typedef struct {
    const char *text, *source_name;
    bool dry_run;
} msg_structure_load_t;

typedef struct {
    const msg_artefact_t *artefacts;
    size_t n_artefacts;
    msg_issues_t issues;
    uint32_t loaded;
} msg_structure_reply_t;

/* One replication peer as the hub sees it (StatusReply.peers). */
typedef struct {
    const char *node_id;
    bool up;
    uint64_t last_seen_ms;
    const char *address;
    uint64_t cursor, lag_changes, lag_ms, accepted, rejected, conflicts;
    uint64_t bytes_in, bytes_out;
    const char *state;
    uint64_t duplicates, last_origin_seq, clock_refused;
    const char *link;
    uint64_t rate_out_bps, rate_in_bps, reconnects;
    const char *key;
    msg_strs_t refused_reasons;
    msg_u64s_t refused_counts;
} msg_peer_status_t;

typedef struct {
    const char *node_id, *role, *epoch;
    uint64_t observations, tombstones, history_versions, outbox_depth;
    uint64_t last_origin_seq, hlc, map_size, map_used, uptime_s;
    const char *provider;
    msg_strs_t dataflows;
    uint64_t commits, writes_grouped, hub_cursor;
    const char *hub_endpoint, *repl_state;
    uint64_t lag_changes, lag_ms, log_first, log_last;
    const msg_peer_status_t *peers;
    size_t n_peers;
    uint64_t outbox_acked, snapshots, state_applied, batches_shared;
    bool clock_known;
    int64_t clock_skew_ms;
    uint64_t restamped, renumbered, pending_rejects;
    const char *link;
    uint64_t rate_in_bps, rate_out_bps, reconnects, apply_rate, eta_s;
    const char *security, *public_key, *hub_key;
    uint64_t allowed_keys;
    msg_strs_t refused_reasons;
    msg_u64s_t refused_counts;
    uint64_t connections, pending_hello, handshake_failures, backoffs;
    const char *reload;
} msg_status_reply_t;

typedef struct {
    bool reload;
} msg_status_t;

/* ---- replication */
typedef struct {
    msg_strs_t dataflows, areas; /* empty: everything */
} msg_subscription_t;

typedef struct {
    const char *node_id, *node_epoch;
    uint64_t cursor;
    const char *hub_epoch;
    msg_subscription_t subscription;
    const char *structure_hash, *provider;
} msg_hello_t;

typedef struct {
    const char *hub_id, *hub_epoch;
    uint64_t last_origin_seq, log_first, log_last;
    bool snapshot;
    uint32_t heartbeat_ms;
    uint64_t last_origin_hlc, now_ms;
    uint32_t peer_timeout_ms;
} msg_welcome_t;

/* Changes are encoded Observations (codec.h), borrowed when encoding and
 * pointing into the message when decoded. */
typedef struct {
    const msg_bytes_t *items;
    size_t n;
} msg_changes_t;

typedef struct {
    uint64_t first_seq, last_seq;
    msg_changes_t changes;
} msg_publish_t;

typedef struct {
    uint64_t acked_seq, resend_from, accepted, duplicates, superseded;
    uint64_t rejected;
    msg_issues_t rejects;
} msg_publish_ack_t;

typedef struct {
    uint64_t cursor;
    uint32_t batches;
    bool resync;
} msg_credit_t;

typedef struct {
    uint64_t from_seq, to_seq;
    msg_changes_t changes;
    uint64_t log_last, log_last_ms;
} msg_log_batch_t;

typedef struct {
    uint64_t fence_seq, estimated;
} msg_snapshot_begin_t;

typedef struct {
    msg_changes_t changes;
    uint64_t sent;
} msg_snapshot_chunk_t;

typedef struct {
    uint64_t fence_seq, total;
} msg_snapshot_end_t;

typedef struct {
    const char *text, *hash;
} msg_structure_update_t;

typedef struct {
    uint64_t now_ms, cursor;
} msg_heartbeat_t;

typedef struct {
    const char *reason;
    int32_t code; /* 0: a clean stop; else OBS_E* (PROTOCOL.md §5.3) */
} msg_goodbye_t;

/* One frame. Empty request bodies (StatusRequest) have no member. */
typedef struct msg {
    msg_type_t type;
    uint64_t corr_id;
    union {
        msg_error_t error;
        msg_put_t put;
        msg_write_summary_t write_summary;
        msg_get_t get;
        msg_get_t history;
        msg_delete_t del;
        msg_query_t query;
        msg_obs_reply_t obs_reply;
        msg_import_begin_t import_begin;
        msg_import_rows_t import_rows;
        msg_import_finish_t import_finish;
        msg_import_progress_t import_progress;
        msg_structure_list_t structure_list;
        msg_structure_load_t structure_load;
        msg_structure_reply_t structure_reply;
        msg_status_t status;
        msg_status_reply_t status_reply;
        msg_hello_t hello;
        msg_welcome_t welcome;
        msg_publish_t publish;
        msg_publish_ack_t publish_ack;
        msg_credit_t credit;
        msg_log_batch_t log_batch;
        msg_snapshot_begin_t snapshot_begin;
        msg_snapshot_chunk_t snapshot_chunk;
        msg_snapshot_end_t snapshot_end;
        msg_structure_update_t structure_update;
        msg_heartbeat_t heartbeat;
        msg_goodbye_t goodbye;
    } u;
    struct msg_store *store; /* decoded: what the pointers point into */
} msg_t;

/** Encodes m as one frame (Envelope, version CODEC_VERSION) into a malloc'd
 * *buf (caller frees) of *len bytes. Borrows everything in m. OBS_ENOMEM,
 * OBS_EINVAL (type MSG_NONE or unknown), OBS_ETOOBIG (an observation over
 * obs.h's limits, or a frame over CODEC_MAX_FRAME). */
int msg_encode(const msg_t *m, uint8_t **buf, size_t *len);

/** Decodes one frame. OBS_OK: *out is owned by the caller (msg_destroy).
 * Errors (*out stays NULL): OBS_ETOOBIG (len over max_frame or
 * CODEC_MAX_FRAME), OBS_EVERSION (another major version), OBS_EPROTO
 * (malformed, no body, an unknown body type, over a limit), OBS_ENOMEM
 * (also: past the allocation budget). */
int msg_decode(const uint8_t *buf, size_t len, size_t max_frame, msg_t **out);

/* Limits of msg_decode_limited. A zero field adds no limit of its own.
 * The budget is a cost model of the frame: budget + budget_per_byte * len
 * + budget_per_row * rows + budget_per_cell * cells (rows and cells of an
 * ImportRows, counted on the wire); all four zero: msg_decode's 32 * len
 * + 1 MiB. protobuf-c takes some 90 bytes per cell and 100 per row
 * whatever their size (a frame of empty cells decodes ~30x larger), so
 * the model lets the many small cells of an honest import decode, where a
 * flat multiple of len would have to be that large for every frame; with
 * max_rows and max_cells it bounds every frame absolutely. */
typedef struct {
    size_t max_frame; /* frame length (never over CODEC_MAX_FRAME) */
    size_t budget, budget_per_byte, budget_per_row, budget_per_cell;
    /* the budget may be over msg_decode's for some frames (many empty
     * cells): bound rows and cells too */
    size_t max_rows;  /* ImportRows: rows in one frame */
    size_t max_cells; /* ImportRows: cells in one frame, every row's */
    /* Publish, LogBatch, SnapshotChunk: changes in one frame (replication
     * could hold a Publish to PROTOCOL.md's 1,000 before unpacking it) */
    size_t max_changes;
} msg_limits_t;

/* Which limit refused a frame. */
typedef enum {
    MSG_LIMIT_NONE = 0, /* none: decoded, or refused as malformed etc. */
    MSG_LIMIT_FRAME,    /* got: the frame's length */
    MSG_LIMIT_BUDGET,   /* got: the frame's length; max: the budget */
    MSG_LIMIT_ROWS,     /* got: the rows of the ImportRows */
    MSG_LIMIT_CELLS,    /* got: the cells of the ImportRows */
    MSG_LIMIT_CHANGES,  /* got: the changes of the Publish etc. */
} msg_limit_t;

typedef struct {
    msg_limit_t limit;
    uint64_t got;
    size_t max; /* the limit's value */
} msg_refusal_t;

/** msg_decode under lim. Rows, cells and changes are counted on the wire
 * before anything is unpacked (every ImportRows, Publish, LogBatch and
 * SnapshotChunk body of the Envelope, each of their entries), so a frame
 * over them costs no allocation; the
 * budget is enforced as protobuf-c allocates. A frame over any limit of
 * lim is OBS_ETOOBIG, and *why (when non-NULL) names the limit, what the
 * frame had and the limit's value; OBS_ENOMEM is then a failing malloc
 * only. Other errors as msg_decode, with why->limit MSG_LIMIT_NONE. */
int msg_decode_limited(const uint8_t *buf, size_t len, const msg_limits_t *lim,
                       msg_t **out, msg_refusal_t *why);

/** The budget msg_decode_limited gives a frame of len bytes with rows
 * and cells (ImportRows; else 0) under lim (NULL: msg_decode's). */
size_t msg_decode_budget(size_t len, uint64_t rows, uint64_t cells,
                         const msg_limits_t *lim);

/** Frees a decoded message and sets *mp to NULL. NULL-safe. */
void msg_destroy(msg_t **mp);

#endif
