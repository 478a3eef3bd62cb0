/*
 * fuzz_period.c - libFuzzer target for the TIME_PERIOD grammar: the input,
 * as a NUL-terminated string, goes through period_parse (with and without a
 * reason buffer), period_fits_freq, period_sort_key and
 * period_parse_instant. Any accepted period must cover at least one day.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "obs_err.h"
#include "period.h"

/* Not assert(): it must fire in release builds too. */
#define CHECK(cond)  \
    do {             \
        if (!(cond)) \
            abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    period_t p;
    char why[96];
    if (period_parse(text, 0, 9999, &p, why, sizeof(why)) == OBS_OK) {
        CHECK(p.end_day >= p.start_day);
        uint8_t key[8];
        period_sort_key(&p, key);
        (void)period_fits_freq(&p, "A");
        (void)period_fits_freq(&p, "ZZ");
    }
    (void)period_parse(text, 1900, 2027, &p, NULL, 0);
    (void)period_parse(text, 1900, 2027, &p, why, 5);
    uint64_t ms;
    (void)period_parse_instant(text, false, &ms);
    (void)period_parse_instant(text, true, &ms);
    free(text);
    return 0;
}
