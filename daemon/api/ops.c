/*
 * ops.c - the staging arena of a write or an import: ops (requests'
 * observations and wildcard deletes) and packed import rows, in order (see
 * api_int.h).
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

/* ------------------------------------------------------------ small helpers */

slot_t *
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

void
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
            slot_t **blocks = realloc(ops->blocks, cap * sizeof(slot_t *));
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
op_t *
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
void
ops_pop(ops_t *ops)
{
    op_free(ops_at(ops, --ops->n)->op);
}

/* Appends obs (identity, value, attributes; not its version) as a packed
 * row under its canonical key (klen bytes; it fits the store: checked when
 * the row was mapped). OBS_ENOMEM. */
int
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
