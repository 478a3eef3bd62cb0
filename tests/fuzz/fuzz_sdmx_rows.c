/*
 * fuzz_sdmx_rows.c - libFuzzer target for the SDMX-CSV mapper and the
 * validator behind it (sdmx_rows.c, validate.c). The input is split into
 * lines on '\n' and cells on ',' (no quoting: the CLI's lexer is fuzzed
 * elsewhere); the first line is the header, every other line a row, all
 * mapped against the unit tests' structure fixture
 * (tests/support/fixture_structure.h: reject and warn dataflows, two
 * agreements) with provider COL so the authority rule runs too. The first
 * input byte picks the decimal-comma option. Must never crash, leak or read
 * out of bounds, whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_structure.h"
#include "sdmx_rows.h"

#define MAX_CELLS 600 /* above the mapper's column limit, to reach it */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static structure_t *
fixed_structure(void)
{
    static structure_t *st;
    /* NULL (out of memory): that input is skipped; a fixture that does not
     * load is a bug in the tests. */
    if (st == NULL && test_load_fixture(&st) != 0 && st != NULL)
        abort();
    return st;
}

/* Cuts line (NUL-terminated, writable) into cells on ','. */
static size_t
split_cells(char *line, const char **cells)
{
    size_t n = 0;
    for (char *p = line; n < MAX_CELLS;) {
        cells[n++] = p;
        p = strchr(p, ',');
        if (p == NULL)
            break;
        *p++ = '\0';
    }
    return n;
}

static void
map_rows(sdmx_csv_t *m, char *rest, const char **cells, issue_list_t *issues)
{
    sdmx_row_t row;
    sdmx_row_init(&row);
    for (uint64_t line = 2; rest != NULL; line++) {
        char *next = strchr(rest, '\n');
        if (next != NULL)
            *next++ = '\0';
        size_t n = split_cells(rest, cells);
        if (sdmx_csv_map(m, line, cells, n, &row, issues) != 0)
            break;
        if (row.kind == SDMX_ROW_OBS) { /* the key given is obs's own */
            uint8_t key[OBS_KEY_MAX];
            int klen = obs_key_encode(&row.obs, key, sizeof(key));
            if (klen != row.key_len ||
                (klen > 0 && memcmp(key, row.key, (size_t)klen) != 0))
                abort();
        }
        issue_list_clear(issues);
        rest = next;
    }
    sdmx_row_fini(&row);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    structure_t *st = fixed_structure();
    if (st == NULL || size == 0)
        return 0;
    char *text = malloc(size);
    const char **cells = malloc(MAX_CELLS * sizeof(*cells));
    if (text == NULL || cells == NULL)
        goto out;
    memcpy(text, data + 1, size - 1); /* NULs inside simply end cells */
    text[size - 1] = '\0';
    sdmx_csv_opts_t opts = {.vctx = {.st = st,
                                     .provider = "COL",
                                     .min_year = 1900,
                                     .max_year = 2027,
                                     .decimal_comma = (data[0] & 1) != 0}};
    issue_list_t issues;
    issue_list_init(&issues, 50);
    char *rest = strchr(text, '\n');
    if (rest != NULL)
        *rest++ = '\0';
    size_t n = split_cells(text, cells);
    sdmx_csv_t *m = NULL;
    if (sdmx_csv_open(&opts, cells, n, 1, &m, &issues) == 0)
        map_rows(m, rest, cells, &issues);
    sdmx_csv_close(&m);
    issue_list_fini(&issues);
out:
    free(cells);
    free(text);
    return 0;
}
