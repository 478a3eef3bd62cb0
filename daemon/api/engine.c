/*
 * engine.c - the obsyncd engine: local API requests -> validation -> grouped
 * LMDB transactions -> replies (see engine.h).
 *
 * Request flow. Reads (get, query, history, status, structure list) run at
 * once in a short read transaction. Writes (put, delete, import finish) are
 * validated at once and queued as a `pending_t`; before the loop sleeps,
 * every queued put/delete is applied in ONE write transaction and committed
 * with sync (group commit), each import in a transaction of its own, and only
 * then are the replies sent: a reply that says "committed" is durable.
 * Imports are staged in memory (import_t) across ImportRows messages and
 * reach the store only at ImportFinish, so kill -9 at any moment leaves an
 * import wholly present or wholly absent; an import begun with commit_rows
 * commits each part of that many rows as it arrives instead (one batch id,
 * counts summed at the finish). MDB_MAP_FULL makes the engine grow
 * the map and redo the group; past map_max the writers get OBS_ESTOREFULL
 * and the store stays readable.
 */
#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "codec_pb.h"
#include "ctl.h"
#include "hlc.h"
#include "issue.h"
#include "log.h"
#include "mem.h"
#include "obs_err.h"
#include "obs_key.h"
#include "obsdb.h"
#include "period.h"
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

static const uint8_t *
slot_hash(const slot_t *sl)
{
    return sl->packed;
}

static const uint8_t *
slot_key(const slot_t *sl)
{
    return sl->packed + OBS_HASH_LEN;
}

static const uint8_t *
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

static void
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
    volatile sig_atomic_t stop;
};

static volatile sig_atomic_t g_signal_stop;

static void
on_signal(int sig)
{
    (void)sig;
    g_signal_stop = 1;
}

/* ------------------------------------------------------------ small helpers */

static slot_t *
ops_at(const ops_t *ops, size_t i)
{
    return &ops->blocks[i / OPS_BLOCK][i % OPS_BLOCK];
}

static void
op_free(op_t *op)
{
    if (op == NULL)
        return;
    obs_fini(&op->obs);
    if (op->pattern)
        obs_pattern_fini(op->pattern);
    free(op->pattern);
    free(op);
}

static void
ops_fini(ops_t *ops)
{
    for (size_t i = 0; i < ops->n; i++)
        op_free(ops_at(ops, i)->op);
    for (size_t b = 0; b < ops->n_blocks; b++)
        free(ops->blocks[b]);
    free(ops->blocks);
    while (ops->chunks != NULL) {
        chunk_t *next = ops->chunks->next;
        free(ops->chunks);
        ops->chunks = next;
    }
    memset(ops, 0, sizeof(*ops));
}

/* A new zeroed slot at the end, or NULL when memory is short. */
static slot_t *
slot_push(ops_t *ops)
{
    if (ops->n == ops->n_blocks * OPS_BLOCK) {
        if (ops->n_blocks == ops->cap_blocks) {
            size_t cap = ops->cap_blocks ? ops->cap_blocks * 2 : 4;
            slot_t **blocks = realloc(ops->blocks, cap * sizeof(*blocks));
            if (blocks == NULL)
                return NULL;
            ops->blocks = blocks;
            ops->cap_blocks = cap;
        }
        if ((ops->blocks[ops->n_blocks] = malloc(OPS_BLOCK * sizeof(slot_t))) ==
            NULL)
            return NULL;
        ops->n_blocks++;
    }
    slot_t *sl = ops_at(ops, ops->n++);
    memset(sl, 0, sizeof(*sl));
    return sl;
}

/* A new zeroed op at the end, or NULL when memory is short. */
static op_t *
ops_push(ops_t *ops)
{
    op_t *op = calloc(1, sizeof(*op));
    slot_t *sl = op ? slot_push(ops) : NULL;
    if (sl == NULL) {
        free(op);
        return NULL;
    }
    obs_init(&op->obs);
    sl->op = op;
    ops->store_bytes += OP_STORE_BYTES;
    return op;
}

/* Drops the op ops_push just added. */
static void
ops_pop(ops_t *ops)
{
    op_free(ops_at(ops, --ops->n)->op);
}

/* Appends obs (identity, value, attributes; not its version) as a packed
 * row under its canonical key (klen bytes; it fits the store: checked when
 * the row was mapped). OBS_ENOMEM. */
static int
ops_push_packed(ops_t *ops, const obs_t *obs, const uint8_t *key, size_t klen,
                obs_action_t action)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = codec_obs_encode_body(obs, 0, &buf, &len);
    if (rc != OBS_OK)
        return rc;
    size_t need = OBS_HASH_LEN + (size_t)klen + len;
    if (need > (size_t)(ops->pack_end - ops->pack_cur)) {
        size_t cap = need > PACK_CHUNK ? need : PACK_CHUNK;
        chunk_t *c = malloc(sizeof(*c) + cap);
        if (c == NULL) {
            free(buf);
            return OBS_ENOMEM;
        }
        c->next = ops->chunks;
        ops->chunks = c;
        ops->pack_cur = c->data;
        ops->pack_end = c->data + cap;
    }
    slot_t *sl = slot_push(ops);
    if (sl == NULL) {
        free(buf);
        return OBS_ENOMEM;
    }
    uint8_t *p = ops->pack_cur;
    memset(p, 0, OBS_HASH_LEN);
    if (action != OBS_ACTION_DELETE)
        obs_content_hash(obs, p); /* of the row as stored: not a tombstone */
    memcpy(p + OBS_HASH_LEN, key, klen);
    memcpy(p + OBS_HASH_LEN + klen, buf, len);
    sl->packed = p;
    sl->packed_len = (uint32_t)len;
    sl->klen = (uint16_t)klen;
    sl->action = action;
    ops->pack_cur += need;
    ops->store_bytes += PACKED_STORE_FACTOR * len;
    free(buf);
    return OBS_OK;
}

static void
pending_free(pending_t *p)
{
    if (p == NULL)
        return;
    ops_fini(&p->ops);
    issue_list_fini(&p->issues);
    free(p);
}

static void
import_free(import_t *imp)
{
    if (imp == NULL)
        return;
    sdmx_csv_close(&imp->mapper);
    ops_fini(&imp->ops);
    issue_list_fini(&imp->header_issues);
    free(imp);
}

static int
current_year(void)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    return tm.tm_year + 1900;
}

static validate_ctx_t
vctx(const engine_t *self, bool decimal_comma)
{
    validate_ctx_t c = {.st = self->st,
                        .provider = self->cfg->provider,
                        .min_year = 1900,
                        .max_year = current_year() + 1,
                        .decimal_comma = decimal_comma};
    return c;
}

/* Splits "A.COL.X" into exactly n codes (no wildcards). */
static int
split_key(const char *key, char codes[][OBS_CODE_MAX + 1], size_t max,
          size_t *n)
{
    size_t k = 0, len = 0;
    for (const char *p = key;; p++) {
        if (*p == '.' || *p == '\0') {
            if (k == max || len == 0)
                return OBS_EINVAL;
            codes[k][len] = '\0';
            k++;
            len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        if (len == OBS_CODE_MAX)
            return OBS_EINVAL;
        codes[k][len++] = *p;
    }
    *n = k;
    return OBS_OK;
}

/* Resolves a KeyRef into an identity. Writes a reason to why on error. */
static int
key_to_identity(const engine_t *self, const Obsync__V1__KeyRef *ref, obs_t *obs,
                const sdmx_dataflow_t **dfp, char *why, size_t cap)
{
    if (ref == NULL) {
        snprintf(why, cap, "request has no key");
        return OBS_EINVAL;
    }
    const sdmx_dataflow_t *df =
        structure_find_dataflow(self->st, ref->dataflow);
    if (df == NULL) {
        snprintf(why, cap, "unknown dataflow '%.100s'", ref->dataflow);
        return OBS_ENOENT;
    }
    char codes[OBS_MAX_DIMS][OBS_CODE_MAX + 1];
    size_t n = 0;
    if (split_key(ref->series_key, codes, OBS_MAX_DIMS, &n) != OBS_OK ||
        n != df->dsd->n_dims) {
        snprintf(why, cap,
                 "series key '%.100s' must have %zu non-empty codes "
                 "separated by '.' for %s",
                 ref->series_key, df->dsd->n_dims, df->urn);
        return OBS_EINVAL;
    }
    const char *dims[OBS_MAX_DIMS];
    for (size_t i = 0; i < n; i++)
        dims[i] = codes[i];
    period_t p;
    if (period_parse(ref->time_period, 0, 9999, &p, why, cap) != OBS_OK)
        return OBS_EINVAL;
    if (dfp)
        *dfp = df;
    return obs_set_identity(obs, df->urn, dims, n, ref->time_period);
}

/* -------------------------------------------------------------- replies */

static void
reply_env(engine_t *self, const ctl_peer_t *peer, codec_env_t *env)
{
    int rc = ctl_reply(self->ctl, peer, env);
    if (rc != OBS_OK && rc != OBS_ESYS)
        log_warnr(rc, "local API: could not send a reply");
}

typedef struct {
    Obsync__V1__RowIssue *items;
    Obsync__V1__RowIssue **ptrs;
    size_t n;
} pb_issues_t;

static void
pb_issues_fill(pb_issues_t *out, issue_list_t *l, size_t max)
{
    size_t n = l->n < max ? l->n : max;
    out->items = calloc(n ? n : 1, sizeof(*out->items));
    out->ptrs = calloc(n ? n : 1, sizeof(*out->ptrs));
    out->n = 0;
    if (out->items == NULL || out->ptrs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        Obsync__V1__RowIssue *r = &out->items[i];
        obsync__v1__row_issue__init(r);
        r->line = l->items[i].line;
        r->column = l->items[i].column;
        r->rule = l->items[i].rule;
        r->message = l->items[i].message;
        r->warning = l->items[i].warning;
        out->ptrs[i] = r;
    }
    out->n = n;
}

static void
pb_issues_free(pb_issues_t *p)
{
    free(p->items);
    free(p->ptrs);
}

static void
reply_summary(engine_t *self, const ctl_peer_t *peer, issue_list_t *issues,
              const counts_t *c, uint64_t rejected, bool committed,
              const char *batch_id)
{
    Obsync__V1__WriteSummary ws;
    obsync__v1__write_summary__init(&ws);
    pb_issues_t pi = {0};
    if (issues)
        pb_issues_fill(&pi, issues, ISSUES_PER_REPLY);
    ws.accepted = c ? c->accepted : 0;
    ws.unchanged = c ? c->unchanged : 0;
    ws.deleted = c ? c->deleted : 0;
    ws.rejected = rejected;
    ws.warnings = issues ? issues->warnings : 0;
    ws.committed = committed;
    ws.n_issues = pi.n;
    ws.issues = pi.ptrs;
    ws.issues_omitted = issues ? (issues->n - pi.n) + issues->omitted : 0;
    char batch[OBS_ID_MAX + 1];
    snprintf(batch, sizeof(batch), "%s", batch_id ? batch_id : "");
    ws.batch_id = batch;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_WRITE_SUMMARY;
    env.write_summary = &ws;
    reply_env(self, peer, &env);
    pb_issues_free(&pi);
}

/* --------------------------------------------------------- write path */

static void
queue_pending(engine_t *self, pending_t *p)
{
    p->next = NULL;
    if (self->pending_tail)
        self->pending_tail->next = p;
    else
        self->pending_head = p;
    self->pending_tail = p;
}

/* snprintf(dst, cap, "%s", src) without the formatting machinery: stamp
 * runs once per imported row and snprintf cost 4% of an import. */
static void
copy_text(char *dst, size_t cap, const char *src)
{
    src = src ? src : "";
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Gives o a new local version replacing cur (NULL = none). hash: o's
 * content hash when the caller has it (NULL = compute it). */
static void
stamp(engine_t *self, obs_t *o, const obs_t *cur, obs_action_t action,
      const char *batch, const uint8_t *hash)
{
    obs_version_t *v = &o->ver;
    if (cur) /* a new version must win over the one it replaces */
        hlc_observe(&self->hlc, cur->ver.hlc, hlc_wall_ms());
    memset(v, 0, sizeof(*v));
    v->hlc = hlc_now(&self->hlc, hlc_wall_ms());
    copy_text(v->origin, sizeof(v->origin), self->cfg->node_id);
    v->origin_seq = ++self->origin_seq;
    copy_text(v->provider, sizeof(v->provider), self->cfg->provider);
    v->action = action;
    v->tombstone = action == OBS_ACTION_DELETE;
    copy_text(v->batch_id, sizeof(v->batch_id), batch);
    if (cur) {
        v->base_hlc = cur->ver.hlc;
        copy_text(v->base_origin, sizeof(v->base_origin), cur->ver.origin);
        v->base_origin_seq = cur->ver.origin_seq;
    }
    if (hash)
        memcpy(v->content_hash, hash, OBS_HASH_LEN);
    else
        obs_content_hash(o, v->content_hash);
}

/* Stores a local change: at a hub it is also an accepted change of the
 * log (same transaction), at a node obsdb_put adds it to the outbox. */
static int
store_local(engine_t *self, obsdb_txn_t *txn, obs_t *o, const uint8_t *body,
            size_t body_len)
{
    if (self->hub)
        return repl_hub_store_local(txn, o);
    return body ? obsdb_put_body(txn, o, body, body_len) : obsdb_put(txn, o);
}

/* A tombstone for cur's identity. */
static int
write_tombstone(engine_t *self, obsdb_txn_t *txn, const obs_t *cur,
                const char *batch, counts_t *c)
{
    obs_t t;
    obs_init(&t);
    int rc = obs_set_identity(&t, cur->dataflow, (const char *const *)cur->dims,
                              cur->n_dims, cur->time_period);
    if (rc == OBS_OK) {
        stamp(self, &t, cur, OBS_ACTION_DELETE, batch, NULL);
        rc = store_local(self, txn, &t, NULL, 0);
    }
    obs_fini(&t);
    if (rc == OBS_OK) {
        c->accepted++;
        c->deleted++;
    }
    return rc;
}

/* Keeps the current attributes the merge row did not give. */
static int
merge_attrs(obs_t *o, const obs_t *cur)
{
    for (size_t i = 0; i < cur->n_attrs; i++) {
        if (obs_get_attr(o, cur->attrs[i].id) != NULL)
            continue;
        int rc = obs_set_attr(o, cur->attrs[i].id, cur->attrs[i].value);
        if (rc != OBS_OK)
            return rc;
    }
    return OBS_OK;
}

/* body: obs's identity, value and attributes as codec_obs_encode_body
 * bytes (a packed import row), or NULL. */
static int
apply_obs(engine_t *self, obsdb_txn_t *txn, obs_t *obs, obs_action_t action,
          const uint8_t *body, size_t body_len, const char *batch, counts_t *c)
{
    obs_t cur;
    obs_init(&cur);
    int rc = obsdb_get(txn, obs, &cur);
    bool found = rc == OBS_OK;
    bool live = found && !cur.ver.tombstone;
    if (rc != OBS_OK && rc != OBS_ENOENT)
        goto out;
    rc = OBS_OK;
    if (action == OBS_ACTION_DELETE) {
        if (live)
            rc = write_tombstone(self, txn, &cur, batch, c);
        else
            c->unchanged++;
        goto out;
    }
    if (live && action == OBS_ACTION_MERGE) {
        body = NULL; /* the attributes may change */
        if ((rc = merge_attrs(obs, &cur)) != OBS_OK)
            goto out;
    }
    uint8_t hash[OBS_HASH_LEN];
    obs->ver.tombstone = false;
    obs_content_hash(obs, hash);
    if (live && memcmp(hash, cur.ver.content_hash, OBS_HASH_LEN) == 0) {
        c->unchanged++;
        goto out;
    }
    stamp(self, obs, found ? &cur : NULL, action, batch, hash);
    rc = store_local(self, txn, obs, body, body_len);
    if (rc == OBS_OK)
        c->accepted++;
out:
    obs_fini(&cur);
    return rc;
}

typedef struct {
    obs_t *items;
    size_t n, cap;
    const char *period;
} collect_t;

static int
collect_cb(const obs_t *o, void *arg)
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

static void
collect_fini(collect_t *col)
{
    for (size_t i = 0; i < col->n; i++)
        obs_fini(&col->items[i]);
    free(col->items);
}

static int
apply_matching(engine_t *self, obsdb_txn_t *txn, op_t *op, const char *batch,
               counts_t *c)
{
    obsdb_scan_t q = {.dataflow = op->df->urn,
                      .total_dims = op->df->dsd->n_dims,
                      .pattern = op->pattern,
                      .start_day = INT32_MIN,
                      .end_day = INT32_MAX};
    collect_t col = {.period = op->period};
    uint8_t last[OBS_KEY_MAX + 1];
    size_t last_len = 0;
    bool more = false;
    int rc = obsdb_scan(txn, &q, collect_cb, &col, last, &last_len, &more);
    /* A wildcard over REF_AREA deletes only what the provider may write. */
    int area = structure_dim_index(op->df->dsd, "REF_AREA");
    for (size_t i = 0; rc == OBS_OK && i < col.n; i++)
        if (area < 0 || structure_may_write(self->st, self->cfg->provider,
                                            op->df, col.items[i].dims[area]))
            rc = write_tombstone(self, txn, &col.items[i], batch, c);
    if (rc == OBS_OK && col.n == 0)
        c->unchanged++;
    collect_fini(&col);
    return rc;
}

/* A packed row whose key is new is stored as it was staged: stamped, its
 * body and the new version joined, never decoded. OBS_EEXIST when it is
 * not that (a delete, a key with a current version, or at a hub, whose
 * local writes go through repl_hub_store_local): apply_obs then. */
static int
apply_new_row(engine_t *self, obsdb_txn_t *txn, const slot_t *sl,
              const char *batch, counts_t *c)
{
    if (sl->action == OBS_ACTION_DELETE || self->hub)
        return OBS_EEXIST;
    int rc = obsdb_exists(txn, slot_key(sl), sl->klen);
    if (rc != OBS_ENOENT)
        return rc == OBS_OK ? OBS_EEXIST : rc;
    obs_t o; /* only its version is used */
    obs_init(&o);
    stamp(self, &o, NULL, sl->action, batch, slot_hash(sl));
    rc = obsdb_put_key_body(txn, slot_key(sl), sl->klen, &o.ver, slot_body(sl),
                            sl->packed_len, true);
    if (rc == OBS_OK)
        c->accepted++;
    return rc;
}

static int
apply_pending(engine_t *self, obsdb_txn_t *txn, pending_t *p)
{
    memset(&p->counts, 0, sizeof(p->counts));
    int rc = OBS_OK;
    obs_t row; /* a packed row, unpacked */
    obs_init(&row);
    for (size_t i = 0; rc == OBS_OK && i < p->ops.n; i++) {
        const slot_t *sl = ops_at(&p->ops, i);
        op_t *op = sl->op;
        if (i % 1024 == 0) /* LMDB mallocs ~2 pages per 10 rows here */
            mem_advise_heap();
        if (op == NULL) {
            rc = apply_new_row(self, txn, sl, p->batch_id, &p->counts);
            if (rc != OBS_EEXIST)
                continue;
            rc = codec_obs_decode(slot_body(sl), sl->packed_len, &row);
            if (rc == OBS_OK)
                rc = apply_obs(self, txn, &row, sl->action, slot_body(sl),
                               sl->packed_len, p->batch_id, &p->counts);
        } else {
            rc = op->matching
                     ? apply_matching(self, txn, op, p->batch_id, &p->counts)
                     : apply_obs(self, txn, &op->obs, op->action, NULL, 0,
                                 p->batch_id, &p->counts);
        }
    }
    obs_fini(&row);
    return rc;
}

/* Applies the group in one transaction; grows the map and retries on
 * MDB_MAP_FULL. Dry runs apply in a write txn that is then aborted, so the
 * counts are exactly what a real run would give. */
static int
commit_group(engine_t *self, pending_t **group, size_t n, bool dry_run)
{
    /* A hub applies its state behind its log: local writes read the state
     * (current versions, unchanged checks), so it must hold the whole log. */
    if (self->hub) {
        int rc = repl_hub_catch_up(self->hub);
        if (rc != OBS_OK)
            return rc;
    }
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++)
        need += group[i]->ops.store_bytes;
    /* Only for big writes (imports): a dry run would grow the map for
     * nothing, and near map_max every small write would ask again. */
    if (!dry_run && need >= RESERVE_MIN && !obsdb_reserve(self->db, need))
        log_info("store: no room made ahead for a write of ~%" PRIu64
                 " MiB (map_max?); it may still fit",
                 need >> 20);
    for (;;) {
        uint64_t saved_seq = self->origin_seq;
        obsdb_txn_t *txn = NULL;
        int rc = obsdb_begin(self->db, true, &txn);
        for (size_t i = 0; rc == OBS_OK && i < n; i++)
            rc = apply_pending(self, txn, group[i]);
        if (rc == OBS_OK && !dry_run) {
            rc = obsdb_meta_put_u64(txn, "origin_seq", self->origin_seq);
            if (rc == OBS_OK)
                rc = obsdb_meta_put_u64(txn, "hlc", self->hlc.last);
        }
        if (rc == OBS_OK && !dry_run) {
            rc = obsdb_commit(&txn);
        } else {
            obsdb_abort(&txn);
            if (dry_run)
                self->origin_seq = saved_seq;
        }
        if (rc == OBS_OK) {
            if (!dry_run) {
                self->commits++;
                self->writes_grouped += n;
                if (self->hub)
                    repl_hub_log_grew(self->hub);
                if (self->node && self->origin_seq != saved_seq)
                    repl_node_outbox_grew(self->node, self->origin_seq);
            }
            return OBS_OK;
        }
        self->origin_seq = saved_seq;
        if (rc == OBS_ESTOREFULL && obsdb_grow(self->db)) {
            log_notice("store: map grown, retrying %zu write(s)", n);
            continue;
        }
        if (rc == OBS_ESTOREFULL)
            self->store_full++;
        return rc;
    }
}

static void
finish_group(engine_t *self, pending_t **group, size_t n, int rc)
{
    for (size_t i = 0; i < n; i++) {
        pending_t *p = group[i];
        if (rc == OBS_OK) {
            counts_add(&p->counts, &p->prior);
            reply_summary(self, &p->peer, &p->issues, &p->counts, p->rejected,
                          !p->dry_run, p->batch_id);
        } else if (p->rows_committed_before > 0) {
            ctl_reply_error(self->ctl, &p->peer, rc,
                            "the last part of the import failed (%s); the "
                            "%" PRIu64 " row(s) of its earlier parts stay "
                            "committed (batch %s)",
                            obs_strerror(rc), p->rows_committed_before,
                            p->batch_id);
        } else if (rc == OBS_ESTOREFULL) {
            ctl_reply_error(self->ctl, &p->peer, rc,
                            "store map is full (map_max = %" PRIu64
                            " bytes): nothing of this write was stored; "
                            "raise map_max",
                            self->cfg->map_max);
        } else {
            ctl_reply_error(self->ctl, &p->peer, rc,
                            "write failed, nothing stored: %s",
                            obs_strerror(rc));
        }
        pending_free(p);
    }
}

/* before_sleep: one transaction for all queued single writes, one per
 * import, one per dry run. */
/* Commits group[0..n) as one transaction and answers each writer. */
static void
commit_and_finish(engine_t *self, pending_t **group, size_t n, bool dry_run)
{
    if (n == 0)
        return;
    int rc = commit_group(self, group, n, dry_run);
    if (rc != OBS_OK)
        log_warnr(rc, "%s of %zu write(s) failed (first: batch %s)",
                  n > 1 ? "group commit" : "commit", n, group[0]->batch_id);
    finish_group(self, group, n, rc);
}

/* before_sleep: consecutive puts and deletes share one transaction; an
 * import or a dry run gets one of its own. Requests are applied in arrival
 * order, so a later write always wins over an earlier one. */
static void
flush_pending(engine_t *self)
{
    enum { GROUP_STACK = 4096 };
    pending_t *group[GROUP_STACK];
    size_t n = 0, max = self->cfg->group_commit_max;
    if (max > GROUP_STACK)
        max = GROUP_STACK;
    pending_t *p = self->pending_head;
    self->pending_head = self->pending_tail = NULL;
    while (p != NULL) {
        pending_t *next = p->next;
        if (p->is_import || p->dry_run) {
            commit_and_finish(self, group, n, false); /* earlier writes first */
            n = 0;
            commit_and_finish(self, &p, 1, p->dry_run);
        } else {
            group[n++] = p;
            if (n == max) {
                commit_and_finish(self, group, n, false);
                n = 0;
            }
        }
        p = next;
    }
    commit_and_finish(self, group, n, false);
}

static pending_t *
pending_new(const ctl_peer_t *peer, const char *kind, uint64_t stamp_ms)
{
    pending_t *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    p->peer = *peer;
    issue_list_init(&p->issues, ISSUES_PER_REPLY);
    snprintf(p->batch_id, sizeof(p->batch_id), "%s-%" PRIx64 "-%" PRIu64, kind,
             stamp_ms, peer->corr_id);
    return p;
}

/* ------------------------------------------------------------- requests */

/* A merge gives only what changes, so the merged result is validated; the
 * op itself stays as given (normalised), and is merged again at apply time
 * with whatever is current then: two merges of one key in one group commit
 * both keep their attributes. */
static int
validate_put(obsdb_txn_t *rtxn, const validate_ctx_t *vc, op_t *op,
             uint64_t line, issue_list_t *issues)
{
    obs_t merged, cur;
    obs_init(&merged);
    obs_init(&cur);
    int rc = obs_copy(&merged, &op->obs);
    if (rc == OBS_OK && rtxn && op->action == OBS_ACTION_MERGE &&
        obsdb_get(rtxn, &op->obs, &cur) == OBS_OK && !cur.ver.tombstone)
        rc = merge_attrs(&merged, &cur);
    if (rc == OBS_OK)
        rc = validate_obs(vc, op->df, &merged, line, issues);
    /* keep the normalised decimal texts of what was given */
    if (rc == OBS_OK)
        rc = obs_set_value(&op->obs, merged.value);
    /* backwards: an attribute normalised away shifts only those after it */
    for (size_t i = op->obs.n_attrs; rc == OBS_OK && i-- > 0;) {
        char id[OBS_CODE_MAX + 1];
        snprintf(id, sizeof(id), "%s", op->obs.attrs[i].id);
        rc = obs_set_attr(&op->obs, id, obs_get_attr(&merged, id));
    }
    /* checked before queuing: one over-long key cannot fail a group commit */
    if (rc == OBS_OK && !obsdb_key_fits(&op->obs)) {
        issue_add(issues, line, "", "R-length", false,
                  "the observation's key is longer than the store allows "
                  "(%d bytes)",
                  OBS_KEY_MAX - 8);
        rc = OBS_EREJECTED;
    }
    obs_fini(&merged);
    obs_fini(&cur);
    return rc;
}

static void
on_put(engine_t *self, const ctl_peer_t *peer, const Obsync__V1__PutRequest *r)
{
    pending_t *p = pending_new(peer, "put", hlc_wall_ms());
    if (p == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        return;
    }
    p->dry_run = r->dry_run;
    validate_ctx_t vc = vctx(self, false);
    obs_action_t action = r->action == OBSYNC__V1__ACTION__ACTION_REPLACE
                              ? OBS_ACTION_REPLACE
                              : OBS_ACTION_MERGE;
    obsdb_txn_t *rtxn = NULL; /* to merge with what is stored */
    if (action == OBS_ACTION_MERGE &&
        obsdb_begin(self->db, false, &rtxn) != OBS_OK)
        rtxn = NULL;
    for (size_t i = 0; i < r->n_obs; i++) {
        op_t *op = ops_push(&p->ops);
        if (op == NULL || codec_obs_from_pb(r->obs[i], &op->obs) != OBS_OK) {
            if (op)
                ops_pop(&p->ops);
            issue_add(&p->issues, i + 1, "", "R0-shape", false,
                      "observation %zu is malformed or over a limit", i + 1);
            p->rejected++;
            continue;
        }
        op->action = action;
        op->df = structure_find_dataflow(self->st, op->obs.dataflow);
        memset(&op->obs.ver, 0, sizeof(op->obs.ver));
        op->obs.ver.action = action;
        if (op->df && strcmp(op->df->urn, op->obs.dataflow) != 0) {
            free(op->obs.dataflow);
            op->obs.dataflow = strdup(op->df->urn);
        }
        if (op->obs.dataflow == NULL ||
            validate_put(rtxn, &vc, op, i + 1, &p->issues) != OBS_OK) {
            ops_pop(&p->ops);
            p->rejected++;
        }
    }
    obsdb_abort(&rtxn);
    if (p->rejected > 0 && r->strict) {
        reply_summary(self, peer, &p->issues, NULL, p->rejected, false,
                      p->batch_id);
        pending_free(p);
        return;
    }
    queue_pending(self, p);
}

static void
on_delete(engine_t *self, const ctl_peer_t *peer,
          const Obsync__V1__DeleteRequest *r)
{
    pending_t *p = pending_new(peer, "del", hlc_wall_ms());
    op_t *op = p ? ops_push(&p->ops) : NULL;
    if (op == NULL) {
        pending_free(p);
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        return;
    }
    char why[256];
    int rc = key_to_identity(self, r->key, &op->obs, &op->df, why, sizeof(why));
    if (rc != OBS_OK) {
        pending_free(p);
        ctl_reply_error(self->ctl, peer, rc, "%s", why);
        return;
    }
    op->action = OBS_ACTION_DELETE;
    op->obs.ver.action = OBS_ACTION_DELETE;
    validate_ctx_t vc = vctx(self, false);
    if (validate_obs(&vc, op->df, &op->obs, 0, &p->issues) != OBS_OK) {
        reply_summary(self, peer, &p->issues, NULL, 1, false, p->batch_id);
        pending_free(p);
        return;
    }
    p->dry_run = r->dry_run;
    queue_pending(self, p);
}

typedef struct {
    Obsync__V1__DataflowColumns *cols;
    Obsync__V1__DataflowColumns **ptrs;
    size_t n;
} pb_cols_t;

static void
pb_cols_free(pb_cols_t *pc)
{
    for (size_t i = 0; i < pc->n; i++) {
        free(pc->cols[i].dimension_ids);
        free(pc->cols[i].attribute_ids);
    }
    free(pc->cols);
    free(pc->ptrs);
}

static char *
unconst_str(const char *s)
{
    union {
        const char *c;
        char *m;
    } u = {.c = s};
    return u.m;
}

static void
pb_cols_fill(const engine_t *self, const sdmx_dataflow_t *only, pb_cols_t *pc)
{
    size_t n = only ? 1 : structure_dataflow_count(self->st);
    pc->cols = calloc(n ? n : 1, sizeof(*pc->cols));
    pc->ptrs = calloc(n ? n : 1, sizeof(*pc->ptrs));
    pc->n = 0;
    if (pc->cols == NULL || pc->ptrs == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        const sdmx_dataflow_t *df =
            only ? only : structure_dataflow_at(self->st, i);
        Obsync__V1__DataflowColumns *c = &pc->cols[i];
        obsync__v1__dataflow_columns__init(c);
        c->dataflow = unconst_str(df->urn);
        c->dimension_ids = calloc(df->dsd->n_dims + 1, sizeof(char *));
        c->attribute_ids = calloc(df->dsd->n_attrs + 1, sizeof(char *));
        if (c->dimension_ids == NULL || c->attribute_ids == NULL) {
            free(c->dimension_ids);
            free(c->attribute_ids);
            break;
        }
        for (size_t d = 0; d < df->dsd->n_dims; d++)
            c->dimension_ids[d] = df->dsd->dims[d].id;
        for (size_t a = 0; a < df->dsd->n_attrs; a++)
            c->attribute_ids[a] = df->dsd->attrs[a].id;
        c->n_dimension_ids = df->dsd->n_dims;
        c->n_attribute_ids = df->dsd->n_attrs;
        pc->ptrs[i] = c;
        pc->n++;
    }
}

static void
reply_obs(engine_t *self, const ctl_peer_t *peer, collect_t *v,
          const sdmx_dataflow_t *only, const uint8_t *next, size_t next_len)
{
    codec_obs_view_t *views = calloc(v->n ? v->n : 1, sizeof(*views));
    Obsync__V1__Observation **ptrs = calloc(v->n ? v->n : 1, sizeof(*ptrs));
    size_t ok = 0;
    for (size_t i = 0; views && ptrs && i < v->n; i++) {
        if (codec_obs_view_init(&views[ok], &v->items[i]) != OBS_OK)
            break;
        ptrs[ok] = &views[ok].msg;
        ok++;
    }
    if (ok < v->n) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
    } else {
        Obsync__V1__ObsReply r;
        obsync__v1__obs_reply__init(&r);
        r.n_obs = ok;
        r.obs = ptrs;
        pb_cols_t pc = {0};
        pb_cols_fill(self, only, &pc);
        r.n_columns = pc.n;
        r.columns = pc.ptrs;
        r.next.data = (uint8_t *)unconst_str((const char *)next);
        r.next.len = next_len;
        codec_env_t env;
        obsync__v1__envelope__init(&env);
        env.body_case = OBSYNC__V1__ENVELOPE__BODY_OBS_REPLY;
        env.obs_reply = &r;
        reply_env(self, peer, &env);
        pb_cols_free(&pc);
    }
    for (size_t i = 0; i < ok; i++)
        codec_obs_view_fini(&views[i]);
    free(views);
    free(ptrs);
}

static void
on_get(engine_t *self, const ctl_peer_t *peer, const Obsync__V1__KeyRef *key,
       bool history)
{
    obs_t id;
    obs_init(&id);
    char why[256];
    const sdmx_dataflow_t *df = NULL;
    int rc = key_to_identity(self, key, &id, &df, why, sizeof(why));
    if (rc != OBS_OK) {
        obs_fini(&id);
        ctl_reply_error(self->ctl, peer, rc, "%s", why);
        return;
    }
    collect_t v = {.period = ""}; /* copied out of the read txn */
    obsdb_txn_t *txn = NULL;
    rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK && history) {
        rc = obsdb_history(txn, &id, collect_cb, &v);
    } else if (rc == OBS_OK) {
        obs_t cur;
        obs_init(&cur);
        rc = obsdb_get(txn, &id, &cur);
        if (rc == OBS_OK && cur.ver.tombstone)
            rc = OBS_ENOENT;
        if (rc == OBS_OK)
            rc = collect_cb(&cur, &v);
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
    collect_fini(&v);
    obs_fini(&id);
}

static int
query_bounds(const Obsync__V1__QueryRequest *r, obsdb_scan_t *q, char *why,
             size_t cap)
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

static void
on_query(engine_t *self, const ctl_peer_t *peer,
         const Obsync__V1__QueryRequest *r)
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
    q.resume_after = r->resume_after.len ? r->resume_after.data : NULL;
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
        rc = obsdb_scan(txn, &q, collect_cb, &v, last, &last_len, &more);
    obsdb_abort(&txn);
    if (rc == OBS_OK)
        reply_obs(self, peer, &v, df, more ? last : NULL, more ? last_len : 0);
    else
        ctl_reply_error(self->ctl, peer, rc, "query failed: %s",
                        obs_strerror(rc));
    collect_fini(&v);
    obs_pattern_fini(&pat);
}

/* --------------------------------------------------------------- imports */

static import_t **
import_slot(engine_t *self, uint64_t id)
{
    for (size_t i = 0; i < IMPORTS_MAX; i++)
        if (self->imports[i] && self->imports[i]->id == id)
            return &self->imports[i];
    return NULL;
}

static void
reply_progress(engine_t *self, const ctl_peer_t *peer, const import_t *imp,
               issue_list_t *issues)
{
    Obsync__V1__ImportProgress pr;
    obsync__v1__import_progress__init(&pr);
    pb_issues_t pi = {0};
    if (issues)
        pb_issues_fill(&pi, issues, ISSUES_PER_REPLY);
    pr.import_id = imp->id;
    pr.rows_seen = imp->rows_seen;
    pr.rows_rejected = imp->rejected;
    pr.rows_committed = imp->rows_committed;
    pr.n_issues = pi.n;
    pr.issues = pi.ptrs;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_IMPORT_PROGRESS;
    env.import_progress = &pr;
    reply_env(self, peer, &env);
    pb_issues_free(&pi);
}

static void
on_import_begin(engine_t *self, const ctl_peer_t *peer,
                const Obsync__V1__ImportBegin *r)
{
    import_t **slot = NULL;
    for (size_t i = 0; i < IMPORTS_MAX && slot == NULL; i++)
        if (self->imports[i] == NULL)
            slot = &self->imports[i];
    if (slot == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_EBUSY,
                        "%d imports are already open; try again later",
                        IMPORTS_MAX);
        return;
    }
    import_t *imp = calloc(1, sizeof(*imp));
    if (imp == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        return;
    }
    issue_list_init(&imp->header_issues, ISSUES_PER_REPLY);
    sdmx_csv_opts_t o = {.vctx = vctx(self, r->decimal_comma),
                         .ignore_columns =
                             (const char *const *)r->ignore_columns,
                         .n_ignore = r->n_ignore_columns};
    int rc = sdmx_csv_open(&o, (const char *const *)r->header, r->n_header,
                           r->header_line ? r->header_line : 1, &imp->mapper,
                           &imp->header_issues);
    if (rc != OBS_OK) {
        if (imp->header_issues.n == 0)
            issue_add(&imp->header_issues, r->header_line, "", "R0-header",
                      false, "unusable header: %s", obs_strerror(rc));
        reply_summary(self, peer, &imp->header_issues, NULL, 0, false, "");
        import_free(imp);
        return;
    }
    if (r->commit_rows > 0 && r->strict) {
        ctl_reply_error(self->ctl, peer, OBS_EINVAL,
                        "a strict import is one transaction: it cannot be "
                        "committed in parts (commit_rows = %" PRIu64 ")",
                        r->commit_rows);
        import_free(imp);
        return;
    }
    imp->id = ++self->next_import_id;
    imp->strict = r->strict;
    imp->dry_run = r->dry_run;
    /* A dry run stages everything: its counts must see its own rows. */
    imp->commit_rows = r->dry_run ? 0 : r->commit_rows;
    snprintf(imp->batch_id, sizeof(imp->batch_id), "imp-%" PRIx64 "-%" PRIu64,
             hlc_wall_ms(), peer->corr_id);
    imp->last_active_ms = hlc_mono_ms();
    snprintf(imp->source, sizeof(imp->source), "%s", r->source_name);
    *slot = imp;
    log_info("import %" PRIu64 " of '%s' started", imp->id, imp->source);
    reply_progress(self, peer, imp, NULL);
}

/* Moves a mapped row into the import's staged ops: a wildcard delete as
 * an op, an observation packed. */
static int
stage_row(import_t *imp, sdmx_row_t *row)
{
    if (row->kind != SDMX_ROW_DELETE_MATCHING)
        return ops_push_packed(&imp->ops, &row->obs, row->key,
                               (size_t)row->key_len, row->action);
    op_t *op = ops_push(&imp->ops);
    if (op == NULL)
        return OBS_ENOMEM;
    op->df = row->df;
    op->action = row->action;
    op->matching = true;
    if ((op->pattern = malloc(sizeof(*op->pattern))) == NULL) {
        ops_pop(&imp->ops);
        return OBS_ENOMEM;
    }
    *op->pattern = row->pattern;
    memset(&row->pattern, 0, sizeof(row->pattern));
    snprintf(op->period, sizeof(op->period), "%s", row->time_period);
    return OBS_OK;
}

/* Commits what an import in parts has staged, in a transaction of its own
 * after every write queued before it (arrival order). The staged ops are
 * consumed either way. */
static int
commit_import_part(engine_t *self, import_t *imp)
{
    flush_pending(self);
    pending_t part = {.is_import = true, .ops = imp->ops};
    memset(&imp->ops, 0, sizeof(imp->ops));
    snprintf(part.batch_id, sizeof(part.batch_id), "%s", imp->batch_id);
    pending_t *group = &part;
    int rc = commit_group(self, &group, 1, false);
    size_t rows = part.ops.n;
    ops_fini(&part.ops);
    if (rc != OBS_OK)
        return rc;
    counts_add(&imp->counts, &part.counts);
    imp->rows_committed += rows;
    imp->parts++;
    return OBS_OK;
}

static void
on_import_rows(engine_t *self, const ctl_peer_t *peer,
               const Obsync__V1__ImportRows *r)
{
    import_t **slot = import_slot(self, r->import_id);
    if (slot == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOENT,
                        "no open import %" PRIu64 " (finished or expired)",
                        r->import_id);
        return;
    }
    import_t *imp = *slot;
    imp->last_active_ms = hlc_mono_ms();
    /* Staged rows are held in memory until they commit. */
    if (imp->ops.n + r->n_rows > self->cfg->max_import_rows) {
        ctl_reply_error(self->ctl, peer, OBS_ETOOBIG,
                        "import exceeds max_import_rows = %" PRIu64
                        " rows staged before a commit; split the file or "
                        "commit it in parts",
                        self->cfg->max_import_rows);
        import_free(imp);
        *slot = NULL;
        return;
    }
    issue_list_t issues;
    issue_list_init(&issues, ISSUES_PER_REPLY);
    sdmx_row_t row;
    sdmx_row_init(&row);
    int rc = OBS_OK;
    for (size_t i = 0; rc == OBS_OK && i < r->n_rows; i++) {
        const Obsync__V1__CsvRow *cr = r->rows[i];
        imp->rows_seen++;
        rc = sdmx_csv_map(imp->mapper, cr->line, (const char *const *)cr->cells,
                          cr->n_cells, &row, &issues);
        if (rc != OBS_OK)
            break;
        if (row.kind == SDMX_ROW_OBS &&
            (row.key_len <= 0 || !obsdb_key_len_fits((size_t)row.key_len))) {
            issue_add(&issues, cr->line, "", "R-length", false,
                      "the observation's key is longer than the store allows "
                      "(%d bytes)",
                      OBS_KEY_MAX - 8);
            row.kind = SDMX_ROW_REJECTED;
        }
        if (row.kind == SDMX_ROW_REJECTED)
            imp->rejected++;
        else if (row.kind == SDMX_ROW_OBS ||
                 row.kind == SDMX_ROW_DELETE_MATCHING)
            rc = stage_row(imp, &row);
    }
    sdmx_row_fini(&row);
    imp->warnings += issues.warnings;
    uint64_t committed_before = imp->rows_committed;
    if (rc == OBS_OK && imp->commit_rows > 0 &&
        imp->ops.n >= imp->commit_rows) {
        rc = commit_import_part(self, imp);
        if (rc != OBS_OK)
            log_warnr(rc, "import %" PRIu64 " of '%s': part %" PRIu64 " failed",
                      imp->id, imp->source, imp->parts + 1);
    }
    if (rc != OBS_OK && committed_before > 0) {
        ctl_reply_error(self->ctl, peer, rc,
                        "import %" PRIu64 " failed: %s; %" PRIu64
                        " row(s) of it were committed before (batch %s)",
                        imp->id, obs_strerror(rc), committed_before,
                        imp->batch_id);
        import_free(imp);
        *slot = NULL;
    } else if (rc != OBS_OK) {
        ctl_reply_error(self->ctl, peer, rc, "import %" PRIu64 " failed: %s",
                        imp->id, obs_strerror(rc));
        import_free(imp);
        *slot = NULL;
    } else {
        reply_progress(self, peer, imp, &issues);
    }
    issue_list_fini(&issues);
}

static void
on_import_finish(engine_t *self, const ctl_peer_t *peer,
                 const Obsync__V1__ImportFinish *r)
{
    import_t **slot = import_slot(self, r->import_id);
    if (slot == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOENT,
                        "no open import %" PRIu64 " (finished or expired)",
                        r->import_id);
        return;
    }
    import_t *imp = *slot;
    *slot = NULL;
    if (r->abort || (imp->strict && imp->rejected > 0)) {
        log_info("import %" PRIu64 " of '%s' %s; %" PRIu64
                 " row(s) committed in parts before",
                 imp->id, imp->source,
                 r->abort ? "aborted by the client"
                          : "not committed: strict and rows rejected",
                 imp->rows_committed);
        reply_summary(self, peer, NULL, &imp->counts, imp->rejected,
                      imp->parts > 0, imp->parts > 0 ? imp->batch_id : "");
        import_free(imp);
        return;
    }
    pending_t *p = pending_new(peer, "imp", hlc_wall_ms());
    if (p == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        import_free(imp);
        return;
    }
    p->is_import = true;
    p->dry_run = imp->dry_run;
    p->ops = imp->ops;
    memset(&imp->ops, 0, sizeof(imp->ops));
    p->rejected = imp->rejected;
    p->issues.warnings = imp->warnings;
    p->prior = imp->counts;
    p->rows_committed_before = imp->rows_committed;
    snprintf(p->batch_id, sizeof(p->batch_id), "%s", imp->batch_id);
    log_info("import %" PRIu64 " of '%s': committing %zu row(s), %" PRIu64
             " rejected, after %" PRIu64 " row(s) in %" PRIu64 " part(s)",
             imp->id, imp->source, p->ops.n, imp->rejected, imp->rows_committed,
             imp->parts);
    import_free(imp);
    queue_pending(self, p);
}

static void
expire_imports(engine_t *self)
{
    uint64_t now = hlc_mono_ms();
    for (size_t i = 0; i < IMPORTS_MAX; i++) {
        import_t *imp = self->imports[i];
        if (imp &&
            now - imp->last_active_ms > self->cfg->import_idle_timeout * 1000) {
            log_notice("import %" PRIu64 " of '%s' dropped after %" PRIu64
                       " s idle; %" PRIu64 " row(s) of it were committed in "
                       "parts before (batch %s), the rest was not stored",
                       imp->id, imp->source, self->cfg->import_idle_timeout,
                       imp->rows_committed, imp->batch_id);
            import_free(imp);
            self->imports[i] = NULL;
        }
    }
}

static bool
imports_open(const engine_t *self)
{
    for (size_t i = 0; i < IMPORTS_MAX; i++)
        if (self->imports[i])
            return true;
    return false;
}

/* ------------------------------------------------------------- structure */

static int
persist_structure(engine_t *self)
{
    char *text = NULL;
    size_t len = 0;
    int rc = structure_to_text(self->st, &text, &len);
    for (int tries = 0; rc == OBS_OK && tries < 8; tries++) {
        obsdb_txn_t *txn = NULL;
        rc = obsdb_begin(self->db, true, &txn);
        if (rc == OBS_OK)
            rc = obsdb_structure_put(txn, text, len);
        if (rc == OBS_OK)
            rc = obsdb_commit(&txn);
        else
            obsdb_abort(&txn);
        if (rc != OBS_ESTOREFULL || !obsdb_grow(self->db))
            break;
        rc = OBS_OK;
    }
    free(text);
    return rc;
}

static void
reply_structure(engine_t *self, const ctl_peer_t *peer, issue_list_t *issues,
                size_t loaded, Obsync__V1__Artefact **arts, size_t n_arts)
{
    Obsync__V1__StructureReply sr;
    obsync__v1__structure_reply__init(&sr);
    pb_issues_t pi = {0};
    if (issues)
        pb_issues_fill(&pi, issues, ISSUES_PER_REPLY);
    sr.n_issues = pi.n;
    sr.issues = pi.ptrs;
    sr.loaded = (uint32_t)loaded;
    sr.n_artefacts = n_arts;
    sr.artefacts = arts;
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_REPLY;
    env.structure_reply = &sr;
    reply_env(self, peer, &env);
    pb_issues_free(&pi);
}

static void
on_structure_load(engine_t *self, const ctl_peer_t *peer,
                  const Obsync__V1__StructureLoad *r)
{
    flush_pending(self); /* queued writes point into the structure */
    if (imports_open(self)) {
        ctl_reply_error(self->ctl, peer, OBS_EBUSY,
                        "imports are in progress; load structure after them");
        return;
    }
    issue_list_t issues;
    issue_list_init(&issues, ISSUES_PER_REPLY);
    size_t loaded = 0;
    structure_t *target = self->st, *scratch = NULL;
    int rc = OBS_OK;
    if (r->dry_run) {
        char *text = NULL;
        size_t len = 0;
        scratch = structure_new();
        rc = scratch ? structure_to_text(self->st, &text, &len) : OBS_ENOMEM;
        if (rc == OBS_OK)
            rc = structure_load_text(scratch, text, len, "current", &issues,
                                     NULL);
        free(text);
        target = scratch;
    }
    if (self->hub && !r->dry_run) /* its checking thread reads it */
        repl_hub_structure_changing(self->hub);
    if (rc == OBS_OK)
        rc = structure_load_text(target, r->text, strlen(r->text),
                                 r->source_name[0] ? r->source_name : "input",
                                 &issues, &loaded);
    if (self->hub && !r->dry_run)
        repl_hub_structure_loaded(self->hub, rc == OBS_OK && loaded > 0);
    if (rc == OBS_OK && !r->dry_run && loaded > 0) {
        rc = persist_structure(self);
        if (rc != OBS_OK)
            log_errr(rc, "structure: loaded but not persisted");
        else
            log_notice("structure: %zu artefact(s) loaded from '%s'", loaded,
                       r->source_name);
        if (self->node)
            repl_node_structure_changed(self->node);
    }
    structure_destroy(&scratch);
    if (rc == OBS_OK || rc == OBS_ESTRUCT)
        reply_structure(self, peer, &issues, rc == OBS_OK ? loaded : 0, NULL,
                        0);
    else
        ctl_reply_error(self->ctl, peer, rc, "structure load failed: %s",
                        obs_strerror(rc));
    issue_list_fini(&issues);
}

typedef struct {
    Obsync__V1__Artefact *items;
    Obsync__V1__Artefact **ptrs;
    size_t n;
} arts_t;

static void
art_add(arts_t *a, const char *kind, const char *urn, const char *name,
        size_t items)
{
    Obsync__V1__Artefact *x = &a->items[a->n];
    obsync__v1__artefact__init(x);
    x->kind = unconst_str(kind);
    x->urn = unconst_str(urn);
    x->name = unconst_str(name ? name : "");
    x->items = (uint32_t)items;
    a->ptrs[a->n++] = x;
}

static void
on_structure_list(engine_t *self, const ctl_peer_t *peer,
                  const Obsync__V1__StructureList *r)
{
    const structure_t *st = self->st;
    size_t total = structure_codelist_count(st) + structure_dsd_count(st) +
                   structure_dataflow_count(st) + structure_agreement_count(st);
    arts_t a = {calloc(total + 1, sizeof(*a.items)),
                calloc(total + 1, sizeof(*a.ptrs)), 0};
    char(*agr_urn)[OBS_ID_MAX + OBS_DATAFLOW_MAX + 2] =
        calloc(structure_agreement_count(st) + 1, sizeof(*agr_urn));
    if (a.items == NULL || a.ptrs == NULL || agr_urn == NULL) {
        ctl_reply_error(self->ctl, peer, OBS_ENOMEM, "out of memory");
        goto out;
    }
    const char *k = r->kind;
    bool all = k[0] == '\0';
    for (size_t i = 0;
         (all || !strcmp(k, "codelist")) && i < structure_codelist_count(st);
         i++) {
        const sdmx_codelist_t *c = structure_codelist_at(st, i);
        art_add(&a, "codelist", c->urn, c->name, c->n_codes);
    }
    for (size_t i = 0;
         (all || !strcmp(k, "dsd")) && i < structure_dsd_count(st); i++) {
        const sdmx_dsd_t *d = structure_dsd_at(st, i);
        art_add(&a, "dsd", d->urn, d->name, d->n_dims + d->n_attrs);
    }
    for (size_t i = 0;
         (all || !strcmp(k, "dataflow")) && i < structure_dataflow_count(st);
         i++) {
        const sdmx_dataflow_t *d = structure_dataflow_at(st, i);
        art_add(&a, "dataflow", d->urn, d->name, d->dsd->n_dims);
    }
    for (size_t i = 0;
         (all || !strcmp(k, "agreement")) && i < structure_agreement_count(st);
         i++) {
        const sdmx_agreement_t *g = structure_agreement_at(st, i);
        snprintf(agr_urn[i], sizeof(agr_urn[i]), "%s:%s", g->provider,
                 g->dataflow->urn);
        art_add(&a, "agreement", agr_urn[i], g->n_areas ? g->areas[0] : "",
                g->n_areas);
    }
    if (r->urn[0]) { /* filter to one URN, by exact match */
        size_t w = 0;
        for (size_t i = 0; i < a.n; i++)
            if (strcmp(a.ptrs[i]->urn, r->urn) == 0)
                a.ptrs[w++] = a.ptrs[i];
        a.n = w;
        if (w == 0) {
            ctl_reply_error(self->ctl, peer, OBS_ENOENT, "no artefact '%.150s'",
                            r->urn);
            goto out;
        }
    }
    reply_structure(self, peer, NULL, 0, a.ptrs, a.n);
out:
    free(a.items);
    free(a.ptrs);
    free(agr_urn);
}

/* ---------------------------------------------------------------- status */

static void
on_status(engine_t *self, const ctl_peer_t *peer)
{
    obsdb_stats_t s = {0};
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_stats(txn, &s);
    obsdb_abort(&txn);
    if (rc != OBS_OK) {
        ctl_reply_error(self->ctl, peer, rc, "status: %s", obs_strerror(rc));
        return;
    }
    Obsync__V1__StatusReply sr;
    obsync__v1__status_reply__init(&sr);
    sr.node_id = unconst_str(self->cfg->node_id);
    sr.role = unconst_str(cfg_role_name(self->cfg->role));
    sr.epoch = unconst_str(obsdb_epoch(self->db));
    sr.provider = unconst_str(self->cfg->provider);
    sr.observations = s.observations - s.tombstones;
    sr.tombstones = s.tombstones;
    sr.history_versions = s.history;
    sr.outbox_depth = s.outbox;
    sr.last_origin_seq = self->origin_seq;
    sr.hlc = self->hlc.last;
    sr.map_size = s.map_size;
    sr.map_used = s.map_used;
    sr.uptime_s = (uint64_t)(time(NULL) - self->started);
    sr.commits = self->commits;
    sr.writes_grouped = self->writes_grouped;
    size_t n = structure_dataflow_count(self->st);
    char **dfs = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; dfs && i < n; i++)
        dfs[i] = structure_dataflow_at(self->st, i)->urn;
    sr.n_dataflows = dfs ? n : 0;
    sr.dataflows = dfs;
    if (self->hub)
        repl_hub_status(self->hub, &sr);
    if (self->node)
        repl_node_status(self->node, &sr);
    codec_env_t env;
    obsync__v1__envelope__init(&env);
    env.body_case = OBSYNC__V1__ENVELOPE__BODY_STATUS_REPLY;
    env.status_reply = &sr;
    reply_env(self, peer, &env);
    free(dfs);
}

/* A node whose clock is further from its hub's than the hub accepts
 * refuses local writes at once (PROTOCOL.md §5.4 "Clocks"): acknowledged,
 * they would be refused by the hub. An import open then is dropped (what
 * it committed in parts stays). True when req was refused. */
static bool
refused_for_clock(engine_t *self, const ctl_peer_t *peer,
                  const codec_env_t *req)
{
    char why[256];
    uint64_t import_id = 0;
    switch (req->body_case) {
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_ROWS:
        import_id = req->import_rows->import_id;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_FINISH:
        if (req->import_finish->abort)
            return false;
        import_id = req->import_finish->import_id;
        break;
    case OBSYNC__V1__ENVELOPE__BODY_PUT:
    case OBSYNC__V1__ENVELOPE__BODY_DELETE:
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_BEGIN:
        break;
    default:
        return false;
    }
    if (self->node == NULL ||
        repl_node_clock_check(self->node, why, sizeof(why)) == OBS_OK)
        return false;
    import_t **slot = import_id ? import_slot(self, import_id) : NULL;
    if (slot != NULL) {
        log_warnx("import %" PRIu64 " of '%s' dropped: %s", (*slot)->id,
                  (*slot)->source, why);
        import_free(*slot);
        *slot = NULL;
    } else {
        log_warnx("local write refused: %s", why);
    }
    ctl_reply_error(self->ctl, peer, OBS_ECLOCK, "%s", why);
    return true;
}

static void
on_request(void *arg, const ctl_peer_t *peer, const codec_env_t *req)
{
    engine_t *self = arg;
    if (refused_for_clock(self, peer, req))
        return;
    switch (req->body_case) {
    case OBSYNC__V1__ENVELOPE__BODY_PUT:
        on_put(self, peer, req->put);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_GET:
        on_get(self, peer, req->get->key, false);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_HISTORY:
        on_get(self, peer, req->history->key, true);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_DELETE:
        on_delete(self, peer, req->delete_);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_QUERY:
        on_query(self, peer, req->query);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_BEGIN:
        on_import_begin(self, peer, req->import_begin);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_ROWS:
        on_import_rows(self, peer, req->import_rows);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_IMPORT_FINISH:
        on_import_finish(self, peer, req->import_finish);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_LIST:
        on_structure_list(self, peer, req->structure_list);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STRUCTURE_LOAD:
        on_structure_load(self, peer, req->structure_load);
        break;
    case OBSYNC__V1__ENVELOPE__BODY_STATUS:
        on_status(self, peer);
        break;
    default:
        ctl_reply_error(self->ctl, peer, OBS_EPROTO,
                        "message type %d is not a local API request",
                        (int)req->body_case);
    }
}

/* ------------------------------------------------------------ life cycle */

static int
load_structure(engine_t *self, char *err, size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    obsdb_txn_t *txn = NULL;
    int rc = obsdb_begin(self->db, false, &txn);
    if (rc == OBS_OK)
        rc = obsdb_structure_get(txn, &text, &len);
    if (rc == OBS_OK) {
        uint64_t v = 0;
        if (obsdb_meta_get_u64(txn, "origin_seq", &v) == OBS_OK)
            self->origin_seq = v;
        if (obsdb_meta_get_u64(txn, "hlc", &v) == OBS_OK)
            hlc_init(&self->hlc, v);
    }
    obsdb_abort(&txn);
    issue_list_t issues;
    issue_list_init(&issues, 20);
    const char *source = "store";
    if (rc == OBS_ENOENT && self->cfg->structure_file) {
        source = self->cfg->structure_file;
        FILE *f = fopen(source, "rb");
        rc = OBS_ESYS;
        if (f != NULL) {
            text = malloc(64u * 1024 * 1024);
            len = text ? fread(text, 1, 64u * 1024 * 1024, f) : 0;
            fclose(f);
            rc = text ? OBS_OK : OBS_ENOMEM;
        }
        if (rc == OBS_ESYS)
            snprintf(err, cap, "structure_file %s: %s", source,
                     strerror(errno));
    } else if (rc == OBS_ENOENT) {
        rc = OBS_OK; /* no structure yet: every import is refused (R1) */
    }
    if (rc == OBS_OK && text != NULL) {
        rc = structure_load_text(self->st, text, len, source, &issues, NULL);
        if (rc != OBS_OK)
            snprintf(err, cap, "%s",
                     issues.n ? issues.items[0].message : obs_strerror(rc));
        else if (strcmp(source, "store") != 0)
            rc = persist_structure(self);
    }
    free(text);
    issue_list_fini(&issues);
    return rc;
}

/* Structure text from the hub: merged like `obsync structure load`, but
 * only between imports (their mappers point into the structure). */
static int
load_replicated_structure(void *arg, const char *text, size_t len)
{
    engine_t *self = arg;
    if (imports_open(self))
        return OBS_EBUSY;
    flush_pending(self); /* queued writes point into the structure */
    issue_list_t issues;
    issue_list_init(&issues, 5);
    size_t loaded = 0;
    int rc = structure_load_text(self->st, text, len, "hub", &issues, &loaded);
    if (rc != OBS_OK && issues.n)
        log_errx("structure from the hub refused: %s", issues.items[0].message);
    if (rc == OBS_OK && loaded > 0) {
        rc = persist_structure(self);
        log_notice("structure: %zu artefact(s) received from the hub", loaded);
    }
    issue_list_fini(&issues);
    return rc;
}

int
engine_new(const cfg_t *cfg, engine_t **out, char *err, size_t cap)
{
    *out = NULL;
    engine_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->cfg = cfg;
    self->started = time(NULL);
    hlc_init(&self->hlc, 0);
    obsdb_opts_t o = {.dir = cfg->data_dir,
                      .node_id = cfg->node_id,
                      .map_size = cfg->map_size,
                      .map_max = cfg->map_max,
                      .map_step = cfg->map_step,
                      .no_sync = cfg->no_sync,
                      .no_outbox = cfg->role == CFG_ROLE_HUB};
    int rc = obsdb_open(&o, &self->db, err, cap);
    if (rc == OBS_OK && (self->st = structure_new()) == NULL)
        rc = OBS_ENOMEM;
    if (rc == OBS_OK)
        rc = load_structure(self, err, cap);
    if (rc == OBS_OK && (self->zctx = zmq_ctx_new()) == NULL)
        rc = OBS_ESYS;
    if (rc == OBS_OK)
        rc = ctl_open(self->zctx, cfg->api_socket, cfg->api_mode,
                      cfg->api_group, cfg->max_frame, &self->ctl, err, cap);
    self->renv = (repl_env_t){.cfg = cfg,
                              .db = self->db,
                              .st = self->st,
                              .hlc = &self->hlc,
                              .zctx = self->zctx,
                              .load_structure = load_replicated_structure,
                              .origin_seq = &self->origin_seq,
                              .engine = self};
    if (rc == OBS_OK && cfg->role == CFG_ROLE_HUB)
        rc = repl_hub_new(&self->renv, &self->hub, err, cap);
    else if (rc == OBS_OK && cfg->hub_endpoint)
        rc = repl_node_new(&self->renv, &self->node, err, cap);
    if (rc != OBS_OK) {
        engine_destroy(&self);
        return rc;
    }
    *out = self;
    return OBS_OK;
}

void
engine_stop(engine_t *self)
{
    self->stop = 1;
}

int
engine_run(engine_t *self)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_notice("%s %s ready: api=ipc://%s store=%s epoch=%s",
               cfg_role_name(self->cfg->role), self->cfg->node_id,
               self->cfg->api_socket, self->cfg->data_dir,
               obsdb_epoch(self->db));
    uint64_t next_cron = hlc_mono_ms();
    while (!self->stop && !g_signal_stop) {
        mem_advise_heap();
        void *rsock = self->hub    ? repl_hub_socket(self->hub)
                      : self->node ? repl_node_socket(self->node)
                                   : NULL;
        zmq_pollitem_t items[2] = {{ctl_socket(self->ctl), 0, ZMQ_POLLIN, 0},
                                   {rsock, 0, ZMQ_POLLIN, 0}};
        bool busy =
            self->pending_head || (self->hub && repl_hub_has_work(self->hub));
        int rc = zmq_poll(items, rsock ? 2 : 1, busy ? 0 : 100);
        if (rc < 0 && zmq_errno() != EINTR) {
            log_errx("poll: %s", zmq_strerror(zmq_errno()));
            break;
        }
        if (rc > 0 && (items[0].revents & ZMQ_POLLIN))
            ctl_dispatch(self->ctl, on_request, self);
        if (rc > 0 && rsock && (items[1].revents & ZMQ_POLLIN)) {
            if (self->hub)
                repl_hub_on_readable(self->hub);
            else
                repl_node_on_readable(self->node);
        }
        uint64_t now = hlc_mono_ms(); /* timers: immune to clock steps */
        if (now >= next_cron) {       /* cron, 10 Hz */
            expire_imports(self);
            if (self->hub)
                repl_hub_cron(self->hub, now);
            if (self->node)
                repl_node_cron(self->node, now);
            next_cron = now + 100;
        }
        /* before_sleep: group commits, then replies and acks */
        flush_pending(self);
        if (self->hub)
            repl_hub_before_sleep(self->hub);
    }
    flush_pending(self);
    log_notice("stopping: %" PRIu64 " commits, %" PRIu64 " writes grouped",
               self->commits, self->writes_grouped);
    return OBS_OK;
}

void
engine_destroy(engine_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    engine_t *self = *selfp;
    while (self->pending_head) {
        pending_t *next = self->pending_head->next;
        pending_free(self->pending_head);
        self->pending_head = next;
    }
    for (size_t i = 0; i < IMPORTS_MAX; i++)
        import_free(self->imports[i]);
    repl_hub_destroy(&self->hub);
    repl_node_destroy(&self->node);
    ctl_close(&self->ctl);
    if (self->zctx)
        zmq_ctx_term(self->zctx);
    structure_destroy(&self->st);
    obsdb_close(&self->db);
    free(self);
    *selfp = NULL;
}
