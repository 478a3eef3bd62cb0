/*
 * sdmx_rows.c - SDMX-CSV header and row mapping (see sdmx_rows.h): turns the
 * cells the CLI lexed from an SDMX-CSV 1.0 / 2.0 / 2.1 file into observations
 * (or wildcard delete requests) and runs the validator on each. It does not
 * read files or split lines (the CLI's lexer does), does not store anything
 * and never logs: every problem becomes an issue naming the line, the column
 * and the rule. Within one file it remembers the canonical key of each
 * mapped row, so a key reported twice is rejected with the first line cited
 * (DOMAIN.md rule 6) instead of the last write silently winning. Called by
 * the daemon's import handler, one sdmx_csv_t per import.
 */
#include "sdmx_rows.h"

#include <stdlib.h>
#include <string.h>

#include "key_set.h"
#include "obs_err.h"

#define MAX_COLUMNS 512 /* reserved + OBS_MAX_DIMS + OBS_MAX_ATTRS + custom */

typedef enum {
    COL_DATAFLOW,     /* v1 DATAFLOW */
    COL_STRUCTURE,    /* v2 STRUCTURE */
    COL_STRUCTURE_ID, /* v2 STRUCTURE_ID */
    COL_ACTION,       /* ACTION */
    COL_INFO,         /* STRUCTURE_NAME, SERIES_KEY, OBS_KEY: not used */
    COL_TIME,         /* TIME_PERIOD */
    COL_VALUE,        /* OBS_VALUE */
    COL_COMPONENT,    /* a dimension or attribute of some dataflow */
    COL_IGNORED,      /* a declared custom column */
} col_role_t;

typedef struct {
    char *name; /* owned, label cut */
    col_role_t role;
} column_t;

/* The columns of one dataflow, resolved on its first row. */
typedef struct {
    const sdmx_dataflow_t *df;     /* borrowed */
    int dim_col[OBS_MAX_DIMS];     /* column of each dimension, -1 = none */
    bool *own;                     /* owned, per column: df's component */
    const sdmx_component_t **attr; /* owned, per column: df's attribute */
    size_t n_attr_cols;
    int attr_cols[OBS_MAX_ATTRS]; /* df's attribute columns, in id order */
} df_cols_t;

typedef struct {
    char code[OBS_MAX_DIMS][OBS_CODE_MAX + 1];
    char time[OBS_PERIOD_MAX + 1];
    bool wildcard; /* some dimension or the time is empty */
} row_ident_t;

/* What a mapped row's obs points into besides the cells and the
 * dataflow's URN (sdmx_row_t.obs is a view): no allocation per row. */
typedef struct {
    row_ident_t id; /* dimension codes and time, trimmed */
    char *dims[OBS_MAX_DIMS];
    obs_attr_t attrs[OBS_MAX_ATTRS];
    char codes[OBS_MAX_ATTRS][OBS_CODE_MAX + 1]; /* coded values, trimmed */
    char empty[1];
    validate_texts_t texts; /* normalised decimal texts */
} row_view_t;

struct sdmx_csv {
    validate_ctx_t vctx;
    validate_memo_t memo; /* vctx.memo: the structure is fixed meanwhile */
    int version;          /* 1 or 2 */
    size_t n_cols;
    column_t *cols; /* owned */
    int ref_col, structure_col, action_col, time_col, value_col;
    size_t n_dfs, cap_dfs;
    df_cols_t *dfs; /* owned */
    key_set_t keys; /* of the rows mapped so far (rule 6) */
    row_view_t view;
};

/* ---------------------------------------------------------------- cells */

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Copies cell trimmed (and cut before ": " when cut_label) into out; false
 * when it does not fit. */
static bool
cell_copy(const char *cell, bool cut_label, char *out, size_t cap)
{
    const char *s = cell ? cell : "";
    while (is_space(*s))
        s++;
    size_t n = 0; /* one pass: cells are short and this runs per cell */
    while (s[n] != '\0' && !(cut_label && s[n] == ':' && s[n + 1] == ' '))
        n++;
    while (n > 0 && is_space(s[n - 1]))
        n--;
    if (n >= cap)
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

static bool
cell_blank(const char *cell)
{
    for (const char *s = cell ? cell : ""; *s; s++)
        if (!is_space(*s))
            return false;
    return true;
}

/* A printable copy of untrusted text for messages. */
static void
printable(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (char)((s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?');
    out[i] = '\0';
}

/* --------------------------------------------------------------- header */

/* Header cell -> owned column id: BOM skipped, trimmed, "ID: Name" and
 * "ID[...]" cut to ID. NULL on OOM. */
static char *
header_id(const char *cell, bool first)
{
    const char *s = cell ? cell : "";
    if (first && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
        s += 3;
    while (is_space(*s))
        s++;
    size_t n = strcspn(s, ":[");
    while (n > 0 && is_space(s[n - 1]))
        n--;
    char *id = malloc(n + 1);
    if (id != NULL) {
        memcpy(id, s, n);
        id[n] = '\0';
    }
    return id;
}

static bool
is_component_anywhere(const structure_t *st, const char *id)
{
    size_t n = structure_dataflow_count(st);
    for (size_t i = 0; i < n; i++) {
        const sdmx_dataflow_t *df = structure_dataflow_at(st, i);
        if (df == NULL || df->dsd == NULL)
            continue;
        if (structure_dim_index(df->dsd, id) >= 0 ||
            structure_find_attr(df->dsd, id) != NULL)
            return true;
    }
    return false;
}

static bool
is_ignored(const sdmx_csv_opts_t *opts, const char *id)
{
    for (size_t i = 0; i < opts->n_ignore; i++)
        if (opts->ignore_columns[i] != NULL &&
            strcmp(opts->ignore_columns[i], id) == 0)
            return true;
    return false;
}

/* Role of a reserved column name for this version, or -1. */
static int
reserved_role(int version, const char *id)
{
    if (strcmp(id, "ACTION") == 0)
        return COL_ACTION;
    if (strcmp(id, "TIME_PERIOD") == 0)
        return COL_TIME;
    if (strcmp(id, "OBS_VALUE") == 0)
        return COL_VALUE;
    if (version != 2)
        return -1;
    if (strcmp(id, "STRUCTURE_ID") == 0)
        return COL_STRUCTURE_ID;
    if (strcmp(id, "STRUCTURE_NAME") == 0 || strcmp(id, "SERIES_KEY") == 0 ||
        strcmp(id, "OBS_KEY") == 0)
        return COL_INFO;
    return -1;
}

static void
note_role(sdmx_csv_t *m, size_t i, col_role_t role)
{
    m->cols[i].role = role;
    if (role == COL_DATAFLOW || role == COL_STRUCTURE_ID)
        m->ref_col = (int)i;
    else if (role == COL_STRUCTURE)
        m->structure_col = (int)i;
    else if (role == COL_ACTION)
        m->action_col = (int)i;
    else if (role == COL_TIME)
        m->time_col = (int)i;
    else if (role == COL_VALUE)
        m->value_col = (int)i;
}

/* Gives column i (i > 0) its role; false with an issue when unknown. */
static bool
classify_column(sdmx_csv_t *m, const sdmx_csv_opts_t *opts, size_t i,
                uint64_t line, issue_list_t *issues)
{
    const char *id = m->cols[i].name;
    char shown[80];
    int role = reserved_role(m->version, id);
    if (role < 0 && is_ignored(opts, id))
        role = COL_IGNORED;
    if (role < 0 && is_component_anywhere(opts->vctx.st, id))
        role = COL_COMPONENT;
    if (role >= 0) {
        note_role(m, i, (col_role_t)role);
        return true;
    }
    printable(id, shown, sizeof(shown));
    issue_add(issues, line, shown, "R1-component", false,
              "column \"%s\" is not a component of any known dataflow "
              "(declare it as an ignored column if it is custom)",
              shown);
    return false;
}

static bool
check_first_column(sdmx_csv_t *m, uint64_t line, issue_list_t *issues)
{
    const char *id = m->cols[0].name;
    char shown[80];
    if (strcmp(id, "DATAFLOW") == 0) {
        m->version = 1;
        note_role(m, 0, COL_DATAFLOW);
        return true;
    }
    if (strcmp(id, "STRUCTURE") == 0) {
        m->version = 2;
        note_role(m, 0, COL_STRUCTURE);
        return true;
    }
    printable(id, shown, sizeof(shown));
    issue_add(issues, line, shown, "R0-header", false,
              "first column is \"%s\"; SDMX-CSV needs DATAFLOW (1.0) or "
              "STRUCTURE (2.x) first",
              shown);
    return false;
}

static bool
check_duplicates(const sdmx_csv_t *m, uint64_t line, issue_list_t *issues)
{
    bool ok = true;
    char shown[80];
    for (size_t i = 1; i < m->n_cols; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->cols[i].name, m->cols[j].name) == 0) {
                printable(m->cols[i].name, shown, sizeof(shown));
                issue_add(issues, line, shown, "R0-header", false,
                          "column \"%s\" appears twice (columns %zu and %zu)",
                          shown, j + 1, i + 1);
                ok = false;
                break;
            }
    return ok;
}

static int
read_header(sdmx_csv_t *m, const sdmx_csv_opts_t *opts,
            const char *const *header, size_t n, uint64_t line,
            issue_list_t *issues)
{
    m->cols = calloc(n, sizeof(*m->cols));
    if (m->cols == NULL)
        return OBS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if ((m->cols[i].name = header_id(header[i], i == 0)) == NULL)
            return OBS_ENOMEM;
        m->n_cols = i + 1; /* the names sdmx_csv_close frees */
    }
    if (!check_first_column(m, line, issues))
        return OBS_EFORMAT;
    bool ok = check_duplicates(m, line, issues);
    for (size_t i = 1; i < n; i++)
        ok = classify_column(m, opts, i, line, issues) && ok;
    if (m->ref_col < 0) {
        issue_add(issues, line, "STRUCTURE_ID", "R0-header", false,
                  "SDMX-CSV 2.x header has no STRUCTURE_ID column");
        ok = false;
    }
    return ok ? 0 : OBS_EFORMAT;
}

int
sdmx_csv_open(const sdmx_csv_opts_t *opts, const char *const *header, size_t n,
              uint64_t header_line, sdmx_csv_t **out, issue_list_t *issues)
{
    *out = NULL;
    if (opts == NULL || opts->vctx.st == NULL || (header == NULL && n > 0))
        return OBS_EINVAL;
    if (n == 0 || n > MAX_COLUMNS) {
        issue_add(issues, header_line, "", "R0-header", false,
                  "header has %zu columns; SDMX-CSV needs 1 to %d", n,
                  MAX_COLUMNS);
        return OBS_EFORMAT;
    }
    sdmx_csv_t *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return OBS_ENOMEM;
    m->vctx = opts->vctx;
    m->vctx.memo = &m->memo;
    m->vctx.texts = &m->view.texts;
    m->ref_col = m->structure_col = m->action_col = -1;
    m->time_col = m->value_col = -1;
    int rc = read_header(m, opts, header, n, header_line, issues);
    if (rc != 0) {
        sdmx_csv_close(&m);
        return rc;
    }
    *out = m;
    return 0;
}

void
sdmx_csv_close(sdmx_csv_t **mp)
{
    if (mp == NULL || *mp == NULL)
        return;
    sdmx_csv_t *m = *mp;
    for (size_t i = 0; i < m->n_cols; i++)
        free(m->cols[i].name);
    free(m->cols);
    for (size_t i = 0; i < m->n_dfs; i++) {
        free(m->dfs[i].own);
        free(m->dfs[i].attr);
    }
    free(m->dfs);
    key_set_fini(&m->keys);
    free(m);
    *mp = NULL;
}

/* ------------------------------------------------------- per dataflow */

/* Inserts column c (an attribute of df) into attr_cols, kept in id order
 * so a row's attributes come out sorted as obs_t keeps them. Each attribute
 * has one column at most (duplicate columns are refused), so they fit. */
static void
add_attr_col(df_cols_t *d, int c)
{
    size_t j = d->n_attr_cols;
    if (j == OBS_MAX_ATTRS)
        return;
    for (;
         j > 0 && strcmp(d->attr[d->attr_cols[j - 1]]->id, d->attr[c]->id) > 0;
         j--)
        d->attr_cols[j] = d->attr_cols[j - 1];
    d->attr_cols[j] = c;
    d->n_attr_cols++;
}

static void
fill_df_cols(const sdmx_csv_t *m, df_cols_t *d)
{
    for (size_t i = 0; i < OBS_MAX_DIMS; i++)
        d->dim_col[i] = -1;
    for (size_t c = 0; c < m->n_cols; c++) {
        if (m->cols[c].role != COL_COMPONENT)
            continue;
        int di = structure_dim_index(d->df->dsd, m->cols[c].name);
        if (di >= 0 && di < OBS_MAX_DIMS) {
            d->dim_col[di] = (int)c;
            d->own[c] = true;
        } else if ((d->attr[c] =
                        structure_find_attr(d->df->dsd, m->cols[c].name))) {
            d->own[c] = true;
            add_attr_col(d, (int)c);
        }
    }
}

/* The resolved columns of df (made on first use), NULL on OOM. */
static const df_cols_t *
df_columns(sdmx_csv_t *m, const sdmx_dataflow_t *df)
{
    for (size_t i = 0; i < m->n_dfs; i++)
        if (m->dfs[i].df == df)
            return &m->dfs[i];
    if (m->n_dfs == m->cap_dfs) {
        size_t cap = m->cap_dfs ? m->cap_dfs * 2 : 4;
        df_cols_t *dfs = realloc(m->dfs, cap * sizeof(*dfs));
        if (dfs == NULL)
            return NULL;
        m->dfs = dfs;
        m->cap_dfs = cap;
    }
    df_cols_t *d = &m->dfs[m->n_dfs];
    memset(d, 0, sizeof(*d));
    d->df = df;
    d->own = calloc(m->n_cols, sizeof(*d->own));
    d->attr = calloc(m->n_cols, sizeof(const sdmx_component_t *));
    if (d->own == NULL || d->attr == NULL) {
        free(d->own);
        free(d->attr);
        return NULL;
    }
    fill_df_cols(m, d);
    m->n_dfs++;
    return d;
}

/* Encodes row->obs's key into row->key, and refuses a key the file had
 * before under the same action class. */
static int
check_duplicate(sdmx_csv_t *m, sdmx_row_t *row, uint64_t line,
                issue_list_t *issues)
{
    uint64_t first;
    int len = row->key_len =
        obs_key_encode(&row->obs, row->key, sizeof(row->key));
    if (len <= 0)
        return 0; /* identity invalid: the validator says why */
    uint8_t cls = row->obs.ver.action == OBS_ACTION_DELETE ? 1 : 0;
    int rc = key_set_add(&m->keys, row->key, (size_t)len, cls, line, &first);
    if (rc == 0 && first != 0)
        issue_add(issues, line, "", "R6-duplicate", false,
                  "same key as line %llu (a key may appear once per action "
                  "in a file; add a distinguishing dimension)",
                  (unsigned long long)first);
    return rc;
}

/* ------------------------------------------------------------- rows */

void
sdmx_row_init(sdmx_row_t *r)
{
    /* all but the key bytes, which key_len guards: a row is reset per line */
    memset(r, 0, offsetof(sdmx_row_t, key));
    obs_init(&r->obs);
}

void
sdmx_row_fini(sdmx_row_t *r)
{
    if (r == NULL)
        return;
    obs_pattern_fini(&r->pattern); /* r->obs is a view: nothing owned */
    sdmx_row_init(r);
}

static const char *
cell_at(const char *const *cells, int col)
{
    return col >= 0 && cells[col] != NULL ? cells[col] : "";
}

static bool
check_shape(const sdmx_csv_t *m, uint64_t line, const char *const *cells,
            size_t n, issue_list_t *issues)
{
    if (n == m->n_cols || (n == m->n_cols + 1 && cell_blank(cells[n - 1])))
        return true;
    issue_add(issues, line, "", "R0-shape", false,
              "row has %zu cells, header has %zu", n, m->n_cols);
    return false;
}

/* v2 STRUCTURE cell: only "dataflow" is supported. */
static bool
check_structure_kind(const sdmx_csv_t *m, const char *const *cells,
                     uint64_t line, issue_list_t *issues)
{
    char kind[32], shown[32];
    if (m->structure_col < 0)
        return true;
    if (cell_copy(cells[m->structure_col], false, kind, sizeof(kind)) &&
        strcmp(kind, "dataflow") == 0)
        return true;
    printable(cells[m->structure_col] ? cells[m->structure_col] : "", shown,
              sizeof(shown));
    issue_add(issues, line, "STRUCTURE", "R1-dataflow", false,
              "STRUCTURE \"%s\" is not supported: report data against a "
              "dataflow (STRUCTURE=dataflow)",
              shown);
    return false;
}

/* "AGENCY:DSD@DF(VERSION)" -> "AGENCY:DF(VERSION)" when the structure did
 * not resolve the v1 form itself. */
static const sdmx_dataflow_t *
find_dataflow(const structure_t *st, const char *ref)
{
    const sdmx_dataflow_t *df = structure_find_dataflow(st, ref);
    const char *at = strchr(ref, '@'), *colon = strchr(ref, ':');
    if (df != NULL || at == NULL || colon == NULL || colon > at)
        return df;
    char alt[OBS_DATAFLOW_MAX + 1];
    size_t agency = (size_t)(colon - ref) + 1;
    if (agency + strlen(at + 1) >= sizeof(alt))
        return NULL;
    memcpy(alt, ref, agency);
    memcpy(alt + agency, at + 1, strlen(at + 1) + 1);
    return structure_find_dataflow(st, alt);
}

static const sdmx_dataflow_t *
row_dataflow(const sdmx_csv_t *m, const char *const *cells, uint64_t line,
             issue_list_t *issues)
{
    char ref[OBS_DATAFLOW_MAX + 1], shown[OBS_DATAFLOW_MAX + 1];
    const char *col = m->version == 1 ? "DATAFLOW" : "STRUCTURE_ID";
    const sdmx_dataflow_t *df = NULL;
    if (!check_structure_kind(m, cells, line, issues))
        return NULL;
    if (cell_copy(cell_at(cells, m->ref_col), true, ref, sizeof(ref)))
        df = find_dataflow(m->vctx.st, ref);
    if (df != NULL && df->dsd != NULL && df->dsd->n_dims <= OBS_MAX_DIMS)
        return df;
    printable(cell_at(cells, m->ref_col), shown, sizeof(shown));
    issue_add(issues, line, col, "R1-dataflow", false,
              "dataflow \"%s\" is not known", shown);
    return NULL;
}

static bool
row_action(const sdmx_csv_t *m, const char *const *cells, uint64_t line,
           obs_action_t *action, issue_list_t *issues)
{
    char a[8] = "", shown[24];
    *action = OBS_ACTION_MERGE;
    if (m->action_col < 0)
        return true;
    if (cell_copy(cells[m->action_col], true, a, sizeof(a))) {
        if (a[0] == '\0' || strcmp(a, "M") == 0 || strcmp(a, "I") == 0 ||
            strcmp(a, "A") == 0)
            return true;
        if (strcmp(a, "R") == 0 || strcmp(a, "D") == 0) {
            *action = a[0] == 'R' ? OBS_ACTION_REPLACE : OBS_ACTION_DELETE;
            return true;
        }
    }
    printable(cells[m->action_col] ? cells[m->action_col] : "", shown,
              sizeof(shown));
    issue_add(issues, line, "ACTION", "R1-action", false,
              "ACTION \"%s\" is not M, R or D (I and A read as M)", shown);
    return false;
}

/* Cells of columns that belong to other dataflows must be empty. */
static void
check_foreign(const sdmx_csv_t *m, const df_cols_t *d, const char *const *cells,
              uint64_t line, issue_list_t *issues)
{
    for (size_t c = 0; c < m->n_cols; c++)
        if (m->cols[c].role == COL_COMPONENT && !d->own[c] &&
            !cell_blank(cells[c]))
            issue_add(issues, line, m->cols[c].name, "R1-component", false,
                      "column %s is not a component of %s; leave it empty",
                      m->cols[c].name, d->df->urn);
}

static void
read_dim(const df_cols_t *d, size_t i, const char *const *cells,
         obs_action_t action, row_ident_t *id, uint64_t line,
         issue_list_t *issues)
{
    const char *dim = d->df->dsd->dims[i].id;
    int col = d->dim_col[i];
    id->code[i][0] = '\0';
    if (col < 0 && action != OBS_ACTION_DELETE) {
        issue_add(issues, line, dim, "R1-dims", false,
                  "dimension %s has no column in the header", dim);
        return;
    }
    if (!cell_copy(cell_at(cells, col), true, id->code[i], OBS_CODE_MAX + 1)) {
        issue_add(issues, line, dim, "R2-code", false,
                  "%s code is longer than %d characters", dim, OBS_CODE_MAX);
        return;
    }
    if (id->code[i][0] != '\0')
        return;
    id->wildcard = true;
    if (action != OBS_ACTION_DELETE)
        issue_add(issues, line, dim, "R1-dims", false,
                  "dimension %s is empty; only D (delete) rows may leave "
                  "dimensions empty",
                  dim);
}

/* Dimension codes and time of the row; issues for what is missing. */
static void
read_ident(const sdmx_csv_t *m, const df_cols_t *d, const char *const *cells,
           obs_action_t action, row_ident_t *id, uint64_t line,
           issue_list_t *issues)
{
    id->wildcard = false;
    for (size_t i = 0; i < d->df->dsd->n_dims; i++)
        read_dim(d, i, cells, action, id, line, issues);
    if (!cell_copy(cell_at(cells, m->time_col), false, id->time,
                   sizeof(id->time))) {
        id->time[0] = '\0';
        issue_add(issues, line, "TIME_PERIOD", "R3-time", false,
                  "TIME_PERIOD is longer than %d characters", OBS_PERIOD_MAX);
    } else if (id->time[0] == '\0' && action == OBS_ACTION_DELETE) {
        id->wildcard = true;
    }
}

/* A D row with wildcards: check what is given, fill the pattern. */
static int
map_delete_matching(const sdmx_csv_t *m, const sdmx_dataflow_t *df,
                    const row_ident_t *id, sdmx_row_t *row, uint64_t line,
                    issue_list_t *issues)
{
    const sdmx_dsd_t *dsd = df->dsd;
    int freq = structure_dim_index(dsd, "FREQ");
    int area = structure_dim_index(dsd, "REF_AREA");
    for (size_t i = 0; i < dsd->n_dims; i++)
        if (id->code[i][0] != '\0')
            validate_dim_code(df, i, id->code[i], line, issues);
    if (id->time[0] != '\0')
        validate_time(&m->vctx, id->time,
                      freq >= 0 && id->code[freq][0] ? id->code[freq] : NULL,
                      line, issues);
    if (m->vctx.provider != NULL && area >= 0 && id->code[area][0] != '\0' &&
        !structure_may_write(m->vctx.st, m->vctx.provider, df, id->code[area]))
        issue_add(issues, line, "REF_AREA", "R12-authority", false,
                  "provider %.64s may not write REF_AREA \"%s\" in %s",
                  m->vctx.provider, id->code[area], df->urn);
    row->pattern.n = dsd->n_dims;
    for (size_t i = 0; i < dsd->n_dims; i++) {
        if (id->code[i][0] == '\0')
            continue;
        if ((row->pattern.pos[i] = strdup(id->code[i])) == NULL)
            return OBS_ENOMEM;
    }
    memcpy(row->time_period, id->time, sizeof(row->time_period));
    row->kind = SDMX_ROW_DELETE_MATCHING;
    return 0;
}

/* A cell as obs_t's char *: the view only points at cells, never writes
 * through them (a union, not a cast, keeps -Wcast-qual quiet). */
static char *
cell_ptr(const char *cell)
{
    union {
        const char *in;
        char *out;
    } u = {.in = cell};
    return u.out;
}

/* Value and attribute cells of df's own columns into the view obs. */
static void
read_content(sdmx_csv_t *m, const df_cols_t *d, const char *const *cells,
             obs_t *obs)
{
    row_view_t *v = &m->view;
    const char *value = cell_at(cells, m->value_col);
    obs->value = cell_blank(value) ? v->empty : cell_ptr(value);
    size_t n = 0;
    for (size_t k = 0; k < d->n_attr_cols; k++) {
        int c = d->attr_cols[k];
        const sdmx_component_t *a = d->attr[c];
        if (cell_blank(cells[c]))
            continue;
        char *val = cell_ptr(cells[c]);
        if (a->type == SDMX_TYPE_CODED &&
            cell_copy(val, true, v->codes[n], sizeof(v->codes[n])))
            val = v->codes[n];
        v->attrs[n++] = (obs_attr_t){.id = a->id, .value = val};
    }
    obs->attrs = v->attrs;
    obs->n_attrs = n;
}

/* row->obs as a view of the identity in m->view.id and of the cells. */
static int
map_obs(sdmx_csv_t *m, const df_cols_t *d, const char *const *cells,
        sdmx_row_t *row, uint64_t line, issue_list_t *issues)
{
    row_view_t *v = &m->view;
    obs_t *obs = &row->obs;
    size_t nd = d->df->dsd->n_dims;
    for (size_t i = 0; i < nd; i++)
        v->dims[i] = v->id.code[i];
    v->empty[0] = '\0';
    obs->dataflow = d->df->urn;
    obs->dims = v->dims;
    obs->n_dims = nd;
    obs->time_period = v->id.time;
    obs->ver.action = row->action;
    if (row->action == OBS_ACTION_DELETE)
        obs->value = v->empty; /* identity only */
    else
        read_content(m, d, cells, obs);
    int rc = validate_obs(&m->vctx, d->df, obs, line, issues);
    if (rc != 0 && rc != OBS_EREJECTED)
        return rc;
    row->kind = SDMX_ROW_OBS;
    return check_duplicate(m, row, line, issues);
}

/* Everything after the shape check; the caller turns errors into
 * REJECTED. */
static int
map_row(sdmx_csv_t *m, uint64_t line, const char *const *cells, sdmx_row_t *row,
        issue_list_t *issues)
{
    row_ident_t *id = &m->view.id;
    size_t errors0 = issues->errors;
    row->df = row_dataflow(m, cells, line, issues);
    if (row->df == NULL || !row_action(m, cells, line, &row->action, issues))
        return 0;
    const df_cols_t *d = df_columns(m, row->df);
    if (d == NULL)
        return OBS_ENOMEM;
    check_foreign(m, d, cells, line, issues);
    read_ident(m, d, cells, row->action, id, line, issues);
    if (issues->errors > errors0)
        return 0;
    if (row->action == OBS_ACTION_DELETE && id->wildcard)
        return map_delete_matching(m, row->df, id, row, line, issues);
    return map_obs(m, d, cells, row, line, issues);
}

static bool
row_blank(const char *const *cells, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!cell_blank(cells[i]))
            return false;
    return true;
}

int
sdmx_csv_map(sdmx_csv_t *m, uint64_t line, const char *const *cells, size_t n,
             sdmx_row_t *row, issue_list_t *issues)
{
    size_t errors0 = issues->errors;
    sdmx_row_fini(row);
    if (n == 0 || cells == NULL || row_blank(cells, n)) {
        row->kind = SDMX_ROW_EMPTY;
        return 0;
    }
    row->kind = SDMX_ROW_REJECTED;
    if (!check_shape(m, line, cells, n, issues))
        return 0;
    int rc = map_row(m, line, cells, row, issues);
    if (rc != 0) {
        sdmx_row_fini(row);
        return rc;
    }
    if (issues->errors > errors0)
        row->kind = SDMX_ROW_REJECTED;
    return 0;
}
