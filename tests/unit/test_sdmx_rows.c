/*
 * test_sdmx_rows.c - unit tests of the SDMX-CSV header and row mapper
 * (sdmx_rows.c): SDMX-CSV 1.0 and 2.x headers, the ACTION column, wildcard
 * deletes, cell counts, header errors, duplicate keys within a file, and the
 * real defects of DOMAIN.md §9 as they arrive in rows (CTS decimal commas,
 * WDR '@' and duplicate keys, padded codes). Rows are written as text and
 * split on a separator here, as the CLI's lexer would.
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
#include "sdmx_rows.h"
#include "test_support.h"

#define VIOL      "OID:DF_VIOLENCE(1.0)"
#define DRUG      "OID:DF_DRUG_USE(1.0)"
#define DRUG_WARN "OID:DF_DRUG_WARN(1.0)"

#define V1_HEADER                                                 \
    "DATAFLOW,FREQ,REF_AREA,INDICATOR,SEX,TIME_PERIOD,OBS_VALUE," \
    "UNIT_MEASURE,OBS_STATUS"
#define V2_HEADER                                                            \
    "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,SEX,TIME_PERIOD," \
    "OBS_VALUE,UNIT_MEASURE"
#define DRUG_HEADER                                                        \
    "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,SUBSTANCE,SEX," \
    "TIME_PERIOD,OBS_VALUE,UNIT_MEASURE,LOWER_BOUND,UPPER_BOUND"

#define MAX_CELLS 64

static structure_t *st;

/* One test's mapper, row and issues. */
typedef struct {
    sdmx_csv_t *m;
    sdmx_row_t row;
    issue_list_t issues;
    char buf[1024];
    const char *cells[MAX_CELLS];
} fx_t;

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

static int
setup_fx(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    sdmx_row_init(&fx->row);
    issue_list_init(&fx->issues, 0);
    *state = fx;
    return 0;
}

static int
teardown_fx(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_close(&fx->m);
    sdmx_row_fini(&fx->row);
    issue_list_fini(&fx->issues);
    free(fx);
    return 0;
}

/* Splits text on sep into fx->cells (empty cells kept); returns the count. */
static size_t
split(fx_t *fx, const char *text, char sep)
{
    size_t n = 0;
    snprintf(fx->buf, sizeof(fx->buf), "%s", text);
    for (char *p = fx->buf; n < MAX_CELLS;) {
        fx->cells[n++] = p;
        p = strchr(p, sep);
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
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

static int
open_opts(fx_t *fx, const sdmx_csv_opts_t *opts, const char *header, char sep)
{
    size_t n = split(fx, header, sep);
    int rc = sdmx_csv_open(opts, fx->cells, n, 1, &fx->m, &fx->issues);
    print_issues(&fx->issues);
    return rc;
}

static void
open_ok(fx_t *fx, const char *header)
{
    sdmx_csv_opts_t opts = {
        .vctx = {.st = st, .min_year = 1900, .max_year = 2027}};
    int rc = open_opts(fx, &opts, header, ',');
    if (rc != 0)
        fail_msg("sdmx_csv_open: %s", obs_strerror(rc));
}

static sdmx_row_kind_t
map_sep(fx_t *fx, uint64_t line, const char *text, char sep)
{
    size_t n = split(fx, text, sep);
    size_t before = fx->issues.n;
    int rc = sdmx_csv_map(fx->m, line, fx->cells, n, &fx->row, &fx->issues);
    for (size_t i = before; i < fx->issues.n; i++)
        print_message("  line %llu %s [%s]: %s\n",
                      (unsigned long long)fx->issues.items[i].line,
                      fx->issues.items[i].column, fx->issues.items[i].rule,
                      fx->issues.items[i].message);
    if (rc != 0)
        fail_msg("sdmx_csv_map: %s", obs_strerror(rc));
    if (fx->row.kind == SDMX_ROW_OBS) { /* every mapped row: its key given */
        uint8_t key[OBS_KEY_MAX];
        int klen = obs_key_encode(&fx->row.obs, key, sizeof(key));
        assert_int_equal(fx->row.key_len, klen);
        if (klen > 0)
            assert_memory_equal(fx->row.key, key, (size_t)klen);
    }
    return fx->row.kind;
}

static sdmx_row_kind_t
map(fx_t *fx, uint64_t line, const char *text)
{
    return map_sep(fx, line, text, ',');
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
expect_issue(const fx_t *fx, const char *rule, const char *substr)
{
    if (find_issue(&fx->issues, rule, substr) == NULL)
        fail_msg("no %s issue containing '%s'", rule, substr ? substr : "");
}

/* ------------------------------------------------------------ headers */

static void
test_v1_row_maps_to_merge_observation(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,_T,1991,"
                         "85.42757729,PER_100000_POP,A"),
                     SDMX_ROW_OBS);
    const obs_t *o = &fx->row.obs;
    assert_string_equal(o->dataflow, "OID:DF_VIOLENCE(1.0)");
    assert_int_equal(o->n_dims, 4);
    assert_string_equal(o->dims[1], "COL");
    assert_string_equal(o->dims[3], "_T");
    assert_string_equal(o->time_period, "1991");
    assert_string_equal(o->value, "85.42757729");
    assert_string_equal(obs_get_attr(o, "UNIT_MEASURE"), "PER_100000_POP");
    assert_string_equal(obs_get_attr(o, "OBS_STATUS"), "A");
    assert_int_equal(fx->row.action, OBS_ACTION_MERGE);
    assert_int_equal(o->ver.action, OBS_ACTION_MERGE);
    assert_ptr_equal(fx->row.df, structure_find_dataflow(st, VIOL));
    assert_int_equal(fx->issues.n, 0);
}

static void
test_v1_dsd_qualified_dataflow_ref_accepted(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2,
                         "OID:DSD_VIOLENCE@DF_VIOLENCE(1.0),A,COL,"
                         "VC_IHR_PSRC,_T,1991,1,PER_100000_POP,"),
                     SDMX_ROW_OBS);
    assert_string_equal(fx->row.obs.dataflow, VIOL);
}

static void
test_header_labels_cut_to_id_and_bom_skipped(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, "\xEF\xBB\xBF"
                "DATAFLOW,FREQ: Frequency,REF_AREA: Reference area,"
                "INDICATOR,SEX,TIME_PERIOD: Time,OBS_VALUE,UNIT_MEASURE");
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0): Violence,A: Annual,COL: "
                         "Colombia,VC_IHR_PSRC,_T,2015,1,PER_100000_POP"),
                     SDMX_ROW_OBS);
    assert_string_equal(fx->row.obs.dims[0], "A");
    assert_string_equal(fx->row.obs.dims[1], "COL");
}

static void
test_header_unknown_column_is_eformat_naming_it(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st}};
    int rc = open_opts(fx, &opts, V1_HEADER ",DER_RISKs", ',');
    assert_int_equal(rc, OBS_EFORMAT);
    assert_null(fx->m);
    const issue_t *it = find_issue(&fx->issues, "R1-component", "DER_RISKs");
    if (it == NULL) { /* not assert_non_null: gcc -O2 warns of the deref */
        fail_msg("the expected issue is missing");
        return;
    }
    assert_string_equal(it->column, "DER_RISKs");
    assert_int_equal(it->line, 1);
}

static void
test_header_ignored_column_accepted(void **state)
{
    fx_t *fx = *state;
    const char *ignore[] = {"LAST UPDATE"};
    sdmx_csv_opts_t opts = {
        .vctx = {.st = st, .min_year = 1900, .max_year = 2027},
        .ignore_columns = ignore,
        .n_ignore = 1};
    assert_int_equal(open_opts(fx, &opts, V1_HEADER ",LAST UPDATE", ','), 0);
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,_T,2015,1,"
                         "PER_100000_POP,,14/01/25 23:00:00"),
                     SDMX_ROW_OBS);
    assert_int_equal(fx->row.obs.n_attrs, 1);
}

static void
test_header_duplicate_column_is_eformat(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st}};
    assert_int_equal(open_opts(fx, &opts, V1_HEADER ",SEX", ','), OBS_EFORMAT);
    assert_non_null(find_issue(&fx->issues, "R0-header", "SEX"));
}

static void
test_header_wrong_first_column_is_eformat(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st}};
    assert_int_equal(
        open_opts(fx, &opts, "Iso3_code,Country,Region,Year,VALUE", ','),
        OBS_EFORMAT);
    assert_non_null(find_issue(&fx->issues, "R0-header", "Iso3_code"));
}

static void
test_header_binary_garbage_is_eformat(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st}};
    const char garbage[] = "\x7f"
                           "ELF\x02\x01\x01\xff\xfe,\x80\x81\x1b[0m,\x01";
    assert_int_equal(open_opts(fx, &opts, garbage, ','), OBS_EFORMAT);
    assert_null(fx->m);
    assert_true(fx->issues.errors > 0);
    for (size_t i = 0; i < fx->issues.n; i++)
        for (const char *p = fx->issues.items[i].message; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f);
}

static void
test_empty_header_is_eformat(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st}};
    assert_int_equal(sdmx_csv_open(&opts, fx->cells, 0, 1, &fx->m, &fx->issues),
                     OBS_EFORMAT);
}

static void
test_v2_header_without_structure_id_is_eformat(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st}};
    assert_int_equal(open_opts(fx, &opts, "STRUCTURE,ACTION,FREQ", ','),
                     OBS_EFORMAT);
    assert_non_null(find_issue(&fx->issues, "R0-header", "STRUCTURE_ID"));
}

/* ------------------------------------------------------------ actions */

static void
test_v2_action_codes(void **state)
{
    static const struct {
        const char *code;
        obs_action_t action;
    } t[] = {{"M", OBS_ACTION_MERGE}, {"R", OBS_ACTION_REPLACE},
             {"I", OBS_ACTION_MERGE}, {"A", OBS_ACTION_MERGE},
             {"", OBS_ACTION_MERGE},  {"D", OBS_ACTION_DELETE}};
    fx_t *fx = *state;
    char line[256];
    open_ok(fx, V2_HEADER);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        snprintf(line, sizeof(line),
                 "dataflow,OID:DF_VIOLENCE(1.0),%s,A,COL,VC_IHR_PSRC,_T,"
                 "%zu,1,PER_100000_POP",
                 t[i].code, 2000 + i);
        if (map(fx, 2 + i, line) != SDMX_ROW_OBS)
            fail_msg("ACTION '%s' not mapped to an observation", t[i].code);
        assert_int_equal(fx->row.action, t[i].action);
        assert_int_equal(fx->row.obs.ver.action, t[i].action);
    }
    assert_int_equal(fx->issues.n, 0);
}

static void
test_v2_unknown_action_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_VIOLENCE(1.0),Upsert,A,COL,"
                         "VC_IHR_PSRC,_T,2015,1,PER_100000_POP"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R1-action", "\"Upsert\"");
}

static void
test_v2_datastructure_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2,
                         "datastructure,OID:DSD_VIOLENCE(1.0),M,A,COL,"
                         "VC_IHR_PSRC,_T,2015,1,PER_100000_POP"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R1-dataflow", "datastructure");
}

static void
test_v21_delete_row_with_wildcards_is_delete_matching(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2, "dataflow,OID:DF_VIOLENCE(1.0),D,,COL,,,,,"),
                     SDMX_ROW_DELETE_MATCHING);
    const obs_pattern_t *p = &fx->row.pattern;
    assert_int_equal(p->n, 4);
    assert_null(p->pos[0]);
    assert_string_equal(p->pos[1], "COL");
    assert_null(p->pos[2]);
    assert_null(p->pos[3]);
    assert_string_equal(fx->row.time_period, "");
    assert_int_equal(fx->row.action, OBS_ACTION_DELETE);
    assert_int_equal(fx->issues.n, 0);
}

static void
test_delete_row_with_only_structure_id_matches_everything(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2, "dataflow,OID:DF_VIOLENCE(1.0),D,,,,,,,"),
                     SDMX_ROW_DELETE_MATCHING);
    for (size_t i = 0; i < fx->row.pattern.n; i++)
        assert_null(fx->row.pattern.pos[i]);
}

static void
test_delete_row_with_empty_time_only_is_delete_matching(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_VIOLENCE(1.0),D,A,COL,VC_IHR_PSRC,"
                         "_T,,,"),
                     SDMX_ROW_DELETE_MATCHING);
    assert_string_equal(fx->row.pattern.pos[3], "_T");
    assert_string_equal(fx->row.time_period, "");
}

static void
test_delete_row_wildcard_checks_given_codes(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(
        map(fx, 2, "dataflow,OID:DF_VIOLENCE(1.0),D,,GBR_E_W,,,,,"),
        SDMX_ROW_REJECTED);
    expect_issue(fx, "R2-code", "GBR_E_W");
}

static void
test_delete_row_full_key_is_identity_only(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_VIOLENCE(1.0),D,A,COL,VC_IHR_PSRC,"
                         "_T,2015,n.a.,"),
                     SDMX_ROW_OBS);
    assert_int_equal(fx->row.obs.ver.action, OBS_ACTION_DELETE);
    assert_string_equal(fx->row.obs.value, "");
    assert_int_equal(fx->row.obs.n_attrs, 0);
    assert_int_equal(fx->issues.n, 0);
}

static void
test_merge_row_with_empty_dimension_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V2_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_VIOLENCE(1.0),M,A,COL,,_T,2015,1,"
                         "PER_100000_POP"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R1-dims", "INDICATOR is empty");
}

static void
test_missing_dimension_column_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, "DATAFLOW,FREQ,REF_AREA,INDICATOR,TIME_PERIOD,OBS_VALUE,"
                "UNIT_MEASURE");
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,2015,1,"
                         "PER_100000_POP"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R1-dims", "SEX has no column");
}

/* -------------------------------------------------------------- shape */

static void
test_wrong_cell_count_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 5, "OID:DF_VIOLENCE(1.0),A,COL"),
                     SDMX_ROW_REJECTED);
    const issue_t *it =
        find_issue(&fx->issues, "R0-shape", "row has 3 cells, header has 9");
    if (it == NULL) { /* not assert_non_null: gcc -O2 warns of the deref */
        fail_msg("the expected issue is missing");
        return;
    }
    assert_int_equal(it->line, 5);
}

static void
test_trailing_empty_cell_accepted(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,_T,2015,1,"
                         "PER_100000_POP,A,"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 3,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,_T,2016,1,"
                         "PER_100000_POP,A,x"),
                     SDMX_ROW_REJECTED);
}

static void
test_blank_line_is_empty(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2, ""), SDMX_ROW_EMPTY);
    assert_int_equal(map(fx, 3, " ,,,,,,,,"), SDMX_ROW_EMPTY);
    assert_int_equal(fx->issues.n, 0);
}

/* ------------------------------------------------- real data defects */

/* The header with ';' as separator (a static copy). */
static const char *
semicolons(const char *header)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "%s", header);
    for (char *p = buf; *p; p++)
        if (*p == ',')
            *p = ';';
    return buf;
}

static void
test_cts_decimal_comma_rejected_without_locale(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {
        .vctx = {.st = st, .min_year = 1900, .max_year = 2027}};
    assert_int_equal(open_opts(fx, &opts, semicolons(V1_HEADER), ';'), 0);
    assert_int_equal(map_sep(fx, 2,
                             "OID:DF_VIOLENCE(1.0);A;COL;VC_IHR_PSRC;_T;1991;"
                             "85,42757729;PER_100000_POP;",
                             ';'),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R4-decimal", "\"85,42757729\" uses a decimal comma");
}

static void
test_cts_decimal_comma_accepted_with_locale(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {.vctx = {.st = st,
                                     .min_year = 1900,
                                     .max_year = 2027,
                                     .decimal_comma = true}};
    assert_int_equal(open_opts(fx, &opts, semicolons(V1_HEADER), ';'), 0);
    assert_int_equal(map_sep(fx, 2,
                             "OID:DF_VIOLENCE(1.0);A;COL;VC_IHR_PSRC;_T;1991;"
                             "85,42757729;PER_100000_POP;",
                             ';'),
                     SDMX_ROW_OBS);
    assert_string_equal(fx->row.obs.value, "85.42757729");
}

static void
test_wdr_at_sign_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,HKG,PREV_PM,"
                         "OPIOIDS,_T,2016,@,PT,,"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R4-decimal",
                 "'@' (less than 0.005) is not a number: give an empty "
                 "OBS_VALUE with OBS_STATUS=LT");
}

static void
test_wdr_duplicate_key_rejected_citing_first_line(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    /* WDR 1.2: Albania 2014 cannabis from two sources (herb and resin). */
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,ALB,PREV_PY,"
                         "CANNABIS,_T,2014,1.8,PT,,"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 3,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,USA,PREV_PY,"
                         "CANNABIS,_T,2014,13.5,PT,,"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 4,
                         "dataflow,OID:DF_DRUG_USE(1.0),R,A,ALB,PREV_PY,"
                         "CANNABIS,_T,2014,2.3,PT,,"),
                     SDMX_ROW_REJECTED);
    const issue_t *it =
        find_issue(&fx->issues, "R6-duplicate", "same key as line 2");
    if (it == NULL) { /* not assert_non_null: gcc -O2 warns of the deref */
        fail_msg("the expected issue is missing");
        return;
    }
    assert_int_equal(it->line, 4);
}

static void
test_delete_then_merge_same_key_is_not_duplicate(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_DRUG_USE(1.0),D,A,ALB,PREV_PY,"
                         "CANNABIS,_T,2014,,,,"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 3,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,ALB,PREV_PY,"
                         "CANNABIS,_T,2014,1.8,PT,,"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 4,
                         "dataflow,OID:DF_DRUG_USE(1.0),D,A,ALB,PREV_PY,"
                         "CANNABIS,_T,2014,,,,"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R6-duplicate", "same key as line 2");
}

static void
test_many_distinct_keys_are_not_duplicates(void **state)
{
    fx_t *fx = *state;
    char line[256];
    open_ok(fx, DRUG_HEADER);
    for (int y = 1900; y <= 2027; y++)
        for (int s = 0; s < 3; s++) {
            snprintf(line, sizeof(line),
                     "dataflow,OID:DF_DRUG_USE(1.0),M,A,USA,PREV_PY,%s,_T,"
                     "%d,1.5,PT,,",
                     s == 0   ? "CANNABIS"
                     : s == 1 ? "OPIATES"
                              : "OPIOIDS",
                     y);
            if (map(fx, (uint64_t)(y * 3 + s), line) != SDMX_ROW_OBS)
                fail_msg("row for %d rejected", y);
        }
    assert_int_equal(fx->issues.n, 0);
    assert_int_equal(map(fx, 9999,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,USA,PREV_PY,"
                         "OPIATES,_T,1999,1.5,PT,,"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R6-duplicate", "same key as line 5998");
}

/* Maps a DF_DRUG_USE cannabis row of area and year at line; checks the
 * row kind. */
static void
map_cannabis(fx_t *fx, uint64_t line, const char *area, int year,
             sdmx_row_kind_t want)
{
    char row[256];
    snprintf(row, sizeof(row),
             "dataflow,OID:DF_DRUG_USE(1.0),M,A,%s,PREV_PY,CANNABIS,_T,%d,1.5,"
             "PT,,",
             area, year);
    if (map(fx, line, row) != want)
        fail_msg("line %llu (%s %d): not the expected row kind",
                 (unsigned long long)line, area, year);
}

/* A file in key order is checked without an index until its first key out
 * of order; then every earlier key is indexed, with its line. */
static void
test_duplicates_found_before_and_after_the_file_leaves_key_order(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    for (int y = 1900; y <= 2027; y++) /* in key order: lines 2..129 */
        map_cannabis(fx, (uint64_t)(y - 1898), "USA", y, SDMX_ROW_OBS);
    assert_int_equal(fx->issues.n, 0);
    map_cannabis(fx, 200, "USA", 2027, SDMX_ROW_REJECTED); /* still in order */
    expect_issue(fx, "R6-duplicate", "same key as line 129");
    /* an early key: out of order, found in the index built now */
    map_cannabis(fx, 201, "USA", 1950, SDMX_ROW_REJECTED);
    expect_issue(fx, "R6-duplicate", "same key as line 52");
    /* new keys after that go to the index too */
    map_cannabis(fx, 202, "ALB", 1950, SDMX_ROW_OBS);
    map_cannabis(fx, 203, "ALB", 1950, SDMX_ROW_REJECTED);
    expect_issue(fx, "R6-duplicate", "same key as line 202");
    map_cannabis(fx, 204, "USA", 1900, SDMX_ROW_REJECTED);
    expect_issue(fx, "R6-duplicate", "same key as line 2");
}

static void
test_latvia_bounds_rejected_in_row(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,LVA,PREV_PY,"
                         "OPIATES,_T,2012,0.49,PT,0.5,0.36"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R8-bounds", "OBS_VALUE 0.49 below LOWER_BOUND 0.5");
}

static void
test_latvia_bounds_warned_row_accepted_under_warn(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_DRUG_WARN(1.0),M,A,LVA,PREV_PY,"
                         "OPIATES,_T,2012,0.49,PT,0.5,0.36"),
                     SDMX_ROW_OBS);
    assert_int_equal(fx->issues.errors, 0);
    assert_true(fx->issues.warnings > 0);
}

static void
test_foreign_dataflow_column_must_be_empty(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_VIOLENCE(1.0),M,A,COL,VC_IHR_PSRC,,"
                         "_T,2015,1,PER_100000_POP,,"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 3,
                         "dataflow,OID:DF_VIOLENCE(1.0),M,A,COL,VC_IHR_PSRC,"
                         "CANNABIS,_T,2016,1,PER_100000_POP,,"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R1-component",
                 "column SUBSTANCE is not a component of "
                 "OID:DF_VIOLENCE(1.0)");
    assert_int_equal(map(fx, 4,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,COL,PREV_PY,"
                         "CANNABIS,_T,2016,1,PT,,"),
                     SDMX_ROW_OBS);
}

static void
test_unknown_dataflow_bis_der_rejected(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2, "BIS:BIS_DER(1.0),A,U,A,B,2002,,,M"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R1-dataflow", "\"BIS:BIS_DER(1.0)\" is not known");
}

static void
test_non_iso_area_rejected_in_row(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0),A,GBR_E_W,VC_IHR_PSRC,_T,2015,"
                         "1.2,PER_100000_POP,"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R2-code", "ISO 3166-1 alpha-3");
}

static void
test_padded_codes_trimmed(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0) , A ,  COL ,VC_IHR_PSRC, _T ,"
                         " 2015 , 1.5 , PER_100000_POP , A "),
                     SDMX_ROW_OBS);
    assert_string_equal(fx->row.obs.dims[1], "COL");
    assert_string_equal(fx->row.obs.time_period, "2015");
    assert_string_equal(obs_get_attr(&fx->row.obs, "UNIT_MEASURE"),
                        "PER_100000_POP");
    assert_string_equal(fx->row.obs.value, "1.5");
}

static void
test_value_kept_as_exact_text(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, DRUG_HEADER);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_DRUG_USE(1.0),M,A,USA,PREV_PY,"
                         "CANNABIS,_T,2023,26.379918029999999,PT,,"),
                     SDMX_ROW_OBS);
    assert_string_equal(fx->row.obs.value, "26.379918029999999");
}

static void
test_bis_empty_value_with_status_m_accepted(void **state)
{
    fx_t *fx = *state;
    open_ok(fx, V1_HEADER);
    assert_int_equal(map(fx, 2,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,_T,2002,,"
                         "PER_100000_POP,M"),
                     SDMX_ROW_OBS);
    assert_string_equal(fx->row.obs.value, "");
    assert_int_equal(map(fx, 3,
                         "OID:DF_VIOLENCE(1.0),A,COL,VC_IHR_PSRC,_T,2003,,"
                         "PER_100000_POP,"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R5-missing", NULL);
}

static void
test_provider_authority_checked_per_row(void **state)
{
    fx_t *fx = *state;
    sdmx_csv_opts_t opts = {
        .vctx = {
            .st = st, .provider = "COL", .min_year = 1900, .max_year = 2027}};
    assert_int_equal(open_opts(fx, &opts, V2_HEADER, ','), 0);
    assert_int_equal(map(fx, 2,
                         "dataflow,OID:DF_VIOLENCE(1.0),M,A,COL,VC_IHR_PSRC,"
                         "_T,2015,1,PER_100000_POP"),
                     SDMX_ROW_OBS);
    assert_int_equal(map(fx, 3,
                         "dataflow,OID:DF_VIOLENCE(1.0),M,A,MEX,VC_IHR_PSRC,"
                         "_T,2015,1,PER_100000_POP"),
                     SDMX_ROW_REJECTED);
    expect_issue(fx, "R12-authority", "MEX");
    assert_int_equal(map(fx, 4, "dataflow,OID:DF_VIOLENCE(1.0),D,,MEX,,,,,"),
                     SDMX_ROW_REJECTED);
}

static void
test_starter_structure_maps_rows(void **state)
{
    fx_t *fx = *state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/deploy/structure/starter.structure",
             OBSYNC_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        skip();
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    structure_t *s = structure_new();
    assert_non_null(s);
    int rc = structure_load_text(s, text, len, "starter.structure", &fx->issues,
                                 NULL);
    print_issues(&fx->issues);
    if (rc != 0)
        fail_msg("starter.structure: %s", obs_strerror(rc));
    issue_list_clear(&fx->issues);
    sdmx_csv_opts_t opts = {.vctx = {.st = s}};
    rc = open_opts(fx, &opts,
                   "DATAFLOW,FREQ,REF_AREA,INDICATOR,SEX,AGE,BREAKDOWN,"
                   "SOURCE_TYPE,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE,OBS_STATUS",
                   ',');
    if (rc != 0)
        fail_msg("open: %s", obs_strerror(rc));
    sdmx_row_kind_t k = map(fx, 2,
                            "OID:DF_VIOLENCE(1.0),A,MEX,VC_IHR_PSRC,_T,_T,_T,"
                            "HARM,2023,24.858995,PER_100000_POP,A");
    sdmx_csv_close(&fx->m);
    sdmx_row_fini(&fx->row);
    structure_destroy(&s);
    assert_int_equal(k, SDMX_ROW_OBS);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_fx, teardown_fx)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_v1_row_maps_to_merge_observation),
        T(test_v1_dsd_qualified_dataflow_ref_accepted),
        T(test_header_labels_cut_to_id_and_bom_skipped),
        T(test_header_unknown_column_is_eformat_naming_it),
        T(test_header_ignored_column_accepted),
        T(test_header_duplicate_column_is_eformat),
        T(test_header_wrong_first_column_is_eformat),
        T(test_header_binary_garbage_is_eformat),
        T(test_empty_header_is_eformat),
        T(test_v2_header_without_structure_id_is_eformat),
        T(test_v2_action_codes),
        T(test_v2_unknown_action_rejected),
        T(test_v2_datastructure_rejected),
        T(test_v21_delete_row_with_wildcards_is_delete_matching),
        T(test_delete_row_with_only_structure_id_matches_everything),
        T(test_delete_row_with_empty_time_only_is_delete_matching),
        T(test_delete_row_wildcard_checks_given_codes),
        T(test_delete_row_full_key_is_identity_only),
        T(test_merge_row_with_empty_dimension_rejected),
        T(test_missing_dimension_column_rejected),
        T(test_wrong_cell_count_rejected),
        T(test_trailing_empty_cell_accepted),
        T(test_blank_line_is_empty),
        T(test_cts_decimal_comma_rejected_without_locale),
        T(test_cts_decimal_comma_accepted_with_locale),
        T(test_wdr_at_sign_rejected),
        T(test_wdr_duplicate_key_rejected_citing_first_line),
        T(test_delete_then_merge_same_key_is_not_duplicate),
        T(test_many_distinct_keys_are_not_duplicates),
        T(test_duplicates_found_before_and_after_the_file_leaves_key_order),
        T(test_latvia_bounds_rejected_in_row),
        T(test_latvia_bounds_warned_row_accepted_under_warn),
        T(test_foreign_dataflow_column_must_be_empty),
        T(test_unknown_dataflow_bis_der_rejected),
        T(test_non_iso_area_rejected_in_row),
        T(test_padded_codes_trimmed),
        T(test_value_kept_as_exact_text),
        T(test_bis_empty_value_with_status_m_accepted),
        T(test_provider_authority_checked_per_row),
        T(test_starter_structure_maps_rows),
    };
    return cmocka_run_group_tests_name("sdmx_rows", tests, setup_structure,
                                       teardown_structure);
}
