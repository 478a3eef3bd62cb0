/*
 * validate.c - the observation validator (see validate.h): DOMAIN.md §7 rules
 * 1-5, 7, 8 and 12 plus attribute types, lengths and mandatory attributes,
 * applied to one obs_t against the structure. It normalises decimal texts in
 * place (so what is stored is what was sent, with '.' as the decimal mark)
 * and reports every problem it finds as an issue naming the value, instead of
 * stopping at the first. It does not parse files (sdmx_rows.c maps CSV rows
 * to observations and calls this), does not look at the store (duplicates
 * across imports and conflicts are the engines' business) and never logs.
 * Called by the SDMX-CSV mapper and by the daemon for single puts.
 */
#include "validate.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "decimal.h"
#include "obs_err.h"
#include "period.h"

#define REF_AREA_HINT "(ISO 3166-1 alpha-3 or a declared aggregate)"

/* Parsed numbers of one observation, for the semantic rules. */
typedef struct {
    bool has_value, has_lower, has_upper;
    double value, lower, upper;
} numbers_t;

static void
year_bounds(const validate_ctx_t *ctx, int *min_year, int *max_year)
{
    *min_year = ctx->min_year;
    *max_year = ctx->max_year;
    if (*min_year != 0 || *max_year != 0)
        return;
    time_t now = time(NULL);
    struct tm tm;
    *min_year = 1900;
    validate_memo_t *m = ctx->memo;
    if (m != NULL && m->max_year != 0 && now / 86400 == m->max_year_day) {
        *max_year = m->max_year; /* gmtime_r once a day, not once a row */
        return;
    }
    *max_year = gmtime_r(&now, &tm) ? tm.tm_year + 1900 + 1 : 9999;
    if (m != NULL) {
        m->max_year = *max_year;
        m->max_year_day = now / 86400;
    }
}

static bool
is_missing_status(const char *status)
{
    static const char *const ok[] = {"M", "L", "O", "Q", "LT"};
    if (status == NULL)
        return false;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (strcmp(status, ok[i]) == 0)
            return true;
    return false;
}

/* Number of UTF-8 characters (continuation bytes are not counted). */
static size_t
utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* Says why text is not a decimal, with the most useful hint for the real
 * cases: '@' (WDR), decimal comma (CTS, WDR), other tokens. */
static void
report_not_decimal(const validate_ctx_t *ctx, const char *col, const char *text,
                   const char *why, uint64_t line, issue_list_t *issues)
{
    char tmp[OBS_VALUE_MAX + 1];
    double d;
    if (strcmp(text, "@") == 0) {
        issue_add(issues, line, col, "R4-decimal", false,
                  "%s \"@\": '@' (less than 0.005) is not a number: give an "
                  "empty OBS_VALUE with OBS_STATUS=LT",
                  col);
    } else if (!ctx->decimal_comma && strchr(text, ',') != NULL &&
               decimal_normalise(text, true, tmp, sizeof(tmp), &d, NULL, 0) ==
                   0) {
        issue_add(issues, line, col, "R4-decimal", false,
                  "%s \"%.80s\" uses a decimal comma; declare --decimal-comma "
                  "or use ';' as separator",
                  col, text);
    } else {
        issue_add(issues, line, col, "R4-decimal", false,
                  "%s \"%.80s\" is not a decimal number (%.120s)", col, text,
                  why[0] ? why : "not a number");
    }
}

/* Normalises text into out; false (with an issue) when it is no decimal. */
static bool
parse_decimal(const validate_ctx_t *ctx, const char *col, const char *text,
              char *out, size_t cap, double *num, uint64_t line,
              issue_list_t *issues)
{
    char why[160] = "";
    if (strlen(text) >= cap) {
        issue_add(issues, line, col, "R4-decimal", false,
                  "%s \"%.40s...\" is longer than %zu characters", col, text,
                  cap - 1);
        return false;
    }
    if (decimal_normalise(text, ctx->decimal_comma, out, cap, num, why,
                          sizeof(why)) == 0)
        return true;
    report_not_decimal(ctx, col, text, why, line, issues);
    return false;
}

bool
validate_dim_code(const sdmx_dataflow_t *df, size_t dim, const char *code,
                  uint64_t line, issue_list_t *issues)
{
    const sdmx_component_t *c = &df->dsd->dims[dim];
    if (code[0] == '\0') {
        issue_add(issues, line, c->id, "R2-code", false,
                  "dimension %s is empty", c->id);
        return false;
    }
    if (c->type != SDMX_TYPE_CODED || c->codelist == NULL ||
        structure_find_code(c->codelist, code) != NULL)
        return true;
    if (strcmp(c->id, "REF_AREA") == 0)
        issue_add(issues, line, c->id, "R2-code", false,
                  "REF_AREA \"%.64s\" is not in %s " REF_AREA_HINT, code,
                  c->codelist->urn);
    else
        issue_add(issues, line, c->id, "R2-code", false,
                  "%s \"%.64s\" is not a code of dimension %s in %s", c->id,
                  code, c->id, c->codelist->urn);
    return false;
}

bool
validate_time(const validate_ctx_t *ctx, const char *period, const char *freq,
              uint64_t line, issue_list_t *issues)
{
    int min_year, max_year;
    char why[160] = "";
    period_t p;
    if (period[0] == '\0') {
        issue_add(issues, line, "TIME_PERIOD", "R3-time", false,
                  "TIME_PERIOD is empty");
        return false;
    }
    year_bounds(ctx, &min_year, &max_year);
    if (period_parse(period, min_year, max_year, &p, why, sizeof(why)) != 0) {
        issue_add(issues, line, "TIME_PERIOD", "R3-time", false,
                  "TIME_PERIOD \"%.48s\": %s", period,
                  why[0] ? why : "not an SDMX time period");
        return false;
    }
    if (freq != NULL && !period_fits_freq(&p, freq)) {
        issue_add(issues, line, "TIME_PERIOD", "R3-time", false,
                  "TIME_PERIOD \"%.48s\" does not fit FREQ \"%.16s\"", period,
                  freq);
        return false;
    }
    return true;
}

/* The code of dimension index i (a derived sdmx_dsd_t index), or NULL. */
static const char *
dim_value(const obs_t *obs, int i)
{
    return i >= 0 && (size_t)i < obs->n_dims ? obs->dims[i] : NULL;
}

/* Rule 1: the dataflow exists and the key has its number of dimensions. */
static bool
check_dataflow(const sdmx_dataflow_t *df, const obs_t *obs, uint64_t line,
               issue_list_t *issues)
{
    if (df == NULL || df->dsd == NULL) {
        issue_add(issues, line, "DATAFLOW", "R1-dataflow", false,
                  "dataflow \"%.160s\" is not known",
                  obs->dataflow ? obs->dataflow : "");
        return false;
    }
    if (obs->n_dims != df->dsd->n_dims) {
        issue_add(issues, line, "DATAFLOW", "R1-dataflow", false,
                  "%zu dimension codes given, %s has %zu dimensions",
                  obs->n_dims, df->urn, df->dsd->n_dims);
        return false;
    }
    return true;
}

static const char *
provider_of(const validate_ctx_t *ctx)
{
    return ctx->provider != NULL && ctx->st != NULL ? ctx->provider : "";
}

/* Is obs's series the one the memo last accepted? */
static bool
memo_has(const validate_ctx_t *ctx, const sdmx_dataflow_t *df, const obs_t *obs)
{
    const validate_memo_t *m = ctx->memo;
    if (m == NULL || m->df != df || strcmp(m->provider, provider_of(ctx)) != 0)
        return false;
    for (size_t i = 0; i < obs->n_dims; i++)
        if (obs->dims[i] == NULL || strcmp(m->dims[i], obs->dims[i]) != 0)
            return false;
    return true;
}

static void
memo_put(const validate_ctx_t *ctx, const sdmx_dataflow_t *df, const obs_t *obs)
{
    validate_memo_t *m = ctx->memo;
    const char *provider = provider_of(ctx);
    size_t plen = strlen(provider);
    m->df = NULL;
    if (plen >= sizeof(m->provider))
        return;
    for (size_t i = 0; i < obs->n_dims; i++) {
        size_t n = strlen(obs->dims[i]);
        if (n >= sizeof(m->dims[i]))
            return;
        memcpy(m->dims[i], obs->dims[i], n + 1);
    }
    memcpy(m->provider, provider, plen + 1);
    m->df = df;
}

/* Rules 2, 3 and 12: the identity. */
static void
check_identity(const validate_ctx_t *ctx, const sdmx_dataflow_t *df,
               const obs_t *obs, uint64_t line, issue_list_t *issues)
{
    bool known = memo_has(ctx, df, obs); /* codes and authority checked */
    size_t before_codes = issues->errors, code_errors = 0;
    for (size_t i = 0; !known && i < obs->n_dims; i++)
        validate_dim_code(df, i, obs->dims[i] ? obs->dims[i] : "", line,
                          issues);
    code_errors = issues->errors - before_codes;
    validate_time(ctx, obs->time_period ? obs->time_period : "",
                  dim_value(obs, df->dsd->freq_dim), line, issues);
    if (known)
        return;
    if (ctx->provider != NULL && ctx->st != NULL) {
        const char *area = dim_value(obs, df->dsd->area_dim);
        if (!structure_may_write(ctx->st, ctx->provider, df,
                                 area ? area : "")) {
            issue_add(issues, line, "REF_AREA", "R12-authority", false,
                      "provider %.64s may not write REF_AREA \"%.64s\" in "
                      "%s",
                      ctx->provider, area ? area : "", df->urn);
            code_errors++;
        }
    }
    if (ctx->memo != NULL && code_errors == 0)
        memo_put(ctx, df, obs);
}

/* A normalised text for a view: a copy in ctx->texts (room for the value
 * and each attribute once: every text is normalised at most once). */
static char *
view_text(const validate_ctx_t *ctx, const char *text)
{
    /* one slot for the value and one per DSD attribute (<= OBS_MAX_ATTRS,
     * the structure parser's cap): each is normalised once at most */
    assert(ctx->texts->used <
           sizeof(ctx->texts->text) / sizeof(ctx->texts->text[0]));
    char *t = ctx->texts->text[ctx->texts->used++];
    (void)snprintf(t, sizeof(ctx->texts->text[0]), "%s", text);
    return t;
}

/* Rules 4 and 5 for OBS_VALUE; normalises it in place. */
static int
check_value(const validate_ctx_t *ctx, obs_t *obs, uint64_t line,
            issue_list_t *issues, numbers_t *nums)
{
    const char *v = obs->value ? obs->value : "";
    char out[OBS_VALUE_MAX + 1];
    if (v[0] == '\0') {
        const char *status = obs_get_attr(obs, "OBS_STATUS");
        if (is_missing_status(status))
            return 0;
        if (status == NULL)
            issue_add(issues, line, "OBS_VALUE", "R5-missing", false,
                      "OBS_VALUE is empty and no OBS_STATUS is given; an "
                      "empty value needs OBS_STATUS M, L, O, Q or LT (or "
                      "give NaN)");
        else
            issue_add(issues, line, "OBS_VALUE", "R5-missing", false,
                      "OBS_VALUE is empty but OBS_STATUS is \"%.16s\"; an "
                      "empty value needs OBS_STATUS M, L, O, Q or LT (or "
                      "give NaN)",
                      status);
        return 0;
    }
    if (!parse_decimal(ctx, "OBS_VALUE", v, out, sizeof(out), &nums->value,
                       line, issues))
        return 0;
    nums->has_value = !isnan(nums->value);
    if (strcmp(out, v) == 0)
        return 0;
    if (ctx->texts == NULL)
        return obs_set_value(obs, out);
    obs->value = view_text(ctx, out);
    return 0;
}

static bool
integer_text(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static bool
date_text(const char *s)
{
    period_t p;
    return strlen(s) == 10 && s[4] == '-' && s[7] == '-' &&
           period_parse(s, 0, 9999, &p, NULL, 0) == 0 && p.kind == PERIOD_DAY;
}

static bool
is_decimal_attr(const sdmx_component_t *c)
{
    return c->type == SDMX_TYPE_DECIMAL ||
           (c->type != SDMX_TYPE_CODED && (strcmp(c->id, "LOWER_BOUND") == 0 ||
                                           strcmp(c->id, "UPPER_BOUND") == 0));
}

/* A decimal attribute: normalised in place, bounds remembered. */
static int
check_decimal_attr(const validate_ctx_t *ctx, const sdmx_component_t *c,
                   obs_t *obs, const char *val, uint64_t line,
                   issue_list_t *issues, numbers_t *nums)
{
    char out[OBS_VALUE_MAX + 1];
    double d;
    if (!parse_decimal(ctx, c->id, val, out, sizeof(out), &d, line, issues))
        return 0;
    if (!isnan(d) && strcmp(c->id, "LOWER_BOUND") == 0) {
        nums->has_lower = true;
        nums->lower = d;
    } else if (!isnan(d) && strcmp(c->id, "UPPER_BOUND") == 0) {
        nums->has_upper = true;
        nums->upper = d;
    }
    if (strcmp(out, val) == 0)
        return 0;
    if (ctx->texts == NULL)
        return obs_set_attr(obs, c->id, out);
    for (size_t i = 0; i < obs->n_attrs; i++)
        if (strcmp(obs->attrs[i].id, c->id) == 0)
            obs->attrs[i].value = view_text(ctx, out);
    return 0;
}

/* Type checks of one given attribute value other than decimals. */
static void
check_typed_attr(const sdmx_component_t *c, const char *val, uint64_t line,
                 issue_list_t *issues)
{
    size_t max = c->max_len ? c->max_len : OBS_TEXT_MAX;
    switch (c->type) {
    case SDMX_TYPE_CODED:
        if (c->codelist != NULL &&
            structure_find_code(c->codelist, val) == NULL)
            issue_add(issues, line, c->id, "R2-code", false,
                      "%s \"%.64s\" is not in %s", c->id, val,
                      c->codelist->urn);
        break;
    case SDMX_TYPE_STRING:
        if (utf8_len(val) > max)
            issue_add(issues, line, c->id, "R-length", false,
                      "%s is %zu characters long, at most %zu allowed", c->id,
                      utf8_len(val), max);
        break;
    case SDMX_TYPE_INTEGER:
        if (!integer_text(val))
            issue_add(issues, line, c->id, "R1-type", false,
                      "%s \"%.64s\" is not an integer", c->id, val);
        break;
    case SDMX_TYPE_DATE:
        if (!date_text(val))
            issue_add(issues, line, c->id, "R1-type", false,
                      "%s \"%.64s\" is not a date YYYY-MM-DD", c->id, val);
        break;
    case SDMX_TYPE_PERIOD: {
        period_t p;
        if (period_parse(val, 0, 9999, &p, NULL, 0) != 0)
            issue_add(issues, line, c->id, "R1-type", false,
                      "%s \"%.64s\" is not an SDMX time period", c->id, val);
        break;
    }
    case SDMX_TYPE_DECIMAL:
        break;
    }
}

/* Attributes: known to the DSD, typed, mandatory ones present. */
static int
check_attrs(const validate_ctx_t *ctx, const sdmx_dataflow_t *df, obs_t *obs,
            uint64_t line, issue_list_t *issues, numbers_t *nums)
{
    const sdmx_dsd_t *dsd = df->dsd;
    const char *vals[OBS_MAX_ATTRS] = {0}; /* by DSD index */
    /* obs's attributes and the DSD's, both in id order: one merge walk */
    for (size_t i = 0, j = 0; i < obs->n_attrs;) {
        int cmp = j < dsd->n_attrs ? strcmp(obs->attrs[i].id,
                                            dsd->attrs[dsd->attr_by_id[j]].id)
                                   : -1;
        if (cmp == 0) {
            vals[dsd->attr_by_id[j++]] = obs->attrs[i++].value;
        } else if (cmp > 0) {
            j++;
        } else {
            issue_add(issues, line, obs->attrs[i].id, "R1-component", false,
                      "attribute %.64s is not in %s", obs->attrs[i].id,
                      dsd->urn);
            i++;
        }
    }
    for (size_t i = 0; i < dsd->n_attrs; i++) {
        const sdmx_component_t *c = &dsd->attrs[i];
        const char *val = vals[i];
        if (val == NULL) {
            if (c->mandatory)
                issue_add(issues, line, c->id, "R1-mandatory", false,
                          "mandatory attribute %s is missing", c->id);
            continue;
        }
        if (!is_decimal_attr(c)) {
            check_typed_attr(c, val, line, issues);
            continue;
        }
        int rc = check_decimal_attr(ctx, c, obs, val, line, issues, nums);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Rule 7: ranges by unit and indicator. */
static void
check_ranges(const sdmx_dataflow_t *df, const obs_t *obs, const numbers_t *nums,
             uint64_t line, issue_list_t *issues)
{
    bool warn = df->semantic == SDMX_POLICY_WARN;
    const char *unit = obs_get_attr(obs, "UNIT_MEASURE");
    const char *ind = dim_value(obs, df->dsd->indicator_dim);
    double v = nums->value;
    if (!nums->has_value)
        return;
    if (unit != NULL && strcmp(unit, "PT") == 0 && (v < 0 || v > 100))
        issue_add(issues, line, "OBS_VALUE", "R7-range", warn,
                  "OBS_VALUE %s is outside 0..100 for UNIT_MEASURE PT",
                  obs->value);
    if (unit != NULL &&
        (strcmp(unit, "PER_100000_POP") == 0 || strcmp(unit, "NUMBER") == 0) &&
        v < 0)
        issue_add(issues, line, "OBS_VALUE", "R7-range", warn,
                  "OBS_VALUE %s is negative for UNIT_MEASURE %s", obs->value,
                  unit);
    if (unit != NULL && strcmp(unit, "NUMBER") == 0 &&
        !decimal_is_integral(obs->value))
        issue_add(issues, line, "OBS_VALUE", "R7-range", warn,
                  "OBS_VALUE %s is not a whole number for UNIT_MEASURE NUMBER",
                  obs->value);
    if (ind != NULL && strcmp(ind, "AGE_FIRST_USE") == 0 && (v < 5 || v > 80))
        issue_add(issues, line, "OBS_VALUE", "R7-range", warn,
                  "OBS_VALUE %s is outside 5..80 years for INDICATOR "
                  "AGE_FIRST_USE",
                  obs->value);
}

/* Rule 8: the bounds surround the value and are ordered. */
static void
check_bounds(const sdmx_dataflow_t *df, const obs_t *obs, const numbers_t *nums,
             uint64_t line, issue_list_t *issues)
{
    bool warn = df->semantic == SDMX_POLICY_WARN;
    const char *lo = obs_get_attr(obs, "LOWER_BOUND");
    const char *hi = obs_get_attr(obs, "UPPER_BOUND");
    if (nums->has_value && nums->has_lower && nums->value < nums->lower)
        issue_add(issues, line, "OBS_VALUE", "R8-bounds", warn,
                  "OBS_VALUE %s below LOWER_BOUND %s", obs->value, lo);
    if (nums->has_value && nums->has_upper && nums->value > nums->upper)
        issue_add(issues, line, "OBS_VALUE", "R8-bounds", warn,
                  "OBS_VALUE %s above UPPER_BOUND %s", obs->value, hi);
    if (nums->has_lower && nums->has_upper && nums->lower > nums->upper)
        issue_add(issues, line, "LOWER_BOUND", "R8-bounds", warn,
                  "LOWER_BOUND %s above UPPER_BOUND %s", lo, hi);
}

int
validate_obs(const validate_ctx_t *ctx, const sdmx_dataflow_t *df, obs_t *obs,
             uint64_t line, issue_list_t *issues)
{
    size_t errors0 = issues->errors;
    numbers_t nums = {0};
    if (ctx->texts != NULL)
        ctx->texts->used = 0;
    if (!check_dataflow(df, obs, line, issues))
        return OBS_EREJECTED;
    check_identity(ctx, df, obs, line, issues);
    if (obs->ver.action != OBS_ACTION_DELETE) {
        int rc = check_value(ctx, obs, line, issues, &nums);
        if (rc == 0)
            rc = check_attrs(ctx, df, obs, line, issues, &nums);
        if (rc != 0)
            return rc;
        check_ranges(df, obs, &nums, line, issues);
        check_bounds(df, obs, &nums, line, issues);
    }
    return issues->errors > errors0 ? OBS_EREJECTED : 0;
}
