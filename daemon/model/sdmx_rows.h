/*
 * sdmx_rows.h - maps SDMX-CSV rows (already lexed into cells by the CLI) to
 * observations and validates them (DOMAIN.md §2.3, §7).
 *
 * One sdmx_csv_t per imported file: it reads the header once, resolves the
 * component columns per dataflow on first use, and remembers the canonical
 * key of every row it mapped so a key given twice in one file is rejected
 * (rule 6: never last-write-wins). Pure: no I/O, no LMDB; does not log.
 * Not thread-safe (one loop owns it).
 */
#ifndef SDMX_ROWS_H
#define SDMX_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "issue.h"
#include "obs.h"
#include "obs_key.h"
#include "structure.h"
#include "validate.h"

typedef struct sdmx_csv sdmx_csv_t;

typedef struct {
    validate_ctx_t vctx; /* vctx.st is required and borrowed for the
                            mapper's lifetime */
    const char *const *ignore_columns; /* custom columns to skip; borrowed
                                          for sdmx_csv_open only */
    size_t n_ignore;
} sdmx_csv_opts_t;

typedef enum {
    SDMX_ROW_OBS,             /* obs holds an observation (or a delete) */
    SDMX_ROW_DELETE_MATCHING, /* a D row with wildcards: pattern + period */
    SDMX_ROW_REJECTED,        /* issues were appended */
    SDMX_ROW_EMPTY,           /* a blank line: nothing to do */
} sdmx_row_kind_t;

typedef struct {
    sdmx_row_kind_t kind;
    obs_action_t action;       /* MERGE, REPLACE, DELETE */
    const sdmx_dataflow_t *df; /* borrowed from the structure */
    /* kind OBS: the observation (DELETE: identity only), as a view: its
     * strings point into the mapper and into the cells given to
     * sdmx_csv_map, valid until the next sdmx_csv_map or sdmx_csv_close
     * and while the cells are (obs_copy it to keep it); never obs_fini it */
    obs_t obs;
    obs_pattern_t pattern; /* DELETE_MATCHING: dims with wildcards
                              (n = DSD dims); owned */
    char time_period[OBS_PERIOD_MAX + 1]; /* DELETE_MATCHING: "" = every
                                             period */
    /* kind OBS: obs's canonical key (obs_key_encode), so the caller need
     * not encode it again; key_len <= 0 when the identity has none */
    int key_len;
    uint8_t key[OBS_KEY_MAX];
} sdmx_row_t;

/** Initialises a row; a row can be passed to sdmx_csv_map many times (each
 * call clears it first). */
void sdmx_row_init(sdmx_row_t *r);
/** Frees what the row owns and re-initialises it. NULL-safe. */
void sdmx_row_fini(sdmx_row_t *r);

/** Reads the header: SDMX-CSV 1.0 (first column DATAFLOW) or 2.x
 * (STRUCTURE, STRUCTURE_ID, optional STRUCTURE_NAME, ACTION, SERIES_KEY,
 * OBS_KEY). Labels "ID: Name" in header cells are cut to the ID; a UTF-8 BOM
 * before the first cell is skipped. Component columns are resolved per
 * dataflow on first use. Header errors (neither DATAFLOW nor STRUCTURE first,
 * duplicate column, a column that is no component of any known dataflow and
 * is not ignored) -> OBS_EFORMAT with issues (line = header_line, column
 * named), *out stays NULL. On 0, *out is owned by the caller: free it with
 * sdmx_csv_close. OBS_EINVAL (NULL opts or structure), OBS_ENOMEM. */
int sdmx_csv_open(const sdmx_csv_opts_t *opts, const char *const *header,
                  size_t n, uint64_t header_line, sdmx_csv_t **out,
                  issue_list_t *issues);

/** Maps + validates one row. Returns 0 with row->kind OBS / DELETE_MATCHING /
 * EMPTY (blank line), or 0 with kind REJECTED (error issues appended;
 * warnings may be appended to accepted rows too), or OBS_ENOMEM (row
 * cleared). row must have been sdmx_row_init'ed. Rule ids added here besides
 * validate.h's: R0-shape (cell count), R1-action, R1-dims (empty dimension
 * in an M/R row or missing dimension column), R6-duplicate. */
int sdmx_csv_map(sdmx_csv_t *m, uint64_t line, const char *const *cells,
                 size_t n, sdmx_row_t *row, issue_list_t *issues);

/** Frees *mp and sets it to NULL. NULL-safe. */
void sdmx_csv_close(sdmx_csv_t **mp);

#endif
