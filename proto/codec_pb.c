/*
 * codec_pb.c - the codec's protobuf-c side: Envelope frames unpacked into
 * an arena under a budget and packed, and Observations as generated
 * messages (views for packing, copies or read-only views of what was
 * unpacked). The hand-written Observation codec and the arena are codec.c;
 * msg.c turns Envelopes into msg.h's plain structs with these functions.
 *
 * Not a transport: no sockets, no LMDB. Called by msg.c and msg_enc.c
 * (and by the tests of proto's internals).
 */
#include "codec_pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"

/* ---- Observations as generated messages */

void
codec_obs_view_fini(codec_obs_view_t *v)
{
    free(v->attrs);
    free(v->attr_ptrs);
    free(v->dims);
    memset(v, 0, sizeof(*v));
}

/* protobuf-c wants char * even for fields it only reads while packing. */
static char *
unconst(const char *s)
{
    union {
        const char *c;
        char *m;
    } u = {.c = s ? s : ""};
    return u.m;
}

/* Fills v from obs with the arrays given (room for obs's dims and
 * attributes). */
static void
view_fill(codec_obs_view_t *v, const obs_t *obs)
{
    obsync__v1__observation__init(&v->msg);
    obsync__v1__version__init(&v->ver);
    size_t na = obs->n_attrs, nd = obs->n_dims;
    for (size_t i = 0; i < na; i++) {
        obsync__v1__attribute__init(&v->attrs[i]);
        v->attrs[i].id = unconst(obs->attrs[i].id);
        v->attrs[i].value = unconst(obs->attrs[i].value);
        v->attr_ptrs[i] = &v->attrs[i];
    }
    for (size_t i = 0; i < nd; i++)
        v->dims[i] = unconst(obs->dims[i]);
    v->msg.dataflow = unconst(obs->dataflow);
    v->msg.n_dims = nd;
    v->msg.dims = v->dims;
    v->msg.time_period = unconst(obs->time_period);
    v->msg.value = unconst(obs->value);
    v->msg.n_attrs = na;
    v->msg.attrs = v->attr_ptrs;

    const obs_version_t *s = &obs->ver;
    v->ver.hlc = s->hlc;
    v->ver.origin = unconst(s->origin);
    v->ver.origin_seq = s->origin_seq;
    v->ver.provider = unconst(s->provider);
    v->ver.base_hlc = s->base_hlc;
    v->ver.base_origin = unconst(s->base_origin);
    v->ver.base_origin_seq = s->base_origin_seq;
    v->ver.action = codec_action_to_pb(s->action);
    v->ver.batch_id = unconst(s->batch_id);
    v->ver.content_hash.data =
        (uint8_t *)unconst((const char *)s->content_hash);
    v->ver.content_hash.len = OBS_HASH_LEN;
    v->ver.tombstone = s->tombstone;
    v->ver.hub_seq = s->hub_seq;
    v->msg.version = &v->ver;
}

int
codec_obs_view_init(codec_obs_view_t *v, const obs_t *obs)
{
    memset(v, 0, sizeof(*v));
    size_t na = obs->n_attrs, nd = obs->n_dims;
    v->attrs = calloc(na ? na : 1, sizeof(*v->attrs));
    v->attr_ptrs = calloc(na ? na : 1, sizeof(Obsync__V1__Attribute *));
    v->dims = calloc(nd ? nd : 1, sizeof(*v->dims));
    if (v->attrs == NULL || v->attr_ptrs == NULL || v->dims == NULL) {
        codec_obs_view_fini(v);
        return OBS_ENOMEM;
    }
    view_fill(v, obs);
    return OBS_OK;
}

static size_t
len_or_0(const char *s)
{
    return s ? strlen(s) : 0;
}

/* obs.h's limits, which every decoder enforces: OBS_ETOOBIG beyond them. */
static int
obs_limits(const obs_t *o)
{
    if (o->n_dims > OBS_MAX_DIMS || o->n_attrs > OBS_MAX_ATTRS ||
        len_or_0(o->dataflow) > OBS_DATAFLOW_MAX ||
        len_or_0(o->time_period) > OBS_PERIOD_MAX ||
        len_or_0(o->value) > OBS_VALUE_MAX)
        return OBS_ETOOBIG;
    for (size_t i = 0; i < o->n_dims; i++)
        if (len_or_0(o->dims[i]) > OBS_CODE_MAX)
            return OBS_ETOOBIG;
    for (size_t i = 0; i < o->n_attrs; i++)
        if (len_or_0(o->attrs[i].id) > OBS_CODE_MAX ||
            len_or_0(o->attrs[i].value) > OBS_TEXT_MAX)
            return OBS_ETOOBIG;
    return OBS_OK;
}

int
codec_obs_pb_view(codec_arena_t *a, const obs_t *obs, bool with_version,
                  Obsync__V1__Observation **out)
{
    *out = NULL;
    int rc = obs_limits(obs);
    if (rc != OBS_OK)
        return rc;
    size_t na = obs->n_attrs, nd = obs->n_dims;
    codec_obs_view_t *v = codec_arena_alloc(a, sizeof(*v));
    if (v == NULL)
        return OBS_ENOMEM;
    v->attrs = codec_arena_alloc(a, (na ? na : 1) * sizeof(*v->attrs));
    v->attr_ptrs =
        codec_arena_alloc(a, (na ? na : 1) * sizeof(Obsync__V1__Attribute *));
    v->dims = codec_arena_alloc(a, (nd ? nd : 1) * sizeof(*v->dims));
    if (v->attrs == NULL || v->attr_ptrs == NULL || v->dims == NULL)
        return OBS_ENOMEM;
    view_fill(v, obs);
    if (!with_version)
        v->msg.version = NULL;
    *out = &v->msg;
    return OBS_OK;
}

static int
copy_id(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return OBS_EPROTO;
    memcpy(dst, src, n + 1);
    return OBS_OK;
}

static int
version_from_pb(const Obsync__V1__Version *pv, obs_version_t *v)
{
    memset(v, 0, sizeof(*v));
    if (pv == NULL)
        return OBS_OK;
    v->hlc = pv->hlc;
    v->origin_seq = pv->origin_seq;
    v->base_hlc = pv->base_hlc;
    v->base_origin_seq = pv->base_origin_seq;
    v->action = codec_action_from_pb(pv->action);
    v->tombstone = pv->tombstone;
    v->hub_seq = pv->hub_seq;
    if (pv->content_hash.len == OBS_HASH_LEN)
        memcpy(v->content_hash, pv->content_hash.data, OBS_HASH_LEN);
    else if (pv->content_hash.len != 0)
        return OBS_EPROTO;
    int rc = copy_id(v->origin, sizeof(v->origin), pv->origin);
    if (rc == OBS_OK)
        rc = copy_id(v->provider, sizeof(v->provider), pv->provider);
    if (rc == OBS_OK)
        rc = copy_id(v->base_origin, sizeof(v->base_origin), pv->base_origin);
    if (rc == OBS_OK)
        rc = copy_id(v->batch_id, sizeof(v->batch_id), pv->batch_id);
    return rc;
}

static int
check_limits(const Obsync__V1__Observation *pb)
{
    if (pb->n_dims > OBS_MAX_DIMS || pb->n_attrs > OBS_MAX_ATTRS)
        return OBS_EPROTO;
    if (strlen(pb->dataflow) > OBS_DATAFLOW_MAX ||
        strlen(pb->time_period) > OBS_PERIOD_MAX ||
        strlen(pb->value) > OBS_VALUE_MAX)
        return OBS_EPROTO;
    for (size_t i = 0; i < pb->n_dims; i++)
        if (strlen(pb->dims[i]) > OBS_CODE_MAX)
            return OBS_EPROTO;
    for (size_t i = 0; i < pb->n_attrs; i++)
        if (strlen(pb->attrs[i]->id) > OBS_CODE_MAX ||
            strlen(pb->attrs[i]->value) > OBS_TEXT_MAX)
            return OBS_EPROTO;
    return OBS_OK;
}

int
codec_obs_from_pb(const Obsync__V1__Observation *pb, obs_t *obs)
{
    obs_fini(obs);
    int rc = check_limits(pb);
    if (rc != OBS_OK)
        return rc;
    rc = obs_set_identity(obs, pb->dataflow, (const char *const *)pb->dims,
                          pb->n_dims, pb->time_period);
    if (rc == OBS_OK)
        rc = obs_set_value(obs, pb->value);
    for (size_t i = 0; rc == OBS_OK && i < pb->n_attrs; i++)
        rc = obs_set_attr(obs, pb->attrs[i]->id, pb->attrs[i]->value);
    if (rc == OBS_OK)
        rc = version_from_pb(pb->version, &obs->ver);
    if (rc != OBS_OK)
        obs_fini(obs);
    return rc == OBS_EINVAL || rc == OBS_ETOOBIG ? OBS_EPROTO : rc;
}

int
codec_obs_ro_from_pb(codec_arena_t *a, const Obsync__V1__Observation *pb,
                     obs_t *obs)
{
    memset(obs, 0, sizeof(*obs));
    int rc = check_limits(pb);
    if (rc != OBS_OK)
        return rc;
    static char *no_dims[1] = {NULL};
    obs->dataflow = pb->dataflow;
    obs->dims = pb->n_dims ? pb->dims : no_dims;
    obs->n_dims = pb->n_dims;
    obs->time_period = pb->time_period;
    obs->value = pb->value;
    if (pb->n_attrs > 0) {
        obs->attrs = codec_arena_alloc(a, pb->n_attrs * sizeof(*obs->attrs));
        if (obs->attrs == NULL)
            return OBS_ENOMEM;
    }
    for (size_t i = 0; i < pb->n_attrs; i++) {
        if (pb->attrs[i]->id[0] == '\0')
            return OBS_EPROTO; /* obs_set_attr refuses it */
        codec_attrs_set(obs->attrs, &obs->n_attrs, pb->attrs[i]->id,
                        pb->attrs[i]->value);
    }
    return version_from_pb(pb->version, &obs->ver);
}

/* An unpacked envelope lives in an arena of its own: protobuf-c's first
 * allocation, the Envelope itself, is the arena's first inline bytes, so
 * codec_envelope_free finds the box from the envelope. A frame of 2,000
 * CSV rows or 1,000 changes is then a handful of mallocs, not tens of
 * thousands. */
typedef struct {
    codec_arena_t arena;
} env_box_t;

static env_box_t *
env_box(codec_env_t *env)
{
    return (env_box_t *)(void *)((unsigned char *)env -
                                 offsetof(env_box_t, arena.first));
}

static void
env_box_free(env_box_t *box)
{
    codec_arena_release(&box->arena);
    free(box);
}

/* The arena as protobuf-c's allocator, telling a refusal (the budget
 * spent, or malloc failing) from malformed input when unpack returns NULL,
 * and the budget from malloc (over: the arena had not room for size,
 * rounded up as codec_arena_alloc does). */
typedef struct {
    codec_arena_t *arena;
    bool refused, over;
} budget_t;

static void *
budget_alloc(void *data, size_t size)
{
    budget_t *b = data;
    void *p = codec_arena_alloc(b->arena, size);
    if (p == NULL) {
        b->refused = true;
        size_t left = b->arena->budget - b->arena->used;
        b->over =
            b->over || size > left || size + alignof(max_align_t) - 1 > left;
    }
    return p;
}

/* Unpacks under budget; a refusal for the budget returns over_rc. */
static int
unpack(const uint8_t *buf, size_t len, size_t max_frame, size_t budget,
       int over_rc, codec_env_t **out, bool *over)
{
    *out = NULL;
    if (len > max_frame || len > (size_t)CODEC_MAX_FRAME)
        return OBS_ETOOBIG;
    env_box_t *box = malloc(sizeof(*box));
    if (box == NULL)
        return OBS_ENOMEM;
    size_t dflt = 32 * len + (size_t)1024 * 1024;
    codec_arena_init(&box->arena, budget == 0 ? dflt : budget);
    budget_t bud = {&box->arena, false, false};
    ProtobufCAllocator alloc = {budget_alloc, codec_arena_free, &bud};
    codec_env_t *env = obsync__v1__envelope__unpack(&alloc, len, buf);
    int rc = OBS_OK;
    if (env == NULL && bud.over) {
        rc = over_rc;
        if (over != NULL)
            *over = true;
    } else if (env == NULL)
        rc = bud.refused ? OBS_ENOMEM : OBS_EPROTO;
    else if ((void *)env != (void *)box->arena.first)
        rc = OBS_ENOMEM; /* a protobuf-c that allocates otherwise */
    else if (env->version != CODEC_VERSION)
        rc = OBS_EVERSION;
    else if (env->body_case == OBSYNC__V1__ENVELOPE__BODY__NOT_SET)
        rc = OBS_EPROTO;
    if (rc != OBS_OK) {
        env_box_free(box);
        return rc;
    }
    *out = env;
    return OBS_OK;
}

int
codec_envelope_unpack(const uint8_t *buf, size_t len, size_t max_frame,
                      codec_env_t **out)
{
    return unpack(buf, len, max_frame, 0, OBS_ENOMEM, out, NULL);
}

int
codec_envelope_unpack_budget(const uint8_t *buf, size_t len, size_t max_frame,
                             size_t budget, codec_env_t **out, bool *over)
{
    if (over != NULL)
        *over = false;
    return unpack(buf, len, max_frame, budget, OBS_ETOOBIG, out, over);
}

codec_arena_t *
codec_envelope_arena(codec_env_t *env)
{
    return &env_box(env)->arena;
}

void
codec_envelope_free(codec_env_t **envp)
{
    if (envp == NULL || *envp == NULL)
        return;
    env_box_free(env_box(*envp));
    *envp = NULL;
}

int
codec_envelope_pack(codec_env_t *env, uint8_t **buf, size_t *len)
{
    env->version = CODEC_VERSION;
    size_t n = obsync__v1__envelope__get_packed_size(env);
    if (n > (size_t)CODEC_MAX_FRAME)
        return OBS_ETOOBIG;
    uint8_t *out = malloc(n ? n : 1);
    if (out == NULL)
        return OBS_ENOMEM;
    obsync__v1__envelope__pack(env, out);
    *buf = out;
    *len = n;
    return OBS_OK;
}
