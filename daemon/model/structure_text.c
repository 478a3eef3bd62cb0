/*
 * structure_text.c - the structure text format's writer (structure_to_text,
 * structure.h): every artefact of a registry in canonical order and form, so
 * that two equal structures give equal bytes. Those bytes are what the store
 * keeps, what the replication hashes to tell whether a node and its hub hold
 * the same structure, and what a load compares to decide whether an
 * artefact loaded again is identical (structure_same_text). It is not the
 * reader (structure_parse.c), though it writes the words the reader reads.
 * Pure, no I/O. Threading: none (one loop owns a structure_t).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"
#include "structure.h"
#include "structure_int.h"

/* The words of the format, by sdmx_type_t and sdmx_attach_t value (the
 * reader looks them up in the same arrays). */
const char *const structure_type_names[6] = {"coded",   "string", "decimal",
                                             "integer", "date",   "period"};
const char *const structure_attach_names[3] = {"obs", "series", "dataset"};

/* ------------------------------------------------------------------ */
/* Canonical text */

static void
buf_add(buf_t *b, const char *s, size_t n)
{
    if (b->rc != 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (np == NULL) {
            b->rc = OBS_ENOMEM;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
buf_str(buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

static void
buf_quoted(buf_t *b, const char *s)
{
    buf_add(b, " \"", 2);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            buf_add(b, "\\", 1);
        buf_add(b, s, 1);
    }
    buf_add(b, "\"", 1);
}

void
structure_emit_codelist(buf_t *b, const void *p)
{
    const sdmx_codelist_t *cl = p;
    buf_str(b, "codelist ");
    buf_str(b, cl->urn);
    buf_quoted(b, cl->name);
    buf_str(b, "\n");
    for (size_t i = 0; i < cl->n_codes; i++) {
        buf_str(b, "  code ");
        buf_str(b, cl->codes[i].id);
        buf_quoted(b, cl->codes[i].name);
        if (cl->codes[i].parent != NULL) {
            buf_str(b, " parent=");
            buf_str(b, cl->codes[i].parent);
        }
        buf_str(b, "\n");
    }
    buf_str(b, "end\n");
}

static void
emit_attr(buf_t *b, const sdmx_component_t *c)
{
    char num[32];
    buf_str(b, "  attribute ");
    buf_str(b, c->id);
    if (c->type == SDMX_TYPE_CODED) {
        buf_str(b, " codelist=");
        buf_str(b, c->codelist ? c->codelist->urn : "?");
    } else {
        buf_str(b, " type=");
        buf_str(b, structure_type_names[c->type]);
    }
    if (c->type == SDMX_TYPE_STRING) {
        (void)snprintf(num, sizeof(num), " max=%zu",
                       c->max_len ? c->max_len : (size_t)OBS_TEXT_MAX);
        buf_str(b, num);
    }
    buf_str(b, " attach=");
    buf_str(b, structure_attach_names[c->attach]);
    buf_str(b, c->mandatory ? " mandatory=yes\n" : " mandatory=no\n");
}

void
structure_emit_dsd(buf_t *b, const void *p)
{
    const sdmx_dsd_t *d = p;
    buf_str(b, "dsd ");
    buf_str(b, d->urn);
    buf_quoted(b, d->name);
    buf_str(b, "\n");
    for (size_t i = 0; i < d->n_dims; i++) {
        buf_str(b, "  dimension ");
        buf_str(b, d->dims[i].id);
        buf_str(b, " codelist=");
        buf_str(b, d->dims[i].codelist ? d->dims[i].codelist->urn : "?");
        buf_str(b, "\n");
    }
    for (size_t i = 0; i < d->n_attrs; i++)
        emit_attr(b, &d->attrs[i]);
    buf_str(b, "end\n");
}

void
structure_emit_dataflow(buf_t *b, const void *p)
{
    const sdmx_dataflow_t *df = p;
    buf_str(b, "dataflow ");
    buf_str(b, df->urn);
    buf_str(b, " dsd=");
    buf_str(b, df->dsd ? df->dsd->urn : "?");
    buf_str(b, df->semantic == SDMX_POLICY_WARN ? " semantic=warn"
                                                : " semantic=reject");
    buf_quoted(b, df->name);
    buf_str(b, "\n");
}

void
structure_emit_agreement(buf_t *b, const void *p)
{
    const sdmx_agreement_t *ag = p;
    buf_str(b, "agreement provider=");
    buf_str(b, ag->provider);
    buf_str(b, " dataflow=");
    buf_str(b, ag->dataflow ? ag->dataflow->urn : "?");
    buf_str(b, " areas=");
    for (size_t i = 0; i < ag->n_areas; i++) {
        if (i > 0)
            buf_str(b, ",");
        buf_str(b, ag->areas[i]);
    }
    buf_str(b, "\n");
}

static void
emit_vec(buf_t *b, const vec_t *v, emit_fn emit, bool blank)
{
    for (size_t i = 0; i < v->n; i++) {
        emit(b, v->v[i].p);
        if (blank)
            buf_str(b, "\n");
    }
}

int
structure_to_text(const structure_t *self, char **out, size_t *len)
{
    if (self == NULL || out == NULL)
        return OBS_EINVAL;
    buf_t b = {0};
    buf_str(&b, "# obsync structure, canonical form\n\n");
    emit_vec(&b, &self->cl, structure_emit_codelist, true);
    emit_vec(&b, &self->dsd, structure_emit_dsd, true);
    emit_vec(&b, &self->df, structure_emit_dataflow, false);
    if (self->df.n > 0)
        buf_str(&b, "\n");
    emit_vec(&b, &self->ag, structure_emit_agreement, false);
    if (b.rc != 0) {
        free(b.p);
        return b.rc;
    }
    *out = b.p;
    if (len != NULL)
        *len = b.len;
    return 0;
}

/* 1 when equal, 0 when not, OBS_ENOMEM. Comparing canonical text keeps
 * "identical" and "serialises identically" the same thing. */
int
structure_same_text(emit_fn emit, const void *a, const void *b)
{
    buf_t x = {0}, y = {0};
    emit(&x, a);
    emit(&y, b);
    int rc = x.rc ? x.rc : y.rc;
    if (rc == 0)
        rc = x.len == y.len && memcmp(x.p, y.p, x.len) == 0;
    free(x.p);
    free(y.p);
    return rc;
}
