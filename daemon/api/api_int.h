/*
 * api_int.h - what the local API's modules share inside daemon/api/: the
 * engine's state and the staged writes. Not included outside daemon/api.
 *
 *   engine.c        life cycle: store, structure, sockets and hooks on a loop
 *   api.c           request dispatch, replies, keys and validation contexts
 *   write.c         put and delete requests: validated, then queued
 *   read.c          get, history and query
 *   import.c        imports: staged across ImportRows, committed at the end
 *   admin.c         structure load/list and status
 *   commit.c        the queue of writes and the group commit (before sleep)
 *   apply.c         one staged write applied in a write transaction
 *   ops.c           the staging arena of a write or an import
 *
 * Threading: everything runs on the engine's loop thread.
 */
#ifndef API_INT_H
#define API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "cfg.h"
#include "ctl.h"
#include "engine.h"
#include "hlc.h"
#include "issue.h"
#include "loop.h"
#include "msg.h"
#include "obs_key.h"
#include "obsdb.h"
#include "repl.h"
#include "repl_hub.h"
#include "repl_node.h"
#include "sdmx_rows.h"
#include "structure.h"
#include "validate.h"

#define QUERY_PAGE_DEFAULT 1000
#define QUERY_PAGE_MAX     20000
#define ISSUES_PER_REPLY   500
#define IMPORTS_MAX        64

/* A staged write of a request: an observation (merge/replace/delete) or a
 * wildcard delete. */
typedef struct {
    bool matching; /* wildcard delete */
    obs_t obs;     /* !matching: the observation or identity */
    obs_action_t action;
    const sdmx_dataflow_t *df;
    obs_pattern_t *pattern; /* matching: owned */
    char period[OBS_PERIOD_MAX + 1];
} op_t;

/* One staged write, in order: a request's op, or an import row packed in
 * the ops' arena as its content hash, canonical key and
 * codec_obs_encode_body bytes. An op_t is some 450 bytes plus a dozen small
 * mallocs; packed, a row is some 280 bytes, so a million-row import stages
 * in a third of the memory and frees at once, and a row whose key is new
 * is stored without being decoded again. */
typedef struct {
    op_t *op;              /* owned; NULL for a packed row */
    const uint8_t *packed; /* hash[OBS_HASH_LEN], key[klen], body */
    uint32_t packed_len;   /* of the body */
    uint16_t klen;
    obs_action_t action; /* of the packed row */
} slot_t;

static inline const uint8_t *
slot_hash(const slot_t *sl)
{
    return sl->packed;
}

static inline const uint8_t *
slot_key(const slot_t *sl)
{
    return sl->packed + OBS_HASH_LEN;
}

static inline const uint8_t *
slot_body(const slot_t *sl)
{
    return sl->packed + OBS_HASH_LEN + sl->klen;
}

typedef struct chunk {
    struct chunk *next;
    uint8_t data[];
} chunk_t;

/* Slots in fixed blocks: an import of millions of rows never reallocates
 * (and copies) one huge array. Packed rows in chunks of PACK_CHUNK. */
#define OPS_BLOCK  4096
#define PACK_CHUNK (1u << 20)
/* Store bytes a staged write may take, to grow the map before a big
 * transaction instead of redoing it after each MDB_MAP_FULL: a packed row
 * is stored as current version and outbox entry, with its key, the version
 * and B-tree slack (~4x its packed size measured on a 1M-row import). */
#define PACKED_STORE_FACTOR 5
#define OP_STORE_BYTES      2048
#define RESERVE_MIN         (16u << 20) /* smaller writes just try */
typedef struct {
    slot_t **blocks;
    size_t n, n_blocks, cap_blocks;
    uint64_t store_bytes; /* what applying them may write, roughly */
    chunk_t *chunks;
    uint8_t *pack_cur, *pack_end;
} ops_t;

typedef struct {
    uint64_t accepted, unchanged, deleted;
} counts_t;

static inline void
counts_add(counts_t *to, const counts_t *c)
{
    to->accepted += c->accepted;
    to->unchanged += c->unchanged;
    to->deleted += c->deleted;
}

/* A write waiting for the next group commit. */
typedef struct pending {
    ctl_peer_t peer;
    bool is_import; /* its own transaction */
    bool dry_run;
    ops_t ops;           /* owned */
    issue_list_t issues; /* from validation, sent with the reply */
    uint64_t rejected;
    char batch_id[OBS_ID_MAX + 1];
    counts_t counts;
    counts_t prior; /* of an import's parts committed before this one */
    uint64_t rows_committed_before; /* rows in those parts */
    struct pending *next;
} pending_t;

typedef struct {
    uint64_t id;
    sdmx_csv_t *mapper;
    ops_t ops;
    bool strict, dry_run;
    uint64_t rows_seen, rejected, warnings;
    /* commit_rows > 0: staged rows are committed in parts of that many, in
     * transactions of their own, as the file streams in; the counts and the
     * one batch id carry over to the final summary. */
    uint64_t commit_rows, rows_committed, parts;
    counts_t counts;
    char batch_id[OBS_ID_MAX + 1];
    issue_list_t header_issues;
    char source[128];
    uint64_t last_active_ms; /* monotonic */
} import_t;

struct engine {
    const cfg_t *cfg; /* borrowed */
    void *zctx;
    ctl_t *ctl;
    obsdb_t *db;
    structure_t *st;
    hlc_t hlc;
    uint64_t origin_seq;
    pending_t *pending_head, *pending_tail;
    import_t *imports[IMPORTS_MAX];
    uint64_t next_import_id;
    uint64_t commits, writes_grouped, store_full;
    repl_env_t renv;
    repl_hub_t *hub;   /* role hub */
    repl_node_t *node; /* role node with a hub_endpoint */
    time_t started;
    loop_t *loop;    /* borrowed */
    void *repl_sock; /* the replication socket registered on the loop */
};

/* ---- ops.c: the staging arena (ownership: ops own their ops and rows) */
slot_t *ops_at(const ops_t *ops, size_t i);
/** A new zeroed op at the end, or NULL when memory is short. */
op_t *ops_push(ops_t *ops);
/** Drops the op ops_push just added. */
void ops_pop(ops_t *ops);
/** Appends obs (identity, value, attributes; not its version) as a packed
 * row under its canonical key (klen bytes; it fits the store: checked when
 * the row was mapped). OBS_ENOMEM. */
int ops_push_packed(ops_t *ops, const obs_t *obs, const uint8_t *key,
                    size_t klen, obs_action_t action);
void ops_fini(ops_t *ops);

/* ---- commit.c: queued writes and the group commit */
/** A write to queue; NULL when memory is short. kind names its batch id. */
pending_t *commit_pending_new(const ctl_peer_t *peer, const char *kind,
                              uint64_t stamp_ms);
void commit_pending_free(pending_t *p);
/** Queues p (taken) for the next group commit. */
void commit_queue(engine_t *self, pending_t *p);
/** Commits every queued write and answers each writer (before sleep, and
 * before anything that needs the queue empty). */
void commit_flush(engine_t *self);
/** Applies group[0..n) in one transaction; grows the map and retries on
 * a full map. OBS_OK or the first error (nothing stored then). */
int commit_group(engine_t *self, pending_t **group, size_t n, bool dry_run);

/* ---- apply.c */
/** Applies every staged write of p in txn, counting into p->counts. */
int apply_pending(engine_t *self, obsdb_txn_t *txn, pending_t *p);
/** Keeps the current attributes the merge row did not give. */
int apply_merge_attrs(obs_t *o, const obs_t *cur);

/* ---- read.c */
/* Observations copied out of a read transaction. */
typedef struct {
    obs_t *items;
    size_t n, cap;
    const char *period; /* "" or only this TIME_PERIOD */
} collect_t;
/** obsdb scan callback: appends a copy of o to arg (a collect_t). */
int read_collect_cb(const obs_t *o, void *arg);
void read_collect_fini(collect_t *col);
void read_on_get(engine_t *self, const ctl_peer_t *peer,
                 const msg_key_ref_t *key, bool history);
void read_on_query(engine_t *self, const ctl_peer_t *peer,
                   const msg_query_t *r);

/* ---- write.c */
void write_on_put(engine_t *self, const ctl_peer_t *peer, const msg_put_t *r);
void write_on_delete(engine_t *self, const ctl_peer_t *peer,
                     const msg_delete_t *r);

/* ---- import.c */
void import_on_begin(engine_t *self, const ctl_peer_t *peer,
                     const msg_import_begin_t *r);
void import_on_rows(engine_t *self, const ctl_peer_t *peer,
                    const msg_import_rows_t *r);
void import_on_finish(engine_t *self, const ctl_peer_t *peer,
                      const msg_import_finish_t *r);
/** Drops imports idle past import_idle_timeout (cron). */
void import_expire(engine_t *self);
bool import_any_open(const engine_t *self);
/** The open import with this id, or NULL. */
import_t **import_find(engine_t *self, uint64_t id);
void import_free(import_t *imp);

/* ---- admin.c */
/** Writes the structure's canonical text to the store. */
int admin_persist_structure(engine_t *self);
void admin_on_structure_load(engine_t *self, const ctl_peer_t *peer,
                             const msg_structure_load_t *r);
void admin_on_structure_list(engine_t *self, const ctl_peer_t *peer,
                             const msg_structure_list_t *r);
/** Status; reload (hub): the allow-list is re-read first, and a bad one
 * is an error reply that names the file. */
void admin_on_status(engine_t *self, const ctl_peer_t *peer, bool reload);

/* ---- api.c */
/** The ctl handler: one decoded request. */
void api_on_request(void *arg, const ctl_peer_t *peer, const msg_t *req);
/** Sends m to peer (a failure is logged). */
void api_reply(engine_t *self, const ctl_peer_t *peer, msg_t *m);
/** A WriteSummary of the counts (NULL: zero) and issues (NULL: none). */
void api_reply_summary(engine_t *self, const ctl_peer_t *peer,
                       issue_list_t *issues, const counts_t *c,
                       uint64_t rejected, bool committed, const char *batch_id);
validate_ctx_t api_vctx(const engine_t *self, bool decimal_comma);
/** Resolves a KeyRef into obs's identity (and *dfp). OBS_EINVAL/OBS_ENOENT
 * with a reason in why. */
int api_key_to_identity(const engine_t *self, const msg_key_ref_t *ref,
                        obs_t *obs, const sdmx_dataflow_t **dfp, char *why,
                        size_t cap);

#endif
