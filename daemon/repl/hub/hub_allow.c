/*
 * hub_allow.c - the allow-list directory (hub_allow.h).
 */
#include "hub_allow.h"

#include <sys/stat.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"

static bool
skipped(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || (n > 0 && name[n - 1] == '~');
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int
by_key(const void *a, const void *b)
{
    return strcmp(((const allow_entry_t *)a)->key,
                  ((const allow_entry_t *)b)->key);
}

/* FNV-1a over a string, then over numbers, folded into h */
static uint64_t
fnv_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static uint64_t
fnv_u64(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        h = (h ^ (v & 0xff)) * 1099511628211ull;
    return h;
}

uint64_t
hub_allow_dir_signature(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    uint64_t sum = 0, n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (skipped(e->d_name))
            continue;
        char path[4096];
        struct stat sb;
        (void)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        uint64_t h = fnv_str(14695981039346656037ull, e->d_name);
        if (stat(path, &sb) == 0) {
            h = fnv_u64(h, (uint64_t)sb.st_size);
            h = fnv_u64(h, (uint64_t)sb.st_ino);
            h = fnv_u64(h, (uint64_t)sb.st_mtim.tv_sec);
            h = fnv_u64(h, (uint64_t)sb.st_mtim.tv_nsec);
        }
        sum += h; /* order-free: readdir's order is not stable */
        n++;
    }
    closedir(d);
    return fnv_u64(sum, n) | 1; /* never 0 */
}

static int
add_file(hub_allow_t *a, size_t *cap_n, const char *dir, const char *name,
         char *err, size_t cap)
{
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (ends_with(name, "_secret")) {
        (void)snprintf(err, cap,
                       "%s: a secret certificate in the allow-list: only "
                       "public halves belong here (remove it, and treat the "
                       "key as exposed)",
                       path);
        return OBS_EINVAL;
    }
    curve_cert_t c;
    int rc = curve_cert_load(path, false, &c, err, cap);
    if (rc != OBS_OK)
        return rc;
    if (c.hub) {
        (void)snprintf(err, cap,
                       "%s: a hub's certificate (role = hub): the allow-list "
                       "holds nodes' keys",
                       path);
        return OBS_EINVAL;
    }
    if (c.node_id[0] == '\0') {
        (void)snprintf(err, cap,
                       "%s: metadata/node_id: missing (the node this key "
                       "speaks for; `obsync keygen NODE_ID` writes it)",
                       path);
        return OBS_EINVAL;
    }
    if (a->n == HUB_ALLOW_MAX) {
        (void)snprintf(err, cap, "%s: more than %d keys", dir, HUB_ALLOW_MAX);
        return OBS_ETOOBIG;
    }
    if (a->n == *cap_n) {
        size_t n = *cap_n ? *cap_n * 2 : 16;
        allow_entry_t *e = realloc(a->entries, n * sizeof(*e));
        if (e == NULL)
            return OBS_ENOMEM;
        a->entries = e;
        *cap_n = n;
    }
    allow_entry_t *e = &a->entries[a->n++];
    memcpy(e->key, c.public_txt, sizeof(e->key));
    memcpy(e->node_id, c.node_id, sizeof(e->node_id));
    memcpy(e->provider, c.provider[0] ? c.provider : c.node_id,
           sizeof(e->provider));
    (void)snprintf(e->file, sizeof(e->file), "%s", name);
    return OBS_OK;
}

static int
check_duplicates(const hub_allow_t *a, const char *dir, char *err, size_t cap)
{
    for (size_t i = 1; i < a->n; i++)
        if (strcmp(a->entries[i - 1].key, a->entries[i].key) == 0) {
            (void)snprintf(err, cap,
                           "%s: %s and %s hold the same key: one key belongs "
                           "to one node",
                           dir, a->entries[i - 1].file, a->entries[i].file);
            return OBS_EINVAL;
        }
    return OBS_OK;
}

int
hub_allow_load(const char *dir, hub_allow_t **out, char *err, size_t cap)
{
    *out = NULL;
    hub_allow_t *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return OBS_ENOMEM;
    a->signature = hub_allow_dir_signature(dir);
    DIR *d = opendir(dir);
    if (d == NULL) {
        (void)snprintf(err, cap, "curve_allow_dir %s: %s", dir,
                       strerror(errno));
        free(a);
        return OBS_ESYS;
    }
    int rc = OBS_OK;
    size_t cap_n = 0;
    struct dirent *e;
    while (rc == OBS_OK && (e = readdir(d)) != NULL)
        if (!skipped(e->d_name))
            rc = add_file(a, &cap_n, dir, e->d_name, err, cap);
    closedir(d);
    if (rc == OBS_OK && a->n > 0) {
        qsort(a->entries, a->n, sizeof(*a->entries), by_key);
        rc = check_duplicates(a, dir, err, cap);
    }
    if (rc != OBS_OK) {
        hub_allow_free(&a);
        return rc;
    }
    *out = a;
    return OBS_OK;
}

void
hub_allow_free(hub_allow_t **allowp)
{
    if (allowp == NULL || *allowp == NULL)
        return;
    free((*allowp)->entries);
    free(*allowp);
    *allowp = NULL;
}

const allow_entry_t *
hub_allow_find(const hub_allow_t *allow, const char *key)
{
    if (allow == NULL || key == NULL || allow->n == 0)
        return NULL;
    allow_entry_t k;
    (void)snprintf(k.key, sizeof(k.key), "%s", key);
    return bsearch(&k, allow->entries, allow->n, sizeof(k), by_key);
}
