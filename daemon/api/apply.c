/*
 * apply.c - one staged write applied inside the group commit's transaction:
 * stamping a new local version, merge, unchanged detection, tombstones and
 * wildcard deletes.
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
int
apply_merge_attrs(obs_t *o, const obs_t *cur)
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
        if ((rc = apply_merge_attrs(obs, &cur)) != OBS_OK)
            goto out;
    }
    uint8_t hash[OBS_HASH_LEN], cur_hash[OBS_HASH_LEN];
    obs->ver.tombstone = false;
    obs_content_hash(obs, hash);
    /* of the stored content, not the hash it came with: a peer's hash is
     * never trusted (PROTOCOL.md §3) */
    if (live)
        obs_content_hash(&cur, cur_hash);
    if (live && memcmp(hash, cur_hash, OBS_HASH_LEN) == 0) {
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
    int rc = obsdb_scan(txn, &q, read_collect_cb, &col, last, &last_len, &more);
    /* A wildcard over REF_AREA deletes only what the provider may write. */
    int area = structure_dim_index(op->df->dsd, "REF_AREA");
    for (size_t i = 0; rc == OBS_OK && i < col.n; i++)
        if (area < 0 || structure_may_write(self->st, self->cfg->provider,
                                            op->df, col.items[i].dims[area]))
            rc = write_tombstone(self, txn, &col.items[i], batch, c);
    if (rc == OBS_OK && col.n == 0)
        c->unchanged++;
    read_collect_fini(&col);
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

int
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
