/*
 * test_csv.c - unit tests of libobsync's streaming CSV reader (client/lib/
 * csv.c): separators, quoting, line numbers, limits and broken input. No
 * daemon involved; input comes from fmemopen().
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

#include "csv.h"
#include "obs_err.h"

typedef struct {
    FILE *f;
    csv_reader_t *r;
    char msg[256];
    int rc;
} fixture_t;

static void
open_mem(fixture_t *fx, const char *data, size_t len)
{
    memset(fx, 0, sizeof(*fx));
    /* fmemopen of length 0 is an error on some libcs: open a tmpfile then */
    fx->f = len ? fmemopen((void *)(uintptr_t)data, len, "r") : tmpfile();
    assert_non_null(fx->f);
    fx->rc = csv_reader_new(fx->f, &fx->r, fx->msg, sizeof(fx->msg));
}

static void
open_str(fixture_t *fx, const char *s)
{
    open_mem(fx, s, strlen(s));
    if (fx->rc != OBS_OK)
        fail_msg("csv_reader_new: %s (%s)", obs_strerror(fx->rc), fx->msg);
}

static void
close_fx(fixture_t *fx)
{
    csv_reader_free(&fx->r);
    assert_null(fx->r);
    fclose(fx->f);
}

static const csv_record_t *
next_ok(fixture_t *fx)
{
    const csv_record_t *rec = NULL;
    int rc = csv_next(fx->r, &rec);
    if (rc != OBS_OK)
        fail_msg("csv_next: %s (%s)", obs_strerror(rc), csv_errmsg(fx->r));
    assert_non_null(rec);
    return rec;
}

static void
expect_eof(fixture_t *fx)
{
    const csv_record_t *rec = NULL;
    assert_int_equal(csv_next(fx->r, &rec), OBS_OK);
    assert_null(rec);
}

static void
test_csv_bom_is_stripped_from_first_cell(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "\xEF\xBB\xBF"
                  "DATAFLOW,REF_AREA\nOID:DF(1.0),MEX\n");
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 2);
    assert_string_equal(rec->cells[0], "DATAFLOW");
    assert_int_equal(rec->line, 1);
    rec = next_ok(&fx);
    assert_string_equal(rec->cells[1], "MEX");
    expect_eof(&fx);
    close_fx(&fx);
}

static void
test_csv_quoted_cells_keep_commas_and_decimal_commas(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b,c\nx,\"Rate per 100,000 population\",\"85,42757729\"\n");
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 3);
    assert_string_equal(rec->cells[1], "Rate per 100,000 population");
    assert_string_equal(rec->cells[2], "85,42757729");
    close_fx(&fx);
}

static void
test_csv_doubled_quotes_become_one(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b\n\"say \"\"hi\"\"\",2\n");
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_string_equal(rec->cells[0], "say \"hi\"");
    assert_int_equal(rec->lens[0], 8);
    close_fx(&fx);
}

static void
test_csv_semicolon_after_dataflow_is_the_separator(void **state)
{
    (void)state;
    fixture_t fx;
    /* more commas than semicolons, but the SDMX rule wins */
    open_str(&fx, "DATAFLOW;REF_AREA;OBS_VALUE\nX:Y(1.0);MEX;1,5\n");
    assert_int_equal(csv_separator(fx.r), ';');
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 3);
    assert_string_equal(rec->cells[2], "1,5");
    close_fx(&fx);
}

static void
test_csv_structure_header_with_subfield_declares_separator(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "STRUCTURE[,];STRUCTURE_ID;ACTION\n");
    assert_int_equal(csv_separator(fx.r), ';');
    close_fx(&fx);
}

static void
test_csv_tab_separator_is_sniffed(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "iso3\tyear\tvalue\nMEX\t2023\t24.858995\n");
    assert_int_equal(csv_separator(fx.r), '\t');
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 3);
    assert_string_equal(rec->cells[2], "24.858995");
    close_fx(&fx);
}

static void
test_csv_pipe_separator_is_sniffed(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a|b|\"c,d\"\n");
    assert_int_equal(csv_separator(fx.r), '|');
    close_fx(&fx);
}

static void
test_csv_crlf_line_ends(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b\r\n1,2\r\n3,4\r\n");
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_string_equal(rec->cells[1], "2");
    assert_int_equal(rec->line, 2);
    rec = next_ok(&fx);
    assert_string_equal(rec->cells[0], "3");
    assert_int_equal(rec->line, 3);
    expect_eof(&fx);
    close_fx(&fx);
}

static void
test_csv_empty_values_are_empty_cells(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b,c,d\n,,\"\",\n");
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_string_equal(rec->cells[i], "");
        assert_int_equal(rec->lens[i], 0);
    }
    close_fx(&fx);
}

static void
test_csv_one_megabyte_field_is_read_whole(void **state)
{
    (void)state;
    size_t big = 1024 * 1024;
    char *data = malloc(big + 16);
    assert_non_null(data);
    memcpy(data, "h\n\"", 3);
    memset(data + 3, 'x', big);
    memcpy(data + 3 + big, "\"\nz\n", 4);
    fixture_t fx;
    open_mem(&fx, data, big + 7);
    assert_int_equal(fx.rc, OBS_OK);
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->lens[0], big);
    assert_int_equal(rec->cells[0][big - 1], 'x');
    rec = next_ok(&fx);
    assert_string_equal(rec->cells[0], "z");
    assert_int_equal(rec->line, 3);
    close_fx(&fx);
    free(data);
}

static void
test_csv_field_over_8_mib_is_an_error_naming_the_line(void **state)
{
    (void)state;
    size_t big = CSV_FIELD_MAX + 10;
    char *data = malloc(big + 16);
    assert_non_null(data);
    memcpy(data, "h\n", 2);
    memset(data + 2, 'x', big);
    memcpy(data + 2 + big, "\nok\n", 4);
    fixture_t fx;
    open_mem(&fx, data, big + 6);
    next_ok(&fx);
    const csv_record_t *rec = NULL;
    assert_int_equal(csv_next(fx.r, &rec), OBS_EFORMAT);
    assert_null(rec);
    assert_non_null(strstr(csv_errmsg(fx.r), "line 2:"));
    assert_non_null(strstr(csv_errmsg(fx.r), "8 MiB"));
    rec = next_ok(&fx); /* the reader goes on after the bad record */
    assert_string_equal(rec->cells[0], "ok");
    assert_int_equal(rec->line, 3);
    close_fx(&fx);
    free(data);
}

static void
test_csv_unterminated_quote_at_end_fails_that_record_only(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b\n1,2\n3,\"trunc");
    next_ok(&fx);
    next_ok(&fx);
    const csv_record_t *rec = NULL;
    assert_int_equal(csv_next(fx.r, &rec), OBS_EFORMAT);
    assert_string_equal(csv_errmsg(fx.r),
                        "line 3: unterminated quoted field (truncated file?)");
    expect_eof(&fx);
    close_fx(&fx);
}

static void
test_csv_last_line_without_newline_is_a_record(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b\n1,2");
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 2);
    assert_string_equal(rec->cells[1], "2");
    expect_eof(&fx);
    close_fx(&fx);
}

static void
test_csv_embedded_newline_keeps_later_line_numbers(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, "a,b\n1,\"two\nlines\"\n2,\"three\r\nmore\nlines\"\n3,x\n");
    next_ok(&fx);
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->line, 2);
    assert_string_equal(rec->cells[1], "two\nlines");
    rec = next_ok(&fx);
    assert_int_equal(rec->line, 4);
    assert_string_equal(rec->cells[1], "three\r\nmore\nlines");
    rec = next_ok(&fx);
    assert_int_equal(rec->line, 7);
    assert_string_equal(rec->cells[0], "3");
    close_fx(&fx);
}

static void
test_csv_binary_start_is_refused(void **state)
{
    (void)state;
    static const char data[] = "a,b\n1,\0\x01\x02\n";
    fixture_t fx;
    open_mem(&fx, data, sizeof(data) - 1);
    assert_int_equal(fx.rc, OBS_EFORMAT);
    assert_null(fx.r);
    assert_string_equal(fx.msg, "binary data at line 2");
    fclose(fx.f);
}

static void
test_csv_nul_after_64_kib_fails_its_record(void **state)
{
    (void)state;
    size_t n = CSV_SNIFF_LEN + 100;
    char *data = malloc(n);
    assert_non_null(data);
    size_t lines = 0;
    for (size_t i = 0; i < n; i++) {
        data[i] = (i % 10 == 9) ? '\n' : 'a';
        lines += data[i] == '\n';
    }
    data[n - 5] = '\0'; /* on line lines */
    fixture_t fx;
    open_mem(&fx, data, n);
    assert_int_equal(fx.rc, OBS_OK);
    const csv_record_t *rec = NULL;
    int rc;
    while ((rc = csv_next(fx.r, &rec)) == OBS_OK && rec != NULL)
        ;
    assert_int_equal(rc, OBS_EFORMAT);
    char want[64];
    snprintf(want, sizeof(want), "line %zu: binary data", lines + 1);
    assert_string_equal(csv_errmsg(fx.r), want);
    close_fx(&fx);
    free(data);
}

static void
test_csv_empty_input_is_a_clear_error(void **state)
{
    (void)state;
    fixture_t fx;
    open_mem(&fx, "", 0);
    assert_int_equal(fx.rc, OBS_EFORMAT);
    assert_string_equal(fx.msg, "empty file");
    fclose(fx.f);
}

static void
test_csv_bom_only_is_empty(void **state)
{
    (void)state;
    fixture_t fx;
    open_mem(&fx, "\xEF\xBB\xBF", 3);
    assert_int_equal(fx.rc, OBS_EFORMAT);
    assert_string_equal(fx.msg, "empty file");
    fclose(fx.f);
}

/* The first lines of /work/shared/data/homicide/unodc_cts_homicide_excerpt.csv
 * (UNODC CTS export, decimal comma inside quotes). */
static const char unodc_head[] =
    "Iso3_code,Country,Region,Subregion,Indicator,Dimension,Category,Sex,Age,"
    "Year,Unit of measurement,VALUE,Source\n"
    "COL,Colombia,Americas,Latin America and the Caribbean,Persons "
    "arrested/suspected for intentional homicide,by citizenship,National "
    "citizens,Male,Total,2013,Counts,15053,CTS\n"
    "GTM,Guatemala,Americas,Latin America and the Caribbean,Persons "
    "arrested/suspected for intentional homicide,by citizenship,National "
    "citizens,Male,Total,2013,Counts,2764,CTS\n"
    "VCT,Saint Vincent and the Grenadines,Americas,Latin America and the "
    "Caribbean,Victims of intentional homicide,Total,Total,Total,Total,1990,"
    "\"Rate per 100,000 population\",\"9,778864318\",NGO/OAS/CTS\n"
    "VEN,Venezuela (Bolivarian Republic of),Americas,Latin America and the "
    "Caribbean,Victims of intentional homicide,Total,Total,Total,Total,1990,"
    "\"Rate per 100,000 population\",\"12,52621505\",NGO/UNSDC/OAS/Attorney "
    "General/CTS/External\n";

static void
test_csv_reads_real_unodc_excerpt(void **state)
{
    (void)state;
    fixture_t fx;
    open_str(&fx, unodc_head);
    assert_int_equal(csv_separator(fx.r), ',');
    const csv_record_t *rec = next_ok(&fx);
    assert_int_equal(rec->n, 13);
    assert_string_equal(rec->cells[11], "VALUE");
    rec = next_ok(&fx);
    assert_string_equal(rec->cells[11], "15053");
    next_ok(&fx);
    rec = next_ok(&fx);
    assert_int_equal(rec->n, 13);
    assert_int_equal(rec->line, 4);
    assert_string_equal(rec->cells[10], "Rate per 100,000 population");
    assert_string_equal(rec->cells[11], "9,778864318");
    rec = next_ok(&fx);
    assert_string_equal(rec->cells[12],
                        "NGO/UNSDC/OAS/Attorney General/CTS/External");
    expect_eof(&fx);
    assert_int_equal(csv_bytes_read(fx.r), strlen(unodc_head));
    close_fx(&fx);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_bom_is_stripped_from_first_cell),
        cmocka_unit_test(test_csv_quoted_cells_keep_commas_and_decimal_commas),
        cmocka_unit_test(test_csv_doubled_quotes_become_one),
        cmocka_unit_test(test_csv_semicolon_after_dataflow_is_the_separator),
        cmocka_unit_test(
            test_csv_structure_header_with_subfield_declares_separator),
        cmocka_unit_test(test_csv_tab_separator_is_sniffed),
        cmocka_unit_test(test_csv_pipe_separator_is_sniffed),
        cmocka_unit_test(test_csv_crlf_line_ends),
        cmocka_unit_test(test_csv_empty_values_are_empty_cells),
        cmocka_unit_test(test_csv_one_megabyte_field_is_read_whole),
        cmocka_unit_test(test_csv_field_over_8_mib_is_an_error_naming_the_line),
        cmocka_unit_test(
            test_csv_unterminated_quote_at_end_fails_that_record_only),
        cmocka_unit_test(test_csv_last_line_without_newline_is_a_record),
        cmocka_unit_test(test_csv_embedded_newline_keeps_later_line_numbers),
        cmocka_unit_test(test_csv_binary_start_is_refused),
        cmocka_unit_test(test_csv_nul_after_64_kib_fails_its_record),
        cmocka_unit_test(test_csv_empty_input_is_a_clear_error),
        cmocka_unit_test(test_csv_bom_only_is_empty),
        cmocka_unit_test(test_csv_reads_real_unodc_excerpt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
