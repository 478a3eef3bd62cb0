/*
 * structure.c - the structure registry (structure.h): the in-memory set of
 * code lists, DSDs, dataflows and provision agreements a node or hub knows,
 * each kind in a sorted array of items found with bsearch; the lookups the
 * validator, the SDMX-CSV mapper and the engines make (a dataflow by
 * reference or latest version, a code, a component, an agreement's areas);
 * and the final step of a load, which moves checked artefacts into the set
 * (structure_merge). It neither reads nor writes text: structure_load.c
 * reads a text (structure_lex.c, structure_parse.c) and checks it before it
 * merges, and structure_text.c writes the set back as canonical text. Pure
 * data, no I/O. Threading: none (one loop owns a structure_t).
 */
#include "structure.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"
#include "structure_int.h"

/* ------------------------------------------------------------------ */
/* Freeing */

void
structure_code_fini(sdmx_code_t *c)
{
    free(c->id);
    free(c->name);
    free(c->parent);
}

void
structure_codelist_free(sdmx_codelist_t *cl)
{
    if (cl == NULL)
        return;
    for (size_t i = 0; i < cl->n_codes; i++)
        structure_code_fini(&cl->codes[i]);
    free(cl->codes);
    free(cl->urn);
    free(cl->name);
    free(cl);
}

void
structure_dsd_free(sdmx_dsd_t *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_dims; i++)
        free(d->dims[i].id);
    for (size_t i = 0; i < d->n_attrs; i++)
        free(d->attrs[i].id);
    free(d->dims);
    free(d->attrs);
    free(d->urn);
    free(d->name);
    free(d);
}

void
structure_dataflow_free(sdmx_dataflow_t *df)
{
    if (df == NULL)
        return;
    free(df->urn);
    free(df->name);
    free(df);
}

void
structure_agreement_free(sdmx_agreement_t *ag)
{
    if (ag == NULL)
        return;
    for (size_t i = 0; i < ag->n_areas; i++)
        free(ag->areas[i]);
    free(ag->areas);
    free(ag->provider);
    free(ag);
}

static void
vec_fini(vec_t *v, void (*destroy)(void *))
{
    for (size_t i = 0; i < v->n; i++)
        destroy(v->v[i].p);
    free(v->v);
    memset(v, 0, sizeof(*v));
}

static void
destroy_codelist(void *p)
{
    structure_codelist_free(p);
}

static void
destroy_dsd(void *p)
{
    structure_dsd_free(p);
}

static void
destroy_dataflow(void *p)
{
    structure_dataflow_free(p);
}

static void
destroy_agreement(void *p)
{
    structure_agreement_free(p);
}

void
structure_fini(structure_t *s)
{
    vec_fini(&s->ag, destroy_agreement);
    vec_fini(&s->df, destroy_dataflow);
    vec_fini(&s->dsd, destroy_dsd);
    vec_fini(&s->cl, destroy_codelist);
}

structure_t *
structure_new(void)
{
    return calloc(1, sizeof(structure_t));
}

void
structure_destroy(structure_t **selfp)
{
    if (selfp == NULL || *selfp == NULL)
        return;
    structure_fini(*selfp);
    free(*selfp);
    *selfp = NULL;
}

/* ------------------------------------------------------------------ */
/* Sorted arrays */

static int
vec_reserve(vec_t *v, size_t want)
{
    if (want <= v->cap)
        return 0;
    size_t cap = v->cap ? v->cap : 16;
    while (cap < want)
        cap *= 2;
    item_t *n = realloc(v->v, cap * sizeof(*n));
    if (n == NULL)
        return OBS_ENOMEM;
    v->v = n;
    v->cap = cap;
    return 0;
}

int
structure_vec_push(vec_t *v, void *p, uint64_t line)
{
    if (vec_reserve(v, v->n + 1) != 0)
        return OBS_ENOMEM;
    v->v[v->n++] = (item_t){.p = p, .line = line, .slot = ST_NO_SLOT};
    return 0;
}

int
structure_cmp_item_urn(const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    int c = strcmp(urn_of(x->p), urn_of(y->p));
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

static int
cmp_key_urn(const void *key, const void *elem)
{
    const item_t *it = elem;
    return strcmp(key, urn_of(it->p));
}

item_t *
structure_vec_find(const vec_t *v, const char *urn)
{
    if (v->n == 0 || urn == NULL)
        return NULL;
    return bsearch(urn, v->v, v->n, sizeof(item_t), cmp_key_urn);
}

typedef struct {
    const char *df;
    const char *provider;
} ag_key_t;

static int
cmp_ag_key(const ag_key_t *k, const sdmx_agreement_t *ag)
{
    const char *df = ag->dataflow ? ag->dataflow->urn : "";
    int c = strcmp(k->df, df);
    return c != 0 ? c : strcmp(k->provider, ag->provider);
}

int
structure_cmp_item_ag(const void *a, const void *b)
{
    const item_t *x = a, *y = b;
    const sdmx_agreement_t *ax = x->p;
    ag_key_t k = {ax->dataflow ? ax->dataflow->urn : "", ax->provider};
    int c = cmp_ag_key(&k, y->p);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

static int
cmp_key_ag(const void *key, const void *elem)
{
    const item_t *it = elem;
    return cmp_ag_key(key, it->p);
}

item_t *
structure_vec_find_ag(const vec_t *v, const char *df, const char *provider)
{
    if (v->n == 0)
        return NULL;
    ag_key_t k = {df, provider};
    return bsearch(&k, v->v, v->n, sizeof(item_t), cmp_key_ag);
}

void
structure_vec_sort(vec_t *v, int (*cmp)(const void *, const void *))
{
    if (v->n > 1)
        qsort(v->v, v->n, sizeof(item_t), cmp);
}

static int
cmp_key_code(const void *key, const void *elem)
{
    const sdmx_code_t *c = elem;
    return strcmp(key, c->id);
}

/* ------------------------------------------------------------------ */
/* Merge: the last step of structure_load_text (structure_load.c), once the
 * stage is checked and every staged item has its slot. */

static size_t
apply(vec_t *mine, vec_t *staged, void (*destroy)(void *))
{
    size_t loaded = 0;
    for (size_t i = 0; i < staged->n; i++) {
        item_t *it = &staged->v[i];
        if (it->slot == ST_DROP) {
            destroy(it->p);
        } else if (it->slot == ST_NO_SLOT) {
            mine->v[mine->n++] = (item_t){it->p, 0, ST_NO_SLOT};
            loaded++;
        } else {
            destroy(mine->v[it->slot].p);
            mine->v[it->slot].p = it->p;
            loaded++;
        }
    }
    staged->n = 0;
    return loaded;
}

int
structure_merge(structure_t *self, structure_t *stage, size_t *loaded)
{
    vec_t *mine[] = {&self->cl, &self->dsd, &self->df, &self->ag};
    vec_t *staged[] = {&stage->cl, &stage->dsd, &stage->df, &stage->ag};
    void (*destroy[])(void *) = {destroy_codelist, destroy_dsd,
                                 destroy_dataflow, destroy_agreement};
    for (size_t k = 0; k < 4; k++)
        if (vec_reserve(mine[k], mine[k]->n + staged[k]->n) != 0)
            return OBS_ENOMEM;
    size_t n = 0;
    for (size_t k = 0; k < 4; k++) {
        n += apply(mine[k], staged[k], destroy[k]);
        structure_vec_sort(mine[k], k == 3 ? structure_cmp_item_ag
                                           : structure_cmp_item_urn);
    }
    if (loaded != NULL)
        *loaded = n;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Lookups */

const sdmx_codelist_t *
structure_find_codelist(const structure_t *self, const char *urn)
{
    item_t *it = self ? structure_vec_find(&self->cl, urn) : NULL;
    return it ? it->p : NULL;
}

const sdmx_dsd_t *
structure_find_dsd(const structure_t *self, const char *urn)
{
    item_t *it = self ? structure_vec_find(&self->dsd, urn) : NULL;
    return it ? it->p : NULL;
}

/* Compares one dot-separated part of two versions: numerically when both
 * are digits (leading zeros ignored), else bytewise. */
static int
segment_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    bool num = la > 0 && lb > 0 && strspn(a, "0123456789") >= la &&
               strspn(b, "0123456789") >= lb;
    for (; num && la > 1 && *a == '0'; la--)
        a++;
    for (; num && lb > 1 && *b == '0'; lb--)
        b++;
    if (num && la != lb)
        return la < lb ? -1 : 1;
    int c = memcmp(a, b, la < lb ? la : lb);
    if (c != 0 || la == lb)
        return c;
    return la < lb ? -1 : 1;
}

/* Compares two versions, each ending at NUL or ')', part by part
 * ("1.10" > "1.9"). */
static int
urn_version_cmp(const char *a, const char *b)
{
    while ((*a && *a != ')') || (*b && *b != ')')) {
        size_t la = strcspn(a, ".)"), lb = strcspn(b, ".)");
        int c = segment_cmp(a, la, b, lb);
        if (c != 0)
            return c;
        a += la + (a[la] == '.');
        b += lb + (b[lb] == '.');
    }
    return 0;
}

/* The highest version of "AGENCY:ID": all its URNs share the prefix
 * "AGENCY:ID(" and so sit next to each other in the sorted array, from the
 * first URN not below that prefix. */
static const sdmx_dataflow_t *
find_latest(const vec_t *v, const char *ref)
{
    char prefix[OBS_DATAFLOW_MAX + 2];
    int len = snprintf(prefix, sizeof(prefix), "%s(", ref);
    if (len < 0 || (size_t)len >= sizeof(prefix))
        return NULL;
    size_t n = (size_t)len, lo = 0, hi = v->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(urn_of(v->v[mid].p), prefix) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    const sdmx_dataflow_t *best = NULL;
    for (; lo < v->n; lo++) {
        const sdmx_dataflow_t *df = v->v[lo].p;
        if (strncmp(df->urn, prefix, n) != 0)
            break;
        if (best == NULL || urn_version_cmp(df->urn + n, best->urn + n) > 0)
            best = df;
    }
    return best;
}

static const sdmx_dataflow_t *
find_df_plain(const structure_t *self, const char *ref)
{
    if (strchr(ref, '(') != NULL) {
        item_t *it = structure_vec_find(&self->df, ref);
        return it ? it->p : NULL;
    }
    return find_latest(&self->df, ref);
}

const sdmx_dataflow_t *
structure_find_dataflow(const structure_t *self, const char *ref)
{
    if (self == NULL || ref == NULL)
        return NULL;
    const sdmx_dataflow_t *df = find_df_plain(self, ref);
    const char *colon = strchr(ref, ':');
    const char *at = colon ? strchr(colon, '@') : NULL;
    if (df != NULL || at == NULL)
        return df;
    /* "AGENCY:DSD@DF(VERSION)" -> "AGENCY:DF(VERSION)" */
    char buf[OBS_DATAFLOW_MAX + 2];
    int n = snprintf(buf, sizeof(buf), "%.*s%s", (int)(colon - ref + 1), ref,
                     at + 1);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return NULL;
    return find_df_plain(self, buf);
}

const sdmx_code_t *
structure_find_code(const sdmx_codelist_t *cl, const char *id)
{
    if (cl == NULL || id == NULL || cl->n_codes == 0)
        return NULL;
    return bsearch(id, cl->codes, cl->n_codes, sizeof(sdmx_code_t),
                   cmp_key_code);
}

int
structure_dim_index(const sdmx_dsd_t *dsd, const char *id)
{
    if (dsd == NULL || id == NULL)
        return -1;
    for (size_t i = 0; i < dsd->n_dims; i++)
        if (strcmp(dsd->dims[i].id, id) == 0)
            return (int)i;
    return -1;
}

const sdmx_component_t *
structure_find_attr(const sdmx_dsd_t *dsd, const char *id)
{
    if (dsd == NULL || id == NULL)
        return NULL;
    for (size_t i = 0; i < dsd->n_attrs; i++)
        if (strcmp(dsd->attrs[i].id, id) == 0)
            return &dsd->attrs[i];
    return NULL;
}

size_t
structure_codelist_count(const structure_t *self)
{
    return self ? self->cl.n : 0;
}

const sdmx_codelist_t *
structure_codelist_at(const structure_t *self, size_t i)
{
    return self && i < self->cl.n ? self->cl.v[i].p : NULL;
}

size_t
structure_dsd_count(const structure_t *self)
{
    return self ? self->dsd.n : 0;
}

const sdmx_dsd_t *
structure_dsd_at(const structure_t *self, size_t i)
{
    return self && i < self->dsd.n ? self->dsd.v[i].p : NULL;
}

size_t
structure_dataflow_count(const structure_t *self)
{
    return self ? self->df.n : 0;
}

const sdmx_dataflow_t *
structure_dataflow_at(const structure_t *self, size_t i)
{
    return self && i < self->df.n ? self->df.v[i].p : NULL;
}

size_t
structure_agreement_count(const structure_t *self)
{
    return self ? self->ag.n : 0;
}

const sdmx_agreement_t *
structure_agreement_at(const structure_t *self, size_t i)
{
    return self && i < self->ag.n ? self->ag.v[i].p : NULL;
}

static int
cmp_key_str(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

bool
structure_may_write(const structure_t *self, const char *provider,
                    const sdmx_dataflow_t *df, const char *area)
{
    if (self == NULL || provider == NULL || df == NULL || area == NULL)
        return false;
    item_t *it = structure_vec_find_ag(&self->ag, df->urn, provider);
    if (it == NULL)
        return false;
    const sdmx_agreement_t *ag = it->p;
    if (ag->n_areas == 1 && strcmp(ag->areas[0], "*") == 0)
        return true;
    return bsearch(area, ag->areas, ag->n_areas, sizeof(char *), cmp_key_str) !=
           NULL;
}
