/*
 * structure.c - the structural metadata store (code lists, DSDs, dataflows,
 * provision agreements) and its line-based text format (structure.h,
 * deploy/structure/README.md). It parses a text into a private staging area,
 * resolves references against what is already loaded and what the text
 * defines, checks that final artefacts do not change under the same URN, and
 * only then merges (all or nothing). It is not the observation validator (that
 * module reads the result through structure.h) and it does no I/O: the daemon,
 * the hub's structure replication and the `structure` CLI command call it with
 * bytes they read. Every artefact lives in a sorted array of items and is found
 * with bsearch; the parser is a loop over lines with no recursion, and every
 * count and length from the input is capped before it is stored, so hostile
 * text cannot crash it or make it allocate without bound.
 * Threading: none (one loop owns a structure_t).
 */
#include "structure.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"

#define ST_RULE           "structure"
#define ST_NAME_MAX       1000   /* bytes of a name, after unescaping */
#define ST_CODES_MAX      100000 /* codes per code list */
#define ST_AREAS_MAX      100000 /* areas per agreement */
#define ST_STRING_DEFAULT 1050   /* max= of a string attribute by default */
#define ST_VERSION_MAX    32
#define ST_MAX_TOKENS     16 /* per line */
#define ST_NO_SLOT        ((size_t)-1)

/* One artefact in a sorted array. `line` is its source line while staged
 * (0 once merged); `slot` is the merge decision (see classify_*). */
typedef struct {
    void *p; /* owned sdmx_codelist_t / sdmx_dsd_t / sdmx_dataflow_t /
                sdmx_agreement_t */
    uint64_t line;
    size_t slot;
} item_t;

typedef struct {
    item_t *v; /* owned */
    size_t n, cap;
} vec_t;

/* Invariant: every vec is sorted (URN order; agreements by dataflow URN then
 * provider) and holds unique keys. */
struct structure {
    vec_t cl, dsd, df, ag;
};

typedef enum { REF_DIM, REF_ATTR, REF_DF, REF_AG } ref_kind_t;

/* A reference seen while parsing, resolved once the whole text is read so
 * artefacts may be defined in any order. */
typedef struct {
    ref_kind_t kind;
    void *target; /* borrowed: the staged dsd / dataflow / agreement */
    size_t idx;   /* component index for REF_DIM / REF_ATTR */
    char *urn;    /* owned */
    uint64_t line;
} pending_t;

typedef struct {
    sdmx_code_t c;
    uint64_t line;
} code_item_t;

typedef enum { BLOCK_NONE, BLOCK_CODELIST, BLOCK_DSD } block_t;

typedef struct {
    char *word[ST_MAX_TOKENS]; /* positional tokens, borrowed from scratch */
    size_t n_word;
    char *key[ST_MAX_TOKENS]; /* key=value options */
    char *val[ST_MAX_TOKENS];
    size_t n_opt;
    char *name; /* the quoted name, NULL if none */
} line_t;

typedef struct {
    const structure_t *self; /* borrowed: what is already loaded */
    structure_t stage;       /* owned until merged */
    pending_t *pend;         /* owned */
    size_t n_pend, cap_pend;
    const char *src;
    issue_list_t *issues; /* borrowed, may be NULL */
    size_t errors;
    block_t block;
    uint64_t block_line;
    sdmx_codelist_t *cl; /* owned: the open code list */
    code_item_t *codes;  /* owned: its codes, unsorted */
    size_t n_codes, cap_codes;
    bool codes_overflow;
    sdmx_dsd_t *dsd; /* owned: the open DSD */
    char *scratch;   /* owned: token storage for one line */
    size_t scratch_cap;
} parser_t;

typedef struct {
    char *p; /* owned */
    size_t len, cap;
    int rc; /* sticky OBS_ENOMEM */
} buf_t;

/* ------------------------------------------------------------------ */
/* Freeing */

static void
code_fini(sdmx_code_t *c)
{
    free(c->id);
    free(c->name);
    free(c->parent);
}

static void
codelist_free(sdmx_codelist_t *cl)
{
    if (cl == NULL)
        return;
    for (size_t i = 0; i < cl->n_codes; i++)
        code_fini(&cl->codes[i]);
    free(cl->codes);
    free(cl->urn);
    free(cl->name);
    free(cl);
}

static void
dsd_free(sdmx_dsd_t *d)
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

static void
dataflow_free(sdmx_dataflow_t *df)
{
    if (df == NULL)
        return;
    free(df->urn);
    free(df->name);
    free(df);
}

static void
agreement_free(sdmx_agreement_t *ag)
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
    codelist_free(p);
}

static void
destroy_dsd(void *p)
{
    dsd_free(p);
}

static void
destroy_dataflow(void *p)
{
    dataflow_free(p);
}

static void
destroy_agreement(void *p)
{
    agreement_free(p);
}

static void
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

static int
vec_push(vec_t *v, void *p, uint64_t line)
{
    if (vec_reserve(v, v->n + 1) != 0)
        return OBS_ENOMEM;
    v->v[v->n++] = (item_t){.p = p, .line = line, .slot = ST_NO_SLOT};
    return 0;
}

/* Code lists, DSDs and dataflows all start with `char *urn`. */
static const char *
urn_of(const void *artefact)
{
    return *(char *const *)artefact;
}

static int
cmp_item_urn(const void *a, const void *b)
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

static item_t *
vec_find(const vec_t *v, const char *urn)
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

static int
cmp_item_ag(const void *a, const void *b)
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

static item_t *
vec_find_ag(const vec_t *v, const char *df, const char *provider)
{
    if (v->n == 0)
        return NULL;
    ag_key_t k = {df, provider};
    return bsearch(&k, v->v, v->n, sizeof(item_t), cmp_key_ag);
}

static void
vec_sort(vec_t *v, int (*cmp)(const void *, const void *))
{
    if (v->n > 1)
        qsort(v->v, v->n, sizeof(item_t), cmp);
}

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

static int
cmp_key_code(const void *key, const void *elem)
{
    const sdmx_code_t *c = elem;
    return strcmp(key, c->id);
}

/* ------------------------------------------------------------------ */
/* Lexical rules */

static bool
is_alnum(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9');
}

static bool
is_id_char(char c)
{
    return is_alnum(c) || c == '_' || c == '@' || c == '$' || c == '-';
}

/* An id: [A-Za-z0-9_@$-]+ starting with a letter or digit (codes may also
 * start with '_', as SDMX's _T, _Z, _U do), at most max characters. */
static bool
valid_id_n(const char *s, size_t n, size_t max, bool code)
{
    if (n == 0 || n > max)
        return false;
    if (!is_alnum(s[0]) && !(code && s[0] == '_'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_id_char(s[i]))
            return false;
    return true;
}

static bool
valid_id(const char *s, bool code)
{
    return valid_id_n(s, strlen(s), OBS_CODE_MAX, code);
}

static bool
valid_agency(const char *s, size_t n)
{
    if (n == 0 || n > OBS_CODE_MAX || !is_alnum(s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '_' && s[i] != '-' && s[i] != '.')
            return false;
    return true;
}

static bool
valid_version(const char *s, size_t n)
{
    if (n == 0 || n > ST_VERSION_MAX || s[0] < '0' || s[0] > '9')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '+' && s[i] != '-')
            return false;
    return true;
}

/* AGENCY:ID(VERSION), at most OBS_DATAFLOW_MAX characters. */
static bool
valid_urn(const char *s)
{
    size_t n = strlen(s);
    if (n < 6 || n > OBS_DATAFLOW_MAX || s[n - 1] != ')')
        return false;
    const char *colon = strchr(s, ':');
    const char *open = strchr(s, '(');
    if (colon == NULL || open == NULL || open < colon)
        return false;
    size_t id_len = (size_t)(open - colon - 1);
    return valid_agency(s, (size_t)(colon - s)) &&
           valid_id_n(colon + 1, id_len, OBS_CODE_MAX, false) &&
           valid_version(open + 1, (size_t)(s + n - 1 - open - 1));
}

static size_t
utf8_seq_len(unsigned char c, uint32_t *cp, uint32_t *min)
{
    if ((c & 0xE0) == 0xC0) {
        *cp = c & 0x1Fu;
        *min = 0x80;
        return 2;
    }
    if ((c & 0xF0) == 0xE0) {
        *cp = c & 0x0Fu;
        *min = 0x800;
        return 3;
    }
    if ((c & 0xF8) == 0xF0) {
        *cp = c & 0x07u;
        *min = 0x10000;
        return 4;
    }
    return 0;
}

/* Names travel in protobuf strings: valid UTF-8 without control chars. */
static bool
valid_name(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        uint32_t cp = 0, min = 0;
        size_t k = utf8_seq_len(c, &cp, &min);
        if (k == 0 || k > n - i)
            return false;
        for (size_t j = 1; j < k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + j] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* Errors */

__attribute__((format(printf, 3, 4))) static int
perr(parser_t *p, uint64_t line, const char *fmt, ...)
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
/* Tokenizer: one line into words, key=value options and one quoted name.
 * Tokens are copied, NUL-terminated and unescaped, into p->scratch. */

static int
scratch_reserve(parser_t *p, size_t want)
{
    if (want <= p->scratch_cap)
        return 0;
    char *n = realloc(p->scratch, want);
    if (n == NULL)
        return OBS_ENOMEM;
    p->scratch = n;
    p->scratch_cap = want;
    return 0;
}

static int
read_quoted(parser_t *p, uint64_t ln, const char *s, size_t n, size_t *ip,
            char **outp)
{
    char *out = *outp, *start = out;
    size_t i = *ip + 1;
    for (;;) {
        if (i >= n)
            return perr(p, ln, "unterminated quoted name");
        char c = s[i++];
        if (c == '"')
            break;
        if (c == '\\') {
            if (i >= n)
                return perr(p, ln, "unterminated quoted name");
            c = s[i++];
            if (c != '"' && c != '\\')
                return perr(p, ln, "bad escape in name (only \\\" and \\\\)");
        }
        *out++ = c;
    }
    if (i < n && s[i] != ' ' && s[i] != '\t')
        return perr(p, ln, "no blank after quoted name");
    size_t len = (size_t)(out - start);
    *out++ = '\0';
    if (len > ST_NAME_MAX)
        return perr(p, ln, "name longer than %d bytes", ST_NAME_MAX);
    if (!valid_name((const unsigned char *)start, len))
        return perr(p, ln, "name is not valid UTF-8 text");
    *ip = i;
    *outp = out;
    return 0;
}

static int
add_word(parser_t *p, uint64_t ln, line_t *lt, char *tok)
{
    char *eq = strchr(tok, '=');
    if (eq == NULL) {
        lt->word[lt->n_word++] = tok;
        return 0;
    }
    if (eq == tok)
        return perr(p, ln, "option without a key");
    *eq = '\0';
    lt->key[lt->n_opt] = tok;
    lt->val[lt->n_opt++] = eq + 1;
    return 0;
}

static int
tokenize(parser_t *p, uint64_t ln, const char *s, size_t n, line_t *lt)
{
    memset(lt, 0, sizeof(*lt));
    if (scratch_reserve(p, n + ST_MAX_TOKENS + 1) != 0 || p->scratch == NULL)
        return OBS_ENOMEM;
    char *out = p->scratch;
    size_t i = 0, ntok = 0;
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i >= n || s[i] == '#')
            return 0;
        if (ntok++ == ST_MAX_TOKENS)
            return perr(p, ln, "more than %d tokens", ST_MAX_TOKENS);
        char *tok = out;
        if (s[i] == '"') {
            if (lt->name != NULL)
                return perr(p, ln, "more than one quoted name");
            int rc = read_quoted(p, ln, s, n, &i, &out);
            if (rc != 0)
                return rc;
            lt->name = tok;
            continue;
        }
        while (i < n && s[i] != ' ' && s[i] != '\t')
            *out++ = s[i++];
        *out++ = '\0';
        int rc = add_word(p, ln, lt, tok);
        if (rc != 0)
            return rc;
    }
}

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
            return perr(p, ln, "%s: unknown option %.64s=", lt->word[0],
                        lt->key[o]);
        if (vals[i] != NULL)
            return perr(p, ln, "%s: option %s= given twice", lt->word[0],
                        allowed[i]);
        vals[i] = lt->val[o];
    }
    return 0;
}

static int
expect_words(parser_t *p, uint64_t ln, const line_t *lt, size_t n)
{
    if (lt->n_word != n)
        return perr(p, ln, "%s: expected %zu word(s), got %zu", lt->word[0], n,
                    lt->n_word);
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
        rc = perr(p, ln, "codelist: takes no options");
    if (rc == 0 && !valid_urn(lt->word[1]))
        rc = perr(p, ln, "codelist: bad URN '%.170s' (want AGENCY:ID(VERSION))",
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
    if (!valid_id(lt->word[1], true))
        return perr(p, ln,
                    "code '%.80s': bad id (want [A-Za-z0-9_@$-], at "
                    "most %d characters)",
                    lt->word[1], OBS_CODE_MAX);
    if (*par != NULL && !valid_id(*par, true))
        return perr(p, ln, "code %s: bad parent '%.80s'", lt->word[1], *par);
    if (p->n_codes >= ST_CODES_MAX && !p->codes_overflow) {
        p->codes_overflow = true;
        return perr(p, ln, "codelist: more than %d codes", ST_CODES_MAX);
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
            perr(p, lines[i], "code %s: unknown parent %s", c->id, c->parent);
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
            perr(p, lines[j], "code %s: parent cycle", cl->codes[j].id);
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
            perr(p, p->codes[i].line, "code %s: duplicate (first at line %llu)",
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
            rc = vec_push(&p->stage.cl, p->cl, p->block_line);
        if (rc == 0)
            p->cl = NULL;
    }
    for (size_t i = 0; i < p->n_codes; i++)
        code_fini(&p->codes[i].c);
    p->n_codes = 0;
    p->codes_overflow = false;
    codelist_free(p->cl);
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
        rc = perr(p, ln, "dsd: takes no options");
    if (rc == 0 && !valid_urn(lt->word[1]))
        rc = perr(p, ln, "dsd: bad URN '%.170s' (want AGENCY:ID(VERSION))",
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
    if (!valid_id(id, false))
        return perr(p, ln,
                    "%s '%.80s': bad id (want [A-Za-z0-9_@$-], at most "
                    "%d characters)",
                    kw, id, OBS_CODE_MAX);
    if (strcmp(id, "TIME_PERIOD") == 0 || strcmp(id, "OBS_VALUE") == 0)
        return perr(p, ln, "%s %s: implicit in every DSD, do not list it", kw,
                    id);
    const sdmx_dsd_t *d = p->dsd;
    if (d != NULL &&
        (structure_dim_index(d, id) >= 0 || structure_find_attr(d, id)))
        return perr(p, ln, "%s %s: duplicate component", kw, id);
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
        return perr(p, ln, "dimension %s: codelist= is required", lt->word[1]);
    sdmx_dsd_t *d = p->dsd;
    if (d != NULL && d->n_dims >= OBS_MAX_DIMS)
        return perr(p, ln, "dimension %s: more than %d dimensions", lt->word[1],
                    OBS_MAX_DIMS);
    if (d == NULL)
        return 0;
    sdmx_component_t *c = &d->dims[d->n_dims];
    memset(c, 0, sizeof(*c));
    if (dup_str(lt->word[1], &c->id) != 0)
        return OBS_ENOMEM;
    d->n_dims++;
    return add_pending(p, REF_DIM, d, d->n_dims - 1, cl, ln);
}

static const char *const type_names[] = {"coded",   "string", "decimal",
                                         "integer", "date",   "period"};
static const char *const attach_names[] = {"obs", "series", "dataset"};

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
    int t = o[OPT_TYPE] ? lookup_name(type_names, 6, o[OPT_TYPE])
                        : (o[OPT_CODELIST] ? SDMX_TYPE_CODED : -1);
    int a = o[OPT_ATTACH] ? lookup_name(attach_names, 3, o[OPT_ATTACH]) : 0;
    const char *m = o[OPT_MANDATORY] ? o[OPT_MANDATORY] : "no";
    if (t < 0)
        return perr(p, ln,
                    "attribute %s: needs codelist= or a known type=", id);
    if ((t == SDMX_TYPE_CODED) != (o[OPT_CODELIST] != NULL))
        return perr(p, ln, "attribute %s: codelist= goes with type=coded only",
                    id);
    if (o[OPT_MAX] != NULL && t != SDMX_TYPE_STRING)
        return perr(p, ln, "attribute %s: max= is for type=string only", id);
    c->max_len = t == SDMX_TYPE_STRING ? ST_STRING_DEFAULT : 0;
    if (o[OPT_MAX] != NULL && !parse_max(o[OPT_MAX], &c->max_len))
        return perr(p, ln, "attribute %s: max= must be 1..%d", id,
                    OBS_TEXT_MAX);
    if (a < 0)
        return perr(p, ln,
                    "attribute %s: attach= must be obs, series or "
                    "dataset",
                    id);
    if (strcmp(m, "yes") != 0 && strcmp(m, "no") != 0)
        return perr(p, ln, "attribute %s: mandatory= must be yes or no", id);
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
        return perr(p, ln, "attribute %s: more than %d attributes", lt->word[1],
                    OBS_MAX_ATTRS);
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
        perr(p, p->block_line, "dsd %s: no dimensions", d->urn);
    index_dsd(d);
    int rc = vec_push(&p->stage.dsd, d, p->block_line);
    if (rc != 0)
        dsd_free(d); /* its pending refs are never resolved: rc aborts */
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
    if (!valid_urn(lt->word[1]))
        return perr(p, ln,
                    "dataflow: bad URN '%.170s' (want "
                    "AGENCY:ID(VERSION))",
                    lt->word[1]);
    if (o[0] == NULL)
        return perr(p, ln, "dataflow %s: dsd= is required", lt->word[1]);
    const char *sem = o[1] ? o[1] : "reject";
    if (strcmp(sem, "reject") != 0 && strcmp(sem, "warn") != 0)
        return perr(p, ln, "dataflow %s: semantic= must be reject or warn",
                    lt->word[1]);
    sdmx_dataflow_t *df = calloc(1, sizeof(*df));
    if (df == NULL)
        return OBS_ENOMEM;
    df->semantic =
        strcmp(sem, "warn") == 0 ? SDMX_POLICY_WARN : SDMX_POLICY_REJECT;
    if (dup_str(lt->word[1], &df->urn) != 0 ||
        dup_str(lt->name, &df->name) != 0 ||
        vec_push(&p->stage.df, df, ln) != 0) {
        dataflow_free(df);
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
        return perr(p, ln, "agreement: more than %d areas", ST_AREAS_MAX);
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
        if (!(star && n == 1) && !valid_id_n(q, len, OBS_CODE_MAX, true))
            return perr(p, ln,
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
            return perr(p, ln, "agreement: area %s listed twice", ag->areas[i]);
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
        return perr(p, ln, "agreement: takes no name");
    if (o[0] == NULL || o[1] == NULL || o[2] == NULL)
        return perr(p, ln,
                    "agreement: provider=, dataflow= and areas= are "
                    "required");
    if (!valid_id_n(o[0], strlen(o[0]), OBS_ID_MAX, false))
        return perr(p, ln, "agreement: bad provider '%.80s'", o[0]);
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
        rc = vec_push(&p->stage.ag, ag, ln) != 0 ? OBS_ENOMEM : 0;
    if (rc != 0) {
        agreement_free(ag);
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
        perr(p, p->block_line, "%s: missing end (line %llu is outside it)",
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
        return perr(p, ln, "line does not start with a keyword");
    }
    const char *kw = lt->word[0];
    if (strcmp(kw, "codelist") == 0 || strcmp(kw, "dsd") == 0 ||
        strcmp(kw, "dataflow") == 0 || strcmp(kw, "agreement") == 0)
        return top_level(p, ln, lt, kw);
    if (strcmp(kw, "end") == 0) {
        if (p->block == BLOCK_NONE)
            return perr(p, ln, "end without codelist or dsd");
        if (lt->n_word != 1 || lt->n_opt != 0 || lt->name != NULL)
            perr(p, ln, "end: takes nothing after it");
        return close_block(p);
    }
    if (strcmp(kw, "code") == 0 && p->block == BLOCK_CODELIST)
        return add_code(p, ln, lt);
    if (strcmp(kw, "dimension") == 0 && p->block == BLOCK_DSD)
        return add_dimension(p, ln, lt);
    if (strcmp(kw, "attribute") == 0 && p->block == BLOCK_DSD)
        return add_attribute(p, ln, lt);
    return perr(p, ln, "unexpected '%.40s' %s", kw,
                p->block == BLOCK_NONE ? "outside a block" : "in this block");
}

/* A codelist or dsd header that did not even tokenize still opens its
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

static int
parse_text(parser_t *p, const char *text, size_t len)
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
            perr(p, ln, "NUL byte in text");
            continue;
        }
        line_t lt;
        int rc = tokenize(p, ln, s, n, &lt);
        if (rc == 0)
            rc = dispatch(p, ln, &lt);
        else if (rc == OBS_ESTRUCT)
            open_broken_block(p, ln, &lt);
        if (rc == OBS_ENOMEM)
            return rc;
    }
    if (p->block != BLOCK_NONE) {
        perr(p, p->block_line, "%s: missing end before end of text",
             p->block == BLOCK_CODELIST ? "codelist" : "dsd");
        return close_block(p);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Resolution: sort the staged artefacts, report duplicates, point every
 * reference at a loaded artefact (preferred, so identical re-loads can be
 * dropped) or a staged one. */

static void
report_dups(parser_t *p, const vec_t *v, const char *what)
{
    for (size_t i = 1; i < v->n; i++)
        if (strcmp(urn_of(v->v[i - 1].p), urn_of(v->v[i].p)) == 0)
            perr(p, v->v[i].line, "%s %s: defined twice (first at line %llu)",
                 what, urn_of(v->v[i].p), (unsigned long long)v->v[i - 1].line);
}

static const void *
lookup(const parser_t *p, size_t which, const char *urn)
{
    const vec_t *mine[] = {&p->self->cl, &p->self->dsd, &p->self->df};
    const vec_t *staged[] = {&p->stage.cl, &p->stage.dsd, &p->stage.df};
    item_t *it = vec_find(mine[which], urn);
    if (it == NULL)
        it = vec_find(staged[which], urn);
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
        perr(p, pd->line, "%s %s: unknown codelist %.170s",
             pd->kind == REF_DIM ? "dimension" : "attribute", c->id, pd->urn);
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
            perr(p, ln, "agreement provider=%s: area %s not in %s",
                 ag->provider, ag->areas[k], d->dims[i].codelist->urn);
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
            perr(p, pd->line, "dataflow %s: unknown dsd %.170s", df->urn,
                 pd->urn);
    } else {
        sdmx_agreement_t *ag = pd->target;
        ag->dataflow = lookup(p, 2, pd->urn);
        if (ag->dataflow == NULL)
            perr(p, pd->line, "agreement provider=%s: unknown dataflow %.170s",
                 ag->provider, pd->urn);
        else
            check_areas(p, ag, pd->line);
    }
}

static void
resolve(parser_t *p)
{
    vec_sort(&p->stage.cl, cmp_item_urn);
    vec_sort(&p->stage.dsd, cmp_item_urn);
    vec_sort(&p->stage.df, cmp_item_urn);
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
    vec_sort(ag, cmp_item_ag);
    for (size_t i = 1; i < ag->n; i++) {
        const sdmx_agreement_t *a = ag->v[i - 1].p, *b = ag->v[i].p;
        if (a->dataflow && b->dataflow && a->dataflow == b->dataflow &&
            strcmp(a->provider, b->provider) == 0)
            perr(p, ag->v[i].line,
                 "agreement provider=%s dataflow=%s: "
                 "defined twice (first at line %llu)",
                 b->provider, b->dataflow->urn,
                 (unsigned long long)ag->v[i - 1].line);
    }
}

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

static void
emit_codelist(buf_t *b, const void *p)
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
        buf_str(b, type_names[c->type]);
    }
    if (c->type == SDMX_TYPE_STRING) {
        (void)snprintf(num, sizeof(num), " max=%zu",
                       c->max_len ? c->max_len : (size_t)OBS_TEXT_MAX);
        buf_str(b, num);
    }
    buf_str(b, " attach=");
    buf_str(b, attach_names[c->attach]);
    buf_str(b, c->mandatory ? " mandatory=yes\n" : " mandatory=no\n");
}

static void
emit_dsd(buf_t *b, const void *p)
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

static void
emit_dataflow(buf_t *b, const void *p)
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

static void
emit_agreement(buf_t *b, const void *p)
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

typedef void (*emit_fn)(buf_t *, const void *);

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
    emit_vec(&b, &self->cl, emit_codelist, true);
    emit_vec(&b, &self->dsd, emit_dsd, true);
    emit_vec(&b, &self->df, emit_dataflow, false);
    if (self->df.n > 0)
        buf_str(&b, "\n");
    emit_vec(&b, &self->ag, emit_agreement, false);
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
static int
same_text(emit_fn emit, const void *a, const void *b)
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

/* ------------------------------------------------------------------ */
/* Merge. slot: ST_NO_SLOT = add; SIZE_MAX-1 = identical, drop; otherwise
 * the index in self it replaces (agreements only). */

#define ST_DROP ((size_t)-2)

static int
classify(parser_t *p, vec_t *staged, const vec_t *mine, emit_fn emit,
         const char *what)
{
    for (size_t i = 0; i < staged->n; i++) {
        item_t *it = &staged->v[i];
        item_t *old = vec_find(mine, urn_of(it->p));
        if (old == NULL)
            continue;
        int same = same_text(emit, old->p, it->p);
        if (same < 0)
            return same;
        if (same)
            it->slot = ST_DROP;
        else
            perr(p, it->line,
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
        item_t *old =
            vec_find_ag(&p->self->ag, ag->dataflow->urn, ag->provider);
        if (old == NULL)
            continue;
        int same = same_text(emit_agreement, old->p, ag);
        if (same < 0)
            return same;
        /* Agreements are not versioned: a new one replaces the old. */
        it->slot = same ? ST_DROP : (size_t)(old - p->self->ag.v);
    }
    return 0;
}

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

static int
merge(parser_t *p, structure_t *self, size_t *loaded)
{
    vec_t *mine[] = {&self->cl, &self->dsd, &self->df, &self->ag};
    vec_t *staged[] = {&p->stage.cl, &p->stage.dsd, &p->stage.df, &p->stage.ag};
    void (*destroy[])(void *) = {destroy_codelist, destroy_dsd,
                                 destroy_dataflow, destroy_agreement};
    for (size_t k = 0; k < 4; k++)
        if (vec_reserve(mine[k], mine[k]->n + staged[k]->n) != 0)
            return OBS_ENOMEM;
    size_t n = 0;
    for (size_t k = 0; k < 4; k++) {
        n += apply(mine[k], staged[k], destroy[k]);
        vec_sort(mine[k], k == 3 ? cmp_item_ag : cmp_item_urn);
    }
    if (loaded != NULL)
        *loaded = n;
    return 0;
}

static void
parser_fini(parser_t *p)
{
    for (size_t i = 0; i < p->n_pend; i++)
        free(p->pend[i].urn);
    free(p->pend);
    for (size_t i = 0; i < p->n_codes; i++)
        code_fini(&p->codes[i].c);
    free(p->codes);
    codelist_free(p->cl);
    dsd_free(p->dsd);
    free(p->scratch);
    structure_fini(&p->stage);
}

static int
check_and_merge(parser_t *p, structure_t *self, size_t *loaded)
{
    resolve(p);
    if (p->errors != 0)
        return OBS_ESTRUCT;
    int rc = classify(p, &p->stage.cl, &self->cl, emit_codelist, "codelist");
    if (rc == 0)
        rc = classify(p, &p->stage.dsd, &self->dsd, emit_dsd, "dsd");
    if (rc == 0)
        rc = classify(p, &p->stage.df, &self->df, emit_dataflow, "dataflow");
    if (rc == 0)
        rc = classify_agreements(p);
    if (rc == 0 && p->errors != 0)
        rc = OBS_ESTRUCT;
    return rc != 0 ? rc : merge(p, self, loaded);
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
    int rc = parse_text(&p, text ? text : "", len);
    if (rc == 0)
        rc = check_and_merge(&p, self, loaded);
    parser_fini(&p);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Lookups */

const sdmx_codelist_t *
structure_find_codelist(const structure_t *self, const char *urn)
{
    item_t *it = self ? vec_find(&self->cl, urn) : NULL;
    return it ? it->p : NULL;
}

const sdmx_dsd_t *
structure_find_dsd(const structure_t *self, const char *urn)
{
    item_t *it = self ? vec_find(&self->dsd, urn) : NULL;
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
version_cmp(const char *a, const char *b)
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
        if (best == NULL || version_cmp(df->urn + n, best->urn + n) > 0)
            best = df;
    }
    return best;
}

static const sdmx_dataflow_t *
find_df_plain(const structure_t *self, const char *ref)
{
    if (strchr(ref, '(') != NULL) {
        item_t *it = vec_find(&self->df, ref);
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
    item_t *it = vec_find_ag(&self->ag, df->urn, provider);
    if (it == NULL)
        return false;
    const sdmx_agreement_t *ag = it->p;
    if (ag->n_areas == 1 && strcmp(ag->areas[0], "*") == 0)
        return true;
    return bsearch(area, ag->areas, ag->n_areas, sizeof(char *), cmp_key_str) !=
           NULL;
}
