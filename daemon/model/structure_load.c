/*
 * structure_load.c - loading a structure text into the registry
 * (structure_load_text, structure.h): the text is read into a private
 * staging area (structure_lex.c, structure_parse.c); then references are
 * resolved against what is already loaded and what the text defines,
 * duplicates reported, and final artefacts checked not to change under the
 * same URN (compared by their canonical text, structure_text.c); only then
 * is the stage merged (structure.c), all or nothing. It is not the
 * observation validator (that module reads the result through structure.h)
 * and it does no I/O: the daemon, the hub's structure replication and the
 * `structure` CLI command call it with bytes they read. Threading: none (one
 * loop owns a structure_t).
 */
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"
#include "structure.h"
#include "structure_int.h"

/* ------------------------------------------------------------------ */
/* Resolution: sort the staged artefacts, report duplicates, point every
 * reference at a loaded artefact (preferred, so identical re-loads can be
 * dropped) or a staged one. */

static void
report_dups(parser_t *p, const vec_t *v, const char *what)
{
    for (size_t i = 1; i < v->n; i++)
        if (strcmp(urn_of(v->v[i - 1].p), urn_of(v->v[i].p)) == 0)
            structure_perr(
                p, v->v[i].line, "%s %s: defined twice (first at line %llu)",
                what, urn_of(v->v[i].p), (unsigned long long)v->v[i - 1].line);
}

static const void *
lookup(const parser_t *p, size_t which, const char *urn)
{
    const vec_t *mine[] = {&p->self->cl, &p->self->dsd, &p->self->df};
    const vec_t *staged[] = {&p->stage.cl, &p->stage.dsd, &p->stage.df};
    item_t *it = structure_vec_find(mine[which], urn);
    if (it == NULL)
        it = structure_vec_find(staged[which], urn);
    return it ? it->p : NULL;
}

static void
resolve_component(parser_t *p, const pending_t *pd)
{
    sdmx_dsd_t *d = pd->target;
    sdmx_component_t *c =
        pd->kind == REF_DIM ? &d->dims[pd->idx] : &d->attrs[pd->idx];
    c->codelist = lookup(p, 0, pd->urn);
    if (c->codelist == NULL)
        structure_perr(p, pd->line, "%s %s: unknown codelist %.170s",
                       pd->kind == REF_DIM ? "dimension" : "attribute", c->id,
                       pd->urn);
}

/* Areas of an agreement must be codes of the dataflow's REF_AREA list. */
static void
check_areas(parser_t *p, const sdmx_agreement_t *ag, uint64_t ln)
{
    const sdmx_dsd_t *d = ag->dataflow->dsd;
    int i = d ? structure_dim_index(d, "REF_AREA") : -1;
    if (i < 0 || d->dims[i].codelist == NULL || strcmp(ag->areas[0], "*") == 0)
        return;
    for (size_t k = 0; k < ag->n_areas; k++)
        if (structure_find_code(d->dims[i].codelist, ag->areas[k]) == NULL)
            structure_perr(p, ln, "agreement provider=%s: area %s not in %s",
                           ag->provider, ag->areas[k],
                           d->dims[i].codelist->urn);
}

static void
resolve_one(parser_t *p, const pending_t *pd)
{
    if (pd->kind == REF_DIM || pd->kind == REF_ATTR) {
        resolve_component(p, pd);
    } else if (pd->kind == REF_DF) {
        sdmx_dataflow_t *df = pd->target;
        df->dsd = lookup(p, 1, pd->urn);
        if (df->dsd == NULL)
            structure_perr(p, pd->line, "dataflow %s: unknown dsd %.170s",
                           df->urn, pd->urn);
    } else {
        sdmx_agreement_t *ag = pd->target;
        ag->dataflow = lookup(p, 2, pd->urn);
        if (ag->dataflow == NULL)
            structure_perr(p, pd->line,
                           "agreement provider=%s: unknown dataflow %.170s",
                           ag->provider, pd->urn);
        else
            check_areas(p, ag, pd->line);
    }
}

static void
resolve(parser_t *p)
{
    structure_vec_sort(&p->stage.cl, structure_cmp_item_urn);
    structure_vec_sort(&p->stage.dsd, structure_cmp_item_urn);
    structure_vec_sort(&p->stage.df, structure_cmp_item_urn);
    report_dups(p, &p->stage.cl, "codelist");
    report_dups(p, &p->stage.dsd, "dsd");
    report_dups(p, &p->stage.df, "dataflow");
    /* Components before dataflows before agreements: each pass reads what
     * the previous one set. */
    static const ref_kind_t passes[] = {REF_DIM, REF_DF, REF_AG};
    for (size_t k = 0; k < 3; k++)
        for (size_t i = 0; i < p->n_pend; i++) {
            ref_kind_t kind = p->pend[i].kind;
            if (kind == REF_ATTR)
                kind = REF_DIM;
            if (kind == passes[k])
                resolve_one(p, &p->pend[i]);
        }
    vec_t *ag = &p->stage.ag;
    structure_vec_sort(ag, structure_cmp_item_ag);
    for (size_t i = 1; i < ag->n; i++) {
        const sdmx_agreement_t *a = ag->v[i - 1].p, *b = ag->v[i].p;
        if (a->dataflow && b->dataflow && a->dataflow == b->dataflow &&
            strcmp(a->provider, b->provider) == 0)
            structure_perr(p, ag->v[i].line,
                           "agreement provider=%s dataflow=%s: "
                           "defined twice (first at line %llu)",
                           b->provider, b->dataflow->urn,
                           (unsigned long long)ag->v[i - 1].line);
    }
}

/* ------------------------------------------------------------------ */
/* Immutability: what a load may replace */

static int
classify(parser_t *p, vec_t *staged, const vec_t *mine, emit_fn emit,
         const char *what)
{
    for (size_t i = 0; i < staged->n; i++) {
        item_t *it = &staged->v[i];
        item_t *old = structure_vec_find(mine, urn_of(it->p));
        if (old == NULL)
            continue;
        int same = structure_same_text(emit, old->p, it->p);
        if (same < 0)
            return same;
        if (same)
            it->slot = ST_DROP;
        else
            structure_perr(p, it->line,
                           "%s %s: already loaded with different content "
                           "(final artefacts are immutable; use a new version)",
                           what, urn_of(it->p));
    }
    return 0;
}

static int
classify_agreements(parser_t *p)
{
    vec_t *staged = &p->stage.ag;
    for (size_t i = 0; i < staged->n; i++) {
        item_t *it = &staged->v[i];
        const sdmx_agreement_t *ag = it->p;
        if (ag->dataflow == NULL)
            continue;
        item_t *old = structure_vec_find_ag(&p->self->ag, ag->dataflow->urn,
                                            ag->provider);
        if (old == NULL)
            continue;
        int same = structure_same_text(structure_emit_agreement, old->p, ag);
        if (same < 0)
            return same;
        /* Agreements are not versioned: a new one replaces the old. */
        it->slot = same ? ST_DROP : (size_t)(old - p->self->ag.v);
    }
    return 0;
}

static void
parser_fini(parser_t *p)
{
    for (size_t i = 0; i < p->n_pend; i++)
        free(p->pend[i].urn);
    free(p->pend);
    for (size_t i = 0; i < p->n_codes; i++)
        structure_code_fini(&p->codes[i].c);
    free(p->codes);
    structure_codelist_free(p->cl);
    structure_dsd_free(p->dsd);
    free(p->scratch);
    structure_fini(&p->stage);
}

static int
check_and_merge(parser_t *p, structure_t *self, size_t *loaded)
{
    resolve(p);
    if (p->errors != 0)
        return OBS_ESTRUCT;
    int rc = classify(p, &p->stage.cl, &self->cl, structure_emit_codelist,
                      "codelist");
    if (rc == 0)
        rc = classify(p, &p->stage.dsd, &self->dsd, structure_emit_dsd, "dsd");
    if (rc == 0)
        rc = classify(p, &p->stage.df, &self->df, structure_emit_dataflow,
                      "dataflow");
    if (rc == 0)
        rc = classify_agreements(p);
    if (rc == 0 && p->errors != 0)
        rc = OBS_ESTRUCT;
    return rc != 0 ? rc : structure_merge(self, &p->stage, loaded);
}

int
structure_load_text(structure_t *self, const char *text, size_t len,
                    const char *source_name, issue_list_t *issues,
                    size_t *loaded)
{
    if (loaded != NULL)
        *loaded = 0;
    if (self == NULL || (text == NULL && len > 0))
        return OBS_EINVAL;
    parser_t p = {.self = self,
                  .src = source_name ? source_name : "structure",
                  .issues = issues};
    int rc = structure_parse_text(&p, text ? text : "", len);
    if (rc == 0)
        rc = check_and_merge(&p, self, loaded);
    parser_fini(&p);
    return rc;
}
