/*
 * test_export.c - unit tests of libobsync's output formatting (client/lib/
 * export.c): SDMX-CSV quoting, the union header over several dataflows,
 * ACTION D for tombstones, JSON escaping and exact value text. Output goes
 * to an open_memstream; no daemon involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>

#include "obsync/obsync.h"

typedef struct {
    FILE *f;
    char *buf;
    size_t len;
} sink_t;

static void
sink_open(sink_t *s)
{
    memset(s, 0, sizeof(*s));
    s->f = open_memstream(&s->buf, &s->len);
    assert_non_null(s->f);
}

static const char *
sink_text(sink_t *s)
{
    fflush(s->f);
    return s->buf;
}

static void
sink_close(sink_t *s)
{
    fclose(s->f);
    free(s->buf);
}

static const char *const viol_dims[] = {"FREQ", "REF_AREA", "INDICATOR"};
static const char *const viol_attrs[] = {"OBS_STATUS", "UNIT_MEASURE"};
static const char *const drug_dims[] = {"FREQ", "REF_AREA", "SUBSTANCE"};
static const char *const drug_attrs[] = {"OBS_STATUS", "SOURCE_DETAIL"};

static const obsync_columns_t two_flows[] = {
    {"OID:DF_VIOLENCE(1.0)", 3, viol_dims, 2, viol_attrs},
    {"OID:DF_DRUG_USE(1.0)", 3, drug_dims, 2, drug_attrs},
};

static obsync_obs_t
mex_2023(void)
{
    static const char *const codes[] = {"A", "MEX", "VC_IHR_PSRC"};
    static const obsync_attr_t attrs[] = {{"OBS_STATUS", "A"},
                                          {"UNIT_MEASURE", "PER_100000_POP"}};
    obsync_obs_t o;
    memset(&o, 0, sizeof(o));
    o.dataflow = "OID:DF_VIOLENCE(1.0)";
    o.series_key = "A.MEX.VC_IHR_PSRC";
    o.n_dims = 3;
    o.dims = codes;
    o.dim_ids = viol_dims;
    o.time_period = "2023";
    o.value = "24.858995";
    o.n_attrs = 2;
    o.attrs = attrs;
    o.origin = "node-mx";
    o.provider = "OID";
    o.batch_id = "b1";
    o.hlc = (uint64_t)1719400000123 << 16;
    o.time_ms = 1719400000123;
    return o;
}

static void
test_export_csv_header_is_union_of_dataflows(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    obsync_csv_writer_t *w = NULL;
    int rc = obsync_csv_writer_new(s.f, two_flows, 2, &w);
    if (rc != OBSYNC_OK)
        fail_msg("writer: %s", obsync_strerror(rc));
    assert_string_equal(sink_text(&s),
                        "STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,"
                        "SUBSTANCE,TIME_PERIOD,OBS_VALUE,OBS_STATUS,"
                        "UNIT_MEASURE,SOURCE_DETAIL\n");
    obsync_csv_writer_free(&w);
    assert_null(w);
    sink_close(&s);
}

static void
test_export_csv_leaves_other_dataflow_cells_empty(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    obsync_csv_writer_t *w = NULL;
    assert_int_equal(obsync_csv_writer_new(s.f, two_flows, 2, &w), OBSYNC_OK);
    obsync_obs_t o = mex_2023();
    assert_int_equal(obsync_csv_write_obs(w, &o), OBSYNC_OK);
    const char *text = strchr(sink_text(&s), '\n') + 1;
    assert_string_equal(text, "dataflow,OID:DF_VIOLENCE(1.0),M,A,MEX,"
                              "VC_IHR_PSRC,,2023,24.858995,A,PER_100000_POP,"
                              "\n");
    obsync_csv_writer_free(&w);
    sink_close(&s);
}

static void
test_export_csv_tombstone_has_action_d(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    obsync_csv_writer_t *w = NULL;
    assert_int_equal(obsync_csv_writer_new(s.f, two_flows, 1, &w), OBSYNC_OK);
    obsync_obs_t o = mex_2023();
    o.tombstone = true;
    o.value = "";
    o.n_attrs = 0;
    assert_int_equal(obsync_csv_write_obs(w, &o), OBSYNC_OK);
    const char *text = strchr(sink_text(&s), '\n') + 1;
    assert_string_equal(
        text, "dataflow,OID:DF_VIOLENCE(1.0),D,A,MEX,VC_IHR_PSRC,2023,,,\n");
    obsync_csv_writer_free(&w);
    sink_close(&s);
}

static void
test_export_csv_quotes_separator_quote_and_newlines(void **state)
{
    (void)state;
    static const char *const ids[] = {"SOURCE_DETAIL"};
    static const obsync_columns_t cols = {"X:Y(1.0)", 0, NULL, 1, ids};
    static const obsync_attr_t attrs[] = {
        {"SOURCE_DETAIL", "World Bank \"WDI\", UNODC\r\nline2"}};
    sink_t s;
    sink_open(&s);
    obsync_csv_writer_t *w = NULL;
    assert_int_equal(obsync_csv_writer_new(s.f, &cols, 1, &w), OBSYNC_OK);
    obsync_obs_t o;
    memset(&o, 0, sizeof(o));
    o.dataflow = "X:Y(1.0)";
    o.time_period = "2020-Q1";
    o.value = "1,5";
    o.n_attrs = 1;
    o.attrs = attrs;
    assert_int_equal(obsync_csv_write_obs(w, &o), OBSYNC_OK);
    const char *text = strchr(sink_text(&s), '\n') + 1;
    assert_string_equal(text, "dataflow,X:Y(1.0),M,2020-Q1,\"1,5\","
                              "\"World Bank \"\"WDI\"\", UNODC\r\nline2\"\n");
    obsync_csv_writer_free(&w);
    sink_close(&s);
}

static void
test_export_csv_value_text_is_exact(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    obsync_csv_writer_t *w = NULL;
    assert_int_equal(obsync_csv_writer_new(s.f, two_flows, 1, &w), OBSYNC_OK);
    obsync_obs_t o = mex_2023();
    o.value = "7.00071970177976000"; /* trailing zeros must survive */
    assert_int_equal(obsync_csv_write_obs(w, &o), OBSYNC_OK);
    assert_non_null(strstr(sink_text(&s), ",7.00071970177976000,"));
    obsync_csv_writer_free(&w);
    sink_close(&s);
}

static void
test_export_csv_unknown_attribute_is_a_protocol_error(void **state)
{
    (void)state;
    static const obsync_attr_t attrs[] = {{"NOT_IN_DSD", "x"}};
    sink_t s;
    sink_open(&s);
    obsync_csv_writer_t *w = NULL;
    assert_int_equal(obsync_csv_writer_new(s.f, two_flows, 1, &w), OBSYNC_OK);
    obsync_obs_t o = mex_2023();
    o.attrs = attrs;
    o.n_attrs = 1;
    assert_int_equal(obsync_csv_write_obs(w, &o), OBSYNC_EPROTO);
    obsync_csv_writer_free(&w);
    sink_close(&s);
}

static void
test_export_json_string_escapes_controls_quotes_backslash(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    assert_int_equal(obsync_json_write_string(s.f, "a\"b\\c\n\t\x01\x1f"),
                     OBSYNC_OK);
    assert_string_equal(sink_text(&s), "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\"");
    sink_close(&s);
}

static void
test_export_json_string_passes_utf8_and_replaces_invalid(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    assert_int_equal(obsync_json_write_string(s.f, "Perú \xE2\x82\xAC \xFF"),
                     OBSYNC_OK);
    assert_string_equal(sink_text(&s), "\"Perú \xE2\x82\xAC \\ufffd\"");
    sink_close(&s);
}

static void
test_export_jsonl_object_has_exact_fields(void **state)
{
    (void)state;
    sink_t s;
    sink_open(&s);
    obsync_obs_t o = mex_2023();
    assert_int_equal(obsync_jsonl_write_obs(s.f, &o), OBSYNC_OK);
    assert_string_equal(
        sink_text(&s),
        "{\"dataflow\":\"OID:DF_VIOLENCE(1.0)\",\"series_key\":"
        "\"A.MEX.VC_IHR_PSRC\",\"dims\":{\"FREQ\":\"A\",\"REF_AREA\":\"MEX\","
        "\"INDICATOR\":\"VC_IHR_PSRC\"},\"time_period\":\"2023\",\"value\":"
        "\"24.858995\",\"attrs\":{\"OBS_STATUS\":\"A\",\"UNIT_MEASURE\":"
        "\"PER_100000_POP\"},\"version\":{\"hlc\":112682598408060928,"
        "\"time\":\"2024-06-26T11:06:40.123Z\",\"origin\":\"node-mx\","
        "\"origin_seq\":0,\"provider\":\"OID\",\"action\":\"merge\","
        "\"tombstone\":false,\"batch_id\":\"b1\",\"hub_seq\":0}}\n");
    sink_close(&s);
}

static void
test_export_time_format_is_iso_utc_with_ms(void **state)
{
    (void)state;
    char buf[40];
    obsync_format_time_ms(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    obsync_format_time_ms(1719446399999ULL, buf, sizeof(buf));
    assert_string_equal(buf, "2024-06-26T23:59:59.999Z");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_export_csv_header_is_union_of_dataflows),
        cmocka_unit_test(test_export_csv_leaves_other_dataflow_cells_empty),
        cmocka_unit_test(test_export_csv_tombstone_has_action_d),
        cmocka_unit_test(test_export_csv_quotes_separator_quote_and_newlines),
        cmocka_unit_test(test_export_csv_value_text_is_exact),
        cmocka_unit_test(test_export_csv_unknown_attribute_is_a_protocol_error),
        cmocka_unit_test(
            test_export_json_string_escapes_controls_quotes_backslash),
        cmocka_unit_test(
            test_export_json_string_passes_utf8_and_replaces_invalid),
        cmocka_unit_test(test_export_jsonl_object_has_exact_fields),
        cmocka_unit_test(test_export_time_format_is_iso_utc_with_ms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
