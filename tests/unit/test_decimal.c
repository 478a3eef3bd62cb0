/*
 * test_decimal.c - OBS_VALUE cells as exact decimal text: the real cases of
 * DOMAIN.md §7 rule 4 and §9 (decimal commas from the UNODC CTS export,
 * symbols from the WDR annex, float noise kept as written), table-driven.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "decimal.h"
#include "obs.h"
#include "obs_err.h"

typedef struct {
    const char *cell;
    bool comma;
    const char *out;
    double num;
} ok_case_t;

static const ok_case_t ok_cases[] = {
    {"85,42757729", true, "85.42757729", 85.42757729},
    {"0,3", true, "0.3", 0.3},
    {"0.3", true, "0.3", 0.3},
    {"12.5", false, "12.5", 12.5},
    {" 12.5 ", false, "12.5", 12.5},
    {"\t7\r\n", false, "7", 7},
    {"+3", false, "3", 3},
    {"-0.25", false, "-0.25", -0.25},
    {"1e3", false, "1e3", 1000},
    {"1.5E-2", false, "1.5E-2", 0.015},
    {"2.5e+1", false, "2.5e+1", 25},
    {"26.379918029999999", false, "26.379918029999999", 26.379918029999999},
    {"2.2799999999999998", false, "2.2799999999999998", 2.2799999999999998},
    {"2.10", false, "2.10", 2.1},
    {"007", false, "007", 7},
    {".5", false, ".5", 0.5},
    {"0", false, "0", 0},
};

static void
test_decimal_normalises_valid_cells(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
        const ok_case_t *c = &ok_cases[i];
        char out[OBS_VALUE_MAX + 1], why[160] = "";
        double num = -1;
        int rc = decimal_normalise(c->cell, c->comma, out, sizeof(out), &num,
                                   why, sizeof(why));
        if (rc != OBS_OK)
            fail_msg("'%s': %s (%s)", c->cell, obs_strerror(rc), why);
        if (strcmp(out, c->out) != 0 || num != c->num)
            fail_msg("'%s' -> '%s' %.17g, want '%s' %.17g", c->cell, out, num,
                     c->out, c->num);
    }
}

/* Plain cells take a fast path (digits as an integer over a power of ten);
 * its double must be strtod's, bit for bit, at every length and dot place
 * it covers and just past them. */
static void
test_decimal_plain_cells_give_strtods_double(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252u; /* xorshift64: deterministic */
#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17)
    for (int k = 0; k < 200000; k++) {
        char cell[40], out[OBS_VALUE_MAX + 1];
        size_t digits = 1 + NEXT() % 17, dot = (x >> 8) % (digits + 1), n = 0;
        bool lead_zero = (x >> 16) % 8 == 0; /* "0.x", "007" */
        if ((x >> 20) & 1)
            cell[n++] = '-';
        for (size_t i = 0; i < digits; i++) {
            if (i == dot && i > 0)
                cell[n++] = '.';
            /* a fresh draw per digit: every place, the 15th and 16th
             * included, takes any digit */
            unsigned dig = (unsigned)(NEXT() % 10);
            if (i == 0 && digits > 1)
                dig = lead_zero ? 0 : 1 + dig % 9;
            cell[n++] = (char)('0' + dig);
        }
        cell[n] = '\0';
        double num = 0;
        if (decimal_normalise(cell, false, out, sizeof(out), &num, NULL, 0) !=
            OBS_OK)
            fail_msg("'%s' refused", cell);
        double want = strtod(cell, NULL);
        if (strcmp(out, cell) != 0 || memcmp(&num, &want, sizeof(num)) != 0)
            fail_msg("'%s' -> '%s' %.17g, strtod %.17g", cell, out, num, want);
    }
#undef NEXT
    double num = 1;
    char out[8];
    assert_int_equal(
        decimal_normalise("-0", false, out, sizeof(out), &num, NULL, 0),
        OBS_OK);
    assert_true(num == 0 && signbit(num));
}

static void
test_decimal_keeps_nan(void **state)
{
    (void)state;
    char out[OBS_VALUE_MAX + 1];
    double num = 0;
    assert_int_equal(
        decimal_normalise("NaN", false, out, sizeof(out), &num, NULL, 0),
        OBS_OK);
    assert_string_equal(out, "NaN");
    assert_true(isnan(num));
}

typedef struct {
    const char *cell;
    bool comma;
    const char *why;
} bad_case_t;

static const bad_case_t bad_cases[] = {
    {"85,42757729", false,
     "decimal comma in '85,42757729' (declare --decimal-comma"},
    {"0,3", false, "decimal comma in '0,3'"},
    {"1,234.5", false, "thousands separator in '1,234.5'"},
    {"1,234.5", true, "thousands separator"},
    {"1.234,5", true, "thousands separator"},
    {"1,234,567", true, "thousands separator"},
    {"@", false, "not a number: '@'"},
    {"..", false, "not a number: '..'"},
    {"-", false, "not a number: '-'"},
    {"n.a.", false, "not a number: 'n.a.'"},
    {"", false, "empty"},
    {"   ", false, "empty"},
    {"inf", false, "not a finite number: 'inf'"},
    {"-Infinity", false, "not a finite number"},
    {"Infinity", false, "not a finite number"},
    {"1e999", false, "out of the range"},
    {"1.2.3", false, "not a number"},
    {"1e", false, "not a number"},
    {"e5", false, "not a number"},
    {"12 5", false, "not a number"},
    {"0x1A", false, "not a number"},
    {"++1", false, "not a number"},
    {"1,", false, "decimal comma"},
    {"12%", false, "not a number"},
};

static void
test_decimal_rejects_bad_cells_with_reason(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const bad_case_t *c = &bad_cases[i];
        char out[OBS_VALUE_MAX + 1], why[160] = "";
        double num;
        int rc = decimal_normalise(c->cell, c->comma, out, sizeof(out), &num,
                                   why, sizeof(why));
        if (rc != OBS_EINVAL)
            fail_msg("'%s' accepted as '%s'", c->cell, out);
        if (strstr(why, c->why) == NULL)
            fail_msg("'%s': reason '%s' lacks '%s'", c->cell, why, c->why);
    }
}

static void
test_decimal_rejects_cells_longer_than_cap(void **state)
{
    (void)state;
    char cell[OBS_VALUE_MAX + 2], out[OBS_VALUE_MAX + 1], why[128] = "";
    double num;
    memset(cell, '1', OBS_VALUE_MAX);
    cell[OBS_VALUE_MAX] = '\0';
    assert_int_equal(decimal_normalise(cell, false, out, sizeof(out), &num, why,
                                       sizeof(why)),
                     OBS_OK);
    cell[OBS_VALUE_MAX] = '1';
    cell[OBS_VALUE_MAX + 1] = '\0';
    assert_int_equal(decimal_normalise(cell, false, out, sizeof(out), &num, why,
                                       sizeof(why)),
                     OBS_EINVAL);
    assert_non_null(strstr(why, "longer than 64"));
}

static void
test_decimal_small_output_buffer_is_an_error(void **state)
{
    (void)state;
    char out[4];
    double num;
    assert_int_equal(
        decimal_normalise("12.5", false, out, sizeof(out), &num, NULL, 0),
        OBS_EINVAL);
    assert_int_equal(
        decimal_normalise("+12.", false, out, sizeof(out), &num, NULL, 0),
        OBS_OK);
    assert_string_equal(out, "12.");
}

static void
test_decimal_null_cell_is_empty(void **state)
{
    (void)state;
    char out[8], why[32] = "";
    double num;
    assert_int_equal(decimal_normalise(NULL, false, out, sizeof(out), &num, why,
                                       sizeof(why)),
                     OBS_EINVAL);
    assert_string_equal(why, "empty");
}

static void
test_decimal_is_integral(void **state)
{
    (void)state;
    static const char *const yes[] = {"12",  "-3",  "12.0",  "12.000",
                                      "0",   "1e3", "1.5E1", "1200e-2",
                                      "0.0", "007", "-0"};
    static const char *const no[] = {"12.5",    "0.1", "1.5E-2", "1e-1",
                                     "1234e-2", "NaN", "",       "@",
                                     "1.25E1",  "12,0"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        if (!decimal_is_integral(yes[i]))
            fail_msg("'%s' should be integral", yes[i]);
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        if (decimal_is_integral(no[i]))
            fail_msg("'%s' should not be integral", no[i]);
    assert_false(decimal_is_integral(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decimal_normalises_valid_cells),
        cmocka_unit_test(test_decimal_plain_cells_give_strtods_double),
        cmocka_unit_test(test_decimal_keeps_nan),
        cmocka_unit_test(test_decimal_rejects_bad_cells_with_reason),
        cmocka_unit_test(test_decimal_rejects_cells_longer_than_cap),
        cmocka_unit_test(test_decimal_small_output_buffer_is_an_error),
        cmocka_unit_test(test_decimal_null_cell_is_empty),
        cmocka_unit_test(test_decimal_is_integral),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
