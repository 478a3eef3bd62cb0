/*
 * test_validate.c - unit tests of the observation validator (validate.c)
 * against a small self-contained structure: each real defect from DOMAIN.md
 * §7/§9 (CTS decimal commas, WDR '@', year 2106, bounds excluding the best
 * estimate, non-ISO areas, national SEX codes, BIS missing values, ...) is
 * one table row, run as its own cmocka test.
 */
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
/* clang-format on */

#include "obs_err.h"
#include "test_support.h"
#include "validate.h"

#define VIOL      "OID:DF_VIOLENCE(1.0)"
#define DRUG      "OID:DF_DRUG_USE(1.0)"
#define DRUG_WARN "OID:DF_DRUG_WARN(1.0)"

static structure_t *st;

/* One validation case: an observation and what the validator must say. */
typedef struct {
    const char *name;
    const char *df;
    const char *key; /* "A.COL.VC_IHR_PSRC._T" */
    const char *time;
    const char *value;
    const char *attrs; /* "UNIT_MEASURE=PT;OBS_STATUS=A" */
    const char *provider;
    bool decimal_comma;
    obs_action_t action;
    int expect_rc;
    const char *rule;   /* issue expected (NULL = none at all) */
    const char *substr; /* in its message */
    bool warning;
    const char *expect_value; /* OBS_VALUE after normalising, or NULL */
} vcase_t;

static vcase_t cases[] = {
    {"cts_decimal_comma_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "1991",
     "85,42757729", "UNIT_MEASURE=PER_100000_POP", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R4-decimal",
     "OBS_VALUE \"85,42757729\" uses a decimal comma; declare "
     "--decimal-comma",
     false, NULL},
    {"cts_decimal_comma_accepted_with_locale", VIOL, "A.COL.VC_IHR_PSRC._T",
     "1991", "85,42757729", "UNIT_MEASURE=PER_100000_POP", NULL, true,
     OBS_ACTION_MERGE, 0, NULL, NULL, false, "85.42757729"},
    {"wdr_decimal_comma_0_3_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T",
     "2016", "0,3", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R4-decimal", "\"0,3\" uses a decimal comma", false, NULL},
    {"wdr_at_sign_hkg_rejected", DRUG, "A.HKG.PREV_PM.OPIOIDS._T", "2016", "@",
     "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R4-decimal", "OBS_STATUS=LT", false, NULL},
    {"wdr_at_sign_mapped_to_lt_accepted", DRUG, "A.HKG.PREV_PM.OPIOIDS._T",
     "2016", "", "UNIT_MEASURE=PT;OBS_STATUS=LT", NULL, false, OBS_ACTION_MERGE,
     0, NULL, NULL, false, ""},
    {"not_a_number_na_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2016",
     "n.a.", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R4-decimal", "\"n.a.\" is not a decimal number", false, NULL},
    {"not_a_number_dots_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2016",
     "..", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R4-decimal", "\"..\"", false, NULL},
    {"not_a_number_dash_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2016",
     "-", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R4-decimal", "\"-\"", false, NULL},
    {"wdr_year_2106_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2106", "1.2",
     "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED, "R3-time",
     "TIME_PERIOD \"2106\": ", false, NULL},
    {"quarter_period_with_annual_freq_rejected", VIOL, "A.COL.VC_IHR_PSRC._T",
     "2019-Q1", "1", "UNIT_MEASURE=PER_100000_POP", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R3-time", "does not fit FREQ \"A\"",
     false, NULL},
    {"fieldwork_span_period_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T",
     "2023/24", "1", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R3-time", "2023/24", false, NULL},
    {"latvia_opiates_bounds_rejected_under_reject", DRUG,
     "A.LVA.PREV_PY.OPIATES._T", "2012", "0.49",
     "UNIT_MEASURE=PT;LOWER_BOUND=0.5;UPPER_BOUND=0.36", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R8-bounds",
     "OBS_VALUE 0.49 below LOWER_BOUND 0.5", false, NULL},
    {"latvia_opiates_bounds_unordered_rejected", DRUG,
     "A.LVA.PREV_PY.OPIATES._T", "2012", "0.49",
     "UNIT_MEASURE=PT;LOWER_BOUND=0.5;UPPER_BOUND=0.36", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R8-bounds",
     "LOWER_BOUND 0.5 above UPPER_BOUND 0.36", false, NULL},
    {"latvia_opiates_bounds_warned_under_warn", DRUG_WARN,
     "A.LVA.PREV_PY.OPIATES._T", "2012", "0.49",
     "UNIT_MEASURE=PT;LOWER_BOUND=0.5;UPPER_BOUND=0.36", NULL, false,
     OBS_ACTION_MERGE, 0, "R8-bounds", "OBS_VALUE 0.49 below LOWER_BOUND 0.5",
     true, NULL},
    {"israel_cannabis_bounds_rejected_under_reject", DRUG,
     "A.ISR.PREV_PY.CANNABIS._T", "2009", "8.88",
     "UNIT_MEASURE=PT;LOWER_BOUND=8.9;UPPER_BOUND=9.6", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R8-bounds",
     "OBS_VALUE 8.88 below LOWER_BOUND 8.9", false, NULL},
    {"israel_cannabis_bounds_warned_under_warn", DRUG_WARN,
     "A.ISR.PREV_PY.CANNABIS._T", "2009", "8.88",
     "UNIT_MEASURE=PT;LOWER_BOUND=8.9;UPPER_BOUND=9.6", NULL, false,
     OBS_ACTION_MERGE, 0, "R8-bounds", "below LOWER_BOUND 8.9", true, NULL},
    {"bound_with_decimal_comma_rejected", DRUG, "A.ISR.PREV_PY.CANNABIS._T",
     "2009", "8.88", "UNIT_MEASURE=PT;LOWER_BOUND=8,1", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R4-decimal",
     "LOWER_BOUND \"8,1\" uses a decimal comma", false, NULL},
    {"cts_sub_national_area_rejected", VIOL, "A.GBR_E_W.VC_IHR_PSRC._T", "2015",
     "1.2", "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R2-code",
     "REF_AREA \"GBR_E_W\" is not in OID:CL_AREA(1.0) (ISO 3166-1 alpha-3 or "
     "a declared aggregate)",
     false, NULL},
    {"wdi_aggregate_lcn_rejected", VIOL, "A.LCN.VC_IHR_PSRC._T", "2015", "20",
     "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R2-code", "REF_AREA \"LCN\"", false, NULL},
    {"declared_aggregate_lac_accepted", VIOL, "A.LAC.VC_IHR_PSRC._T", "2015",
     "20", "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE, 0,
     NULL, NULL, false, NULL},
    {"wdr_country_name_columbia_rejected", VIOL, "A.Columbia.VC_IHR_PSRC._T",
     "2015", "20", "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R2-code", "\"Columbia\"", false, NULL},
    {"istat_national_sex_code_rejected", VIOL, "A.COL.VC_IHR_PSRC.1", "2015",
     "20", "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R2-code",
     "SEX \"1\" is not a code of dimension SEX in OID:CL_SEX(1.0)", false,
     NULL},
    {"bis_empty_value_with_status_m_accepted", VIOL, "A.COL.VC_IHR_PSRC._T",
     "2002", "", "UNIT_MEASURE=PER_100000_POP;OBS_STATUS=M", NULL, false,
     OBS_ACTION_MERGE, 0, NULL, NULL, false, NULL},
    {"empty_value_without_status_rejected", VIOL, "A.COL.VC_IHR_PSRC._T",
     "2002", "", "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R5-missing", "OBS_VALUE is empty", false, NULL},
    {"empty_value_with_status_a_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "2002",
     "", "UNIT_MEASURE=PER_100000_POP;OBS_STATUS=A", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R5-missing", "OBS_STATUS is \"A\"",
     false, NULL},
    {"nan_value_accepted_without_status", VIOL, "A.COL.VC_IHR_PSRC._T", "2002",
     "NaN", "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE, 0,
     NULL, NULL, false, "NaN"},
    {"percent_101_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2016", "101",
     "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R7-range", "OBS_VALUE 101 is outside 0..100", false, NULL},
    {"percent_101_warned_under_warn", DRUG_WARN, "A.USA.PREV_PY.CANNABIS._T",
     "2016", "101", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, 0,
     "R7-range", "outside 0..100", true, NULL},
    {"negative_count_rejected", VIOL, "A.COL.VC_IHR_PSRCN._T", "2013", "-3",
     "UNIT_MEASURE=NUMBER", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R7-range", "OBS_VALUE -3 is negative for UNIT_MEASURE NUMBER", false,
     NULL},
    {"negative_rate_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "2013", "-0.1",
     "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R7-range", "negative", false, NULL},
    {"non_integer_count_rejected", VIOL, "A.COL.VC_IHR_PSRCN._T", "2013",
     "15053.5", "UNIT_MEASURE=NUMBER", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R7-range", "not a whole number", false, NULL},
    {"integer_count_accepted", VIOL, "A.COL.VC_IHR_PSRCN._T", "2013", "15053",
     "UNIT_MEASURE=NUMBER", NULL, false, OBS_ACTION_MERGE, 0, NULL, NULL, false,
     NULL},
    {"age_of_first_use_3_rejected", DRUG, "A.USA.AGE_FIRST_USE.CANNABIS._T",
     "2016", "3", "UNIT_MEASURE=YR", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R7-range", "outside 5..80", false, NULL},
    {"unknown_dataflow_bis_der_rejected", "BIS:BIS_DER(1.0)",
     "A.U.A.B.5J.A.1E.A.HKD.TO1.A.A.3.C", "2002", "", "OBS_STATUS=M", NULL,
     false, OBS_ACTION_MERGE, OBS_EREJECTED, "R1-dataflow",
     "\"BIS:BIS_DER(1.0)\" is not known", false, NULL},
    {"wrong_dimension_count_rejected", VIOL, "A.COL.VC_IHR_PSRC", "2015", "1",
     "UNIT_MEASURE=PER_100000_POP", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R1-dataflow", "3 dimension codes given", false, NULL},
    {"provider_col_writing_mex_rejected", VIOL, "A.MEX.VC_IHR_PSRC._T", "2015",
     "1", "UNIT_MEASURE=PER_100000_POP", "COL", false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R12-authority",
     "provider COL may not write REF_AREA \"MEX\"", false, NULL},
    {"provider_oid_writing_mex_accepted", VIOL, "A.MEX.VC_IHR_PSRC._T", "2015",
     "1", "UNIT_MEASURE=PER_100000_POP", "OID", false, OBS_ACTION_MERGE, 0,
     NULL, NULL, false, NULL},
    {"provider_col_writing_col_accepted", VIOL, "A.COL.VC_IHR_PSRC._T", "2015",
     "1", "UNIT_MEASURE=PER_100000_POP", "COL", false, OBS_ACTION_MERGE, 0,
     NULL, NULL, false, NULL},
    {"provider_without_agreement_rejected", DRUG, "A.COL.PREV_PY.CANNABIS._T",
     "2015", "1", "UNIT_MEASURE=PT", "COL", false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R12-authority", "may not write", false, NULL},
    {"exact_text_kept", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2023",
     "26.379918029999999", "UNIT_MEASURE=PT", NULL, false, OBS_ACTION_MERGE, 0,
     NULL, NULL, false, "26.379918029999999"},
    {"mandatory_unit_missing_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T",
     "2023", "26.4", "", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R1-mandatory", "UNIT_MEASURE", false, NULL},
    {"attribute_not_in_dsd_rejected", DRUG, "A.USA.PREV_PY.CANNABIS._T", "2023",
     "26.4", "UNIT_MEASURE=PT;COMMENT_OBS=herb", NULL, false, OBS_ACTION_MERGE,
     OBS_EREJECTED, "R1-component",
     "attribute COMMENT_OBS is not in OID:DSD_DRUG_USE(1.0)", false, NULL},
    {"istat_lower_case_status_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "2022",
     "3", "UNIT_MEASURE=PER_100000_POP;OBS_STATUS=e", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R2-code",
     "OBS_STATUS \"e\" is not in OID:CL_OBS_STATUS(1.0)", false, NULL},
    {"unit_not_in_codelist_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "2022", "3",
     "UNIT_MEASURE=Rate per 100", NULL, false, OBS_ACTION_MERGE, OBS_EREJECTED,
     "R2-code", "UNIT_MEASURE \"Rate per 100\"", false, NULL},
    {"string_longer_than_max_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "2022",
     "3", "UNIT_MEASURE=PER_100000_POP;COMMENT_OBS=abcdefghijklmnopqrstu", NULL,
     false, OBS_ACTION_MERGE, OBS_EREJECTED, "R-length",
     "21 characters long, at most 20", false, NULL},
    {"string_of_max_length_in_utf8_accepted", VIOL, "A.COL.VC_IHR_PSRC._T",
     "2022", "3",
     "UNIT_MEASURE=PER_100000_POP;COMMENT_OBS=\xc3\xa1\xc3\xa9\xc3\xad\xc3\xb3"
     "\xc3\xba\xc3\xb1"
     "abcdefghijklmn",
     NULL, false, OBS_ACTION_MERGE, 0, NULL, NULL, false, NULL},
    {"integer_attribute_fraction_rejected", VIOL, "A.COL.VC_IHR_PSRC._T",
     "2022", "3", "UNIT_MEASURE=PER_100000_POP;DECIMALS=2.5", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R1-type",
     "DECIMALS \"2.5\" is not an integer", false, NULL},
    {"date_attribute_bad_month_rejected", VIOL, "A.COL.VC_IHR_PSRC._T", "2022",
     "3", "UNIT_MEASURE=PER_100000_POP;EMBARGO_DATE=2024-13-01", NULL, false,
     OBS_ACTION_MERGE, OBS_EREJECTED, "R1-type", "not a date", false, NULL},
    {"date_attribute_accepted", VIOL, "A.COL.VC_IHR_PSRC._T", "2022", "3",
     "UNIT_MEASURE=PER_100000_POP;EMBARGO_DATE=2024-06-26;DECIMALS=2", NULL,
     false, OBS_ACTION_MERGE, 0, NULL, NULL, false, NULL},
    {"delete_skips_value_checks", VIOL, "A.COL.VC_IHR_PSRC._T", "2022", "n.a.",
     "", NULL, false, OBS_ACTION_DELETE, 0, NULL, NULL, false, NULL},
    {"delete_still_checks_codes", VIOL, "A.GBR_E_W.VC_IHR_PSRC._T", "2022", "",
     "", NULL, false, OBS_ACTION_DELETE, OBS_EREJECTED, "R2-code", "GBR_E_W",
     false, NULL},
    {"delete_still_checks_authority", VIOL, "A.MEX.VC_IHR_PSRC._T", "2022", "",
     "", "COL", false, OBS_ACTION_DELETE, OBS_EREJECTED, "R12-authority", "MEX",
     false, NULL},
};

static int
setup_structure(void **state)
{
    (void)state;
    return test_load_fixture(&st);
}

static int
teardown_structure(void **state)
{
    (void)state;
    structure_destroy(&st);
    return 0;
}

/* Splits "a.b.c" (key) into dims; returns the count. */
static size_t
split(char *text, char sep, char **parts, size_t max)
{
    size_t n = 0;
    if (text[0] == '\0')
        return 0;
    for (char *p = text; n < max;) {
        parts[n++] = p;
        p = strchr(p, sep);
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

static void
build_obs(const vcase_t *c, obs_t *obs)
{
    char key[256], attrs[256];
    char *dims[OBS_MAX_DIMS], *kv[16];
    snprintf(key, sizeof(key), "%s", c->key);
    snprintf(attrs, sizeof(attrs), "%s", c->attrs);
    size_t nd = split(key, '.', dims, OBS_MAX_DIMS);
    int rc =
        obs_set_identity(obs, c->df, (const char *const *)dims, nd, c->time);
    assert_int_equal(rc, 0);
    assert_int_equal(obs_set_value(obs, c->value), 0);
    obs->ver.action = c->action;
    size_t na = split(attrs, ';', kv, 16);
    for (size_t i = 0; i < na; i++) {
        char *eq = strchr(kv[i], '=');
        assert_non_null(eq);
        *eq = '\0';
        assert_int_equal(obs_set_attr(obs, kv[i], eq + 1), 0);
    }
}

static const issue_t *
find_issue(const issue_list_t *l, const char *rule, const char *substr)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->items[i].rule, rule) == 0 &&
            (substr == NULL || strstr(l->items[i].message, substr) != NULL))
            return &l->items[i];
    return NULL;
}

static void
print_issues(const issue_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        print_message("  line %llu %s [%s]%s: %s\n",
                      (unsigned long long)l->items[i].line, l->items[i].column,
                      l->items[i].rule, l->items[i].warning ? " (warning)" : "",
                      l->items[i].message);
}

/* Builds case c into obs (initialised here) and validates it as line
 * `line`, through memo (may be NULL), appending to issues. */
static int
validate_built(const vcase_t *c, validate_memo_t *memo, uint64_t line,
               obs_t *obs, issue_list_t *issues)
{
    validate_ctx_t ctx = {.st = st,
                          .memo = memo,
                          .provider = c->provider,
                          .min_year = 1900,
                          .max_year = 2027,
                          .decimal_comma = c->decimal_comma};
    obs_init(obs);
    build_obs(c, obs);
    return validate_obs(&ctx, structure_find_dataflow(st, c->df), obs, line,
                        issues);
}

static void
run_case(void **state)
{
    const vcase_t *c = *state;
    obs_t obs;
    issue_list_t issues;
    issue_list_init(&issues, 0);
    int rc = validate_built(c, NULL, 42, &obs, &issues);
    print_issues(&issues);
    if (rc != c->expect_rc)
        fail_msg("%s: validate_obs returned %s, expected %s", c->name,
                 obs_strerror(rc), obs_strerror(c->expect_rc));
    if (c->rule == NULL) {
        assert_int_equal(issues.n, 0);
    } else {
        const issue_t *it = find_issue(&issues, c->rule, c->substr);
        if (it == NULL) {
            fail_msg("%s: no %s issue containing '%s'", c->name, c->rule,
                     c->substr);
            return;
        }
        assert_int_equal(it->line, 42);
        assert_int_equal(it->warning, c->warning);
    }
    if (c->expect_value != NULL)
        assert_string_equal(obs.value, c->expect_value);
    obs_fini(&obs);
    issue_list_fini(&issues);
}

static void
test_issue_names_the_column(void **state)
{
    (void)state;
    vcase_t c = cases[0];
    validate_ctx_t ctx = {.st = st, .min_year = 1900, .max_year = 2027};
    obs_t obs;
    issue_list_t issues;
    obs_init(&obs);
    issue_list_init(&issues, 0);
    build_obs(&c, &obs);
    validate_obs(&ctx, structure_find_dataflow(st, c.df), &obs, 7, &issues);
    const issue_t *it = find_issue(&issues, "R4-decimal", NULL);
    assert_non_null(it);
    assert_string_equal(it->column, "OBS_VALUE");
    obs_fini(&obs);
    issue_list_fini(&issues);
}

static void
test_default_year_bounds_reject_2106(void **state)
{
    (void)state;
    validate_ctx_t ctx = {.st = st}; /* 0, 0 = 1900 .. current year + 1 */
    issue_list_t issues;
    issue_list_init(&issues, 0);
    assert_false(validate_time(&ctx, "2106", "A", 3, &issues));
    assert_true(validate_time(&ctx, "2019", "A", 3, &issues));
    assert_false(validate_time(&ctx, "1899", NULL, 3, &issues));
    assert_int_equal(issues.errors, 2);
    /* the same through a memo, which keeps the day's bound */
    validate_memo_t memo = {0};
    ctx.memo = &memo;
    for (int i = 0; i < 2; i++) {
        assert_false(validate_time(&ctx, "2106", "A", 3, &issues));
        assert_true(validate_time(&ctx, "2019", "A", 3, &issues));
    }
    assert_true(memo.max_year > 2025 && memo.max_year < 2106);
    assert_int_equal(issues.errors, 4);
    issue_list_fini(&issues);
}

static void
test_decimal_bounds_normalised_in_place(void **state)
{
    (void)state;
    vcase_t c = {.df = DRUG,
                 .key = "A.MEX.PREV_PY.CANNABIS._T",
                 .time = "2016",
                 .value = "2,1",
                 .attrs = "UNIT_MEASURE=PT;LOWER_BOUND=1,9;UPPER_BOUND=2,3"};
    validate_ctx_t ctx = {
        .st = st, .min_year = 1900, .max_year = 2027, .decimal_comma = true};
    obs_t obs;
    issue_list_t issues;
    obs_init(&obs);
    issue_list_init(&issues, 0);
    build_obs(&c, &obs);
    int rc =
        validate_obs(&ctx, structure_find_dataflow(st, DRUG), &obs, 1, &issues);
    print_issues(&issues);
    assert_int_equal(rc, 0);
    assert_string_equal(obs.value, "2.1");
    assert_string_equal(obs_get_attr(&obs, "LOWER_BOUND"), "1.9");
    assert_string_equal(obs_get_attr(&obs, "UPPER_BOUND"), "2.3");
    obs_fini(&obs);
    issue_list_fini(&issues);
}

/* A view (the hub's view of a replicated change, the mapper's view of CSV
 * cells) is never rewritten in place: normalised texts go to ctx->texts
 * and the obs points at them; the view's own buffers keep their bytes. */
static void
test_view_normalised_into_texts(void **state)
{
    (void)state;
    char value[] = "2,1", lower[] = "1,9", upper[] = "2.3", unit[] = "PT";
    char *dims[] = {"A", "MEX", "PREV_PY", "CANNABIS", "_T"};
    obs_attr_t attrs[] = {
        {"LOWER_BOUND", lower}, {"UNIT_MEASURE", unit}, {"UPPER_BOUND", upper}};
    obs_t view = {.dataflow = DRUG,
                  .n_dims = 5,
                  .dims = dims,
                  .time_period = "2016",
                  .value = value,
                  .n_attrs = 3,
                  .attrs = attrs};
    validate_texts_t texts;
    validate_ctx_t ctx = {.st = st,
                          .min_year = 1900,
                          .max_year = 2027,
                          .decimal_comma = true,
                          .texts = &texts};
    const sdmx_dataflow_t *df = structure_find_dataflow(st, DRUG);
    issue_list_t issues;
    issue_list_init(&issues, 0);
    assert_int_equal(validate_obs(&ctx, df, &view, 1, &issues), 0);
    print_issues(&issues);
    assert_int_equal(issues.n, 0);
    assert_string_equal(value, "2,1"); /* the view's bytes, untouched */
    assert_string_equal(lower, "1,9");
    assert_string_equal(view.value, "2.1");
    assert_ptr_equal(view.value, texts.text[0]);
    assert_string_equal(attrs[0].value, "1.9");
    assert_ptr_equal(attrs[2].value, upper); /* nothing to normalise */
    assert_int_equal(texts.used, 2);
    /* the texts are reused by the next call */
    view.value = value;
    attrs[0].value = lower;
    assert_int_equal(validate_obs(&ctx, df, &view, 2, &issues), 0);
    assert_int_equal(texts.used, 2);
    assert_string_equal(view.value, "2.1");
    issue_list_fini(&issues);
}

/* One case validated from scratch: rc and the issues' text. */
static int
validate_case(const vcase_t *c, validate_memo_t *memo, char *out, size_t cap)
{
    obs_t obs;
    issue_list_t issues;
    issue_list_init(&issues, 0);
    int rc = validate_built(c, memo, 9, &obs, &issues);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < issues.n && used < cap; i++)
        used += (size_t)snprintf(out + used, cap - used, "%s %s %s|",
                                 issues.items[i].column, issues.items[i].rule,
                                 issues.items[i].message);
    obs_fini(&obs);
    issue_list_fini(&issues);
    return rc;
}

/* The memo (the series last accepted) changes no verdict: every case,
 * validated right after every other one (and after itself) through one
 * memo, gives the same rc and issues as validated alone. A memo that
 * skipped a code or an authority it had not checked for this series
 * (another provider, another dataflow, one code different) fails here. */
static void
test_memo_changes_no_verdict(void **state)
{
    (void)state;
    size_t nc = sizeof(cases) / sizeof(cases[0]);
    char alone[2048], after[2048], primer[2048];
    size_t remembered = 0;
    for (size_t i = 0; i < nc; i++) {
        int rc = validate_case(&cases[i], NULL, alone, sizeof(alone));
        for (size_t j = 0; j < nc; j++) {
            validate_memo_t memo = {0};
            validate_case(&cases[j], &memo, primer, sizeof(primer));
            remembered += memo.df != NULL;
            int rc2 = validate_case(&cases[i], &memo, after, sizeof(after));
            if (rc2 != rc || strcmp(after, alone) != 0)
                fail_msg("%s after %s: %s [%s], alone %s [%s]", cases[i].name,
                         cases[j].name, obs_strerror(rc2), after,
                         obs_strerror(rc), alone);
        }
    }
    assert_true(remembered > 0); /* the memo was used at all */
}

/* Attributes are matched to the DSD's in one merge walk of two id orders:
 * unknown ids before, between and after the DSD's are each reported, and
 * the known ones among them are still checked. */
static void
test_unknown_attributes_around_known_ones(void **state)
{
    (void)state;
    vcase_t c = {.df = DRUG,
                 .key = "A.MEX.PREV_PY.CANNABIS._T",
                 .time = "2016",
                 .value = "2.1",
                 .attrs = "AAA=1;UNIT_MEASURE=PT;MMM=2;OBS_STATUS=BOGUS;"
                          "ZZZ=3;LOWER_BOUND=x"};
    char out[2048];
    assert_int_equal(validate_case(&c, NULL, out, sizeof(out)), OBS_EREJECTED);
    print_message("%s\n", out);
    assert_non_null(strstr(out, "AAA R1-component"));
    assert_non_null(strstr(out, "MMM R1-component"));
    assert_non_null(strstr(out, "ZZZ R1-component"));
    assert_non_null(strstr(out, "OBS_STATUS R2-code"));
    assert_non_null(strstr(out, "LOWER_BOUND R4-decimal"));
    assert_null(strstr(out, "LOWER_BOUND R1-component"));
    assert_null(strstr(out, "UNIT_MEASURE")); /* present, valid */
    c.attrs = "AAA=1;OBS_STATUS=A";
    assert_int_equal(validate_case(&c, NULL, out, sizeof(out)), OBS_EREJECTED);
    assert_non_null(strstr(out, "UNIT_MEASURE R1-mandatory"));
}

int
main(void)
{
    size_t nc = sizeof(cases) / sizeof(cases[0]);
    struct CMUnitTest *tests = calloc(nc + 6, sizeof(*tests));
    if (tests == NULL)
        return 1;
    for (size_t i = 0; i < nc; i++) {
        tests[i].name = cases[i].name;
        tests[i].test_func = run_case;
        tests[i].initial_state = (void *)&cases[i];
    }
    tests[nc] =
        (struct CMUnitTest)cmocka_unit_test(test_issue_names_the_column);
    tests[nc + 1] = (struct CMUnitTest)cmocka_unit_test(
        test_default_year_bounds_reject_2106);
    tests[nc + 2] = (struct CMUnitTest)cmocka_unit_test(
        test_decimal_bounds_normalised_in_place);
    tests[nc + 3] =
        (struct CMUnitTest)cmocka_unit_test(test_view_normalised_into_texts);
    tests[nc + 4] =
        (struct CMUnitTest)cmocka_unit_test(test_memo_changes_no_verdict);
    tests[nc + 5] = (struct CMUnitTest)cmocka_unit_test(
        test_unknown_attributes_around_known_ones);
    int failed = _cmocka_run_group_tests("validate", tests, nc + 6,
                                         setup_structure, teardown_structure);
    free(tests);
    return failed;
}
