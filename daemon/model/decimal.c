/*
 * decimal.c - OBS_VALUE and bound cells as exact decimal text (see
 * decimal.h, DOMAIN.md §5.4, §7 rule 4). A cell is trimmed, checked against
 * a small decimal grammar and rewritten with '.' as the decimal mark, its
 * digits untouched, so what was imported is what is exported and
 * "26.379918029999999" vs "26.37991803" stays a visible change. It does not
 * map symbols such as "@" to statuses (the importer does that) and does not
 * allocate. The double is derived with strtod (or, for a plain cell of up
 * to 15 digits, an exact division that gives the same double), so the
 * process must keep the "C" LC_NUMERIC locale (obsync never calls setlocale
 * for numbers).
 * Called by the importers and validation.
 */
#include "decimal.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"

static int why_fail(char *why, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
why_fail(char *why, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (why != NULL && cap > 0)
        (void)vsnprintf(why, cap, fmt, ap);
    va_end(ap);
    return OBS_EINVAL;
}

static bool
is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool
is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool
ieq(const char *a, size_t n, const char *b)
{
    if (strlen(b) != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool upper = a[i] >= 'A' && a[i] <= 'Z';
        if (a[i] != b[i] && !(upper && a[i] - 'A' + 'a' == b[i]))
            return false;
    }
    return true;
}

/* Where the cell's decimal marks are, and how many. */
typedef struct {
    size_t n_dot, n_comma;
} marks_t;

static marks_t
count_marks(const char *s, size_t n)
{
    marks_t m = {0, 0};
    for (size_t i = 0; i < n; i++) {
        m.n_dot += s[i] == '.';
        m.n_comma += s[i] == ',';
    }
    return m;
}

/* Checks [+-]digits[mark digits][(e|E)[+-]digits], at least one mantissa
 * digit; mark is '.' or ',' (already vetted by the caller). */
static bool
is_decimal(const char *s, size_t n)
{
    size_t i = 0, mant = 0;
    if (i < n && (s[i] == '+' || s[i] == '-'))
        i++;
    for (; i < n && is_digit(s[i]); i++)
        mant++;
    if (i < n && (s[i] == '.' || s[i] == ','))
        for (i++; i < n && is_digit(s[i]); i++)
            mant++;
    if (mant == 0)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        size_t exp = 0;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        for (; i < n && is_digit(s[i]); i++)
            exp++;
        if (exp == 0)
            return false;
    }
    return i == n;
}

/* The decimal-mark rules of DOMAIN.md §7 rule 4, before the grammar. */
static int
check_marks(const char *s, size_t n, bool decimal_comma, char *why,
            size_t why_cap)
{
    marks_t m = count_marks(s, n);
    if (m.n_comma > 0 && (m.n_dot > 0 || m.n_comma > 1))
        return why_fail(why, why_cap, "thousands separator in '%.*s'", (int)n,
                        s);
    if (m.n_comma == 1 && !decimal_comma && is_decimal(s, n))
        return why_fail(why, why_cap,
                        "decimal comma in '%.*s' (declare --decimal-comma "
                        "or use ';')",
                        (int)n, s);
    return OBS_OK;
}

static int
check_special(const char *s, size_t n, char *why, size_t why_cap)
{
    const char *inf[] = {"inf",      "+inf",      "-inf",
                         "infinity", "+infinity", "-infinity"};
    for (size_t i = 0; i < sizeof(inf) / sizeof(inf[0]); i++)
        if (ieq(s, n, inf[i]))
            return why_fail(why, why_cap, "not a finite number: '%.*s'", (int)n,
                            s);
    if (!is_decimal(s, n))
        return why_fail(why, why_cap, "not a number: '%.*s'", (int)n, s);
    return OBS_OK;
}

/* Writes the normalised text: no leading '+', ',' becomes '.'. */
static int
write_out(const char *s, size_t n, char *out, size_t cap, char *why,
          size_t why_cap)
{
    if (n > 0 && s[0] == '+') {
        s++;
        n--;
    }
    if (out == NULL || n + 1 > cap)
        return why_fail(why, why_cap, "no room for '%.*s'", (int)n, s);
    memcpy(out, s, n);
    for (size_t i = 0; i < n; i++)
        if (out[i] == ',')
            out[i] = '.';
    out[n] = '\0';
    return OBS_OK;
}

/* The common cell, already normal: [-]digits[.digits] with at most 15
 * digits and no space. Its double is the digits as an integer (exact below
 * 2^53) divided by an exact power of ten: one correctly rounded division,
 * so the same double strtod gives (Clinger's fast path), at a fraction of
 * strtod's cost (a hub validates every replicated value). False, with
 * nothing written, for anything else. */
static bool
normal_fast(const char *cell, char *out, size_t cap, double *num)
{
#if FLT_EVAL_METHOD != 0 /* x87: the division could be rounded twice */
    (void)cell, (void)out, (void)cap, (void)num;
    return false;
#endif
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3, 1e4,  1e5,
                                   1e6,  1e7,  1e8,  1e9, 1e10, 1e11,
                                   1e12, 1e13, 1e14, 1e15};
    const char *s = cell + (cell[0] == '-');
    uint64_t mant = 0;
    size_t digits = 0, frac = 0, i = 0;
    bool dot = false;
    for (;; i++) {
        char ch = s[i];
        if (is_digit(ch)) {
            mant = mant * 10 + (uint64_t)(ch - '0');
            digits++;
            frac += dot;
        } else if (ch == '.' && !dot && i > 0 && is_digit(s[i + 1])) {
            dot = true;
        } else {
            break;
        }
    }
    size_t n = (size_t)(s - cell) + i;
    if (s[i] != '\0' || digits == 0 || digits > 15 || n + 1 > cap ||
        out == NULL)
        return false;
    memcpy(out, cell, n + 1);
    if (num != NULL) {
        double v = (double)mant / pow10[frac];
        *num = cell[0] == '-' ? -v : v;
    }
    return true;
}

int
decimal_normalise(const char *cell, bool decimal_comma, char *out, size_t cap,
                  double *num, char *why, size_t why_cap)
{
    if (cell == NULL)
        return why_fail(why, why_cap, "empty");
    if (normal_fast(cell, out, cap, num))
        return OBS_OK;
    while (is_space(*cell))
        cell++;
    size_t n = strlen(cell);
    while (n > 0 && is_space(cell[n - 1]))
        n--;
    if (n == 0)
        return why_fail(why, why_cap, "empty");
    if (n > OBS_VALUE_MAX)
        return why_fail(why, why_cap, "value longer than %d characters",
                        OBS_VALUE_MAX);
    if (ieq(cell, n, "nan")) {
        if (num != NULL)
            *num = NAN;
        return write_out("NaN", 3, out, cap, why, why_cap);
    }
    int rc = check_marks(cell, n, decimal_comma, why, why_cap);
    if (rc == OBS_OK)
        rc = check_special(cell, n, why, why_cap);
    if (rc == OBS_OK)
        rc = write_out(cell, n, out, cap, why, why_cap);
    if (rc != OBS_OK)
        return rc;
    double v = strtod(out, NULL);
    if (!isfinite(v))
        return why_fail(why, why_cap, "'%s' is out of the range of a double",
                        out);
    if (num != NULL)
        *num = v;
    return OBS_OK;
}

/* The exponent of normalised text at s (after 'e'), clamped so that huge
 * exponents cannot overflow. */
static long
read_exponent(const char *s)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    long e = 0;
    for (; is_digit(*s); s++)
        if (e < 100000)
            e = e * 10 + (*s - '0');
    return sign * e;
}

bool
decimal_is_integral(const char *text)
{
    if (text == NULL)
        return false;
    size_t n = strlen(text);
    if (n == 0 || n > OBS_VALUE_MAX || !is_decimal(text, n) ||
        strchr(text, ',') != NULL)
        return false;
    const char *e = strpbrk(text, "eE");
    long exp = e != NULL ? read_exponent(e + 1) : 0;
    const char *mant_end = e != NULL ? e : text + n;
    const char *dot = memchr(text, '.', (size_t)(mant_end - text));
    const char *int_end = dot != NULL ? dot : mant_end;
    /* A digit at place p (units = 0, tenths = -1) has value place p + exp;
     * the number is integral when no non-zero digit lands below units. */
    long place = 0;
    for (size_t i = (size_t)(int_end - text); i > 0; i--, place++)
        if (is_digit(text[i - 1]) && text[i - 1] != '0' && place + exp < 0)
            return false;
    place = -1;
    for (const char *p = int_end + (dot != NULL); p < mant_end; p++, place--)
        if (*p != '0' && place + exp < 0)
            return false;
    return true;
}
