/*
 * structure_int.h - what the structure*.c files share and nothing else may
 * see: the registry's sorted arrays, the parser's state, the text buffer,
 * and the functions one file calls in another. Private to the structure
 * module: include it only from structure*.c (everything else goes through
 * structure.h).
 *
 * Who defines what (each file's opening comment says more):
 *   structure.c        the registry: arrays, freeing, lookups, the merge
 *   structure_lex.c    one line into tokens; the lexical rules
 *   structure_parse.c  the grammar: lines into staged artefacts + references
 *   structure_load.c   structure_load_text: resolve, check, then merge
 *   structure_text.c   structure_to_text: the canonical text
 * Errors: OBS_ENOMEM and OBS_ESTRUCT as structure.h; structure_perr counts
 * every error of a load and reports it as an issue. Nothing here logs or
 * does I/O. Threading: none (one loop owns a structure_t).
 */
#ifndef STRUCTURE_INT_H
#define STRUCTURE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "issue.h"
#include "structure.h"

#define ST_MAX_TOKENS 16           /* per line */
#define ST_NO_SLOT    ((size_t)-1) /* slot: add (see item_t) */
#define ST_DROP       ((size_t)-2) /* slot: identical, drop */

/* One artefact in a sorted array. `line` is its source line while staged
 * (0 once merged); `slot` is the merge decision (see classify_*): ST_NO_SLOT
 * = add; ST_DROP = identical to a loaded one, drop; otherwise the index in
 * the registry it replaces (agreements only). */
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

/* Writes one artefact's canonical text to a buffer. */
typedef void (*emit_fn)(buf_t *, const void *);

/* Code lists, DSDs and dataflows all start with `char *urn`. */
static inline const char *
urn_of(const void *artefact)
{
    return *(char *const *)artefact;
}

/* ------------------------------------------------------------ structure.c */

/** Frees what the artefact owns (code: its strings) or the artefact itself
 * and everything in it. NULL-safe except structure_code_fini. */
void structure_code_fini(sdmx_code_t *c);
void structure_codelist_free(sdmx_codelist_t *cl);
void structure_dsd_free(sdmx_dsd_t *d);
void structure_dataflow_free(sdmx_dataflow_t *df);
void structure_agreement_free(sdmx_agreement_t *ag);
/** Frees every artefact of s and empties it (s itself is not freed). */
void structure_fini(structure_t *s);

/** Appends p (the vec takes it) with its source line, slot ST_NO_SLOT.
 * OBS_ENOMEM (then p is still the caller's). */
int structure_vec_push(vec_t *v, void *p, uint64_t line);
/** The item with this URN in a sorted vec, or NULL. Borrowed. */
item_t *structure_vec_find(const vec_t *v, const char *urn);
/** The agreement of (dataflow URN, provider) in a sorted vec, or NULL. */
item_t *structure_vec_find_ag(const vec_t *v, const char *df,
                              const char *provider);
/** qsort with one of the two orders below. */
void structure_vec_sort(vec_t *v, int (*cmp)(const void *, const void *));
/** item_t orders: by URN, or agreements by (dataflow URN, provider); then
 * by source line, so a duplicate sorts after the first definition. */
int structure_cmp_item_urn(const void *a, const void *b);
int structure_cmp_item_ag(const void *a, const void *b);

/** Moves every artefact staged in stage into self by its slot (add, drop,
 * replace), leaving stage empty, and re-sorts self. *loaded (may be NULL)
 * gets the number added or replaced. OBS_ENOMEM before anything moved. */
int structure_merge(structure_t *self, structure_t *stage, size_t *loaded);

/* -------------------------------------------------------- structure_lex.c */

/** An id: [A-Za-z0-9_@$-]+ starting with a letter or digit (a code may also
 * start with '_'), at most max characters; s need not be NUL-terminated. */
bool structure_valid_id_n(const char *s, size_t n, size_t max, bool code);
/** structure_valid_id_n of a NUL-terminated s, up to OBS_CODE_MAX. */
bool structure_valid_id(const char *s, bool code);
/** AGENCY:ID(VERSION), at most OBS_DATAFLOW_MAX characters. */
bool structure_valid_urn(const char *s);
/** Splits line ln (s, n bytes, no newline) into *lt; the tokens live in
 * p->scratch until the next call. OBS_ESTRUCT (reported), OBS_ENOMEM. */
int structure_tokenize(parser_t *p, uint64_t ln, const char *s, size_t n,
                       line_t *lt);

/* ------------------------------------------------------ structure_parse.c */

/** Reports an error at line (source name and line prefixed) as an issue
 * and counts it in p->errors. Returns OBS_ESTRUCT. */
int structure_perr(parser_t *p, uint64_t line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Reads the whole text into p->stage and p->pend, reporting every error.
 * Returns 0 (errors or not: see p->errors) or OBS_ENOMEM. */
int structure_parse_text(parser_t *p, const char *text, size_t len);

/* ------------------------------------------------------- structure_text.c */

/** The format's words, indexed by sdmx_type_t and sdmx_attach_t. */
extern const char *const structure_type_names[6];
extern const char *const structure_attach_names[3];
/** One artefact's canonical text (emit_fn's). */
void structure_emit_codelist(buf_t *b, const void *p);
void structure_emit_dsd(buf_t *b, const void *p);
void structure_emit_dataflow(buf_t *b, const void *p);
void structure_emit_agreement(buf_t *b, const void *p);
/** 1 when a and b have the same canonical text by emit, 0 when not,
 * OBS_ENOMEM. */
int structure_same_text(emit_fn emit, const void *a, const void *b);

#endif
