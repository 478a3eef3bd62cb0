/*
 * obs.c - the observation model (see obs.h): lifetime of an obs_t, its
 * sorted attribute list, deep copies, the content hash and the series key
 * text. It is plain data handling: no validation against structures (that
 * is the daemon's job), no store keys (obs_key.c), no I/O. Called by the
 * codec, the importers, the store layer and libobsync alike, so it depends
 * on nothing outside proto/.
 */
#include "obs.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"
#include "sha256.h"

static char *
dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

static void
free_dims(char **dims, size_t n)
{
    if (dims == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(dims[i]);
    free(dims);
}

void
obs_init(obs_t *obs)
{
    memset(obs, 0, sizeof(*obs));
}

void
obs_fini(obs_t *obs)
{
    if (obs == NULL)
        return;
    free(obs->dataflow);
    free_dims(obs->dims, obs->n_dims);
    free(obs->time_period);
    free(obs->value);
    for (size_t i = 0; i < obs->n_attrs; i++) {
        free(obs->attrs[i].id);
        free(obs->attrs[i].value);
    }
    free(obs->attrs);
    obs_init(obs);
}

/* Copies n codes; NULL on OOM or a NULL code (with *oom telling which). */
static char **
dup_dims(const char *const *dims, size_t n, bool *oom)
{
    *oom = false;
    char **out = calloc(n ? n : 1, sizeof(*out));
    if (out == NULL) {
        *oom = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (dims[i] == NULL || (out[i] = dup_str(dims[i])) == NULL) {
            *oom = dims[i] != NULL;
            free_dims(out, i);
            return NULL;
        }
    }
    return out;
}

int
obs_set_identity(obs_t *obs, const char *dataflow, const char *const *dims,
                 size_t n_dims, const char *time_period)
{
    if (obs == NULL || dataflow == NULL || time_period == NULL ||
        (dims == NULL && n_dims > 0) || n_dims > OBS_MAX_DIMS)
        return OBS_EINVAL;
    bool oom;
    char **nd = dup_dims(dims, n_dims, &oom);
    if (nd == NULL)
        return oom ? OBS_ENOMEM : OBS_EINVAL;
    char *df = dup_str(dataflow);
    char *tp = dup_str(time_period);
    if (df == NULL || tp == NULL) {
        free(df);
        free(tp);
        free_dims(nd, n_dims);
        return OBS_ENOMEM;
    }
    free(obs->dataflow);
    free_dims(obs->dims, obs->n_dims);
    free(obs->time_period);
    obs->dataflow = df;
    obs->dims = nd;
    obs->n_dims = n_dims;
    obs->time_period = tp;
    return OBS_OK;
}

int
obs_set_value(obs_t *obs, const char *value)
{
    if (obs == NULL)
        return OBS_EINVAL;
    char *v = dup_str(value != NULL ? value : "");
    if (v == NULL)
        return OBS_ENOMEM;
    free(obs->value);
    obs->value = v;
    return OBS_OK;
}

/* Index of id in the sorted attrs, or where it would go (*found false). */
static size_t
attr_find(const obs_t *obs, const char *id, bool *found)
{
    size_t lo = 0, hi = obs->n_attrs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(obs->attrs[mid].id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void
attr_remove(obs_t *obs, size_t i)
{
    free(obs->attrs[i].id);
    free(obs->attrs[i].value);
    memmove(&obs->attrs[i], &obs->attrs[i + 1],
            (obs->n_attrs - i - 1) * sizeof(obs->attrs[0]));
    obs->n_attrs--;
}

static int
attr_insert(obs_t *obs, size_t i, const char *id, const char *value)
{
    if (obs->n_attrs >= OBS_MAX_ATTRS)
        return OBS_ETOOBIG;
    obs_attr_t *a = realloc(obs->attrs, (obs->n_attrs + 1) * sizeof(*a));
    if (a == NULL)
        return OBS_ENOMEM;
    obs->attrs = a;
    char *nid = dup_str(id);
    char *nv = dup_str(value);
    if (nid == NULL || nv == NULL) {
        free(nid);
        free(nv);
        return OBS_ENOMEM;
    }
    memmove(&a[i + 1], &a[i], (obs->n_attrs - i) * sizeof(*a));
    a[i].id = nid;
    a[i].value = nv;
    obs->n_attrs++;
    return OBS_OK;
}

int
obs_set_attr(obs_t *obs, const char *id, const char *value)
{
    if (obs == NULL || id == NULL || id[0] == '\0')
        return OBS_EINVAL;
    bool found;
    size_t i = attr_find(obs, id, &found);
    if (value == NULL || value[0] == '\0') {
        if (found)
            attr_remove(obs, i);
        return OBS_OK;
    }
    if (!found)
        return attr_insert(obs, i, id, value);
    char *nv = dup_str(value);
    if (nv == NULL)
        return OBS_ENOMEM;
    free(obs->attrs[i].value);
    obs->attrs[i].value = nv;
    return OBS_OK;
}

const char *
obs_get_attr(const obs_t *obs, const char *id)
{
    if (obs == NULL || id == NULL)
        return NULL;
    bool found;
    size_t i = attr_find(obs, id, &found);
    return found ? obs->attrs[i].value : NULL;
}

static int
copy_attrs(obs_t *dst, const obs_t *src)
{
    if (src->n_attrs == 0)
        return OBS_OK;
    dst->attrs = calloc(src->n_attrs, sizeof(*dst->attrs));
    if (dst->attrs == NULL)
        return OBS_ENOMEM;
    for (size_t i = 0; i < src->n_attrs; i++) {
        dst->attrs[i].id = dup_str(src->attrs[i].id);
        dst->attrs[i].value = dup_str(src->attrs[i].value);
        dst->n_attrs = i + 1; /* so obs_fini frees a partial copy */
        if (dst->attrs[i].id == NULL || dst->attrs[i].value == NULL)
            return OBS_ENOMEM;
    }
    return OBS_OK;
}

/* Copies a nullable string: false only on OOM. */
static bool
copy_opt(char **dst, const char *src)
{
    *dst = src != NULL ? dup_str(src) : NULL;
    return src == NULL || *dst != NULL;
}

static int
copy_identity(obs_t *dst, const obs_t *src)
{
    if (!copy_opt(&dst->dataflow, src->dataflow) ||
        !copy_opt(&dst->time_period, src->time_period) ||
        !copy_opt(&dst->value, src->value))
        return OBS_ENOMEM;
    if (src->n_dims == 0 || src->dims == NULL)
        return OBS_OK;
    dst->dims = calloc(src->n_dims, sizeof(*dst->dims));
    if (dst->dims == NULL)
        return OBS_ENOMEM;
    dst->n_dims = src->n_dims;
    for (size_t i = 0; i < src->n_dims; i++)
        if (!copy_opt(&dst->dims[i], src->dims[i]))
            return OBS_ENOMEM;
    return OBS_OK;
}

int
obs_copy(obs_t *dst, const obs_t *src)
{
    if (src == dst)
        return OBS_OK;
    obs_fini(dst);
    int rc = copy_identity(dst, src);
    if (rc == OBS_OK)
        rc = copy_attrs(dst, src);
    if (rc != OBS_OK) {
        obs_fini(dst); /* frees the partial copy, leaves dst empty */
        return rc;
    }
    dst->ver = src->ver;
    return OBS_OK;
}

/* Feeds one length-prefixed field: 8-byte big-endian length, then bytes, so
 * no two different field lists serialise the same way. */
/* The hashed bytes are gathered in a buffer and hashed in runs: a few
 * hundred bytes made of a dozen short fields. */
typedef struct {
    sha256_t ctx;
    size_t used;
    uint8_t buf[512];
} hash_buf_t;

static void
hash_put(hash_buf_t *h, const void *p, size_t n)
{
    if (n == 0)
        return; /* p may be NULL */
    if (h->used + n > sizeof(h->buf)) {
        sha256_update(&h->ctx, h->buf, h->used);
        h->used = 0;
    }
    if (n > sizeof(h->buf)) {
        sha256_update(&h->ctx, p, n);
        return;
    }
    memcpy(h->buf + h->used, p, n);
    h->used += n;
}

/* A field: its length (8 bytes, big-endian), then its bytes. */
static void
hash_field(hash_buf_t *h, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)n >> (56 - 8 * i));
    hash_put(h, len, sizeof(len));
    hash_put(h, s, n);
}

void
obs_content_hash(const obs_t *obs, uint8_t out[OBS_HASH_LEN])
{
    /* Layout: tag "obs-content-v1", value, attribute count, then each id
     * and value (sorted by id, as stored), then one tombstone byte. A NULL
     * value hashes as "" (both mean missing). Identity and version metadata
     * are left out on purpose: the hash says whether two versions of the
     * same observation carry the same content. */
    hash_buf_t h;
    sha256_init(&h.ctx);
    h.used = 0;
    hash_field(&h, "obs-content-v1");
    hash_field(&h, obs->value);
    uint8_t n[4] = {(uint8_t)(obs->n_attrs >> 24),
                    (uint8_t)(obs->n_attrs >> 16), (uint8_t)(obs->n_attrs >> 8),
                    (uint8_t)obs->n_attrs};
    hash_put(&h, n, sizeof(n));
    for (size_t i = 0; i < obs->n_attrs; i++) {
        hash_field(&h, obs->attrs[i].id);
        hash_field(&h, obs->attrs[i].value);
    }
    uint8_t tomb = obs->ver.tombstone ? 1 : 0;
    hash_put(&h, &tomb, 1);
    sha256_update(&h.ctx, h.buf, h.used);
    sha256_final(&h.ctx, out);
}

bool
obs_utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p++;
        if (c < 0x80)
            continue;
        size_t more;
        unsigned min, cp;
        if (c >= 0xc2 && c <= 0xdf) {
            more = 1, min = 0x80, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            more = 2, min = 0x800, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            more = 3, min = 0x10000, cp = c & 0x07;
        } else {
            return false; /* a continuation byte first, 0xc0, 0xc1, > 0xf4 */
        }
        for (size_t i = 0; i < more; i++, p++) {
            if ((*p & 0xc0) != 0x80)
                return false; /* also the terminating NUL */
            cp = (cp << 6) | (*p & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
    }
    return true;
}

bool
obs_id_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > OBS_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') &&
            !(c >= '0' && c <= '9') && c != '_' && c != '-')
            return false;
    }
    return true;
}

bool
obs_hex_valid(const char *s, size_t n)
{
    if (strlen(s) != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= '0' && s[i] <= '9') && !(s[i] >= 'a' && s[i] <= 'f'))
            return false;
    return true;
}

int
obs_series_key(const obs_t *obs, char *buf, size_t cap)
{
    if (cap == 0)
        return OBS_ETOOBIG;
    size_t len = 0;
    bool fits = true;
    for (size_t i = 0; i < obs->n_dims; i++) {
        const char *code = obs->dims[i] != NULL ? obs->dims[i] : "";
        size_t n = strlen(code) + (i > 0 ? 1 : 0);
        if (len + n + 1 > cap) {
            fits = false;
            break;
        }
        if (i > 0)
            buf[len++] = '.';
        memcpy(buf + len, code, strlen(code));
        len += strlen(code);
    }
    buf[len] = '\0';
    if (!fits || len > (size_t)INT_MAX)
        return OBS_ETOOBIG;
    return (int)len;
}
