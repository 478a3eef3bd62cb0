/*
 * period.h - the SDMX TIME_PERIOD grammar (DOMAIN.md §2.2).
 *
 * Parses every standard form into the first and last day it covers, checks it
 * against a FREQ code, and yields an 8-byte encoding that sorts periods
 * chronologically (by start day, then by shorter period first). Pure: no
 * allocation, no I/O; the current year is a parameter so tests are stable.
 */
#ifndef PERIOD_H
#define PERIOD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PERIOD_YEAR,      /* 2019            */
    PERIOD_REP_YEAR,  /* 2019-A1         */
    PERIOD_SEMESTER,  /* 2019-S2         */
    PERIOD_TRIMESTER, /* 2019-T3         */
    PERIOD_QUARTER,   /* 2019-Q1         */
    PERIOD_MONTH,     /* 2019-06, 2019-M06 */
    PERIOD_WEEK,      /* 2019-W05        */
    PERIOD_DAY,       /* 2019-06-30, 2019-D181 */
    PERIOD_DATETIME,  /* 2020-01-16T08:16:20 */
    PERIOD_RANGE,     /* 2022-11-01/P7M  */
} period_kind_t;

typedef struct {
    period_kind_t kind;
    int year;          /* of the start */
    int32_t start_day; /* days since 1970-01-01 of the first day */
    int32_t end_day;   /* last day covered (inclusive) */
    uint32_t seconds;  /* time of day for PERIOD_DATETIME, else 0 */
} period_t;

/** Parses text. Returns 0, or OBS_EINVAL with a reason in why (cap bytes,
 * may be NULL) such as "month 13 out of 01..12". min_year/max_year bound the
 * year (DOMAIN.md rule 3 uses 1900 and the current year + 1). */
int period_parse(const char *text, int min_year, int max_year, period_t *out,
                 char *why, size_t cap);

/** True when the period's form fits the FREQ code: A => year or YYYY-A1,
 * S => semester, T => trimester, Q => quarter, M => month, W => week,
 * D/B => day; an unknown FREQ code accepts every form. */
bool period_fits_freq(const period_t *p, const char *freq);

/** Writes 8 bytes that sort chronologically: big-endian (start_day + 2^31),
 * then big-endian (0xffffffff - (end_day - start_day)), so of two periods that
 * start the same day the longer sorts first (2019 before 2019-01). */
void period_sort_key(const period_t *p, uint8_t out[8]);

/** Parses a calendar moment for --as-of / --updated-after: "2024-06-26",
 * "2024-06-26T12:00:00Z", or an integer of milliseconds since the epoch.
 * Returns 0 with *ms_out, or OBS_EINVAL. A bare date means its end
 * (23:59:59.999 UTC) for as-of; callers pick with end_of_day. */
int period_parse_instant(const char *text, bool end_of_day, uint64_t *ms_out);

#endif
