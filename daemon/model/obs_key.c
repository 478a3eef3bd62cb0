/*
 * obs_key.c - canonical store keys for observations and series-key
 * patterns (see obs_key.h for the byte layout). The encoding is the only
 * place that decides how observations sort in LMDB: dataflow, then the
 * dimension codes in DSD order (each ended by 0x00, so "CO" < "COL"), then
 * time by period_sort_key, then the period text. Decoding is strict: it
 * accepts exactly the keys obs_key_encode can produce, so a decoded key
 * re-encodes to the same bytes, and it never reads past len. It knows
 * nothing of LMDB or structures (code lists are checked elsewhere). Called
 * by the store layer, queries and digests.
 */
#include "obs_key.h"

#include <stdlib.h>
#include <string.h>

#include "obs_err.h"
#include "period.h"

#define SORT_KEY_LEN 8

/* A key being written: bytes so far, and where it must stop. */
typedef struct {
    uint8_t *buf;
    size_t len, cap;
} kbuf_t;

static bool
put(kbuf_t *k, const void *p, size_t n)
{
    if (k->len > k->cap || n > k->cap - k->len) {
        k->len = k->cap + 1; /* sticky: stays too big */
        return false;
    }
    memcpy(k->buf + k->len, p, n);
    k->len += n;
    return true;
}

/* A dimension code: non-empty, at most OBS_CODE_MAX bytes, no '.'. */
static bool
code_ok(const char *s, size_t n)
{
    return n > 0 && n <= OBS_CODE_MAX && memchr(s, '.', n) == NULL;
}

static bool
dataflow_ok(size_t n)
{
    return n > 0 && n <= OBS_DATAFLOW_MAX;
}

/* Limits: the key is at most cap and OBS_KEY_MAX bytes. */
static size_t
key_cap(size_t cap)
{
    return cap < OBS_KEY_MAX ? cap : OBS_KEY_MAX;
}

/* A string and its length, then its 0x00 end. */
static void
put_str0(kbuf_t *k, const char *s, size_t n)
{
    if (put(k, s, n))
        put(k, "", 1);
}

/* dims[i] has dim_lens[i] bytes, or strlen's when dim_lens is NULL;
 * check_nul: refuse a code holding 0x00 (counted strings from a caller). */
static int
put_head(kbuf_t *k, const char *dataflow, size_t dataflow_len,
         size_t total_dims, const char *const *dims, const size_t *dim_lens,
         size_t n_dims, bool check_nul)
{
    if (dataflow == NULL || !dataflow_ok(dataflow_len) ||
        total_dims > OBS_MAX_DIMS || n_dims > total_dims ||
        (dims == NULL && n_dims > 0))
        return OBS_EINVAL;
    size_t lens[OBS_MAX_DIMS];
    for (size_t i = 0; i < n_dims; i++) {
        if (dims[i] == NULL)
            return OBS_EINVAL;
        lens[i] = dim_lens ? dim_lens[i] : strlen(dims[i]);
        if (!code_ok(dims[i], lens[i]) ||
            (check_nul && memchr(dims[i], 0, lens[i]) != NULL))
            return OBS_EINVAL;
    }
    uint8_t nd = (uint8_t)total_dims;
    put_str0(k, dataflow, dataflow_len);
    put(k, &nd, 1);
    for (size_t i = 0; i < n_dims; i++)
        put_str0(k, dims[i], lens[i]);
    return k->len > k->cap ? OBS_ETOOBIG : OBS_OK;
}

/* NOLINTBEGIN(readability-non-const-parameter): buf is written through
 * kbuf_t, which clang-tidy does not follow. */
/* The key of id; check_nul: its strings are counted ones from a caller,
 * which must not hold 0x00 (C strings measured by strlen cannot). */
static int
encode_view(const obs_id_view_t *id, uint8_t *buf, size_t cap, bool check_nul)
{
    if (id == NULL || id->time_period == NULL ||
        (check_nul && id->dataflow != NULL &&
         memchr(id->dataflow, 0, id->dataflow_len) != NULL))
        return OBS_EINVAL;
    kbuf_t k = {buf, 0, key_cap(cap)};
    int rc = put_head(&k, id->dataflow, id->dataflow_len, id->n_dims, id->dims,
                      id->dim_lens, id->n_dims, check_nul);
    if (rc != OBS_OK)
        return rc;
    /* period_parse reads a C string */
    char text[OBS_PERIOD_MAX + 1];
    size_t tlen = id->time_period_len;
    period_t p;
    if (tlen > OBS_PERIOD_MAX ||
        (check_nul && memchr(id->time_period, 0, tlen) != NULL))
        return OBS_EINVAL;
    memcpy(text, id->time_period, tlen);
    text[tlen] = '\0';
    if (period_parse(text, 0, 9999, &p, NULL, 0) != OBS_OK)
        return OBS_EINVAL;
    uint8_t sk[SORT_KEY_LEN];
    period_sort_key(&p, sk);
    put(&k, sk, sizeof(sk));
    put(&k, text, tlen);
    return k.len > k.cap ? OBS_ETOOBIG : (int)k.len;
}

int
obs_key_encode_id(const obs_id_view_t *id, uint8_t *buf, size_t cap)
{
    return encode_view(id, buf, cap, true);
}

int
obs_key_encode(const obs_t *obs, uint8_t *buf, size_t cap)
{
    if (obs == NULL || obs->time_period == NULL || obs->dataflow == NULL ||
        obs->n_dims > OBS_MAX_DIMS || (obs->dims == NULL && obs->n_dims > 0))
        return OBS_EINVAL;
    obs_id_view_t id = {.dataflow = obs->dataflow,
                        .dataflow_len = strlen(obs->dataflow),
                        .n_dims = obs->n_dims,
                        .time_period = obs->time_period,
                        .time_period_len = strlen(obs->time_period)};
    for (size_t i = 0; i < obs->n_dims; i++) {
        if (obs->dims[i] == NULL)
            return OBS_EINVAL;
        id.dims[i] = obs->dims[i];
        id.dim_lens[i] = strlen(obs->dims[i]);
    }
    return encode_view(&id, buf, cap, false);
}

int
obs_key_prefix(const char *dataflow, size_t total_dims, const char *const *dims,
               size_t n_dims, uint8_t *buf, size_t cap)
{
    kbuf_t k = {buf, 0, key_cap(cap)};
    int rc = put_head(&k, dataflow, dataflow ? strlen(dataflow) : 0, total_dims,
                      dims, NULL, n_dims, false);
    return rc != OBS_OK ? rc : (int)k.len;
}
/* NOLINTEND(readability-non-const-parameter) */

/* A key being read: never past len. */
typedef struct {
    const uint8_t *p;
    size_t len, off;
} kread_t;

/* Reads a 0x00-terminated string into dst (cap bytes with the NUL). */
static bool
get_str0(kread_t *r, char *dst, size_t cap)
{
    const uint8_t *end = memchr(r->p + r->off, 0, r->len - r->off);
    if (end == NULL)
        return false;
    size_t n = (size_t)(end - (r->p + r->off));
    if (n + 1 > cap)
        return false;
    memcpy(dst, r->p + r->off, n + 1);
    r->off += n + 1;
    return true;
}

/* Decoded identity, in fixed buffers sized by the obs.h limits. */
typedef struct {
    char dataflow[OBS_DATAFLOW_MAX + 1];
    size_t n_dims;
    char dims[OBS_MAX_DIMS][OBS_CODE_MAX + 1];
    char period[OBS_PERIOD_MAX + 1];
} ident_t;

static bool
read_head(kread_t *r, ident_t *id)
{
    if (!get_str0(r, id->dataflow, sizeof(id->dataflow)) ||
        !dataflow_ok(strlen(id->dataflow)) || r->off >= r->len)
        return false;
    id->n_dims = r->p[r->off++];
    if (id->n_dims > OBS_MAX_DIMS)
        return false;
    for (size_t i = 0; i < id->n_dims; i++)
        if (!get_str0(r, id->dims[i], sizeof(id->dims[i])) ||
            !code_ok(id->dims[i], strlen(id->dims[i])))
            return false;
    return true;
}

/* Sort key and period text; the sort key must be the one the text gives. */
static bool
read_period(kread_t *r, ident_t *id)
{
    if (r->len - r->off < SORT_KEY_LEN + 1)
        return false;
    const uint8_t *sk = r->p + r->off;
    size_t n = r->len - r->off - SORT_KEY_LEN;
    if (n > OBS_PERIOD_MAX || memchr(sk + SORT_KEY_LEN, 0, n) != NULL)
        return false;
    memcpy(id->period, sk + SORT_KEY_LEN, n);
    id->period[n] = '\0';
    period_t p;
    uint8_t want[SORT_KEY_LEN];
    if (period_parse(id->period, 0, 9999, &p, NULL, 0) != OBS_OK)
        return false;
    period_sort_key(&p, want);
    return memcmp(want, sk, SORT_KEY_LEN) == 0;
}

int
obs_key_decode(const uint8_t *key, size_t len, obs_t *obs)
{
    if (key == NULL || obs == NULL || len > OBS_KEY_MAX)
        return OBS_EINVAL;
    ident_t *id = malloc(sizeof(*id));
    if (id == NULL)
        return OBS_ENOMEM;
    kread_t r = {key, len, 0};
    int rc = OBS_EINVAL;
    if (read_head(&r, id) && read_period(&r, id)) {
        const char *dims[OBS_MAX_DIMS];
        for (size_t i = 0; i < id->n_dims; i++)
            dims[i] = id->dims[i];
        rc = obs_set_identity(obs, id->dataflow, dims, id->n_dims, id->period);
    }
    free(id);
    return rc;
}

void
obs_pattern_fini(obs_pattern_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        free(p->pos[i]);
    memset(p, 0, sizeof(*p));
}

/* One position "COL" or "COL+MEX" of n bytes: every alternative a code. */
static bool
position_ok(const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != '+')
            continue;
        if (!code_ok(s + start, i - start))
            return false;
        start = i + 1;
    }
    return true;
}

static int
pattern_add(obs_pattern_t *out, const char *s, size_t n)
{
    if (out->n >= OBS_MAX_DIMS)
        return OBS_EINVAL;
    if (n == 0) {
        out->pos[out->n++] = NULL; /* wildcard */
        return OBS_OK;
    }
    if (!position_ok(s, n))
        return OBS_EINVAL;
    char *copy = malloc(n + 1);
    if (copy == NULL)
        return OBS_ENOMEM;
    memcpy(copy, s, n);
    copy[n] = '\0';
    out->pos[out->n++] = copy;
    return OBS_OK;
}

int
obs_pattern_parse(const char *text, obs_pattern_t *out)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL)
        return OBS_EINVAL;
    if (text[0] == '\0')
        return OBS_OK;
    const char *s = text;
    for (;;) {
        const char *dot = strchr(s, '.');
        size_t n = dot != NULL ? (size_t)(dot - s) : strlen(s);
        int rc = pattern_add(out, s, n);
        if (rc != OBS_OK) {
            obs_pattern_fini(out);
            return rc;
        }
        if (dot == NULL)
            return OBS_OK;
        s = dot + 1;
    }
}

/* True when code is one of the '+'-separated alternatives in alts. */
static bool
alt_match(const char *alts, const char *code)
{
    size_t n = strlen(code);
    for (const char *a = alts;;) {
        const char *plus = strchr(a, '+');
        size_t len = plus != NULL ? (size_t)(plus - a) : strlen(a);
        if (len == n && memcmp(a, code, n) == 0)
            return true;
        if (plus == NULL)
            return false;
        a = plus + 1;
    }
}

bool
obs_pattern_match(const obs_pattern_t *p, const char *const *dims,
                  size_t n_dims)
{
    if (p->n == 0)
        return true;
    if (p->n != n_dims)
        return false;
    for (size_t i = 0; i < n_dims; i++)
        if (p->pos[i] != NULL &&
            (dims[i] == NULL || !alt_match(p->pos[i], dims[i])))
            return false;
    return true;
}

size_t
obs_pattern_fixed_prefix(const obs_pattern_t *p)
{
    size_t i = 0;
    while (i < p->n && p->pos[i] != NULL && strchr(p->pos[i], '+') == NULL)
        i++;
    return i;
}
