/*
 * structure_parse.c - the structure text format's reader (deploy/structure/
 * README.md): a text, line by line, into staged artefacts (code lists with
 * their codes, DSDs with their components, dataflows, agreements) and the
 * references between them, with every syntax error as an issue with its
 * line. Lines come split into tokens by structure_lex.c. It does not
 * resolve the references, compare with what is loaded or merge:
 * structure_load.c (structure_load_text) does that once the whole text is
 * read. The parser is a loop over lines with no recursion, and every
 * count and length from the input is capped before it is stored, so hostile
 * text cannot crash it or make it allocate without bound. No I/O.
 * Threading: none (one loop owns a structure_t).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"
#include "structure.h"
#include "structure_int.h"

#define ST_RULE           "structure"
#define ST_CODES_MAX      100000 /* codes per code list */
#define ST_AREAS_MAX      100000 /* areas per agreement */
#define ST_STRING_DEFAULT 1050   /* max= of a string attribute by default */

/* qsort orders: an agreement's areas; a code list's codes by id, then line
 * (so a duplicate sorts after the first definition). */
static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
cmp_code_item(const void *a, const void *b)
{
    const code_item_t *x = a, *y = b;
    int c = strcmp(x->c.id, y->c.id);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

/* ------------------------------------------------------------------ */
/* Errors */

int
structure_perr(parser_t *p, uint64_t line, const char *fmt, ...)
{
    char msg[320];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->errors++;
    if (p->issues != NULL)
        issue_add(p->issues, line, "", ST_RULE, false, "%s:%llu: %s", p->src,
                  (unsigned long long)line, msg);
    return OBS_ESTRUCT;
}

/* ------------------------------------------------------------------ */
/* Line helpers */

/* Looks up the options a keyword allows; vals[i] gets allowed[i]'s value or
 * NULL. Unknown and repeated options are errors. */
static int
get_opts(parser_t *p, uint64_t ln, const line_t *lt, const char *const *allowed,
         size_t n_allowed, const char **vals)
{
    for (size_t i = 0; i < n_allowed; i++)
        vals[i] = NULL;
    for (size_t o = 0; o < lt->n_opt; o++) {
        size_t i = 0;
        while (i < n_allowed && strcmp(lt->key[o], allowed[i]) != 0)
            i++;
        if (i == n_allowed)
            return structure_perr(
                p, ln, "%s: unknown option %.64s=", lt->word[0], lt->key[o]);
        if (vals[i] != NULL)
            return structure_perr(p, ln, "%s: option %s= given twice",
                                  lt->word[0], allowed[i]);
        vals[i] = lt->val[o];
    }
    return 0;
}

static int
expect_words(parser_t *p, uint64_t ln, const line_t *lt, size_t n)
{
    if (lt->n_word != n)
        return structure_perr(p, ln, "%s: expected %zu word(s), got %zu",
                              lt->word[0], n, lt->n_word);
    return 0;
}

static int
dup_str(const char *s, char **out)
{
    *out = strdup(s ? s : "");
    return *out ? 0 : OBS_ENOMEM;
}

static int
add_pending(parser_t *p, ref_kind_t kind, void *target, size_t idx,
            const char *urn, uint64_t ln)
{
    if (p->n_pend == p->cap_pend) {
        size_t cap = p->cap_pend ? p->cap_pend * 2 : 32;
        pending_t *n = realloc(p->pend, cap * sizeof(*n));
        if (n == NULL)
            return OBS_ENOMEM;
        p->pend = n;
        p->cap_pend = cap;
    }
    pending_t *pd = &p->pend[p->n_pend];
    *pd = (pending_t){.kind = kind, .target = target, .idx = idx, .line = ln};
    if (dup_str(urn, &pd->urn) != 0)
        return OBS_ENOMEM;
    p->n_pend++;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Code list blocks */

static int
open_codelist(parser_t *p, uint64_t ln, const line_t *lt)
{
    int rc = expect_words(p, ln, lt, 2);
    if (rc == 0 && lt->n_opt != 0)
        rc = structure_perr(p, ln, "codelist: takes no options");
    if (rc == 0 && !structure_valid_urn(lt->word[1]))
        rc = structure_perr(
            p, ln, "codelist: bad URN '%.170s' (want AGENCY:ID(VERSION))",
            lt->word[1]);
    p->block = BLOCK_CODELIST;
    p->block_line = ln;
    if (rc != 0)
        return rc; /* its codes are still checked, then dropped */
    p->cl = calloc(1, sizeof(*p->cl));
    if (p->cl == NULL || dup_str(lt->word[1], &p->cl->urn) != 0 ||
        dup_str(lt->name, &p->cl->name) != 0)
        return OBS_ENOMEM;
    return 0;
}

static int
check_code_line(parser_t *p, uint64_t ln, const line_t *lt, const char **par)
{
    static const char *const allowed[] = {"parent"};
    int rc = expect_words(p, ln, lt, 2);
    if (rc == 0)
        rc = get_opts(p, ln, lt, allowed, 1, par);
    if (rc != 0)
        return rc;
    if (!structure_valid_id(lt->word[1], true))
        return structure_perr(p, ln,
                              "code '%.80s': bad id (want [A-Za-z0-9_@$-], at "
                              "most %d characters)",
                              lt->word[1], OBS_CODE_MAX);
    if (*par != NULL && !structure_valid_id(*par, true))
        return structure_perr(p, ln, "code %s: bad parent '%.80s'", lt->word[1],
                              *par);
    if (p->n_codes >= ST_CODES_MAX && !p->codes_overflow) {
        p->codes_overflow = true;
        return structure_perr(p, ln, "codelist: more than %d codes",
                              ST_CODES_MAX);
    }
    return p->codes_overflow ? OBS_ESTRUCT : 0;
}

static int
add_code(parser_t *p, uint64_t ln, const line_t *lt)
{
    const char *parent = NULL;
    int rc = check_code_line(p, ln, lt, &parent);
    if (rc != 0 || p->cl == NULL)
        return rc;
    if (p->n_codes == p->cap_codes) {
        size_t cap = p->cap_codes ? p->cap_codes * 2 : 64;
        code_item_t *n = realloc(p->codes, cap * sizeof(*n));
        if (n == NULL)
            return OBS_ENOMEM;
        p->codes = n;
        p->cap_codes = cap;
    }
    code_item_t *ci = &p->codes[p->n_codes++];
    memset(ci, 0, sizeof(*ci));
    ci->line = ln;
    if (dup_str(lt->word[1], &ci->c.id) != 0 ||
        dup_str(lt->name, &ci->c.name) != 0)
        return OBS_ENOMEM;
    if (parent != NULL && dup_str(parent, &ci->c.parent) != 0)
        return OBS_ENOMEM;
    return 0;
}

/* Parents must be codes of the same list and must not form a cycle. Each
 * code is walked at most once (state 1 = on the current path, 2 = done), so
 * this is linear and needs no recursion. */
static void
check_parents(parser_t *p, const sdmx_codelist_t *cl, const uint64_t *lines,
              size_t *parent, unsigned char *state)
{
    for (size_t i = 0; i < cl->n_codes; i++) {
        const sdmx_code_t *c = &cl->codes[i];
        parent[i] = ST_NO_SLOT;
        if (c->parent == NULL)
            continue;
        const sdmx_code_t *pc = structure_find_code(cl, c->parent);
        if (pc == NULL)
            structure_perr(p, lines[i], "code %s: unknown parent %s", c->id,
                           c->parent);
        else
            parent[i] = (size_t)(pc - cl->codes);
    }
    for (size_t i = 0; i < cl->n_codes; i++) {
        size_t j = i;
        while (j != ST_NO_SLOT && state[j] == 0) {
            state[j] = 1;
            j = parent[j];
        }
        if (j != ST_NO_SLOT && state[j] == 1)
            structure_perr(p, lines[j], "code %s: parent cycle",
                           cl->codes[j].id);
        for (j = i; j != ST_NO_SLOT && state[j] == 1; j = parent[j])
            state[j] = 2;
    }
}

/* Sorts the open list's codes, reports duplicates and bad parents, and moves
 * the codes into p->cl. */
static int
finish_codes(parser_t *p)
{
    sdmx_codelist_t *cl = p->cl;
    size_t n = p->n_codes;
    if (n > 1)
        qsort(p->codes, n, sizeof(code_item_t), cmp_code_item);
    for (size_t i = 1; i < n; i++)
        if (strcmp(p->codes[i].c.id, p->codes[i - 1].c.id) == 0)
            structure_perr(
                p, p->codes[i].line, "code %s: duplicate (first at line %llu)",
                p->codes[i].c.id, (unsigned long long)p->codes[i - 1].line);
    cl->codes = calloc(n ? n : 1, sizeof(sdmx_code_t));
    uint64_t *lines = calloc(n ? n : 1, sizeof(uint64_t));
    size_t *parent = calloc(n ? n : 1, sizeof(size_t));
    unsigned char *state = calloc(n ? n : 1, 1);
    int rc = OBS_ENOMEM;
    if (cl->codes != NULL && lines != NULL && parent != NULL && state != NULL) {
        for (size_t i = 0; i < n; i++) {
            cl->codes[i] = p->codes[i].c;
            lines[i] = p->codes[i].line;
        }
        cl->n_codes = n;
        p->n_codes = 0;
        check_parents(p, cl, lines, parent, state);
        rc = 0;
    }
    free(lines);
    free(parent);
    free(state);
    return rc;
}

static int
close_codelist(parser_t *p)
{
    int rc = 0;
    if (p->cl != NULL) {
        rc = finish_codes(p);
        if (rc == 0)
            rc = structure_vec_push(&p->stage.cl, p->cl, p->block_line);
        if (rc == 0)
            p->cl = NULL;
    }
    for (size_t i = 0; i < p->n_codes; i++)
        structure_code_fini(&p->codes[i].c);
    p->n_codes = 0;
    p->codes_overflow = false;
    structure_codelist_free(p->cl);
    p->cl = NULL;
    return rc;
}

/* ------------------------------------------------------------------ */
/* DSD blocks */

static int
open_dsd(parser_t *p, uint64_t ln, const line_t *lt)
{
    int rc = expect_words(p, ln, lt, 2);
    if (rc == 0 && lt->n_opt != 0)
        rc = structure_perr(p, ln, "dsd: takes no options");
    if (rc == 0 && !structure_valid_urn(lt->word[1]))
        rc = structure_perr(p, ln,
                            "dsd: bad URN '%.170s' (want AGENCY:ID(VERSION))",
                            lt->word[1]);
    p->block = BLOCK_DSD;
    p->block_line = ln;
    if (rc != 0)
        return rc;
    sdmx_dsd_t *d = calloc(1, sizeof(*d));
    p->dsd = d;
    if (d == NULL)
        return OBS_ENOMEM;
    d->dims = calloc(OBS_MAX_DIMS, sizeof(sdmx_component_t));
    d->attrs = calloc(OBS_MAX_ATTRS, sizeof(sdmx_component_t));
    if (d->dims == NULL || d->attrs == NULL ||
        dup_str(lt->word[1], &d->urn) != 0 || dup_str(lt->name, &d->name) != 0)
        return OBS_ENOMEM;
    return 0;
}

static int
check_component_id(parser_t *p, uint64_t ln, const char *kw, const char *id)
{
    if (!structure_valid_id(id, false))
        return structure_perr(
            p, ln,
            "%s '%.80s': bad id (want [A-Za-z0-9_@$-], at most "
            "%d characters)",
            kw, id, OBS_CODE_MAX);
    if (strcmp(id, "TIME_PERIOD") == 0 || strcmp(id, "OBS_VALUE") == 0)
        return structure_perr(
            p, ln, "%s %s: implicit in every DSD, do not list it", kw, id);
    const sdmx_dsd_t *d = p->dsd;
    if (d != NULL &&
        (structure_dim_index(d, id) >= 0 || structure_find_attr(d, id)))
        return structure_perr(p, ln, "%s %s: duplicate component", kw, id);
    return 0;
}

static int
add_dimension(parser_t *p, uint64_t ln, const line_t *lt)
{
    static const char *const allowed[] = {"codelist"};
    const char *cl = NULL;
    int rc = expect_words(p, ln, lt, 2);
    if (rc == 0)
        rc = get_opts(p, ln, lt, allowed, 1, &cl);
    if (rc == 0)
        rc = check_component_id(p, ln, "dimension", lt->word[1]);
    if (rc != 0)
        return rc;
    if (cl == NULL)
        return structure_perr(p, ln, "dimension %s: codelist= is required",
                              lt->word[1]);
    sdmx_dsd_t *d = p->dsd;
    if (d != NULL && d->n_dims >= OBS_MAX_DIMS)
        return structure_perr(p, ln, "dimension %s: more than %d dimensions",
                              lt->word[1], OBS_MAX_DIMS);
    if (d == NULL)
        return 0;
    sdmx_component_t *c = &d->dims[d->n_dims];
    memset(c, 0, sizeof(*c));
    if (dup_str(lt->word[1], &c->id) != 0)
        return OBS_ENOMEM;
    d->n_dims++;
    return add_pending(p, REF_DIM, d, d->n_dims - 1, cl, ln);
}

static int
lookup_name(const char *const *names, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return (int)i;
    return -1;
}

static bool
parse_max(const char *s, size_t *out)
{
    size_t v = 0, n = strlen(s);
    if (n == 0 || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (size_t)(s[i] - '0');
    }
    *out = v;
    return v >= 1 && v <= OBS_TEXT_MAX;
}

enum { OPT_CODELIST, OPT_TYPE, OPT_MAX, OPT_ATTACH, OPT_MANDATORY, OPT_N };

/* Fills c (except id) from an attribute's options. */
static int
attr_options(parser_t *p, uint64_t ln, const char *id, const char **o,
             sdmx_component_t *c)
{
    int t = o[OPT_TYPE] ? lookup_name(structure_type_names, 6, o[OPT_TYPE])
                        : (o[OPT_CODELIST] ? SDMX_TYPE_CODED : -1);
    int a = o[OPT_ATTACH]
                ? lookup_name(structure_attach_names, 3, o[OPT_ATTACH])
                : 0;
    const char *m = o[OPT_MANDATORY] ? o[OPT_MANDATORY] : "no";
    if (t < 0)
        return structure_perr(
            p, ln, "attribute %s: needs codelist= or a known type=", id);
    if ((t == SDMX_TYPE_CODED) != (o[OPT_CODELIST] != NULL))
        return structure_perr(
            p, ln, "attribute %s: codelist= goes with type=coded only", id);
    if (o[OPT_MAX] != NULL && t != SDMX_TYPE_STRING)
        return structure_perr(p, ln,
                              "attribute %s: max= is for type=string only", id);
    c->max_len = t == SDMX_TYPE_STRING ? ST_STRING_DEFAULT : 0;
    if (o[OPT_MAX] != NULL && !parse_max(o[OPT_MAX], &c->max_len))
        return structure_perr(p, ln, "attribute %s: max= must be 1..%d", id,
                              OBS_TEXT_MAX);
    if (a < 0)
        return structure_perr(p, ln,
                              "attribute %s: attach= must be obs, series or "
                              "dataset",
                              id);
    if (strcmp(m, "yes") != 0 && strcmp(m, "no") != 0)
        return structure_perr(p, ln,
                              "attribute %s: mandatory= must be yes or no", id);
    c->type = (sdmx_type_t)t;
    c->attach = (sdmx_attach_t)a;
    c->mandatory = strcmp(m, "yes") == 0;
    return 0;
}

static int
add_attribute(parser_t *p, uint64_t ln, const line_t *lt)
{
    static const char *const allowed[] = {"codelist", "type", "max", "attach",
                                          "mandatory"};
    const char *o[OPT_N] = {NULL};
    sdmx_component_t c = {0};
    int rc = expect_words(p, ln, lt, 2);
    if (rc == 0)
        rc = get_opts(p, ln, lt, allowed, OPT_N, o);
    if (rc == 0)
        rc = check_component_id(p, ln, "attribute", lt->word[1]);
    if (rc == 0)
        rc = attr_options(p, ln, lt->word[1], o, &c);
    if (rc != 0)
        return rc;
    sdmx_dsd_t *d = p->dsd;
    if (d != NULL && d->n_attrs >= OBS_MAX_ATTRS)
        return structure_perr(p, ln, "attribute %s: more than %d attributes",
                              lt->word[1], OBS_MAX_ATTRS);
    if (d == NULL)
        return 0;
    if (dup_str(lt->word[1], &c.id) != 0)
        return OBS_ENOMEM;
    d->attrs[d->n_attrs++] = c;
    if (o[OPT_CODELIST] == NULL)
        return 0;
    return add_pending(p, REF_ATTR, d, d->n_attrs - 1, o[OPT_CODELIST], ln);
}

/* The DSD's derived indices (sdmx_dsd_t.attr_by_id, *_dim). */
static void
index_dsd(sdmx_dsd_t *d)
{
    for (size_t i = 0; i < d->n_attrs; i++) { /* insertion sort: <= 64 */
        size_t j = i;
        for (; j > 0 &&
               strcmp(d->attrs[d->attr_by_id[j - 1]].id, d->attrs[i].id) > 0;
             j--)
            d->attr_by_id[j] = d->attr_by_id[j - 1];
        d->attr_by_id[j] = (uint8_t)i;
    }
    d->freq_dim = structure_dim_index(d, "FREQ");
    d->area_dim = structure_dim_index(d, "REF_AREA");
    d->indicator_dim = structure_dim_index(d, "INDICATOR");
}

static int
close_dsd(parser_t *p)
{
    sdmx_dsd_t *d = p->dsd;
    if (d == NULL)
        return 0;
    if (d->n_dims == 0)
        structure_perr(p, p->block_line, "dsd %s: no dimensions", d->urn);
    index_dsd(d);
    int rc = structure_vec_push(&p->stage.dsd, d, p->block_line);
    if (rc != 0)
        structure_dsd_free(
            d); /* its pending refs are never resolved: rc aborts */
    p->dsd = NULL;
    return rc;
}

static int
close_block(parser_t *p)
{
    block_t b = p->block;
    p->block = BLOCK_NONE;
    if (b == BLOCK_CODELIST)
        return close_codelist(p);
    if (b == BLOCK_DSD)
        return close_dsd(p);
    return 0;
}

/* ------------------------------------------------------------------ */
/* One-line artefacts */

static int
add_dataflow(parser_t *p, uint64_t ln, const line_t *lt)
{
    static const char *const allowed[] = {"dsd", "semantic"};
    const char *o[2] = {NULL, NULL};
    int rc = expect_words(p, ln, lt, 2);
    if (rc == 0)
        rc = get_opts(p, ln, lt, allowed, 2, o);
    if (rc != 0)
        return rc;
    if (!structure_valid_urn(lt->word[1]))
        return structure_perr(p, ln,
                              "dataflow: bad URN '%.170s' (want "
                              "AGENCY:ID(VERSION))",
                              lt->word[1]);
    if (o[0] == NULL)
        return structure_perr(p, ln, "dataflow %s: dsd= is required",
                              lt->word[1]);
    const char *sem = o[1] ? o[1] : "reject";
    if (strcmp(sem, "reject") != 0 && strcmp(sem, "warn") != 0)
        return structure_perr(p, ln,
                              "dataflow %s: semantic= must be reject or warn",
                              lt->word[1]);
    sdmx_dataflow_t *df = calloc(1, sizeof(*df));
    if (df == NULL)
        return OBS_ENOMEM;
    df->semantic =
        strcmp(sem, "warn") == 0 ? SDMX_POLICY_WARN : SDMX_POLICY_REJECT;
    if (dup_str(lt->word[1], &df->urn) != 0 ||
        dup_str(lt->name, &df->name) != 0 ||
        structure_vec_push(&p->stage.df, df, ln) != 0) {
        structure_dataflow_free(df);
        return OBS_ENOMEM;
    }
    return add_pending(p, REF_DF, df, 0, o[0], ln);
}

/* Splits "A,B,C" (or "*") into ag->areas, sorted; reports bad or repeated
 * areas. */
static int
parse_areas(parser_t *p, uint64_t ln, const char *s, sdmx_agreement_t *ag)
{
    size_t n = 1;
    for (const char *q = s; *q; q++)
        n += *q == ',';
    if (n > ST_AREAS_MAX)
        return structure_perr(p, ln, "agreement: more than %d areas",
                              ST_AREAS_MAX);
    ag->areas = calloc(n, sizeof(char *));
    if (ag->areas == NULL)
        return OBS_ENOMEM;
    for (const char *q = s;; q++) {
        size_t len = strcspn(q, ",");
        ag->areas[ag->n_areas] = strndup(q, len);
        if (ag->areas[ag->n_areas] == NULL)
            return OBS_ENOMEM;
        ag->n_areas++;
        bool star = len == 1 && q[0] == '*';
        if (!(star && n == 1) &&
            !structure_valid_id_n(q, len, OBS_CODE_MAX, true))
            return structure_perr(p, ln,
                                  "agreement: bad area '%.*s' (a code, or a "
                                  "single *)",
                                  (int)(len > 80 ? 80 : len), q);
        q += len;
        if (*q == '\0')
            break;
    }
    qsort(ag->areas, ag->n_areas, sizeof(char *), cmp_str);
    for (size_t i = 1; i < ag->n_areas; i++)
        if (strcmp(ag->areas[i], ag->areas[i - 1]) == 0)
            return structure_perr(p, ln, "agreement: area %s listed twice",
                                  ag->areas[i]);
    return 0;
}

static int
check_agreement_line(parser_t *p, uint64_t ln, const line_t *lt, const char **o)
{
    static const char *const allowed[] = {"provider", "dataflow", "areas"};
    int rc = expect_words(p, ln, lt, 1);
    if (rc == 0)
        rc = get_opts(p, ln, lt, allowed, 3, o);
    if (rc != 0)
        return rc;
    if (lt->name != NULL)
        return structure_perr(p, ln, "agreement: takes no name");
    if (o[0] == NULL || o[1] == NULL || o[2] == NULL)
        return structure_perr(p, ln,
                              "agreement: provider=, dataflow= and areas= are "
                              "required");
    if (!structure_valid_id_n(o[0], strlen(o[0]), OBS_ID_MAX, false))
        return structure_perr(p, ln, "agreement: bad provider '%.80s'", o[0]);
    return 0;
}

static int
add_agreement(parser_t *p, uint64_t ln, const line_t *lt)
{
    const char *o[3] = {NULL, NULL, NULL};
    int rc = check_agreement_line(p, ln, lt, o);
    if (rc != 0)
        return rc;
    sdmx_agreement_t *ag = calloc(1, sizeof(*ag));
    if (ag == NULL)
        return OBS_ENOMEM;
    rc = dup_str(o[0], &ag->provider);
    if (rc == 0)
        rc = parse_areas(p, ln, o[2], ag);
    if (rc == 0)
        rc = structure_vec_push(&p->stage.ag, ag, ln) != 0 ? OBS_ENOMEM : 0;
    if (rc != 0) {
        structure_agreement_free(ag);
        return rc;
    }
    return add_pending(p, REF_AG, ag, 0, o[1], ln);
}

/* ------------------------------------------------------------------ */
/* Line dispatch */

static int
top_level(parser_t *p, uint64_t ln, const line_t *lt, const char *kw)
{
    if (p->block != BLOCK_NONE) {
        structure_perr(p, p->block_line,
                       "%s: missing end (line %llu is outside it)",
                       p->block == BLOCK_CODELIST ? "codelist" : "dsd",
                       (unsigned long long)ln);
        int rc = close_block(p);
        if (rc != 0)
            return rc;
    }
    if (strcmp(kw, "codelist") == 0)
        return open_codelist(p, ln, lt);
    if (strcmp(kw, "dsd") == 0)
        return open_dsd(p, ln, lt);
    if (strcmp(kw, "dataflow") == 0)
        return add_dataflow(p, ln, lt);
    return add_agreement(p, ln, lt);
}

static int
dispatch(parser_t *p, uint64_t ln, const line_t *lt)
{
    if (lt->n_word == 0) {
        if (lt->n_opt == 0 && lt->name == NULL)
            return 0; /* blank or comment */
        return structure_perr(p, ln, "line does not start with a keyword");
    }
    const char *kw = lt->word[0];
    if (strcmp(kw, "codelist") == 0 || strcmp(kw, "dsd") == 0 ||
        strcmp(kw, "dataflow") == 0 || strcmp(kw, "agreement") == 0)
        return top_level(p, ln, lt, kw);
    if (strcmp(kw, "end") == 0) {
        if (p->block == BLOCK_NONE)
            return structure_perr(p, ln, "end without codelist or dsd");
        if (lt->n_word != 1 || lt->n_opt != 0 || lt->name != NULL)
            structure_perr(p, ln, "end: takes nothing after it");
        return close_block(p);
    }
    if (strcmp(kw, "code") == 0 && p->block == BLOCK_CODELIST)
        return add_code(p, ln, lt);
    if (strcmp(kw, "dimension") == 0 && p->block == BLOCK_DSD)
        return add_dimension(p, ln, lt);
    if (strcmp(kw, "attribute") == 0 && p->block == BLOCK_DSD)
        return add_attribute(p, ln, lt);
    return structure_perr(p, ln, "unexpected '%.40s' %s", kw,
                          p->block == BLOCK_NONE ? "outside a block"
                                                 : "in this block");
}

/* A codelist or dsd header that did not even structure_tokenize still opens its
 * block (with nothing to store), so its body and `end` give no more errors. */
static void
open_broken_block(parser_t *p, uint64_t ln, const line_t *lt)
{
    if (p->block != BLOCK_NONE || lt->n_word == 0)
        return;
    if (strcmp(lt->word[0], "codelist") == 0)
        p->block = BLOCK_CODELIST;
    else if (strcmp(lt->word[0], "dsd") == 0)
        p->block = BLOCK_DSD;
    p->block_line = ln;
}

int
structure_parse_text(parser_t *p, const char *text, size_t len)
{
    uint64_t ln = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) : len - pos;
        pos += n + (nl != NULL);
        ln++;
        if (n > 0 && s[n - 1] == '\r')
            n--;
        if (memchr(s, '\0', n) != NULL) {
            structure_perr(p, ln, "NUL byte in text");
            continue;
        }
        line_t lt;
        int rc = structure_tokenize(p, ln, s, n, &lt);
        if (rc == 0)
            rc = dispatch(p, ln, &lt);
        else if (rc == OBS_ESTRUCT)
            open_broken_block(p, ln, &lt);
        if (rc == OBS_ENOMEM)
            return rc;
    }
    if (p->block != BLOCK_NONE) {
        structure_perr(p, p->block_line, "%s: missing end before end of text",
                       p->block == BLOCK_CODELIST ? "codelist" : "dsd");
        return close_block(p);
    }
    return 0;
}
