/*
 * validate.h - checks one observation against the structure before it is
 * stored or sent: the validation rules of DOMAIN.md §7 (structural rules 1-5,
 * semantic rules 7-8 per dataflow policy, authority rule 12) plus attribute
 * types, lengths and mandatory attributes.
 *
 * Pure: no I/O, no LMDB; reads the structure, normalises the observation's
 * decimal texts in place and appends issues. Does not log.
 *
 * Rule ids written to issue_t.rule (stable, clients match on them):
 *   R1-dataflow   unknown dataflow, wrong number of dimensions
 *   R1-component  attribute that is not in the DSD
 *   R1-mandatory  mandatory attribute missing
 *   R1-type       integer / date / period attribute of the wrong form
 *   R2-code       dimension or coded attribute value not in its code list
 *   R3-time       TIME_PERIOD grammar, FREQ fit, year range
 *   R4-decimal    OBS_VALUE, bounds or a decimal attribute not a decimal
 *   R5-missing    empty OBS_VALUE without a missing-value OBS_STATUS
 *   R7-range      unit/indicator range (error or warning per policy)
 *   R8-bounds     LOWER_BOUND <= OBS_VALUE <= UPPER_BOUND (idem)
 *   R12-authority provider may not write this REF_AREA in this dataflow
 *   R-length      string attribute longer than its maximum
 */
#ifndef VALIDATE_H
#define VALIDATE_H

#include <stdbool.h>
#include <stdint.h>

#include "issue.h"
#include "obs.h"
#include "structure.h"

/* The identity validate_obs last accepted (dataflow, dimension codes,
 * provider), so the next observation of the same series skips the
 * code-list and authority lookups, and the default year bound of the day. Owned
 * by the caller; zero it before first use and again whenever the structure
 * changes (df points into it). */
typedef struct {
    const sdmx_dataflow_t *df; /* NULL = nothing remembered */
    char provider[OBS_ID_MAX + 1];
    char dims[OBS_MAX_DIMS][OBS_CODE_MAX + 1];
    int max_year;      /* rule 3's default upper year (0 = not yet) ... */
    long max_year_day; /* ... for this day since the epoch (UTC) */
} validate_memo_t;

/* Room for the normalised texts of one view (validate_ctx_t.texts): the
 * value and every attribute. Reused by each validate_obs call. */
typedef struct validate_texts {
    char text[OBS_MAX_ATTRS + 1][OBS_VALUE_MAX + 1];
    size_t used;
} validate_texts_t;

typedef struct {
    const structure_t *st;  /* borrowed */
    validate_memo_t *memo;  /* borrowed, may be NULL (then no memory) */
    const char *provider;   /* rule 12 (authority); NULL = not checked */
    int min_year, max_year; /* rule 3 year bounds: 1900 and current year + 1;
                               both 0 = those defaults from the clock */
    bool decimal_comma;     /* rule 4 locale handling declared */
    /* Non-NULL: obs is a view (its strings are not its own: a codec view,
     * or the mapper's view of CSV cells): a text that needs normalising is
     * written here and pointed at, never freed or rewritten in place. */
    struct validate_texts *texts;
} validate_ctx_t;

/** Normalises obs in place (OBS_VALUE and decimal attributes through
 * decimal_normalise: the decimal mark becomes '.', digits kept exactly) and
 * checks every rule; appends issues (line, column, rule id, a sentence naming
 * the value) to issues. df may be NULL (then R1-dataflow names
 * obs->dataflow). An observation whose ver.action is OBS_ACTION_DELETE is
 * checked for identity only (dims, time, authority), never value or
 * attributes.
 * Returns 0 (acceptable, maybe with warnings), OBS_EREJECTED (at least one
 * error issue was added), OBS_ENOMEM (normalising failed; obs stays
 * valid). With ctx->texts, normalised texts point into it: obs is valid
 * only as long as ctx->texts and until the next validate_obs with it. */
int validate_obs(const validate_ctx_t *ctx, const sdmx_dataflow_t *df,
                 obs_t *obs, uint64_t line, issue_list_t *issues);

/** Checks one dimension code (R2-code) of dimension index dim in df's DSD;
 * used by the SDMX-CSV mapper for wildcard delete rows. Returns true when
 * acceptable, else appends an issue. */
bool validate_dim_code(const sdmx_dataflow_t *df, size_t dim, const char *code,
                       uint64_t line, issue_list_t *issues);

/** Checks TIME_PERIOD text (R3-time: grammar, year range, and FREQ fit when
 * freq is not NULL). Returns true when acceptable, else appends an issue. */
bool validate_time(const validate_ctx_t *ctx, const char *period,
                   const char *freq, uint64_t line, issue_list_t *issues);

#endif
