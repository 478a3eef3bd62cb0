/*
 * test_structure.c - unit tests for structure.c: the starter structure in
 * deploy/structure/ (dataflows, dimension order, codes, agreements), the
 * canonical text round trip, dataflow lookup forms, and every load error
 * (right line in the issues, nothing merged).
 */
/* cmocka.h needs setjmp.h, stdarg.h and stddef.h before it */
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

#include "obs.h"
#include "obs_err.h"
#include "structure.h"

#ifndef OBSYNC_SOURCE_DIR
#define OBSYNC_SOURCE_DIR "."
#endif

#define VIOL "OID:DF_VIOLENCE(1.0)"
#define DRUG "OID:DF_DRUG_USE(1.0)"

static structure_t *starter; /* loaded once by the group setup */

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = realloc(buf, cap * 2);
        if (nb == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    (void)fclose(f);
    *len = n;
    return buf;
}

static int
load_str(structure_t *s, const char *text, issue_list_t *issues, size_t *loaded)
{
    return structure_load_text(s, text, strlen(text), "t.structure", issues,
                               loaded);
}

static void
print_issues(const issue_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        print_message("issue: %s\n", l->items[i].message);
}

static int
setup_starter(void **state)
{
    (void)state;
    const char *dir = getenv("OBSYNC_SOURCE_DIR");
    char path[4096];
    (void)snprintf(path, sizeof(path), "%s/deploy/structure/starter.structure",
                   dir ? dir : OBSYNC_SOURCE_DIR);
    size_t len = 0;
    char *text = read_all(path, &len);
    if (text == NULL) {
        print_error("cannot read %s\n", path);
        return -1;
    }
    starter = structure_new();
    issue_list_t issues;
    issue_list_init(&issues, 0);
    int rc = structure_load_text(starter, text, len, "starter.structure",
                                 &issues, NULL);
    if (rc != 0) {
        print_error("load %s: %s\n", path, obs_strerror(rc));
        print_issues(&issues);
    }
    issue_list_fini(&issues);
    free(text);
    return rc == 0 ? 0 : -1;
}

static int
teardown_starter(void **state)
{
    (void)state;
    structure_destroy(&starter);
    assert_null(starter);
    return 0;
}

/* ---- starter structure ---- */

static void
test_starter_has_both_dataflows(void **state)
{
    (void)state;
    assert_int_equal(structure_dataflow_count(starter), 2);
    const sdmx_dataflow_t *v = structure_find_dataflow(starter, VIOL);
    const sdmx_dataflow_t *d = structure_find_dataflow(starter, DRUG);
    assert_non_null(v);
    assert_non_null(d);
    assert_string_equal(v->dsd->urn, "OID:DSD_VIOLENCE(1.0)");
    assert_string_equal(d->dsd->urn, "OID:DSD_DRUG_USE(1.0)");
    assert_int_equal(v->semantic, SDMX_POLICY_REJECT);
}

static void
assert_dims(const sdmx_dsd_t *dsd, const char *const *want, size_t n)
{
    assert_int_equal(dsd->n_dims, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(dsd->dims[i].id, want[i]);
        assert_int_equal(structure_dim_index(dsd, want[i]), (int)i);
        assert_non_null(dsd->dims[i].codelist);
    }
}

static void
test_starter_violence_dimension_order(void **state)
{
    (void)state;
    static const char *const want[] = {"FREQ", "REF_AREA",  "INDICATOR",  "SEX",
                                       "AGE",  "BREAKDOWN", "SOURCE_TYPE"};
    assert_dims(structure_find_dsd(starter, "OID:DSD_VIOLENCE(1.0)"), want, 7);
}

static void
test_starter_drug_dimension_order(void **state)
{
    (void)state;
    static const char *const want[] = {"FREQ",      "REF_AREA",  "POP_GROUP",
                                       "INDICATOR", "SUBSTANCE", "SEX",
                                       "AGE_GROUP"};
    const sdmx_dsd_t *dsd =
        structure_find_dsd(starter, "OID:DSD_DRUG_USE(1.0)");
    assert_dims(dsd, want, 7);
    assert_int_equal(structure_dim_index(dsd, "TIME_PERIOD"), -1);
}

static void
test_starter_area_codes_are_iso_alpha3(void **state)
{
    (void)state;
    const sdmx_codelist_t *cl =
        structure_find_codelist(starter, "OID:CL_AREA(1.0)");
    assert_non_null(cl);
    assert_true(cl->n_codes > 240);
    const sdmx_code_t *col = structure_find_code(cl, "COL");
    assert_non_null(col);
    assert_string_equal(col->name, "Colombia");
    assert_non_null(structure_find_code(cl, "MEX"));
    assert_non_null(structure_find_code(cl, "JAM"));
    assert_non_null(structure_find_code(cl, "LAC"));
    assert_null(structure_find_code(cl, "Columbia"));
    assert_null(structure_find_code(cl, "GBR_E_W"));
}

static void
test_starter_sex_has_total(void **state)
{
    (void)state;
    const sdmx_codelist_t *cl =
        structure_find_codelist(starter, "OID:CL_SEX(1.0)");
    const sdmx_code_t *t = structure_find_code(cl, "_T");
    assert_non_null(t);
    assert_string_equal(t->name, "Total");
    assert_null(structure_find_code(cl, "T"));
}

static void
test_starter_age_group_mixes_ages_and_grades(void **state)
{
    (void)state;
    const sdmx_codelist_t *cl =
        structure_find_codelist(starter, "OID:CL_AGE_GROUP(1.0)");
    static const char *const want[] = {"_T",     "_U",     "GRD08",  "GRD12",
                                       "Y15T64", "Y_GE15", "Y06T19", "Y15"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_non_null(structure_find_code(cl, want[i]));
    assert_string_equal(structure_find_code(cl, "Y15T64")->name,
                        "15 to 64 years");
    assert_string_equal(structure_find_code(cl, "Y_GE15")->name,
                        "15 years and over");
}

static void
test_starter_nps_children_have_parent(void **state)
{
    (void)state;
    const sdmx_codelist_t *cl =
        structure_find_codelist(starter, "OID:CL_SUBSTANCE(1.0)");
    const sdmx_code_t *c = structure_find_code(cl, "NPS_KRATOM");
    assert_non_null(c);
    assert_string_equal(c->parent, "NPS");
    assert_null(structure_find_code(cl, "NPS")->parent);
}

static void
test_starter_obs_status_has_sdmx_codes_plus_two(void **state)
{
    (void)state;
    const sdmx_codelist_t *cl =
        structure_find_codelist(starter, "OID:CL_OBS_STATUS(2.2)");
    assert_non_null(cl);
    assert_int_equal(cl->n_codes, 22);
    assert_non_null(structure_find_code(cl, "LT"));
    assert_non_null(structure_find_code(cl, "MD"));
}

static void
test_starter_attributes_typed_and_attached(void **state)
{
    (void)state;
    const sdmx_dsd_t *v = structure_find_dsd(starter, "OID:DSD_VIOLENCE(1.0)");
    const sdmx_dsd_t *d = structure_find_dsd(starter, "OID:DSD_DRUG_USE(1.0)");
    const sdmx_component_t *um = structure_find_attr(v, "UNIT_MEASURE");
    assert_non_null(um);
    assert_int_equal(um->type, SDMX_TYPE_CODED);
    assert_int_equal(um->attach, SDMX_ATTR_SERIES);
    assert_true(um->mandatory);
    const sdmx_component_t *c = structure_find_attr(v, "COMMENT_OBS");
    assert_int_equal(c->type, SDMX_TYPE_STRING);
    assert_int_equal(c->max_len, 1050);
    assert_false(c->mandatory);
    c = structure_find_attr(d, "EMBARGO_DATE");
    assert_int_equal(c->type, SDMX_TYPE_DATE);
    assert_int_equal(c->attach, SDMX_ATTR_DATASET);
    assert_non_null(structure_find_attr(d, "SURVEY_METHOD"));
    assert_null(structure_find_attr(v, "SURVEY_METHOD"));
    assert_non_null(structure_find_attr(v, "COMMENT_TS"));
    assert_null(structure_find_attr(d, "COMMENT_TS"));
}

static void
test_may_write_own_area_only(void **state)
{
    (void)state;
    const sdmx_dataflow_t *v = structure_find_dataflow(starter, VIOL);
    const sdmx_dataflow_t *d = structure_find_dataflow(starter, DRUG);
    assert_true(structure_may_write(starter, "COL", v, "COL"));
    assert_true(structure_may_write(starter, "COL", d, "COL"));
    assert_false(structure_may_write(starter, "COL", v, "MEX"));
    assert_true(structure_may_write(starter, "MEX", v, "MEX"));
}

static void
test_may_write_hub_writes_everything(void **state)
{
    (void)state;
    const sdmx_dataflow_t *v = structure_find_dataflow(starter, VIOL);
    assert_true(structure_may_write(starter, "OID", v, "MEX"));
    assert_true(structure_may_write(starter, "OID", v, "WLD"));
}

static void
test_may_write_unknown_provider_nothing(void **state)
{
    (void)state;
    const sdmx_dataflow_t *v = structure_find_dataflow(starter, VIOL);
    assert_false(structure_may_write(starter, "GBR", v, "GBR"));
    assert_false(structure_may_write(starter, "XYZ", v, "COL"));
    assert_false(structure_may_write(starter, "COL", NULL, "COL"));
}

static void
test_starter_has_hub_and_oas_agreements(void **state)
{
    (void)state;
    /* OID + 35 OAS member states, for both dataflows */
    assert_int_equal(structure_agreement_count(starter), 72);
}

static void
test_find_dataflow_without_version(void **state)
{
    (void)state;
    const sdmx_dataflow_t *df =
        structure_find_dataflow(starter, "OID:DF_VIOLENCE");
    assert_non_null(df);
    assert_string_equal(df->urn, VIOL);
}

static void
test_find_dataflow_dsd_qualified(void **state)
{
    (void)state;
    const sdmx_dataflow_t *df =
        structure_find_dataflow(starter, "OID:DSD_X@DF_VIOLENCE(1.0)");
    assert_non_null(df);
    assert_string_equal(df->urn, VIOL);
    assert_null(structure_find_dataflow(starter, "OID:DF_VIOLENCE(2.0)"));
    assert_null(structure_find_dataflow(starter, "OID:DF_NOPE"));
}

/* ---- round trip ---- */

static void
test_round_trip_reproduces_starter(void **state)
{
    (void)state;
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    int rc = structure_to_text(starter, &t1, &l1);
    assert_int_equal(rc, 0);
    structure_t *s2 = structure_new();
    issue_list_t issues;
    issue_list_init(&issues, 0);
    rc = structure_load_text(s2, t1, l1, "canon", &issues, NULL);
    print_issues(&issues);
    assert_int_equal(rc, 0);
    assert_int_equal(structure_codelist_count(s2),
                     structure_codelist_count(starter));
    assert_int_equal(structure_agreement_count(s2),
                     structure_agreement_count(starter));
    rc = structure_to_text(s2, &t2, &l2);
    assert_int_equal(rc, 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(t1, t2, l1);
    issue_list_fini(&issues);
    structure_destroy(&s2);
    free(t1);
    free(t2);
}

static void
test_reload_identical_is_noop(void **state)
{
    (void)state;
    char *t = NULL;
    size_t len = 0, loaded = 99;
    assert_int_equal(structure_to_text(starter, &t, &len), 0);
    int rc = structure_load_text(starter, t, len, "again", NULL, &loaded);
    assert_int_equal(rc, 0);
    assert_int_equal(loaded, 0);
    assert_int_equal(structure_dataflow_count(starter), 2);
    free(t);
}

static void
test_escaped_name_round_trips(void **state)
{
    (void)state;
    structure_t *s = structure_new();
    size_t loaded = 0;
    int rc = load_str(s,
                      "codelist X:CL(1.0) \"a \\\"q\\\" b\\\\c\"\n"
                      "  code B\n  code A \"x\" parent=B\nend\n",
                      NULL, &loaded);
    assert_int_equal(rc, 0);
    assert_int_equal(loaded, 1);
    const sdmx_codelist_t *cl = structure_find_codelist(s, "X:CL(1.0)");
    assert_string_equal(cl->name, "a \"q\" b\\c");
    assert_string_equal(cl->codes[1].name, "");
    char *t = NULL;
    assert_int_equal(structure_to_text(s, &t, NULL), 0);
    assert_non_null(strstr(t, "codelist X:CL(1.0) \"a \\\"q\\\" b\\\\c\"\n"
                              "  code A \"x\" parent=B\n  code B \"\"\n"));
    free(t);
    structure_destroy(&s);
}

static void
test_reference_to_earlier_load_resolves(void **state)
{
    (void)state;
    structure_t *s = structure_new();
    int rc = load_str(s, "codelist X:CL(1.0)\n code A\nend\n", NULL, NULL);
    assert_int_equal(rc, 0);
    rc = load_str(s,
                  "dataflow X:DF(1.0) dsd=X:DSD(1.0) semantic=warn\n"
                  "dsd X:DSD(1.0)\n dimension D codelist=X:CL(1.0)\nend\n",
                  NULL, NULL);
    assert_int_equal(rc, 0);
    const sdmx_dataflow_t *df = structure_find_dataflow(s, "X:DF(1.0)");
    assert_non_null(df);
    assert_int_equal(df->semantic, SDMX_POLICY_WARN);
    assert_ptr_equal(df->dsd->dims[0].codelist,
                     structure_find_codelist(s, "X:CL(1.0)"));
    structure_destroy(&s);
}

static void
test_find_dataflow_picks_highest_version(void **state)
{
    (void)state;
    structure_t *s = structure_new();
    int rc = load_str(s,
                      "codelist X:CL(1.0)\n code A\nend\n"
                      "dsd X:DSD(1.0)\n dimension D codelist=X:CL(1.0)\nend\n"
                      "dataflow X:DF(1.9) dsd=X:DSD(1.0)\n"
                      "dataflow X:DF(1.10) dsd=X:DSD(1.0)\n"
                      "dataflow X:DF$2(9.0) dsd=X:DSD(1.0)\n"
                      "dataflow X:DF(1.2) dsd=X:DSD(1.0)\n",
                      NULL, NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(structure_find_dataflow(s, "X:DF")->urn, "X:DF(1.10)");
    structure_destroy(&s);
}

static void
test_agreement_reload_replaces_areas(void **state)
{
    (void)state;
    structure_t *s = structure_new();
    const char *base = "codelist X:CL(1.0)\n code A\n code B\nend\n"
                       "dsd X:DSD(1.0)\n dimension REF_AREA "
                       "codelist=X:CL(1.0)\nend\n"
                       "dataflow X:DF(1.0) dsd=X:DSD(1.0)\n"
                       "agreement provider=P dataflow=X:DF(1.0) areas=A\n";
    assert_int_equal(load_str(s, base, NULL, NULL), 0);
    const sdmx_dataflow_t *df = structure_find_dataflow(s, "X:DF(1.0)");
    assert_false(structure_may_write(s, "P", df, "B"));
    size_t loaded = 0;
    int rc = load_str(s, "agreement provider=P dataflow=X:DF(1.0) areas=B,A\n",
                      NULL, &loaded);
    assert_int_equal(rc, 0);
    assert_int_equal(loaded, 1);
    assert_int_equal(structure_agreement_count(s), 1);
    assert_true(structure_may_write(s, "P", df, "B"));
    structure_destroy(&s);
}

/* ---- errors: right line, nothing merged ---- */

typedef struct {
    const char *text;
    uint64_t line;    /* line of the first issue */
    const char *want; /* substring of its message */
} bad_case_t;

/* Base every bad text is loaded on top of. */
static const char base_text[] =
    "codelist B:CL_A(1.0) \"A\"\n code X\n code Y\nend\n"
    "dsd B:DSD(1.0)\n dimension REF_AREA codelist=B:CL_A(1.0)\nend\n"
    "dataflow B:DF(1.0) dsd=B:DSD(1.0)\n";

static void
run_bad_case(const bad_case_t *c)
{
    structure_t *s = structure_new();
    assert_int_equal(load_str(s, base_text, NULL, NULL), 0);
    char *before = NULL, *after = NULL;
    assert_int_equal(structure_to_text(s, &before, NULL), 0);
    issue_list_t issues;
    issue_list_init(&issues, 0);
    size_t loaded = 7;
    int rc = load_str(s, c->text, &issues, &loaded);
    print_issues(&issues);
    assert_int_equal(rc, OBS_ESTRUCT);
    assert_int_equal(loaded, 0);
    assert_true(issues.n >= 1);
    assert_int_equal(issues.items[0].line, c->line);
    assert_string_equal(issues.items[0].rule, "structure");
    assert_non_null(strstr(issues.items[0].message, "t.structure:"));
    assert_non_null(strstr(issues.items[0].message, c->want));
    assert_int_equal(structure_to_text(s, &after, NULL), 0);
    assert_string_equal(before, after);
    assert_null(structure_find_codelist(s, "N:CL_NEW(1.0)"));
    free(before);
    free(after);
    issue_list_fini(&issues);
    structure_destroy(&s);
}

/* Every bad text starts with a valid new code list that must not be merged. */
#define NEW_CL "codelist N:CL_NEW(1.0)\n code Z\nend\n"

static void
test_error_unknown_codelist_ref(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "dsd N:DSD(1.0)\n"
                           " dimension FREQ codelist=N:CL_NEW(1.0)\n"
                           " dimension REF_AREA codelist=B:CL_AREAS(1.0)\n"
                           "end\n",
                    6, "dimension REF_AREA: unknown codelist B:CL_AREAS(1.0)"};
    run_bad_case(&c);
}

static void
test_error_duplicate_code(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "codelist N:CL2(1.0)\n code A\n code B\n"
                           " code A \"again\"\nend\n",
                    7, "code A: duplicate (first at line 5)"};
    run_bad_case(&c);
}

static void
test_error_bad_urn(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "\ncodelist N-CL2(1.0)\n code A\nend\n", 5,
                    "bad URN"};
    run_bad_case(&c);
}

static void
test_error_bad_urn_version(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "codelist N:CL2(v1)\nend\n", 4, "bad URN"};
    run_bad_case(&c);
}

static void
test_error_missing_end_at_eof(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "# comment\ncodelist N:CL2(1.0)\n code A\n", 5,
                    "missing end"};
    run_bad_case(&c);
}

static void
test_error_missing_end_before_next_block(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "dsd N:DSD(1.0)\n"
                           " dimension A codelist=N:CL_NEW(1.0)\n"
                           "dataflow N:DF(1.0) dsd=N:DSD(1.0)\n",
                    4, "missing end"};
    run_bad_case(&c);
}

static void
test_error_too_many_dims(void **state)
{
    (void)state;
    char text[4096];
    size_t n =
        (size_t)snprintf(text, sizeof(text), "%s", NEW_CL "dsd N:D(1.0)\n");
    for (int i = 0; i <= OBS_MAX_DIMS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n,
                              " dimension D%d codelist=N:CL_NEW(1.0)\n", i);
    (void)snprintf(text + n, sizeof(text) - n, "end\n");
    /* header on line 4, D0 on line 5, D32 (the 33rd) on line 37 */
    bad_case_t c = {text, 5 + OBS_MAX_DIMS, "more than 32 dimensions"};
    run_bad_case(&c);
}

static void
test_error_same_urn_different_content(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL
                    "codelist B:CL_A(1.0) \"A\"\n code X\n code Q\nend\n",
                    4, "already loaded with different content"};
    run_bad_case(&c);
}

static void
test_error_unterminated_quote(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "codelist N:CL2(1.0) \"oops\n code A\nend\n", 4,
                    "unterminated quoted name"};
    run_bad_case(&c);
}

static void
test_error_overlong_id(void **state)
{
    (void)state;
    char text[512];
    char id[OBS_CODE_MAX + 2];
    memset(id, 'A', OBS_CODE_MAX + 1);
    id[OBS_CODE_MAX + 1] = '\0';
    (void)snprintf(text, sizeof(text),
                   NEW_CL "codelist N:CL2(1.0)\n code %s\nend\n", id);
    bad_case_t c = {text, 5, "bad id"};
    run_bad_case(&c);
}

static void
test_id_of_max_length_is_accepted(void **state)
{
    (void)state;
    char text[512];
    char id[OBS_CODE_MAX + 1];
    memset(id, 'A', OBS_CODE_MAX);
    id[OBS_CODE_MAX] = '\0';
    (void)snprintf(text, sizeof(text), "codelist N:CL2(1.0)\n code %s\nend\n",
                   id);
    structure_t *s = structure_new();
    assert_int_equal(load_str(s, text, NULL, NULL), 0);
    structure_destroy(&s);
}

static void
test_error_unknown_parent(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "codelist N:CL2(1.0)\n code A parent=Q\nend\n", 5,
                    "unknown parent Q"};
    run_bad_case(&c);
}

static void
test_error_parent_cycle(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "codelist N:CL2(1.0)\n code A parent=B\n"
                           " code B parent=A\nend\n",
                    5, "parent cycle"};
    run_bad_case(&c);
}

static void
test_error_area_not_in_codelist(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL
                    "agreement provider=P dataflow=B:DF(1.0) areas=X,W\n",
                    4, "area W not in B:CL_A(1.0)"};
    run_bad_case(&c);
}

static void
test_error_unknown_dataflow_in_agreement(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "agreement provider=P dataflow=B:DF(2.0) areas=*\n",
                    4, "unknown dataflow B:DF(2.0)"};
    run_bad_case(&c);
}

static void
test_error_unknown_option(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "dataflow N:DF(1.0) dsd=B:DSD(1.0) colour=red\n", 4,
                    "unknown option colour="};
    run_bad_case(&c);
}

static void
test_error_implicit_component_listed(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "dsd N:D(1.0)\n attribute OBS_VALUE type=decimal\n"
                           " dimension A codelist=N:CL_NEW(1.0)\nend\n",
                    5, "implicit"};
    run_bad_case(&c);
}

static void
test_error_code_outside_block(void **state)
{
    (void)state;
    bad_case_t c = {NEW_CL "code A\n", 4, "outside a block"};
    run_bad_case(&c);
}

static void
test_error_nul_byte(void **state)
{
    (void)state;
    structure_t *s = structure_new();
    issue_list_t issues;
    issue_list_init(&issues, 0);
    static const char text[] = "codelist N:CL(1.0)\n code A\0B\nend\n";
    int rc = structure_load_text(s, text, sizeof(text) - 1, "t.structure",
                                 &issues, NULL);
    assert_int_equal(rc, OBS_ESTRUCT);
    assert_int_equal(issues.items[0].line, 2);
    assert_int_equal(structure_codelist_count(s), 0);
    issue_list_fini(&issues);
    structure_destroy(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_starter_has_both_dataflows),
        cmocka_unit_test(test_starter_violence_dimension_order),
        cmocka_unit_test(test_starter_drug_dimension_order),
        cmocka_unit_test(test_starter_area_codes_are_iso_alpha3),
        cmocka_unit_test(test_starter_sex_has_total),
        cmocka_unit_test(test_starter_age_group_mixes_ages_and_grades),
        cmocka_unit_test(test_starter_nps_children_have_parent),
        cmocka_unit_test(test_starter_obs_status_has_sdmx_codes_plus_two),
        cmocka_unit_test(test_starter_attributes_typed_and_attached),
        cmocka_unit_test(test_may_write_own_area_only),
        cmocka_unit_test(test_may_write_hub_writes_everything),
        cmocka_unit_test(test_may_write_unknown_provider_nothing),
        cmocka_unit_test(test_starter_has_hub_and_oas_agreements),
        cmocka_unit_test(test_find_dataflow_without_version),
        cmocka_unit_test(test_find_dataflow_dsd_qualified),
        cmocka_unit_test(test_round_trip_reproduces_starter),
        cmocka_unit_test(test_reload_identical_is_noop),
        cmocka_unit_test(test_escaped_name_round_trips),
        cmocka_unit_test(test_reference_to_earlier_load_resolves),
        cmocka_unit_test(test_find_dataflow_picks_highest_version),
        cmocka_unit_test(test_agreement_reload_replaces_areas),
        cmocka_unit_test(test_error_unknown_codelist_ref),
        cmocka_unit_test(test_error_duplicate_code),
        cmocka_unit_test(test_error_bad_urn),
        cmocka_unit_test(test_error_bad_urn_version),
        cmocka_unit_test(test_error_missing_end_at_eof),
        cmocka_unit_test(test_error_missing_end_before_next_block),
        cmocka_unit_test(test_error_too_many_dims),
        cmocka_unit_test(test_error_same_urn_different_content),
        cmocka_unit_test(test_error_unterminated_quote),
        cmocka_unit_test(test_error_overlong_id),
        cmocka_unit_test(test_id_of_max_length_is_accepted),
        cmocka_unit_test(test_error_unknown_parent),
        cmocka_unit_test(test_error_parent_cycle),
        cmocka_unit_test(test_error_area_not_in_codelist),
        cmocka_unit_test(test_error_unknown_dataflow_in_agreement),
        cmocka_unit_test(test_error_unknown_option),
        cmocka_unit_test(test_error_implicit_component_listed),
        cmocka_unit_test(test_error_code_outside_block),
        cmocka_unit_test(test_error_nul_byte),
    };
    return cmocka_run_group_tests(tests, setup_starter, teardown_starter);
}
