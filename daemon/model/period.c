/*
 * period.c - the SDMX TIME_PERIOD grammar (see period.h, DOMAIN.md §2.2).
 *
 * A strict recursive-descent reader over the whole text: a four-digit year,
 * then one of the Gregorian, reporting, date-time or start/duration forms,
 * and nothing after it. Each form becomes the first and last day it covers
 * (days since 1970-01-01, proleptic Gregorian calendar), so periods of any
 * frequency compare and sort. Reporting periods assume the reporting year
 * starts on January 1 (no REPORTING_YEAR_START_DAY shift), which makes
 * reporting weeks ISO 8601 weeks. Date-times with an offset are converted
 * to UTC for start_day and seconds; year stays the year as written. It does
 * not map non-grammar cells such as "2023/24" (the importer decides that),
 * and it does not allocate. Called by validation, obs_key.c and the query
 * code (period_parse_instant for --as-of / --updated-after).
 */
#include "period.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "obs_err.h"

#define SECS_PER_DAY 86400
#define DUR_MAX      100000 /* a bound on each duration number */

/* The parse state: the whole text for messages, a cursor, the reason. */
typedef struct {
    const char *text;
    const char *p;
    char *why;
    size_t cap;
} cur_t;

static int fail(cur_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
fail(cur_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (c->why != NULL && c->cap > 0)
        (void)vsnprintf(c->why, c->cap, fmt, ap);
    va_end(ap);
    return OBS_EINVAL;
}

static int
not_period(cur_t *c)
{
    return fail(c, "'%.48s' is not an SDMX time period", c->text);
}

static bool
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Reads exactly n digits at the cursor, not followed by another digit, so
 * "2019-2021" is a shape error rather than "month 20 out of 01..12". */
static bool
digits(cur_t *c, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!is_digit(c->p[i]))
            return false;
        x = x * 10 + (c->p[i] - '0');
    }
    if (is_digit(c->p[n]))
        return false;
    c->p += n;
    *v = x;
    return true;
}

static bool
accept(cur_t *c, char ch)
{
    if (*c->p != ch)
        return false;
    c->p++;
    return true;
}

static bool
is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int
month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Days since 1970-01-01 of y-m-d (H. Hinnant's days_from_civil). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void
civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* ISO weekday, Monday = 1 .. Sunday = 7; 1970-01-01 was a Thursday. */
static int
iso_weekday(int64_t day)
{
    int64_t r = (day + 3) % 7;
    return (int)(r < 0 ? r + 7 : r) + 1;
}

/* Monday of ISO week 1: the week holding January 4. */
static int64_t
iso_week1_monday(int y)
{
    int64_t jan4 = days_from_civil(y, 1, 4);
    return jan4 - (iso_weekday(jan4) - 1);
}

/* 53 when January 1 is a Thursday, or a Wednesday in a leap year. */
static int
iso_weeks_in_year(int y)
{
    int wd = iso_weekday(days_from_civil(y, 1, 1));
    return wd == 4 || (wd == 3 && is_leap(y)) ? 53 : 52;
}

static void
set_span(period_t *out, period_kind_t kind, int64_t first, int64_t last)
{
    out->kind = kind;
    out->start_day = (int32_t)first;
    out->end_day = (int32_t)last;
    out->seconds = 0;
}

/* Months [m0, m0 + n) of year y. */
static void
set_months(period_t *out, period_kind_t kind, int y, int m0, int n)
{
    int m1 = m0 + n - 1;
    set_span(out, kind, days_from_civil(y, m0, 1),
             days_from_civil(y, m1, month_days(y, m1)));
}

/* YYYY-A1, -Sn, -Tn, -Qn: letter already consumed. n months per part. */
static int
parse_part(cur_t *c, period_t *out, char letter, int max)
{
    static const struct {
        char letter;
        period_kind_t kind;
        const char *name;
    } parts[] = {{'A', PERIOD_REP_YEAR, "reporting year"},
                 {'S', PERIOD_SEMESTER, "semester"},
                 {'T', PERIOD_TRIMESTER, "trimester"},
                 {'Q', PERIOD_QUARTER, "quarter"}};
    size_t i = 0;
    while (parts[i].letter != letter)
        i++;
    int n = 0;
    if (!digits(c, 1, &n))
        return not_period(c);
    if (n < 1 || n > max)
        return fail(c, "%s %d out of 1..%d", parts[i].name, n, max);
    int len = 12 / max;
    set_months(out, parts[i].kind, out->year, 1 + (n - 1) * len, len);
    return OBS_OK;
}

static int
check_month(cur_t *c, int m)
{
    if (m < 1 || m > 12)
        return fail(c, "month %02d out of 01..12", m);
    return OBS_OK;
}

/* YYYY-Mmm: 'M' consumed. */
static int
parse_rep_month(cur_t *c, period_t *out)
{
    int m = 0;
    if (!digits(c, 2, &m))
        return not_period(c);
    int rc = check_month(c, m);
    if (rc == OBS_OK)
        set_months(out, PERIOD_MONTH, out->year, m, 1);
    return rc;
}

/* YYYY-Www: 'W' consumed. */
static int
parse_week(cur_t *c, period_t *out)
{
    int w = 0;
    if (!digits(c, 2, &w))
        return not_period(c);
    if (w < 1 || w > 53)
        return fail(c, "week %02d out of 01..53", w);
    int max = iso_weeks_in_year(out->year);
    if (w > max)
        return fail(c, "week %02d out of 01..%d (%04d has %d ISO weeks)", w,
                    max, out->year, max);
    int64_t first = iso_week1_monday(out->year) + 7 * (int64_t)(w - 1);
    set_span(out, PERIOD_WEEK, first, first + 6);
    return OBS_OK;
}

/* YYYY-Dddd: 'D' consumed. */
static int
parse_day_of_year(cur_t *c, period_t *out)
{
    int d = 0;
    if (!digits(c, 3, &d))
        return not_period(c);
    int max = is_leap(out->year) ? 366 : 365;
    if (d < 1 || d > 366)
        return fail(c, "day %03d out of 001..366", d);
    if (d > max)
        return fail(c, "day %03d out of 001..365 (%04d is not a leap year)", d,
                    out->year);
    int64_t first = days_from_civil(out->year, 1, 1) + d - 1;
    set_span(out, PERIOD_DAY, first, first);
    return OBS_OK;
}

/* hh:mm:ss[.f*] after 'T'; returns the seconds of the day in *secs. */
static int
parse_time(cur_t *c, int *secs)
{
    int h = 0, m = 0, s = 0;
    if (!digits(c, 2, &h) || !accept(c, ':') || !digits(c, 2, &m) ||
        !accept(c, ':') || !digits(c, 2, &s))
        return not_period(c);
    if (h > 23)
        return fail(c, "hour %02d out of 00..23", h);
    if (m > 59)
        return fail(c, "minute %02d out of 00..59", m);
    if (s > 59)
        return fail(c, "second %02d out of 00..59", s);
    if (accept(c, '.')) {
        if (!is_digit(*c->p))
            return not_period(c);
        while (is_digit(*c->p))
            c->p++; /* fractions are allowed, and ignored */
    }
    *secs = h * 3600 + m * 60 + s;
    return OBS_OK;
}

/* Optional Z or +hh:mm / -hh:mm; the offset east of UTC in seconds. */
static int
parse_offset(cur_t *c, int *off)
{
    *off = 0;
    if (accept(c, 'Z'))
        return OBS_OK;
    int sign = *c->p == '+' ? 1 : *c->p == '-' ? -1 : 0;
    if (sign == 0)
        return OBS_OK;
    c->p++;
    int h = 0, m = 0;
    if (!digits(c, 2, &h) || !accept(c, ':') || !digits(c, 2, &m))
        return not_period(c);
    if (h > 14 || m > 59)
        return fail(c, "UTC offset %02d:%02d out of range", h, m);
    *off = sign * (h * 3600 + m * 60);
    return OBS_OK;
}

/* The time part of a date-time, after 'T'; out holds the day. */
static int
parse_datetime(cur_t *c, period_t *out)
{
    int secs = 0, off = 0;
    int rc = parse_time(c, &secs);
    if (rc == OBS_OK)
        rc = parse_offset(c, &off);
    if (rc != OBS_OK)
        return rc;
    int64_t t = (int64_t)out->start_day * SECS_PER_DAY + secs - off;
    int64_t day = t / SECS_PER_DAY;
    int64_t rem = t % SECS_PER_DAY;
    if (rem < 0) {
        rem += SECS_PER_DAY;
        day--;
    }
    set_span(out, PERIOD_DATETIME, day, day);
    out->seconds = (uint32_t)rem;
    return OBS_OK;
}

/* YYYY-MM, YYYY-MM-DD, YYYY-MM-DDThh:mm:ss...; at the first month digit. */
static int
parse_gregorian(cur_t *c, period_t *out)
{
    int m = 0, d = 0;
    if (!digits(c, 2, &m))
        return not_period(c);
    int rc = check_month(c, m);
    if (rc != OBS_OK)
        return rc;
    if (!accept(c, '-')) {
        set_months(out, PERIOD_MONTH, out->year, m, 1);
        return OBS_OK;
    }
    if (!digits(c, 2, &d))
        return not_period(c);
    int max = month_days(out->year, m);
    if (d < 1 || d > max)
        return fail(c, "day %02d out of 01..%02d for %04d-%02d", d, max,
                    out->year, m);
    int64_t day = days_from_civil(out->year, m, d);
    set_span(out, PERIOD_DAY, day, day);
    if (!accept(c, 'T'))
        return OBS_OK;
    return parse_datetime(c, out);
}

/* Everything after "YYYY-". */
static int
parse_after_dash(cur_t *c, period_t *out)
{
    char ch = *c->p;
    if (is_digit(ch))
        return parse_gregorian(c, out);
    c->p++;
    switch (ch) {
    case 'A':
        return parse_part(c, out, ch, 1);
    case 'S':
        return parse_part(c, out, ch, 2);
    case 'T':
        return parse_part(c, out, ch, 3);
    case 'Q':
        return parse_part(c, out, ch, 4);
    case 'M':
        return parse_rep_month(c, out);
    case 'W':
        return parse_week(c, out);
    case 'D':
        return parse_day_of_year(c, out);
    default:
        return not_period(c);
    }
}

/* One "nX" duration item if the designator follows the number. */
static bool
dur_item(cur_t *c, char designator, int64_t *v, bool *any)
{
    const char *save = c->p;
    int64_t x = 0;
    int n = 0;
    while (is_digit(*c->p) && x <= DUR_MAX) {
        x = x * 10 + (*c->p - '0');
        c->p++;
        n++;
    }
    if (n == 0 || x > DUR_MAX || *c->p != designator) {
        c->p = save;
        return false;
    }
    c->p++;
    *v = x;
    *any = true;
    return true;
}

typedef struct {
    int64_t y, m, w, d, h, min, s;
} dur_t;

/* PnYnMnWnD[TnHnMnS], after the '/'. */
static int
parse_duration(cur_t *c, dur_t *dur)
{
    memset(dur, 0, sizeof(*dur));
    bool any = false;
    if (!accept(c, 'P'))
        return not_period(c);
    dur_item(c, 'Y', &dur->y, &any);
    dur_item(c, 'M', &dur->m, &any);
    dur_item(c, 'W', &dur->w, &any);
    dur_item(c, 'D', &dur->d, &any);
    if (accept(c, 'T')) {
        bool t_any = false;
        dur_item(c, 'H', &dur->h, &t_any);
        dur_item(c, 'M', &dur->min, &t_any);
        dur_item(c, 'S', &dur->s, &t_any);
        if (!t_any)
            return fail(c, "empty time part in duration of '%.48s'", c->text);
        any = true;
    }
    if (!any || *c->p != '\0')
        return fail(c, "bad duration in '%.48s' (want PnYnMnD)", c->text);
    return OBS_OK;
}

/* start/duration: the start (year, month, day or date-time) is in out. */
static int
parse_range(cur_t *c, period_t *out)
{
    if (out->kind != PERIOD_YEAR && out->kind != PERIOD_MONTH &&
        out->kind != PERIOD_DAY && out->kind != PERIOD_DATETIME)
        return not_period(c);
    dur_t dur;
    int rc = parse_duration(c, &dur);
    if (rc != OBS_OK)
        return rc;
    /* Add years and months to the start date (clamping the day to the
     * month's length), then weeks, days and the time part; the range
     * covers up to the moment before that end. */
    int y, m, d;
    civil_from_days(out->start_day, &y, &m, &d);
    int64_t months = (int64_t)y * 12 + (m - 1) + dur.y * 12 + dur.m;
    if (months < 0)
        return not_period(c);
    int64_t ey = months / 12;
    int em = (int)(months % 12) + 1;
    if (ey > 9999)
        return fail(c, "range '%.48s' ends after year 9999", c->text);
    int ed = d < month_days(ey, em) ? d : month_days(ey, em);
    int64_t end = days_from_civil(ey, em, ed) + 7 * dur.w + dur.d;
    int64_t secs = out->seconds + dur.h * 3600 + dur.min * 60 + dur.s;
    end += secs / SECS_PER_DAY;
    if (secs % SECS_PER_DAY == 0)
        end--; /* ends at midnight: the previous day is the last one */
    if (end < out->start_day)
        return fail(c, "empty duration in '%.48s'", c->text);
    if (end > days_from_civil(9999, 12, 31))
        return fail(c, "range '%.48s' ends after year 9999", c->text);
    out->kind = PERIOD_RANGE;
    out->end_day = (int32_t)end;
    return OBS_OK;
}

/* NOLINTBEGIN(readability-non-const-parameter): why is written through
 * cur_t, which clang-tidy does not follow. */
int
period_parse(const char *text, int min_year, int max_year, period_t *out,
             char *why, size_t cap)
{
    cur_t c = {text != NULL ? text : "", text != NULL ? text : "", why, cap};
    memset(out, 0, sizeof(*out));
    if (c.text[0] == '\0')
        return fail(&c, "empty time period");
    if (!digits(&c, 4, &out->year))
        return not_period(&c);
    if (out->year < min_year)
        return fail(&c, "year %04d before %d", out->year, min_year);
    if (out->year > max_year)
        return fail(&c, "year %04d after %d", out->year, max_year);
    int rc = OBS_OK;
    if (accept(&c, '-'))
        rc = parse_after_dash(&c, out);
    else
        set_months(out, PERIOD_YEAR, out->year, 1, 12);
    if (rc == OBS_OK && accept(&c, '/'))
        rc = parse_range(&c, out);
    if (rc == OBS_OK && *c.p != '\0')
        rc = not_period(&c);
    if (rc != OBS_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
/* NOLINTEND(readability-non-const-parameter) */

bool
period_fits_freq(const period_t *p, const char *freq)
{
    static const struct {
        const char *freq;
        period_kind_t kind, alt;
    } table[] = {{"A", PERIOD_YEAR, PERIOD_REP_YEAR},
                 {"S", PERIOD_SEMESTER, PERIOD_SEMESTER},
                 {"T", PERIOD_TRIMESTER, PERIOD_TRIMESTER},
                 {"Q", PERIOD_QUARTER, PERIOD_QUARTER},
                 {"M", PERIOD_MONTH, PERIOD_MONTH},
                 {"W", PERIOD_WEEK, PERIOD_WEEK},
                 {"D", PERIOD_DAY, PERIOD_DAY},
                 {"B", PERIOD_DAY, PERIOD_DAY}};
    if (p == NULL)
        return false;
    if (freq == NULL)
        return true;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (strcmp(freq, table[i].freq) == 0)
            return p->kind == table[i].kind || p->kind == table[i].alt;
    return true; /* unknown FREQ code: every form */
}

static void
put_be32(uint8_t *out, uint32_t v)
{
    out[0] = (uint8_t)(v >> 24);
    out[1] = (uint8_t)(v >> 16);
    out[2] = (uint8_t)(v >> 8);
    out[3] = (uint8_t)v;
}

void
period_sort_key(const period_t *p, uint8_t out[8])
{
    /* Unsigned arithmetic: start_day + 2^31 maps INT32_MIN..INT32_MAX onto
     * 0..UINT32_MAX in order. */
    put_be32(out, (uint32_t)p->start_day + 0x80000000u);
    put_be32(out + 4,
             0xffffffffu - ((uint32_t)p->end_day - (uint32_t)p->start_day));
}

/* A plain integer of milliseconds, at most 19 digits (fits uint64). */
static bool
parse_ms(const char *text, uint64_t *ms)
{
    size_t n = strlen(text);
    if (n == 0 || n > 19 || strspn(text, "0123456789") != n)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(text[i] - '0');
    *ms = v;
    return true;
}

int
period_parse_instant(const char *text, bool end_of_day, uint64_t *ms_out)
{
    if (text == NULL || ms_out == NULL)
        return OBS_EINVAL;
    if (parse_ms(text, ms_out))
        return OBS_OK;
    period_t p;
    /* Only YYYY-MM-DD and date-times: YYYY-Dddd is a day too, but nobody
     * types it on a command line and it would widen what we must support. */
    if (strlen(text) < 10 || text[7] != '-' ||
        period_parse(text, 1970, 9999, &p, NULL, 0) != OBS_OK ||
        (p.kind != PERIOD_DAY && p.kind != PERIOD_DATETIME) || p.start_day < 0)
        return OBS_EINVAL;
    uint64_t ms = (uint64_t)p.start_day * SECS_PER_DAY * 1000;
    if (p.kind == PERIOD_DATETIME)
        ms += (uint64_t)p.seconds * 1000;
    else if (end_of_day)
        ms += (uint64_t)SECS_PER_DAY * 1000 - 1;
    *ms_out = ms;
    return OBS_OK;
}
