/*
 * version_cache.c - see version_cache.h.
 */
#include "version_cache.h"

#include <stdlib.h>
#include <string.h>

#include "obs_err.h"

int
version_cache_init(version_cache_t *c, size_t slots)
{
    size_t n = 1;
    while (n < slots && n <= SIZE_MAX / 2)
        n *= 2;
    c->slots = calloc(n, sizeof(*c->slots));
    c->n = c->slots ? n : 0;
    return c->slots ? OBS_OK : OBS_ENOMEM;
}

void
version_cache_fini(version_cache_t *c)
{
    if (c == NULL)
        return;
    free(c->slots);
    c->slots = NULL;
    c->n = 0;
}

void
version_cache_put(version_cache_t *c, const obs_version_t *v)
{
    if (c->n == 0 || v->hub_seq == 0)
        return;
    /* padding too: a caller may compare versions bytewise */
    memcpy(&c->slots[v->hub_seq & (c->n - 1)], v, sizeof(*v));
}

void
version_cache_forget(version_cache_t *c, uint64_t first, uint64_t last)
{
    if (first > last)
        return;
    if (last - first >= c->n) { /* wider than the ring: look at every slot */
        for (size_t i = 0; i < c->n; i++)
            if (c->slots[i].hub_seq >= first && c->slots[i].hub_seq <= last)
                c->slots[i].hub_seq = 0;
        return;
    }
    for (uint64_t s = first;; s++) {
        obs_version_t *v = &c->slots[s & (c->n - 1)];
        if (v->hub_seq == s)
            v->hub_seq = 0;
        if (s == last)
            break;
    }
}

const obs_version_t *
version_cache_find(const version_cache_t *c, uint64_t hub_seq)
{
    if (c->n == 0 || hub_seq == 0)
        return NULL;
    const obs_version_t *v = &c->slots[hub_seq & (c->n - 1)];
    return v->hub_seq == hub_seq ? v : NULL;
}
