/*
 * test_period.c - the SDMX TIME_PERIOD grammar, table-driven: every form,
 * valid and invalid (with the reason it gives), FREQ fitting, the sort key
 * order, and calendar instants for --as-of / --updated-after. Expected day
 * numbers were computed independently (Python datetime).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "obs_err.h"
#include "period.h"

#define MIN_Y 1900
#define MAX_Y 2027

typedef struct {
    const char *text;
    period_kind_t kind;
    int year;
    int32_t start, end;
    uint32_t seconds;
} valid_case_t;

static const valid_case_t valid[] = {
    {"2019", PERIOD_YEAR, 2019, 17897, 18261, 0},
    {"2020", PERIOD_YEAR, 2020, 18262, 18627, 0},
    {"1900", PERIOD_YEAR, 1900, -25567, -25203, 0},
    {"2019-A1", PERIOD_REP_YEAR, 2019, 17897, 18261, 0},
    {"2019-S1", PERIOD_SEMESTER, 2019, 17897, 18077, 0},
    {"2019-S2", PERIOD_SEMESTER, 2019, 18078, 18261, 0},
    {"2019-T1", PERIOD_TRIMESTER, 2019, 17897, 18016, 0},
    {"2019-T2", PERIOD_TRIMESTER, 2019, 18017, 18139, 0},
    {"2019-T3", PERIOD_TRIMESTER, 2019, 18140, 18261, 0},
    {"2019-Q1", PERIOD_QUARTER, 2019, 17897, 17986, 0},
    {"2019-Q2", PERIOD_QUARTER, 2019, 17987, 18077, 0},
    {"2019-Q4", PERIOD_QUARTER, 2019, 18170, 18261, 0},
    {"2019-06", PERIOD_MONTH, 2019, 18048, 18077, 0},
    {"2010-11", PERIOD_MONTH, 2010, 14914, 14943, 0},
    {"2019-M06", PERIOD_MONTH, 2019, 18048, 18077, 0},
    {"2020-02", PERIOD_MONTH, 2020, 18293, 18321, 0},
    {"2019-W01", PERIOD_WEEK, 2019, 17896, 17902, 0},
    {"2019-W05", PERIOD_WEEK, 2019, 17924, 17930, 0},
    {"2020-W53", PERIOD_WEEK, 2020, 18624, 18630, 0},
    {"2015-W53", PERIOD_WEEK, 2015, 16797, 16803, 0},
    {"2019-06-30", PERIOD_DAY, 2019, 18077, 18077, 0},
    {"2020-02-29", PERIOD_DAY, 2020, 18321, 18321, 0},
    {"2000-02-29", PERIOD_DAY, 2000, 11016, 11016, 0},
    {"1969-12-31", PERIOD_DAY, 1969, -1, -1, 0},
    {"2019-D001", PERIOD_DAY, 2019, 17897, 17897, 0},
    {"2019-D181", PERIOD_DAY, 2019, 18077, 18077, 0},
    {"2020-D366", PERIOD_DAY, 2020, 18627, 18627, 0},
    {"2020-01-16T08:16:20", PERIOD_DATETIME, 2020, 18277, 18277, 29780},
    {"2020-01-16T08:16:20Z", PERIOD_DATETIME, 2020, 18277, 18277, 29780},
    {"2020-01-16T08:16:20.250", PERIOD_DATETIME, 2020, 18277, 18277, 29780},
    {"2020-01-16T23:30:00-05:00", PERIOD_DATETIME, 2020, 18278, 18278, 16200},
    {"2020-01-16T01:00:00+02:00", PERIOD_DATETIME, 2020, 18276, 18276, 82800},
    {"2022-11-01/P7M", PERIOD_RANGE, 2022, 19297, 19508, 0},
    {"2019-01/P1Y", PERIOD_RANGE, 2019, 17897, 18261, 0},
    {"2019/P2Y", PERIOD_RANGE, 2019, 17897, 18627, 0},
    {"2019-06-30/P1D", PERIOD_RANGE, 2019, 18077, 18077, 0},
    {"2019-01-01/P1W", PERIOD_RANGE, 2019, 17897, 17903, 0},
    {"2019-01-01/P1Y2M10D", PERIOD_RANGE, 2019, 17897, 18331, 0},
    {"2020-01-16T08:00:00/PT20H", PERIOD_RANGE, 2020, 18277, 18278, 28800},
};

static void
test_period_parses_every_valid_form(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
        const valid_case_t *c = &valid[i];
        period_t p;
        char why[128] = "";
        int rc = period_parse(c->text, MIN_Y, MAX_Y, &p, why, sizeof(why));
        if (rc != OBS_OK)
            fail_msg("'%s': %s (%s)", c->text, obs_strerror(rc), why);
        if (p.kind != c->kind || p.year != c->year || p.start_day != c->start ||
            p.end_day != c->end || p.seconds != c->seconds)
            fail_msg("'%s': kind %d year %d days %d..%d secs %u, want kind "
                     "%d year %d days %d..%d secs %u",
                     c->text, (int)p.kind, p.year, p.start_day, p.end_day,
                     p.seconds, (int)c->kind, c->year, c->start, c->end,
                     c->seconds);
    }
}

typedef struct {
    const char *text;
    const char *why; /* a substring the reason must contain */
} invalid_case_t;

static const invalid_case_t invalid[] = {
    {"", "empty time period"},
    {"20", "'20' is not an SDMX time period"},
    {"abcd", "is not an SDMX time period"},
    {"2023/24", "'2023/24' is not an SDMX time period"},
    {"2014/2014", "'2014/2014' is not an SDMX time period"},
    {"2019-2021", "is not an SDMX time period"},
    {"2019-6", "'2019-6' is not an SDMX time period"},
    {"2019-M6", "'2019-M6' is not an SDMX time period"},
    {"2019-", "is not an SDMX time period"},
    {"2019-X1", "is not an SDMX time period"},
    {" 2019", "is not an SDMX time period"},
    {"2019 ", "is not an SDMX time period"},
    {"20190", "is not an SDMX time period"},
    {"2106", "year 2106 after 2027"},
    {"1850", "year 1850 before 1900"},
    {"2106-Q1", "year 2106 after 2027"},
    {"2019-13", "month 13 out of 01..12"},
    {"2019-00", "month 00 out of 01..12"},
    {"2019-M13", "month 13 out of 01..12"},
    {"2019-M00", "month 00 out of 01..12"},
    {"2019-A2", "reporting year 2 out of 1..1"},
    {"2019-S3", "semester 3 out of 1..2"},
    {"2019-S0", "semester 0 out of 1..2"},
    {"2019-T4", "trimester 4 out of 1..3"},
    {"2019-Q5", "quarter 5 out of 1..4"},
    {"2019-Q0", "quarter 0 out of 1..4"},
    {"2019-Q12", "is not an SDMX time period"},
    {"2019-W54", "week 54 out of 01..53"},
    {"2019-W00", "week 00 out of 01..53"},
    {"2019-W53", "2019 has 52 ISO weeks"},
    {"2019-W5", "is not an SDMX time period"},
    {"2019-D367", "day 367 out of 001..366"},
    {"2019-D000", "day 000 out of 001..366"},
    {"2019-D366", "2019 is not a leap year"},
    {"2019-D45", "is not an SDMX time period"},
    {"2019-02-29", "day 29 out of 01..28 for 2019-02"},
    {"1900-02-29", "day 29 out of 01..28 for 1900-02"},
    {"2019-04-31", "day 31 out of 01..30"},
    {"2019-06-00", "day 00 out of"},
    {"2019-1-01", "is not an SDMX time period"},
    {"2019-06-30T24:00:00", "hour 24 out of 00..23"},
    {"2019-06-30T12:60:00", "minute 60 out of 00..59"},
    {"2019-06-30T12:00:60", "second 60 out of 00..59"},
    {"2019-06-30T12:00", "is not an SDMX time period"},
    {"2019-06-30T12:00:00+15:00", "UTC offset 15:00 out of range"},
    {"2019-06-30T12:00:00+0200", "is not an SDMX time period"},
    {"2019-06-30T12:00:00.", "is not an SDMX time period"},
    {"2019-06-30Z", "is not an SDMX time period"},
    {"2019-Q1/P1Y", "is not an SDMX time period"},
    {"2019/P", "bad duration"},
    {"2019/PT", "empty time part"},
    {"2019/P0D", "empty duration"},
    {"2019/P1Y2", "bad duration"},
    {"2019/P1D1Y", "bad duration"},
    {"2019/P1Y/P1Y", "bad duration"},
    {"2019/P99999999Y", "bad duration"},
    {"2019/P9000Y", "ends after year 9999"},
};

static void
test_period_rejects_invalid_forms_with_reason(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(invalid) / sizeof(invalid[0]); i++) {
        const invalid_case_t *c = &invalid[i];
        period_t p;
        char why[128] = "";
        int rc = period_parse(c->text, MIN_Y, MAX_Y, &p, why, sizeof(why));
        if (rc != OBS_EINVAL)
            fail_msg("'%s' parsed (kind %d, rc %s)", c->text, (int)p.kind,
                     obs_strerror(rc));
        if (strstr(why, c->why) == NULL)
            fail_msg("'%s': reason '%s' lacks '%s'", c->text, why, c->why);
    }
}

static void
test_period_null_reason_buffer_is_fine(void **state)
{
    (void)state;
    period_t p;
    assert_int_equal(period_parse("2019-13", MIN_Y, MAX_Y, &p, NULL, 0),
                     OBS_EINVAL);
    assert_int_equal(period_parse(NULL, MIN_Y, MAX_Y, &p, NULL, 0), OBS_EINVAL);
    char tiny[4];
    assert_int_equal(
        period_parse("2019-13", MIN_Y, MAX_Y, &p, tiny, sizeof(tiny)),
        OBS_EINVAL);
    assert_string_equal(tiny, "mon");
}

static void
test_period_year_bounds_are_parameters(void **state)
{
    (void)state;
    period_t p;
    assert_int_equal(period_parse("2106", 0, 9999, &p, NULL, 0), OBS_OK);
    assert_int_equal(period_parse("0001-01-01", 0, 9999, &p, NULL, 0), OBS_OK);
    assert_int_equal(period_parse("2027", MIN_Y, 2027, &p, NULL, 0), OBS_OK);
    assert_int_equal(period_parse("2028", MIN_Y, 2027, &p, NULL, 0),
                     OBS_EINVAL);
}

typedef struct {
    const char *text, *freq;
    bool fits;
} freq_case_t;

static const freq_case_t freq_cases[] = {
    {"2019", "A", true},           {"2019-A1", "A", true},
    {"2010-11", "A", false},       {"2019-Q1", "A", false},
    {"2019-06-30", "A", false},    {"2022-11-01/P7M", "A", false},
    {"2019-S1", "S", true},        {"2019", "S", false},
    {"2019-T2", "T", true},        {"2019-Q2", "T", false},
    {"2019-Q1", "Q", true},        {"2019-06", "Q", false},
    {"2010-11", "M", true},        {"2019-M06", "M", true},
    {"2019", "M", false},          {"2019-W05", "W", true},
    {"2019-06-30", "W", false},    {"2019-06-30", "D", true},
    {"2019-D181", "D", true},      {"2019-06-30", "B", true},
    {"2019-06", "D", false},       {"2019-06", "X", true},
    {"2022-11-01/P7M", "I", true},
};

static void
test_period_fits_freq(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(freq_cases) / sizeof(freq_cases[0]); i++) {
        const freq_case_t *c = &freq_cases[i];
        period_t p;
        assert_int_equal(period_parse(c->text, MIN_Y, MAX_Y, &p, NULL, 0),
                         OBS_OK);
        if (period_fits_freq(&p, c->freq) != c->fits)
            fail_msg("'%s' with FREQ %s: want %s", c->text, c->freq,
                     c->fits ? "fits" : "does not fit");
    }
    period_t p;
    assert_int_equal(period_parse("2019", MIN_Y, MAX_Y, &p, NULL, 0), OBS_OK);
    assert_true(period_fits_freq(&p, NULL));
}

static void
test_period_sort_key_orders_chronologically(void **state)
{
    (void)state;
    /* Strictly ascending: by start day, longer first on the same day. */
    static const char *const order[] = {
        "1969-12-31", "1970",       "2018",       "2018-12",
        "2019-W01",   "2018-12-31", "2019",       "2019-S1",
        "2019-Q1",    "2019-01",    "2019-01-01", "2019-01-02",
        "2019-Q2",    "2019-12",    "2020",       "2020-01-01",
    };
    uint8_t prev[8], cur[8];
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        period_t p;
        assert_int_equal(period_parse(order[i], 0, 9999, &p, NULL, 0), OBS_OK);
        period_sort_key(&p, cur);
        if (i > 0 && memcmp(prev, cur, 8) >= 0)
            fail_msg("'%s' does not sort after '%s'", order[i], order[i - 1]);
        memcpy(prev, cur, 8);
    }
}

static void
test_period_sort_key_bytes(void **state)
{
    (void)state;
    period_t p;
    assert_int_equal(period_parse("1970-01-01", 0, 9999, &p, NULL, 0), OBS_OK);
    uint8_t k[8];
    period_sort_key(&p, k);
    const uint8_t want[8] = {0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    assert_memory_equal(k, want, 8);
    assert_int_equal(period_parse("1970", 0, 9999, &p, NULL, 0), OBS_OK);
    period_sort_key(&p, k);
    const uint8_t want_year[8] = {0x80, 0, 0, 0, 0xff, 0xff, 0xfe, 0x93};
    assert_memory_equal(k, want_year, 8);
}

typedef struct {
    const char *text;
    bool end_of_day;
    int rc;
    uint64_t ms;
} instant_case_t;

static const instant_case_t instants[] = {
    {"2024-06-26", false, OBS_OK, UINT64_C(1719360000000)},
    {"2024-06-26", true, OBS_OK, UINT64_C(1719446399999)},
    {"2024-06-26T12:00:00Z", false, OBS_OK, UINT64_C(1719403200000)},
    {"2024-06-26T12:00:00Z", true, OBS_OK, UINT64_C(1719403200000)},
    {"2024-06-26T12:00:00", false, OBS_OK, UINT64_C(1719403200000)},
    {"2024-06-26T14:00:00+02:00", false, OBS_OK, UINT64_C(1719403200000)},
    {"1719403200000", false, OBS_OK, UINT64_C(1719403200000)},
    {"0", false, OBS_OK, 0},
    {"1970-01-01", false, OBS_OK, 0},
    {"", false, OBS_EINVAL, 0},
    {"yesterday", false, OBS_EINVAL, 0},
    {"2024-06", false, OBS_EINVAL, 0},
    {"2024-Q2", false, OBS_EINVAL, 0},
    {"2024-D178", false, OBS_EINVAL, 0},
    {"1969-12-31", false, OBS_EINVAL, 0},
    {"2024-06-26T25:00:00", false, OBS_EINVAL, 0},
    {"-5", false, OBS_EINVAL, 0},
    {"99999999999999999999", false, OBS_EINVAL, 0},
    {"2024-06-26 ", false, OBS_EINVAL, 0},
};

static void
test_period_parse_instant(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(instants) / sizeof(instants[0]); i++) {
        const instant_case_t *c = &instants[i];
        uint64_t ms = 12345;
        int rc = period_parse_instant(c->text, c->end_of_day, &ms);
        if (rc != c->rc)
            fail_msg("'%s': %s, want %s", c->text, obs_strerror(rc),
                     obs_strerror(c->rc));
        if (rc == OBS_OK && ms != c->ms)
            fail_msg("'%s': %llu ms, want %llu", c->text,
                     (unsigned long long)ms, (unsigned long long)c->ms);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_period_parses_every_valid_form),
        cmocka_unit_test(test_period_rejects_invalid_forms_with_reason),
        cmocka_unit_test(test_period_null_reason_buffer_is_fine),
        cmocka_unit_test(test_period_year_bounds_are_parameters),
        cmocka_unit_test(test_period_fits_freq),
        cmocka_unit_test(test_period_sort_key_orders_chronologically),
        cmocka_unit_test(test_period_sort_key_bytes),
        cmocka_unit_test(test_period_parse_instant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
