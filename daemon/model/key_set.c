/*
 * key_set.c - the keys of one import file, to find a key given twice
 * (DOMAIN.md rule 6; see key_set.h). While keys arrive in order (a file in
 * key order, the usual case) none can repeat, so they are only appended;
 * at the first key out of order every key so far is indexed in an open
 * addressing table, and each later one is looked up there.
 */
#include "key_set.h"

#include <stdlib.h>
#include <string.h>

#include "obs_err.h"

#define KEY_BLOCK (1u << 20) /* > REC_SIZE + the longest key */
typedef struct key_block {
    struct key_block *next;
    size_t used;
    uint8_t data[KEY_BLOCK];
} key_block_t;

/* Header of a key in a block (unaligned: read with memcpy). */
typedef struct {
    uint64_t line;
    uint16_t len;
    uint8_t cls;
} rec_t;
#define REC_SIZE (8 + 2 + 1)

static uint64_t
fnv1a(const uint8_t *p, size_t n, uint8_t cls)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ULL;
    return (h ^ cls) * 1099511628211ULL;
}

static key_slot_t *
find_slot(key_slot_t *slots, size_t n_slots, uint64_t h, const uint8_t *key,
          size_t len, uint8_t cls)
{
    size_t mask = n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        key_slot_t *s = &slots[i];
        if (s->line == 0)
            return s;
        if (s->hash == h && s->cls == cls && s->len == len &&
            memcmp(s->key, key, len) == 0)
            return s;
    }
}

static int
grow_slots(key_set_t *m)
{
    size_t n = m->n_slots ? m->n_slots * 2 : 256;
    key_slot_t *slots = calloc(n, sizeof(*slots));
    if (slots == NULL)
        return OBS_ENOMEM;
    for (size_t i = 0; i < m->n_slots; i++) {
        const key_slot_t *s = &m->slots[i];
        if (s->line == 0)
            continue;
        *find_slot(slots, n, s->hash, s->key, s->len, s->cls) = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n;
    return 0;
}

/* Appends key's record; *out = where its bytes are. */
static int
key_put(key_set_t *m, const uint8_t *key, size_t len, uint8_t cls,
        uint64_t line, const uint8_t **out)
{
    size_t need = REC_SIZE + len;
    key_block_t *b = m->cur_block;
    if (b == NULL || b->used + need > KEY_BLOCK) {
        key_block_t *nb = malloc(sizeof(*nb));
        if (nb == NULL)
            return OBS_ENOMEM;
        nb->next = NULL;
        nb->used = 0;
        if (b)
            b->next = nb;
        else
            m->first_block = nb;
        m->cur_block = b = nb;
    }
    uint8_t *r = b->data + b->used;
    uint16_t len16 = (uint16_t)len;
    memcpy(r, &line, 8);
    memcpy(r + 8, &len16, 2);
    r[10] = cls;
    memcpy(r + REC_SIZE, key, len);
    *out = r + REC_SIZE;
    b->used += need;
    return 0;
}

static void
slot_put(key_set_t *m, const uint8_t *key, size_t len, uint8_t cls,
         uint64_t line)
{
    uint64_t h = fnv1a(key, len, cls);
    *find_slot(m->slots, m->n_slots, h, key, len, cls) = (key_slot_t){
        .hash = h, .line = line, .key = key, .len = (uint16_t)len, .cls = cls};
    m->n_used++;
}

/* The first key out of order: index every key so far (all distinct). */
static int
index_keys(key_set_t *m)
{
    m->unsorted = true;
    for (key_block_t *b = m->first_block; b != NULL; b = b->next)
        for (size_t pos = 0; pos < b->used;) {
            rec_t r;
            memcpy(&r.line, b->data + pos, 8);
            memcpy(&r.len, b->data + pos + 8, 2);
            r.cls = b->data[pos + 10];
            if ((m->n_used + 1) * 10 > m->n_slots * 7 && grow_slots(m) != 0)
                return OBS_ENOMEM;
            slot_put(m, b->data + pos + REC_SIZE, r.len, r.cls, r.line);
            pos += REC_SIZE + r.len;
        }
    return 0;
}

/* Whether key sorts after the previous one (bytes, then length). */
static bool
after_last(const key_set_t *m, const uint8_t *key, size_t len)
{
    if (m->last_key == NULL)
        return true;
    size_t n = len < m->last_len ? len : m->last_len;
    int c = memcmp(key, m->last_key, n);
    return c > 0 || (c == 0 && len > m->last_len);
}

int
key_set_add(key_set_t *m, const uint8_t *key, size_t len, uint8_t cls,
            uint64_t line, uint64_t *first)
{
    *first = 0;
    const uint8_t *stored;
    if (!m->unsorted && after_last(m, key, len)) {
        if (key_put(m, key, len, cls, line, &stored) != 0)
            return OBS_ENOMEM;
        m->last_key = stored;
        m->last_len = len;
        return 0;
    }
    if (!m->unsorted && index_keys(m) != 0)
        return OBS_ENOMEM;
    if ((m->n_used + 1) * 10 > m->n_slots * 7 && grow_slots(m) != 0)
        return OBS_ENOMEM;
    uint64_t h = fnv1a(key, len, cls);
    key_slot_t *s = find_slot(m->slots, m->n_slots, h, key, len, cls);
    if (s->line != 0) {
        *first = s->line;
        return 0;
    }
    if (key_put(m, key, len, cls, line, &stored) != 0)
        return OBS_ENOMEM;
    *s = (key_slot_t){.hash = h,
                      .line = line,
                      .key = stored,
                      .len = (uint16_t)len,
                      .cls = cls};
    m->n_used++;
    return 0;
}

void
key_set_fini(key_set_t *m)
{
    free(m->slots);
    while (m->first_block != NULL) {
        key_block_t *next = m->first_block->next;
        free(m->first_block);
        m->first_block = next;
    }
    memset(m, 0, sizeof(*m));
}
