/*
 * decimal.h - OBS_VALUE and bound cells as exact decimal text (DOMAIN.md §5.4).
 *
 * What was imported is what is exported: the normalised text is kept, and a
 * double is derived from it only for range checks. Pure, no allocation.
 */
#ifndef DECIMAL_H
#define DECIMAL_H

#include <stdbool.h>
#include <stddef.h>

/** Normalises a decimal cell into out (cap bytes): trims ASCII spaces,
 * accepts an optional sign, digits, one decimal mark ('.' always, ',' only
 * when decimal_comma), and an exponent (1.5E3). The decimal mark is written
 * as '.'; digits are kept exactly as given (no rounding, no trailing-zero
 * stripping, "+" dropped). "NaN" is kept as "NaN" (SDMX intentionally
 * missing). Returns 0 and *num (NaN for "NaN"), or OBS_EINVAL with a reason in
 * why: "decimal comma in '0,3' (declare --decimal-comma or use ';')",
 * "not a number: '@'", "thousands separator ...". */
int decimal_normalise(const char *cell, bool decimal_comma, char *out,
                      size_t cap, double *num, char *why, size_t why_cap);

/** True if text (already normalised) is an integer value (no fraction part,
 * or a zero fraction like "12.0"). */
bool decimal_is_integral(const char *text);

#endif
