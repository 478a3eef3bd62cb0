/*
 * msg_fixtures.h - fixed, realistic content for every message of msg.h
 * (violence and drug-use observations of the starter structure), and a
 * field-by-field comparison of two messages, for test_msg.c (round trips)
 * and test_golden_frames.c (tests/golden/frames/v1).
 *
 * The content is frozen: the golden frames were made from it, so changing
 * a value here breaks unit.golden_frames on purpose (tests/golden/README.md
 * says when a frame may be remade). Header-only; everything is static, so
 * each test file gets its own copy. Include it after cmocka.h.
 */
#ifndef OBSYNC_MSG_FIXTURES_H
#define OBSYNC_MSG_FIXTURES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "msg.h"
#include "obs_err.h"

/* Every body type, in field-number order: X(type). */
#define FX_TYPES(X)         \
    X(MSG_ERROR)            \
    X(MSG_PUT)              \
    X(MSG_WRITE_SUMMARY)    \
    X(MSG_GET)              \
    X(MSG_HISTORY)          \
    X(MSG_DELETE)           \
    X(MSG_QUERY)            \
    X(MSG_OBS_REPLY)        \
    X(MSG_IMPORT_BEGIN)     \
    X(MSG_IMPORT_ROWS)      \
    X(MSG_IMPORT_FINISH)    \
    X(MSG_IMPORT_PROGRESS)  \
    X(MSG_STRUCTURE_LIST)   \
    X(MSG_STRUCTURE_LOAD)   \
    X(MSG_STRUCTURE_REPLY)  \
    X(MSG_STATUS)           \
    X(MSG_STATUS_REPLY)     \
    X(MSG_HELLO)            \
    X(MSG_WELCOME)          \
    X(MSG_PUBLISH)          \
    X(MSG_PUBLISH_ACK)      \
    X(MSG_CREDIT)           \
    X(MSG_LOG_BATCH)        \
    X(MSG_SNAPSHOT_BEGIN)   \
    X(MSG_SNAPSHOT_CHUNK)   \
    X(MSG_SNAPSHOT_END)     \
    X(MSG_STRUCTURE_UPDATE) \
    X(MSG_HEARTBEAT)        \
    X(MSG_GOODBYE)

#define FX_TYPE_ITEM(t) t,
static const msg_type_t fx_types[] = {FX_TYPES(FX_TYPE_ITEM)};
#undef FX_TYPE_ITEM
#define FX_N_TYPES (sizeof(fx_types) / sizeof(fx_types[0]))

/* ---------------------------------------------------------------- content */

#define FX_VIOLENCE "OID:DF_VIOLENCE(1.0)"
#define FX_DRUG_USE "OID:DF_DRUG_USE(1.0)"
#define FX_COL_KEY  "A.COL.VC_IHR_PSRC._T._T._T.HARM"

static char *fx_col_dims[] = {"A",  "COL", "VC_IHR_PSRC", "_T",
                              "_T", "_T",  "HARM"};
static char *fx_bhs_dims[] = {"A",        "BHS", "GENPOP", "PREV_PY",
                              "CANNABIS", "_T",  "Y12T65"};
static obs_attr_t fx_col_attrs[] = {{"OBS_STATUS", "A"},
                                    {"SOURCE_DETAIL",
                                     "World Bank WDI VC.IHR.PSRC.P5 "
                                     "(UNODC/WHO), 2025-10-07"},
                                    {"UNIT_MEASURE", "PER_100000_POP"}};
static obs_attr_t fx_bhs_attrs[] = {
    {"SOURCE_DETAIL", "ARQ"}, {"SURVEY_METHOD", "HHS"}, {"UNIT_MEASURE", "PT"}};

/* The two observations of a PutRequest: no version (the daemon assigns
 * it), attributes sorted as a decoder leaves them. */
static const obs_t fx_put_obs[] = {
    {.dataflow = FX_VIOLENCE,
     .n_dims = 7,
     .dims = fx_col_dims,
     .time_period = "2016",
     .value = "12.096",
     .n_attrs = 3,
     .attrs = fx_col_attrs},
    {.dataflow = FX_DRUG_USE,
     .n_dims = 7,
     .dims = fx_bhs_dims,
     .time_period = "2017",
     .value = "3.1",
     .n_attrs = 3,
     .attrs = fx_bhs_attrs},
};

/* The same two as stored and replicated: with their versions. */
static const obs_t fx_stored_obs[] = {
    {.dataflow = FX_VIOLENCE,
     .n_dims = 7,
     .dims = fx_col_dims,
     .time_period = "2016",
     .value = "12.096",
     .n_attrs = 3,
     .attrs = fx_col_attrs,
     .ver = {.hlc = (UINT64_C(1719396000123) << 16) | 2,
             .origin = "node-col",
             .origin_seq = 41,
             .provider = "COL",
             .base_hlc = (UINT64_C(1719309600000) << 16),
             .base_origin = "hub-oid",
             .base_origin_seq = 7,
             .action = OBS_ACTION_REPLACE,
             .batch_id = "col-20240626-0001",
             .content_hash = {0x3b, 0x9a, 0x41, 0x07, 0xd2, 0x5e, 0x88, 0x10,
                              0xc4, 0x6f, 0x2d, 0x93, 0x1a, 0xe7, 0x55, 0x0b,
                              0x8c, 0x21, 0xf6, 0x4d, 0x90, 0x3e, 0xa8, 0x17,
                              0x62, 0xbd, 0x05, 0xc9, 0x7e, 0x34, 0xd1, 0x58},
             .hub_seq = 1001}},
    {.dataflow = FX_DRUG_USE,
     .n_dims = 7,
     .dims = fx_bhs_dims,
     .time_period = "2017",
     .value = "3.1",
     .n_attrs = 3,
     .attrs = fx_bhs_attrs,
     .ver = {.hlc = (UINT64_C(1719396000456) << 16),
             .origin = "node-bhs",
             .origin_seq = 9,
             .provider = "BHS",
             .action = OBS_ACTION_MERGE,
             .batch_id = "bhs-arq-2017",
             .content_hash = {0xa0, 0x11, 0x52, 0x93, 0xe4, 0x25, 0x66, 0xb7,
                              0x08, 0x49, 0x8a, 0xcb, 0x1c, 0x5d, 0x9e, 0xdf,
                              0x20, 0x61, 0xa2, 0xe3, 0x34, 0x75, 0xb6, 0xf7,
                              0x48, 0x89, 0xca, 0x0b, 0x5c, 0x9d, 0xde, 0x1f},
             .tombstone = false,
             .hub_seq = 1002}},
};

static const msg_issue_t fx_issues[] = {
    {14, "OBS_VALUE", "R4-decimal", "OBS_VALUE '@' is not a decimal number",
     false},
    {27, "TIME_PERIOD", "R3-time", "TIME_PERIOD 2106 is after the year 2100",
     true},
};

static const char *const fx_dataflows[] = {FX_VIOLENCE, FX_DRUG_USE};
static const char *const fx_areas[] = {"COL", "BHS", "MEX"};
static const char *const fx_col_dim_ids[] = {
    "FREQ", "REF_AREA", "INDICATOR", "SEX", "AGE", "BREAKDOWN", "SOURCE_TYPE"};
static const char *const fx_col_attr_ids[] = {"UNIT_MEASURE", "OBS_STATUS",
                                              "SOURCE_DETAIL", "COMMENT_OBS"};
static const msg_columns_t fx_columns[] = {
    {FX_VIOLENCE, {fx_col_dim_ids, 7}, {fx_col_attr_ids, 4}}};

static const char *const fx_header[] = {
    "STRUCTURE",   "STRUCTURE_ID", "ACTION",      "FREQ", "REF_AREA",
    "POP_GROUP",   "INDICATOR",    "SUBSTANCE",   "SEX",  "AGE_GROUP",
    "TIME_PERIOD", "OBS_VALUE",    "UNIT_MEASURE"};
static const char *const fx_ignore[] = {"COMMENT_OBS", "TIME_DETAIL"};
static const char *const fx_row2[] = {
    "dataflow", FX_DRUG_USE, "M",      "A",    "BHS", "GENPOP", "PREV_PY",
    "CANNABIS", "_T",        "Y12T65", "2017", "3.1", "PT"};
static const char *const fx_row3[] = {
    "dataflow", FX_DRUG_USE, "M",      "A",    "BHS", "GENPOP", "PREV_PY",
    "CANNABIS", "M",         "Y12T65", "2017", "5",   "PT"};
static const msg_csv_row_t fx_rows[] = {{2, {fx_row2, 13}}, {3, {fx_row3, 13}}};

static const msg_artefact_t fx_artefacts[] = {
    {"codelist", "OID:CL_FREQ(1.0)", "Frequency", 6,
     "codelist OID:CL_FREQ(1.0) \"Frequency\"\n  code A \"Annual\"\n"},
    {"dataflow", FX_VIOLENCE, "Intentional homicide and violence", 7, ""},
};

static const char fx_structure_text[] = "codelist OID:CL_SEX(1.0) \"Sex\"\n"
                                        "  code F \"Female\"\n"
                                        "  code M \"Male\"\n"
                                        "  code _T \"Total\"\n"
                                        "end\n";
#define FX_STRUCTURE_HASH \
    "9f2c4e71b0a85d3361e7c2f04ab9d58e1c7f60a2e43b95d8071cf4a62e9b3d05"

static const msg_peer_status_t fx_peers[] = {
    {.node_id = "node-col",
     .up = true,
     .last_seen_ms = UINT64_C(1719396001000),
     .address = "10.0.4.17",
     .cursor = 1001,
     .lag_changes = 4,
     .lag_ms = 350,
     .accepted = 120,
     .rejected = 2,
     .conflicts = 1,
     .bytes_in = 48213,
     .bytes_out = 1048576,
     .state = "streaming",
     .duplicates = 3,
     .last_origin_seq = 41,
     .clock_refused = 0,
     .link = "ok",
     .rate_out_bps = 250000,
     .rate_in_bps = 12000,
     .reconnects = 1},
};

static const uint8_t fx_cursor[] = {0x00, 0x14, 'O', 'I', 'D', 0x1f, 0xa0};
static const uint8_t fx_resume[] = {0x00, 0x14, 'O', 'I', 'D', 0x1f, 0x07};

/* The changes of Publish, LogBatch and SnapshotChunk: fx_stored_obs as
 * codec_obs_encode writes them (made once; see fx_fini). */
static uint8_t *fx_change_buf[2];
static msg_bytes_t fx_change_list[2];

static inline msg_changes_t
fx_changes(void)
{
    for (size_t i = 0; i < 2; i++) {
        if (fx_change_buf[i] != NULL)
            continue;
        size_t len = 0;
        if (codec_obs_encode(&fx_stored_obs[i], &fx_change_buf[i], &len) !=
            OBS_OK)
            abort();
        fx_change_list[i] = (msg_bytes_t){fx_change_buf[i], len};
    }
    return (msg_changes_t){fx_change_list, 2};
}

static inline void
fx_fini(void)
{
    for (size_t i = 0; i < 2; i++) {
        free(fx_change_buf[i]);
        fx_change_buf[i] = NULL;
    }
}

/* The local API's messages. */
static inline void
fx_build_local(msg_type_t t, msg_t *m)
{
    switch (t) {
    case MSG_ERROR:
        m->u.error = (msg_error_t){OBS_ENOENT, "no observation " FX_VIOLENCE
                                               " " FX_COL_KEY " 2015"};
        break;
    case MSG_PUT:
        m->u.put =
            (msg_put_t){{fx_put_obs, 2}, OBS_ACTION_REPLACE, true, false};
        break;
    case MSG_WRITE_SUMMARY:
        m->u.write_summary = (msg_write_summary_t){
            120, 3, 2, 1, 1, true, {fx_issues, 2}, 5, "col-20240626-0001"};
        break;
    case MSG_GET:
        m->u.get.key = (msg_key_ref_t){FX_VIOLENCE, FX_COL_KEY, "2016"};
        break;
    case MSG_HISTORY:
        m->u.history.key = (msg_key_ref_t){FX_VIOLENCE, FX_COL_KEY, "2015"};
        break;
    case MSG_DELETE:
        m->u.del = (msg_delete_t){
            {FX_DRUG_USE, "A.BHS.GENPOP.PREV_PY.CANNABIS._T.Y12T65", "2017"},
            true};
        break;
    case MSG_QUERY:
        m->u.query = (msg_query_t){FX_VIOLENCE,
                                   "A.COL.....",
                                   "2010",
                                   "2020-12",
                                   UINT64_C(1719300000000),
                                   UINT64_C(1719396000000),
                                   true,
                                   500,
                                   {fx_resume, sizeof(fx_resume)}};
        break;
    case MSG_OBS_REPLY:
        m->u.obs_reply = (msg_obs_reply_t){
            {fx_stored_obs, 2}, fx_columns, 1, {fx_cursor, sizeof(fx_cursor)}};
        break;
    case MSG_IMPORT_BEGIN:
        m->u.import_begin = (msg_import_begin_t){"drug_use_wdr2025.csv",
                                                 {fx_header, 13},
                                                 ",",
                                                 true,
                                                 false,
                                                 true,
                                                 1,
                                                 {fx_ignore, 2},
                                                 5000};
        break;
    case MSG_IMPORT_ROWS:
        m->u.import_rows = (msg_import_rows_t){3, fx_rows, 2};
        break;
    case MSG_IMPORT_FINISH:
        m->u.import_finish = (msg_import_finish_t){3, true};
        break;
    case MSG_IMPORT_PROGRESS:
        m->u.import_progress =
            (msg_import_progress_t){3, 2000, 4, {fx_issues, 1}, 1000};
        break;
    case MSG_STRUCTURE_LIST:
        m->u.structure_list = (msg_structure_list_t){"dataflow", FX_DRUG_USE};
        break;
    case MSG_STRUCTURE_LOAD:
        m->u.structure_load =
            (msg_structure_load_t){fx_structure_text, "sex.structure", true};
        break;
    case MSG_STRUCTURE_REPLY:
        m->u.structure_reply =
            (msg_structure_reply_t){fx_artefacts, 2, {fx_issues + 1, 1}, 2};
        break;
    default:
        break;
    }
}

static inline void
fx_build_status(msg_t *m)
{
    msg_status_reply_t *s = &m->u.status_reply;
    *s = (msg_status_reply_t){.node_id = "hub-oid",
                              .role = "hub",
                              .epoch = "e-5f1c0a93",
                              .observations = 48213,
                              .tombstones = 17,
                              .history_versions = 51022,
                              .outbox_depth = 0,
                              .last_origin_seq = 88,
                              .hlc = (UINT64_C(1719396001000) << 16) | 5,
                              .map_size = UINT64_C(1073741824),
                              .map_used = UINT64_C(52428800),
                              .uptime_s = 86400,
                              .provider = "OID",
                              .dataflows = {fx_dataflows, 2},
                              .commits = 311,
                              .writes_grouped = 1204,
                              .hub_cursor = 0,
                              .hub_endpoint = "tcp://0.0.0.0:7420",
                              .repl_state = "",
                              .lag_changes = 0,
                              .lag_ms = 0,
                              .log_first = 1,
                              .log_last = 1005,
                              .peers = fx_peers,
                              .n_peers = 1,
                              .outbox_acked = 0,
                              .snapshots = 2,
                              .state_applied = 1005,
                              .batches_shared = 12,
                              .clock_known = true,
                              .clock_skew_ms = -42,
                              .restamped = 1,
                              .renumbered = 0,
                              .pending_rejects = 0,
                              .link = "ok",
                              .rate_in_bps = 12000,
                              .rate_out_bps = 250000,
                              .reconnects = 2,
                              .apply_rate = 900,
                              .eta_s = 0};
}

/* The replication messages. */
static inline void
fx_build_repl(msg_type_t t, msg_t *m)
{
    switch (t) {
    case MSG_HELLO:
        m->u.hello = (msg_hello_t){"node-col",
                                   "e-77b30d12",
                                   1001,
                                   "e-5f1c0a93",
                                   {{fx_dataflows, 2}, {fx_areas, 1}},
                                   FX_STRUCTURE_HASH,
                                   "COL"};
        break;
    case MSG_WELCOME:
        m->u.welcome = (msg_welcome_t){"hub-oid",
                                       "e-5f1c0a93",
                                       41,
                                       1,
                                       1005,
                                       false,
                                       1000,
                                       (UINT64_C(1719396000123) << 16) | 2,
                                       UINT64_C(1719396002000),
                                       0}; /* peer_timeout_ms came later */
        break;
    case MSG_PUBLISH:
        m->u.publish = (msg_publish_t){41, 42, fx_changes()};
        break;
    case MSG_PUBLISH_ACK:
        m->u.publish_ack =
            (msg_publish_ack_t){42, 0, 1, 0, 1, 1, {fx_issues, 1}};
        break;
    case MSG_CREDIT:
        m->u.credit = (msg_credit_t){1001, 3, true};
        break;
    case MSG_LOG_BATCH:
        m->u.log_batch = (msg_log_batch_t){1000, 1002, fx_changes(), 1005,
                                           UINT64_C(1719396001000)};
        break;
    case MSG_SNAPSHOT_BEGIN:
        m->u.snapshot_begin = (msg_snapshot_begin_t){1005, 48213};
        break;
    case MSG_SNAPSHOT_CHUNK:
        m->u.snapshot_chunk = (msg_snapshot_chunk_t){fx_changes(), 2};
        break;
    case MSG_SNAPSHOT_END:
        m->u.snapshot_end = (msg_snapshot_end_t){1005, 48213};
        break;
    case MSG_STRUCTURE_UPDATE:
        m->u.structure_update =
            (msg_structure_update_t){fx_structure_text, FX_STRUCTURE_HASH};
        break;
    case MSG_HEARTBEAT:
        m->u.heartbeat = (msg_heartbeat_t){UINT64_C(1719396002500), 1005};
        break;
    case MSG_GOODBYE:
        m->u.goodbye.reason = "another session of node-col opened";
        /* code came later: 0, as the frame has none (test_msg.c has it) */
        break;
    default:
        break;
    }
}

/* m = the fixed content of type t. Local API frames carry a corr_id,
 * replication frames none, as the daemon and the client send them. */
static inline void
fx_build(msg_type_t t, msg_t *m)
{
    memset(m, 0, sizeof(*m));
    m->type = t;
    m->corr_id = (int)t < (int)MSG_HELLO ? 7 : 0;
    if (t == MSG_STATUS_REPLY)
        fx_build_status(m);
    else if ((int)t < (int)MSG_HELLO)
        fx_build_local(t, m);
    else
        fx_build_repl(t, m);
}

/* ---------------------------------------------------------------- compare */

/* want's NULL reads as "" (a decoded string is never NULL). */
#define FX_STR(f) assert_string_equal((w->f) ? (w->f) : "", (g->f))
#define FX_U(f)   assert_true((uint64_t)(w->f) == (uint64_t)(g->f))

static inline void
fx_eq_strs(msg_strs_t w, msg_strs_t g)
{
    assert_int_equal(w.n, g.n);
    for (size_t i = 0; i < w.n; i++)
        assert_string_equal(w.items[i], g.items[i]);
}

static inline void
fx_eq_bytes(msg_bytes_t w, msg_bytes_t g)
{
    assert_int_equal(w.len, g.len);
    if (w.len > 0)
        assert_memory_equal(w.ptr, g.ptr, w.len);
}

static inline void
fx_eq_changes(msg_changes_t w, msg_changes_t g)
{
    assert_int_equal(w.n, g.n);
    for (size_t i = 0; i < w.n; i++)
        fx_eq_bytes(w.items[i], g.items[i]);
}

static inline void
fx_eq_issues(msg_issues_t wl, msg_issues_t gl)
{
    assert_int_equal(wl.n, gl.n);
    for (size_t i = 0; i < wl.n; i++) {
        const msg_issue_t *w = &wl.items[i], *g = &gl.items[i];
        FX_U(line);
        FX_STR(column);
        FX_STR(rule);
        FX_STR(message);
        FX_U(warning);
    }
}

static inline void
fx_eq_key(const msg_key_ref_t *w, const msg_key_ref_t *g)
{
    FX_STR(dataflow);
    FX_STR(series_key);
    FX_STR(time_period);
}

static inline void
fx_eq_version(const obs_version_t *w, const obs_version_t *g)
{
    FX_U(hlc);
    assert_string_equal(w->origin, g->origin);
    FX_U(origin_seq);
    assert_string_equal(w->provider, g->provider);
    FX_U(base_hlc);
    assert_string_equal(w->base_origin, g->base_origin);
    FX_U(base_origin_seq);
    FX_U(action);
    assert_string_equal(w->batch_id, g->batch_id);
    assert_memory_equal(w->content_hash, g->content_hash, OBS_HASH_LEN);
    FX_U(tombstone);
    FX_U(hub_seq);
}

static inline void
fx_eq_obs(msg_obs_list_t wl, msg_obs_list_t gl)
{
    assert_int_equal(wl.n, gl.n);
    for (size_t i = 0; i < wl.n; i++) {
        const obs_t *w = &wl.items[i], *g = &gl.items[i];
        FX_STR(dataflow);
        FX_U(n_dims);
        for (size_t d = 0; d < w->n_dims; d++)
            assert_string_equal(w->dims[d], g->dims[d]);
        FX_STR(time_period);
        FX_STR(value);
        FX_U(n_attrs);
        for (size_t a = 0; a < w->n_attrs; a++) {
            assert_string_equal(w->attrs[a].id, g->attrs[a].id);
            assert_string_equal(w->attrs[a].value, g->attrs[a].value);
        }
        fx_eq_version(&w->ver, &g->ver);
    }
}

static inline void
fx_eq_write_summary(const msg_write_summary_t *w, const msg_write_summary_t *g)
{
    FX_U(accepted);
    FX_U(unchanged);
    FX_U(rejected);
    FX_U(deleted);
    FX_U(warnings);
    FX_U(committed);
    fx_eq_issues(w->issues, g->issues);
    FX_U(issues_omitted);
    FX_STR(batch_id);
}

static inline void
fx_eq_query(const msg_query_t *w, const msg_query_t *g)
{
    FX_STR(dataflow);
    FX_STR(key_pattern);
    FX_STR(start_period);
    FX_STR(end_period);
    FX_U(updated_after_ms);
    FX_U(as_of_ms);
    FX_U(include_deleted);
    FX_U(limit);
    fx_eq_bytes(w->resume_after, g->resume_after);
}

static inline void
fx_eq_obs_reply(const msg_obs_reply_t *w, const msg_obs_reply_t *g)
{
    fx_eq_obs(w->obs, g->obs);
    FX_U(n_columns);
    for (size_t i = 0; i < w->n_columns; i++) {
        assert_string_equal(w->columns[i].dataflow, g->columns[i].dataflow);
        fx_eq_strs(w->columns[i].dimension_ids, g->columns[i].dimension_ids);
        fx_eq_strs(w->columns[i].attribute_ids, g->columns[i].attribute_ids);
    }
    fx_eq_bytes(w->next, g->next);
}

static inline void
fx_eq_import_begin(const msg_import_begin_t *w, const msg_import_begin_t *g)
{
    FX_STR(source_name);
    fx_eq_strs(w->header, g->header);
    FX_STR(separator);
    FX_U(decimal_comma);
    FX_U(strict);
    FX_U(dry_run);
    FX_U(header_line);
    fx_eq_strs(w->ignore_columns, g->ignore_columns);
    FX_U(commit_rows);
}

static inline void
fx_eq_import_rows(const msg_import_rows_t *w, const msg_import_rows_t *g)
{
    FX_U(import_id);
    FX_U(n_rows);
    for (size_t i = 0; i < w->n_rows; i++) {
        assert_true(w->rows[i].line == g->rows[i].line);
        fx_eq_strs(w->rows[i].cells, g->rows[i].cells);
    }
}

static inline void
fx_eq_import_progress(const msg_import_progress_t *w,
                      const msg_import_progress_t *g)
{
    FX_U(import_id);
    FX_U(rows_seen);
    FX_U(rows_rejected);
    fx_eq_issues(w->issues, g->issues);
    FX_U(rows_committed);
}

static inline void
fx_eq_structure_reply(const msg_structure_reply_t *w,
                      const msg_structure_reply_t *g)
{
    FX_U(n_artefacts);
    for (size_t i = 0; i < w->n_artefacts; i++) {
        const msg_artefact_t *wa = &w->artefacts[i], *ga = &g->artefacts[i];
        assert_string_equal(wa->kind, ga->kind);
        assert_string_equal(wa->urn, ga->urn);
        assert_string_equal(wa->name, ga->name);
        assert_int_equal(wa->items, ga->items);
        assert_string_equal(wa->text, ga->text);
    }
    fx_eq_issues(w->issues, g->issues);
    FX_U(loaded);
}

static inline void
fx_eq_peer(const msg_peer_status_t *w, const msg_peer_status_t *g)
{
    FX_STR(node_id);
    FX_U(up);
    FX_U(last_seen_ms);
    FX_STR(address);
    FX_U(cursor);
    FX_U(lag_changes);
    FX_U(lag_ms);
    FX_U(accepted);
    FX_U(rejected);
    FX_U(conflicts);
    FX_U(bytes_in);
    FX_U(bytes_out);
    FX_STR(state);
    FX_U(duplicates);
    FX_U(last_origin_seq);
    FX_U(clock_refused);
    FX_STR(link);
    FX_U(rate_out_bps);
    FX_U(rate_in_bps);
    FX_U(reconnects);
}

static inline void
fx_eq_status_reply(const msg_status_reply_t *w, const msg_status_reply_t *g)
{
    FX_STR(node_id);
    FX_STR(role);
    FX_STR(epoch);
    FX_U(observations);
    FX_U(tombstones);
    FX_U(history_versions);
    FX_U(outbox_depth);
    FX_U(last_origin_seq);
    FX_U(hlc);
    FX_U(map_size);
    FX_U(map_used);
    FX_U(uptime_s);
    FX_STR(provider);
    fx_eq_strs(w->dataflows, g->dataflows);
    FX_U(commits);
    FX_U(writes_grouped);
    FX_U(hub_cursor);
    FX_STR(hub_endpoint);
    FX_STR(repl_state);
    FX_U(lag_changes);
    FX_U(lag_ms);
    FX_U(log_first);
    FX_U(log_last);
    FX_U(n_peers);
    for (size_t i = 0; i < w->n_peers; i++)
        fx_eq_peer(&w->peers[i], &g->peers[i]);
    FX_U(outbox_acked);
    FX_U(snapshots);
    FX_U(state_applied);
    FX_U(batches_shared);
    FX_U(clock_known);
    assert_true(w->clock_skew_ms == g->clock_skew_ms);
    FX_U(restamped);
    FX_U(renumbered);
    FX_U(pending_rejects);
    FX_STR(link);
    FX_U(rate_in_bps);
    FX_U(rate_out_bps);
    FX_U(reconnects);
    FX_U(apply_rate);
    FX_U(eta_s);
}

static inline void
fx_eq_hello(const msg_hello_t *w, const msg_hello_t *g)
{
    FX_STR(node_id);
    FX_STR(node_epoch);
    FX_U(cursor);
    FX_STR(hub_epoch);
    fx_eq_strs(w->subscription.dataflows, g->subscription.dataflows);
    fx_eq_strs(w->subscription.areas, g->subscription.areas);
    FX_STR(structure_hash);
    FX_STR(provider);
}

static inline void
fx_eq_welcome(const msg_welcome_t *w, const msg_welcome_t *g)
{
    FX_STR(hub_id);
    FX_STR(hub_epoch);
    FX_U(last_origin_seq);
    FX_U(log_first);
    FX_U(log_last);
    FX_U(snapshot);
    FX_U(heartbeat_ms);
    FX_U(last_origin_hlc);
    FX_U(now_ms);
    FX_U(peer_timeout_ms);
}

static inline void
fx_eq_publish_ack(const msg_publish_ack_t *w, const msg_publish_ack_t *g)
{
    FX_U(acked_seq);
    FX_U(resend_from);
    FX_U(accepted);
    FX_U(duplicates);
    FX_U(superseded);
    FX_U(rejected);
    fx_eq_issues(w->rejects, g->rejects);
}

static inline void
fx_eq_log_batch(const msg_log_batch_t *w, const msg_log_batch_t *g)
{
    FX_U(from_seq);
    FX_U(to_seq);
    fx_eq_changes(w->changes, g->changes);
    FX_U(log_last);
    FX_U(log_last_ms);
}

/* The local API's bodies of want and got are equal, field by field. */
static inline void
fx_eq_local(const msg_t *want, const msg_t *got)
{
    const msg_t *w = want, *g = got;
    switch (want->type) {
    case MSG_ERROR:
        FX_U(u.error.code);
        FX_STR(u.error.message);
        break;
    case MSG_PUT:
        fx_eq_obs(w->u.put.obs, g->u.put.obs);
        FX_U(u.put.action);
        FX_U(u.put.strict);
        FX_U(u.put.dry_run);
        break;
    case MSG_WRITE_SUMMARY:
        fx_eq_write_summary(&w->u.write_summary, &g->u.write_summary);
        break;
    case MSG_GET:
        fx_eq_key(&w->u.get.key, &g->u.get.key);
        break;
    case MSG_HISTORY:
        fx_eq_key(&w->u.history.key, &g->u.history.key);
        break;
    case MSG_DELETE:
        fx_eq_key(&w->u.del.key, &g->u.del.key);
        FX_U(u.del.dry_run);
        break;
    case MSG_QUERY:
        fx_eq_query(&w->u.query, &g->u.query);
        break;
    case MSG_OBS_REPLY:
        fx_eq_obs_reply(&w->u.obs_reply, &g->u.obs_reply);
        break;
    case MSG_IMPORT_BEGIN:
        fx_eq_import_begin(&w->u.import_begin, &g->u.import_begin);
        break;
    case MSG_IMPORT_ROWS:
        fx_eq_import_rows(&w->u.import_rows, &g->u.import_rows);
        break;
    case MSG_IMPORT_FINISH:
        FX_U(u.import_finish.import_id);
        FX_U(u.import_finish.abort);
        break;
    case MSG_IMPORT_PROGRESS:
        fx_eq_import_progress(&w->u.import_progress, &g->u.import_progress);
        break;
    case MSG_STRUCTURE_LIST:
        FX_STR(u.structure_list.kind);
        FX_STR(u.structure_list.urn);
        break;
    case MSG_STRUCTURE_LOAD:
        FX_STR(u.structure_load.text);
        FX_STR(u.structure_load.source_name);
        FX_U(u.structure_load.dry_run);
        break;
    case MSG_STRUCTURE_REPLY:
        fx_eq_structure_reply(&w->u.structure_reply, &g->u.structure_reply);
        break;
    case MSG_STATUS_REPLY:
        fx_eq_status_reply(&w->u.status_reply, &g->u.status_reply);
        break;
    default: /* MSG_STATUS: no body */
        break;
    }
}

/* The replication bodies of want and got are equal, field by field. */
static inline void
fx_eq_repl(const msg_t *want, const msg_t *got)
{
    const msg_t *w = want, *g = got;
    switch (want->type) {
    case MSG_HELLO:
        fx_eq_hello(&w->u.hello, &g->u.hello);
        break;
    case MSG_WELCOME:
        fx_eq_welcome(&w->u.welcome, &g->u.welcome);
        break;
    case MSG_PUBLISH:
        FX_U(u.publish.first_seq);
        FX_U(u.publish.last_seq);
        fx_eq_changes(w->u.publish.changes, g->u.publish.changes);
        break;
    case MSG_PUBLISH_ACK:
        fx_eq_publish_ack(&w->u.publish_ack, &g->u.publish_ack);
        break;
    case MSG_CREDIT:
        FX_U(u.credit.cursor);
        FX_U(u.credit.batches);
        FX_U(u.credit.resync);
        break;
    case MSG_LOG_BATCH:
        fx_eq_log_batch(&w->u.log_batch, &g->u.log_batch);
        break;
    case MSG_SNAPSHOT_BEGIN:
        FX_U(u.snapshot_begin.fence_seq);
        FX_U(u.snapshot_begin.estimated);
        break;
    case MSG_SNAPSHOT_CHUNK:
        fx_eq_changes(w->u.snapshot_chunk.changes, g->u.snapshot_chunk.changes);
        FX_U(u.snapshot_chunk.sent);
        break;
    case MSG_SNAPSHOT_END:
        FX_U(u.snapshot_end.fence_seq);
        FX_U(u.snapshot_end.total);
        break;
    case MSG_STRUCTURE_UPDATE:
        FX_STR(u.structure_update.text);
        FX_STR(u.structure_update.hash);
        break;
    case MSG_HEARTBEAT:
        FX_U(u.heartbeat.now_ms);
        FX_U(u.heartbeat.cursor);
        break;
    case MSG_GOODBYE:
        FX_STR(u.goodbye.reason);
        FX_U(u.goodbye.code);
        break;
    default:
        break;
    }
}

/* got (decoded) has want's type, corr_id and every field of its body. */
static inline void
fx_assert_equal(const msg_t *want, const msg_t *got)
{
    assert_int_equal(want->type, got->type);
    assert_true(want->corr_id == got->corr_id);
    if ((int)want->type < (int)MSG_HELLO)
        fx_eq_local(want, got);
    else
        fx_eq_repl(want, got);
}

#undef FX_STR
#undef FX_U

#endif
