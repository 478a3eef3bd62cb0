/*
 * codec.c - obsync's observation encoding by hand: an Observation for the
 * store and the wire written and read without protobuf-c's reflective
 * packer (the replication hot path), and the arena every decoder allocates
 * from.
 *
 * Not a transport: it never touches sockets or LMDB. The decoders here
 * check the record size before reading and allocate from a counting arena
 * with a budget proportional to the input, so hostile bytes cannot make us
 * allocate gigabytes (protobuf-c issues #375, #796). The protobuf-c side
 * (Envelope frames, views of generated messages) is codec_pb.c; msg.c
 * builds on both. Called by the store layer, the daemon and, through
 * msg.c, the client library.
 */
#include <limits.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "codec_pb.h"
#include "obs_err.h"

/* Field numbers of obsync.proto read or written by hand below. */
#define OBSERVATION_VERSION_FIELD 6

/* The codec_arena_t of codec.h: protobuf-c makes some thirty small
 * allocations per Observation, and their malloc/free was the largest single
 * cost of applying replicated changes. The first CODEC_ARENA_INLINE bytes
 * come from the arena itself (on the caller's stack), the rest from
 * malloc'd blocks chained for codec_arena_release; free is a no-op, so a
 * message is never passed to free_unpacked. At most `budget` bytes are handed
 * out (protobuf-c's allocations for one message are bounded by it before any
 * size in the input is trusted). */
#define ARENA_BLOCK 16384

struct codec_arena_block {
    struct codec_arena_block *next;
    alignas(max_align_t) unsigned char data[];
};
typedef codec_arena_t arena_t;
typedef struct codec_arena_block arena_block_t;

void
codec_arena_init(arena_t *a, size_t budget)
{
    a->cur = a->first;
    a->end = a->first + sizeof(a->first);
    a->blocks = NULL;
    a->used = 0;
    a->budget = budget;
}

void *
codec_arena_alloc(void *data, size_t size)
{
    arena_t *a = data;
    if (size > a->budget - a->used) /* before rounding up, which could wrap */
        return NULL;
    size = (size + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
    if (size > a->budget - a->used)
        return NULL;
    if (size > (size_t)(a->end - a->cur)) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        arena_block_t *b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->next = a->blocks;
        a->blocks = b;
        a->cur = b->data;
        a->end = b->data + cap;
    }
    void *p = a->cur;
    a->cur += size;
    a->used += size;
    return p;
}

void
codec_arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

void
codec_arena_release(arena_t *a)
{
    while (a->blocks != NULL) {
        arena_block_t *next = a->blocks->next;
        free(a->blocks);
        a->blocks = next;
    }
}

Obsync__V1__Action
codec_action_to_pb(obs_action_t a)
{
    switch (a) {
    case OBS_ACTION_REPLACE:
        return OBSYNC__V1__ACTION__ACTION_REPLACE;
    case OBS_ACTION_DELETE:
        return OBSYNC__V1__ACTION__ACTION_DELETE;
    default:
        return OBSYNC__V1__ACTION__ACTION_MERGE;
    }
}

obs_action_t
codec_action_from_pb(Obsync__V1__Action a)
{
    switch (a) {
    case OBSYNC__V1__ACTION__ACTION_REPLACE:
        return OBS_ACTION_REPLACE;
    case OBSYNC__V1__ACTION__ACTION_DELETE:
        return OBS_ACTION_DELETE;
    default:
        return OBS_ACTION_MERGE;
    }
}

/* ---- Observation by hand: exactly protobuf-c's bytes (fields in number
 * order; proto3 defaults, i.e. 0, false and "", left out; repeated strings
 * always written), without its reflective packer and the view it needs,
 * which were a tenth of the hub's time. test_codec and fuzz_codec compare
 * every encoding with obsync__v1__observation__pack. Field numbers are all
 * below 16: one-byte tags. */

enum { WT_VARINT = 0, WT_LEN = 2 };

static size_t
varint_size(uint64_t v)
{
    size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        n++;
    return n;
}

uint8_t *
codec_varint_put(uint8_t *p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *p++ = (uint8_t)(v | 0x80);
    *p++ = (uint8_t)v;
    return p;
}

static size_t
u64_size(uint64_t v)
{
    return v ? 1 + varint_size(v) : 0;
}

static uint8_t *
put_u64(uint8_t *p, unsigned field, uint64_t v)
{
    if (v == 0)
        return p;
    *p++ = (uint8_t)(field << 3 | WT_VARINT);
    return codec_varint_put(p, v);
}

static size_t
bytes_size(size_t n, bool always)
{
    return n || always ? 1 + varint_size(n) + n : 0;
}

static uint8_t *
put_bytes(uint8_t *p, unsigned field, const void *b, size_t n, bool always)
{
    if (n == 0 && !always)
        return p;
    *p++ = (uint8_t)(field << 3 | WT_LEN);
    p = codec_varint_put(p, n);
    memcpy(p, b, n);
    return p + n;
}

static const char *
str_or_empty(const char *s)
{
    return s ? s : "";
}

/* The lengths of a version's strings, measured once for both passes. */
typedef struct {
    size_t origin, provider, base_origin, batch_id;
} version_lens_t;

static version_lens_t
version_lens(const obs_version_t *v)
{
    return (version_lens_t){strlen(v->origin), strlen(v->provider),
                            strlen(v->base_origin), strlen(v->batch_id)};
}

static size_t
version_size(const obs_version_t *v, const version_lens_t *l)
{
    return u64_size(v->hlc) + bytes_size(l->origin, false) +
           u64_size(v->origin_seq) + bytes_size(l->provider, false) +
           u64_size(v->base_hlc) + bytes_size(l->base_origin, false) +
           u64_size(v->base_origin_seq) +
           u64_size(codec_action_to_pb(v->action)) +
           bytes_size(l->batch_id, false) + bytes_size(OBS_HASH_LEN, false) +
           u64_size(v->tombstone) + u64_size(v->hub_seq);
}

static uint8_t *
put_version(uint8_t *p, const obs_version_t *v, const version_lens_t *l)
{
    p = put_u64(p, 1, v->hlc);
    p = put_bytes(p, 2, v->origin, l->origin, false);
    p = put_u64(p, 3, v->origin_seq);
    p = put_bytes(p, 4, v->provider, l->provider, false);
    p = put_u64(p, 5, v->base_hlc);
    p = put_bytes(p, 6, v->base_origin, l->base_origin, false);
    p = put_u64(p, 7, v->base_origin_seq);
    p = put_u64(p, 8, codec_action_to_pb(v->action));
    p = put_bytes(p, 9, v->batch_id, l->batch_id, false);
    p = put_bytes(p, 10, v->content_hash, OBS_HASH_LEN, false);
    p = put_u64(p, 11, v->tombstone);
    return put_u64(p, 12, v->hub_seq);
}

/* The lengths of an observation's strings, measured once for both the
 * size pass and the write pass (strlen was ~5% of a node's import). */
typedef struct {
    size_t df, tp, value;
    size_t dims[OBS_MAX_DIMS];
    size_t ids[OBS_MAX_ATTRS], vals[OBS_MAX_ATTRS];
} body_lens_t;

/* false when o has more dimensions or attributes than an obs_t may. */
static bool
body_lens(const obs_t *o, body_lens_t *l)
{
    if (o->n_dims > OBS_MAX_DIMS || o->n_attrs > OBS_MAX_ATTRS)
        return false;
    l->df = strlen(str_or_empty(o->dataflow));
    l->tp = strlen(str_or_empty(o->time_period));
    l->value = strlen(str_or_empty(o->value));
    for (size_t i = 0; i < o->n_dims; i++)
        l->dims[i] = strlen(str_or_empty(o->dims[i]));
    for (size_t i = 0; i < o->n_attrs; i++) {
        l->ids[i] = strlen(str_or_empty(o->attrs[i].id));
        l->vals[i] = strlen(str_or_empty(o->attrs[i].value));
    }
    return true;
}

static size_t
attr_size(const body_lens_t *l, size_t i)
{
    return bytes_size(l->ids[i], false) + bytes_size(l->vals[i], false);
}

static size_t
body_size(const obs_t *o, const body_lens_t *l)
{
    size_t n = bytes_size(l->df, false);
    for (size_t i = 0; i < o->n_dims; i++)
        n += bytes_size(l->dims[i], true);
    n += bytes_size(l->tp, false);
    n += bytes_size(l->value, false);
    for (size_t i = 0; i < o->n_attrs; i++)
        n += bytes_size(attr_size(l, i), true);
    return n;
}

static uint8_t *
put_str(uint8_t *p, unsigned field, const char *s, size_t len, bool always)
{
    return put_bytes(p, field, str_or_empty(s), len, always);
}

static uint8_t *
put_body(uint8_t *p, const obs_t *o, const body_lens_t *l)
{
    p = put_str(p, 1, o->dataflow, l->df, false);
    for (size_t i = 0; i < o->n_dims; i++)
        p = put_str(p, 2, o->dims[i], l->dims[i], true);
    p = put_str(p, 3, o->time_period, l->tp, false);
    p = put_str(p, 4, o->value, l->value, false);
    for (size_t i = 0; i < o->n_attrs; i++) {
        *p++ = (uint8_t)(5 << 3 | WT_LEN);
        p = codec_varint_put(p, attr_size(l, i));
        p = put_str(p, 1, o->attrs[i].id, l->ids[i], false);
        p = put_str(p, 2, o->attrs[i].value, l->vals[i], false);
    }
    return p;
}

/* body (o's, or given) then, when ver, the version field. */
static int
encode_parts(const obs_t *o, const uint8_t *body, size_t body_len,
             const obs_version_t *ver, size_t room, uint8_t **buf, size_t *len)
{
    body_lens_t lens;
    if (o && !body_lens(o, &lens))
        return OBS_ETOOBIG;
    size_t blen = o ? body_size(o, &lens) : body_len;
    version_lens_t vl = ver ? version_lens(ver) : (version_lens_t){0};
    size_t vlen = ver ? version_size(ver, &vl) : 0;
    size_t n = room + blen + (ver ? 1 + varint_size(vlen) + vlen : 0);
    uint8_t *out = malloc(n ? n : 1);
    if (out == NULL)
        return OBS_ENOMEM;
    uint8_t *p = out + room;
    if (o != NULL)
        p = put_body(p, o, &lens);
    else if (blen > 0) /* body may be NULL when empty */
        p = (uint8_t *)memcpy(p, body, blen) + blen;
    if (ver) {
        *p++ = (uint8_t)(OBSERVATION_VERSION_FIELD << 3 | WT_LEN);
        p = codec_varint_put(p, vlen);
        p = put_version(p, ver, &vl);
    }
    *buf = out;
    *len = (size_t)(p - out);
    return OBS_OK;
}

int
codec_obs_encode_body(const obs_t *obs, size_t room, uint8_t **buf, size_t *len)
{
    return encode_parts(obs, NULL, 0, NULL, room, buf, len);
}

int
codec_obs_encode_with_body(const uint8_t *body, size_t body_len,
                           const obs_version_t *ver, size_t room, uint8_t **buf,
                           size_t *len)
{
    return encode_parts(NULL, body, body_len, ver, room, buf, len);
}

int
codec_obs_encode(const obs_t *obs, uint8_t **buf, size_t *len)
{
    return encode_parts(obs, NULL, 0, &obs->ver, 0, buf, len);
}

int
codec_obs_encode_after(const obs_t *obs, size_t room, uint8_t **buf,
                       size_t *len)
{
    return encode_parts(obs, NULL, 0, &obs->ver, room, buf, len);
}

static bool
strings_utf8(const obs_t *o)
{
    const obs_version_t *v = &o->ver;
    const char *fixed[] = {o->dataflow, o->time_period, o->value,   v->origin,
                           v->provider, v->base_origin, v->batch_id};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (fixed[i] != NULL && !obs_utf8_valid(fixed[i]))
            return false;
    for (size_t i = 0; i < o->n_dims; i++)
        if (o->dims[i] != NULL && !obs_utf8_valid(o->dims[i]))
            return false;
    for (size_t i = 0; i < o->n_attrs; i++)
        if (!obs_utf8_valid(o->attrs[i].id) ||
            !obs_utf8_valid(o->attrs[i].value))
            return false;
    return true;
}

int
codec_obs_canonical(const uint8_t *buf, size_t len, const obs_t *o,
                    const char **why, size_t *at)
{
    *at = 0;
    if (!strings_utf8(o)) {
        *why = "a string that is not valid UTF-8";
        return OBS_EPROTO;
    }
    uint8_t *mine = NULL;
    size_t n = 0;
    int rc = codec_obs_encode(o, &mine, &n);
    if (rc != OBS_OK)
        return rc;
    size_t i = 0;
    while (i < n && i < len && mine[i] == buf[i])
        i++;
    free(mine);
    if (i == n && n == len)
        return OBS_OK;
    *at = i;
    *why = "not the canonical encoding (a field out of order or twice, a "
           "default value written, attributes unsorted, repeated or empty, "
           "an unknown field, or a string with a NUL)";
    return OBS_EPROTO;
}

bool
codec_varint_get(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Steps *p over the payload of a field of the given wire type; a
 * length-delimited payload goes to *val, *val_len. false when the framing
 * is bad or the wire type unknown. */
static bool
skip_payload(const uint8_t **p, const uint8_t *end, uint64_t wire_type,
             const uint8_t **val, size_t *val_len)
{
    uint64_t n;
    switch (wire_type) {
    case 0: /* varint */
        return codec_varint_get(p, end, &n);
    case 1: /* 64-bit */
    case 5: /* 32-bit */
        n = wire_type == 1 ? 8 : 4;
        if (n > (uint64_t)(end - *p))
            return false;
        *p += n;
        return true;
    case 2: /* length-delimited */
        if (!codec_varint_get(p, end, &n) || n > (uint64_t)(end - *p))
            return false;
        *val = *p;
        *val_len = (size_t)n;
        *p += n;
        return true;
    default:
        return false;
    }
}

/* Finds the length-delimited field number `field` in the protobuf message
 * buf by walking its top-level fields (*out NULL when absent; the last one
 * when it comes twice, as protobuf-c keeps the last string). false when the
 * framing is bad, when the field comes with another wire type (protobuf-c
 * refuses the message), or when it is a message (is_msg) that comes twice
 * (protobuf-c would merge the two). */
static bool
find_field(const uint8_t *buf, size_t len, uint64_t field, bool is_msg,
           const uint8_t **out, size_t *out_len)
{
    const uint8_t *p = buf, *end = buf + len;
    *out = NULL;
    *out_len = 0;
    while (p < end) {
        uint64_t tag;
        const uint8_t *val = NULL;
        size_t val_len = 0;
        if (!codec_varint_get(&p, end, &tag))
            return false;
        if (tag >> 3 == field && ((tag & 7) != 2 || (is_msg && *out)))
            return false;
        if (!skip_payload(&p, end, tag & 7, &val, &val_len))
            return false;
        if (tag >> 3 == field) { /* length-delimited, checked above */
            *out = val;
            *out_len = val_len;
        }
    }
    return true;
}

/* ---- Observation by hand, the mirror of the encoder above: a view in an
 * arena, taking what protobuf-c's unpack and then codec_obs_from_pb take,
 * with one exception: a Version given twice (protobuf-c would merge the
 * two) is refused. Strings end at their first NUL, as C strings of
 * protobuf-c's copies would. fuzz_codec compares it with protobuf-c on
 * every input; protobuf-c's unpack was a quarter of a node's apply. */

typedef struct {
    const uint8_t *p;
    size_t n;
} span_t;

/* One field at *p: its number, wire type and value (a varint in *num, a
 * length-delimited one in *val; fixed ones are skipped). false when the
 * framing is bad or the tag is one protobuf-c refuses. */
static bool
next_field(const uint8_t **p, const uint8_t *end, uint32_t *field, unsigned *wt,
           span_t *val, uint64_t *num)
{
    uint64_t tag = 0, n;
    const uint8_t *q = *p;
    /* protobuf-c's tag rules: at most 5 bytes, and a first byte with no
     * field bits is refused (an over-long tag for field 0 is not) */
    if (q >= end || (*q & 0xf8) == 0)
        return false;
    for (unsigned i = 0;; i++) {
        if (i == 5 || q >= end)
            return false;
        tag |= (uint64_t)(*q & 0x7f) << (7 * i);
        if ((*q++ & 0x80) == 0)
            break;
    }
    *p = q;
    *field = (uint32_t)(tag >> 3);
    *wt = (unsigned)(tag & 7);
    switch (*wt) {
    case 0:
        return codec_varint_get(p, end, num);
    case 1:
    case 5:
        n = *wt == 1 ? 8 : 4;
        if (n > (uint64_t)(end - *p))
            return false;
        *p += n;
        return true;
    case 2: /* protobuf-c: a length of at most 5 bytes and INT_MAX */
        n = 0;
        for (unsigned i = 0;; i++) {
            if (i == 5 || *p >= end)
                return false;
            n |= (uint64_t)(**p & 0x7f) << (7 * i);
            if ((*(*p)++ & 0x80) == 0)
                break;
        }
        if (n > INT_MAX || n > (uint64_t)(end - *p))
            return false;
        val->p = *p;
        val->n = (size_t)n;
        *p += n;
        return true;
    default:
        return false;
    }
}

static size_t
span_strlen(span_t s)
{
    if (s.p == NULL) /* absent: {NULL, 0} */
        return 0;
    const uint8_t *nul = s.n ? memchr(s.p, 0, s.n) : NULL;
    return nul ? (size_t)(nul - s.p) : s.n;
}

/* s as a C string in the arena (NULL when the budget is spent). */
static char *
span_str(arena_t *a, span_t s)
{
    size_t n = span_strlen(s);
    char *out = codec_arena_alloc(a, n + 1);
    if (out != NULL) {
        if (s.p != NULL) /* else absent, n 0 */
            memcpy(out, s.p, n);
        out[n] = '\0';
    }
    return out;
}

static int
span_id(char *dst, size_t cap, span_t s)
{
    size_t n = span_strlen(s);
    if (n >= cap)
        return OBS_EPROTO;
    if (n)
        memcpy(dst, s.p, n);
    dst[n] = '\0';
    return OBS_OK;
}

/* The wire type a field of Version (string_fields: those that are
 * length-delimited) must come with; unknown fields come as they like. */
static bool
wire_type_ok(uint32_t field, unsigned wt, uint32_t known_max,
             uint32_t string_fields)
{
    if (field == 0 || field > known_max)
        return true;
    return wt == ((string_fields >> field) & 1u ? 2u : 0u);
}

#define BIT(f) (1u << (f))

/* next_field for a message whose fields 1..known_max are known
 * (string_fields: the length-delimited ones): false also for a known field
 * with a foreign wire type. */
static bool
read_field(const uint8_t **p, const uint8_t *end, uint32_t known_max,
           uint32_t string_fields, uint32_t *f, span_t *sp, uint64_t *x)
{
    unsigned wt;
    *sp = (span_t){0};
    *x = 0;
    return next_field(p, end, f, &wt, sp, x) &&
           wire_type_ok(*f, wt, known_max, string_fields);
}

static int
parse_version(const uint8_t *b, size_t len, obs_version_t *v)
{
    memset(v, 0, sizeof(*v));
    span_t origin = {0}, provider = {0}, base_origin = {0}, batch = {0},
           hash = {0};
    const uint8_t *p = b, *end = b + len;
    while (p < end) {
        uint32_t f;
        span_t sp;
        uint64_t x;
        if (!read_field(&p, end, 12,
                        BIT(2) | BIT(4) | BIT(6) | BIT(9) | BIT(10), &f, &sp,
                        &x))
            return OBS_EPROTO;
        switch (f) {
        case 1:
            v->hlc = x;
            break;
        case 2:
            origin = sp;
            break;
        case 3:
            v->origin_seq = x;
            break;
        case 4:
            provider = sp;
            break;
        case 5:
            v->base_hlc = x;
            break;
        case 6:
            base_origin = sp;
            break;
        case 7:
            v->base_origin_seq = x;
            break;
        case 8:
            v->action = codec_action_from_pb((Obsync__V1__Action)(uint32_t)x);
            break;
        case 9:
            batch = sp;
            break;
        case 10:
            hash = sp;
            break;
        case 11:
            v->tombstone = x != 0;
            break;
        case 12:
            v->hub_seq = x;
            break;
        default:
            break;
        }
    }
    if (hash.n != 0 && hash.n != OBS_HASH_LEN)
        return OBS_EPROTO;
    if (hash.n)
        memcpy(v->content_hash, hash.p, OBS_HASH_LEN);
    if (span_id(v->origin, sizeof(v->origin), origin) != OBS_OK ||
        span_id(v->provider, sizeof(v->provider), provider) != OBS_OK ||
        span_id(v->base_origin, sizeof(v->base_origin), base_origin) !=
            OBS_OK ||
        span_id(v->batch_id, sizeof(v->batch_id), batch) != OBS_OK)
        return OBS_EPROTO;
    return OBS_OK;
}

/* One Attribute submessage: its id and value (last of each wins). */
static bool
parse_attr(span_t m, span_t *id, span_t *value)
{
    *id = *value = (span_t){0};
    const uint8_t *p = m.p, *end = m.p + m.n;
    while (p < end) {
        uint32_t f;
        span_t sp;
        uint64_t x;
        if (!read_field(&p, end, 2, BIT(1) | BIT(2), &f, &sp, &x))
            return false;
        if (f == 1)
            *id = sp;
        else if (f == 2)
            *value = sp;
    }
    return true;
}

void
codec_attrs_set(obs_attr_t *at, size_t *n, char *id, char *val)
{
    size_t j = 0;
    int c = 1;
    while (j < *n && (c = strcmp(at[j].id, id)) < 0)
        j++;
    bool found = j < *n && c == 0;
    if (found && val[0] != '\0') {
        at[j].value = val;
    } else if (found) {
        memmove(&at[j], &at[j + 1], (*n - j - 1) * sizeof(*at));
        (*n)--;
    } else if (val[0] != '\0') {
        memmove(&at[j + 1], &at[j], (*n - j) * sizeof(*at));
        at[j] = (obs_attr_t){.id = id, .value = val};
        (*n)++;
    }
}

/* The attributes as obs_set_attr would leave them: sorted by id, the last
 * of a repeated id wins, an empty value removes it; an empty id is
 * refused. */
static int
merge_attrs(arena_t *a, const span_t *ids, const span_t *vals, size_t n_in,
            obs_t *o)
{
    if (n_in == 0)
        return OBS_OK;
    obs_attr_t *at = codec_arena_alloc(a, n_in * sizeof(*at));
    if (at == NULL)
        return OBS_EPROTO;
    size_t n = 0;
    for (size_t i = 0; i < n_in; i++) {
        if (span_strlen(ids[i]) > OBS_CODE_MAX ||
            span_strlen(vals[i]) > OBS_TEXT_MAX)
            return OBS_EPROTO;
        char *id = span_str(a, ids[i]), *val = span_str(a, vals[i]);
        if (id == NULL || val == NULL || id[0] == '\0')
            return OBS_EPROTO;
        codec_attrs_set(at, &n, id, val);
    }
    o->attrs = at;
    o->n_attrs = n;
    return OBS_OK;
}

/* The top-level fields of an Observation, as spans into its bytes. */
typedef struct {
    span_t df, tp, value, ver;
    span_t dims[OBS_MAX_DIMS], ids[OBS_MAX_ATTRS], vals[OBS_MAX_ATTRS];
    size_t nd, na;
    bool has_ver;
} obs_spans_t;

/* Walks an Observation: its framing (attributes' too), the counts and the
 * lengths of dataflow, period, value and dims. */
static int
scan_obs(const uint8_t *buf, size_t len, obs_spans_t *s)
{
    s->df = s->tp = s->value = s->ver = (span_t){0};
    s->nd = s->na = 0;
    s->has_ver = false;
    const uint8_t *p = buf, *end = buf + len;
    while (p < end) {
        uint32_t f;
        span_t sp;
        uint64_t x;
        if (!read_field(&p, end, 6,
                        BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6), &f,
                        &sp, &x))
            return OBS_EPROTO;
        switch (f) {
        case 1:
            s->df = sp;
            break;
        case 2:
            if (s->nd == OBS_MAX_DIMS)
                return OBS_EPROTO;
            s->dims[s->nd++] = sp;
            break;
        case 3:
            s->tp = sp;
            break;
        case 4:
            s->value = sp;
            break;
        case 5:
            if (s->na == OBS_MAX_ATTRS ||
                !parse_attr(sp, &s->ids[s->na], &s->vals[s->na]))
                return OBS_EPROTO;
            s->na++;
            break;
        case 6:
            if (s->has_ver) /* protobuf-c would merge the two */
                return OBS_EPROTO;
            s->ver = sp;
            s->has_ver = true;
            break;
        default:
            break;
        }
    }
    if (span_strlen(s->df) > OBS_DATAFLOW_MAX ||
        span_strlen(s->tp) > OBS_PERIOD_MAX ||
        span_strlen(s->value) > OBS_VALUE_MAX)
        return OBS_EPROTO;
    for (size_t i = 0; i < s->nd; i++)
        if (span_strlen(s->dims[i]) > OBS_CODE_MAX)
            return OBS_EPROTO;
    return OBS_OK;
}

static int
parse_obs(const uint8_t *buf, size_t len, arena_t *a, obs_t *o)
{
    obs_spans_t s;
    int rc = scan_obs(buf, len, &s);
    if (rc != OBS_OK)
        return rc;
    o->dataflow = span_str(a, s.df);
    o->time_period = span_str(a, s.tp);
    o->value = span_str(a, s.value);
    o->dims = codec_arena_alloc(a, (s.nd ? s.nd : 1) * sizeof(char *));
    if (o->dataflow == NULL || o->time_period == NULL || o->value == NULL ||
        o->dims == NULL)
        return OBS_EPROTO;
    for (size_t i = 0; i < s.nd; i++)
        if ((o->dims[i] = span_str(a, s.dims[i])) == NULL)
            return OBS_EPROTO;
    o->n_dims = s.nd;
    rc = merge_attrs(a, s.ids, s.vals, s.na, o);
    if (rc == OBS_OK && s.has_ver)
        rc = parse_version(s.ver.p, s.ver.n, &o->ver);
    return rc;
}

int
codec_obs_decode_id(const uint8_t *buf, size_t len, codec_obs_id_t *out)
{
    obs_spans_t s;
    memset(&out->ver, 0, sizeof(out->ver)); /* a change with no Version */
    if (len > CODEC_MAX_RECORD || scan_obs(buf, len, &s) != OBS_OK ||
        (s.has_ver && parse_version(s.ver.p, s.ver.n, &out->ver) != OBS_OK)) {
        memset(out, 0, sizeof(*out));
        return OBS_EPROTO;
    }
    obs_id_view_t *id = &out->id;
    id->dataflow = s.df.p ? (const char *)s.df.p : ""; /* absent: "" */
    id->dataflow_len = span_strlen(s.df);
    id->time_period = s.tp.p ? (const char *)s.tp.p : "";
    id->time_period_len = span_strlen(s.tp);
    for (size_t i = 0; i < s.nd; i++) {
        id->dims[i] = (const char *)s.dims[i].p;
        id->dim_lens[i] = span_strlen(s.dims[i]);
    }
    id->n_dims = s.nd;
    return OBS_OK;
}

int
codec_obs_decode_ro(const uint8_t *buf, size_t len, codec_obs_ro_t *out)
{
    memset(&out->obs, 0, sizeof(out->obs));
    codec_arena_init(&out->arena, 32 * len + (size_t)1024 * 1024);
    if (len > CODEC_MAX_RECORD ||
        parse_obs(buf, len, &out->arena, &out->obs) != OBS_OK) {
        memset(&out->obs, 0, sizeof(out->obs));
        return OBS_EPROTO;
    }
    return OBS_OK;
}

void
codec_obs_ro_release(codec_obs_ro_t *v)
{
    memset(&v->obs, 0, sizeof(v->obs));
    codec_arena_release(&v->arena);
}

int
codec_obs_decode(const uint8_t *buf, size_t len, obs_t *obs)
{
    obs_fini(obs);
    codec_obs_ro_t ro;
    int rc = codec_obs_decode_ro(buf, len, &ro);
    if (rc == OBS_OK)
        rc = obs_copy(obs, &ro.obs);
    codec_obs_ro_release(&ro);
    return rc;
}

int
codec_obs_decode_version(const uint8_t *buf, size_t len, obs_version_t *ver)
{
    const uint8_t *vp;
    size_t vlen;
    memset(ver, 0, sizeof(*ver));
    if (len > CODEC_MAX_RECORD ||
        !find_field(buf, len, OBSERVATION_VERSION_FIELD, true, &vp, &vlen))
        return OBS_EPROTO;
    if (vp == NULL)
        return OBS_OK; /* no version: all zero, like codec_obs_decode */
    if (parse_version(vp, vlen, ver) != OBS_OK) {
        memset(ver, 0, sizeof(*ver));
        return OBS_EPROTO;
    }
    return OBS_OK;
}
