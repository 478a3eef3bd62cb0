/*
 * fuzz_csv.c - libFuzzer target for libobsync's streaming CSV reader
 * (client/lib/csv.c): reads every record of the input through fmemopen and
 * checks the reader's invariants (cells NUL-terminated at their length,
 * non-decreasing line numbers, bytes read never past the input).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "obs_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_record(const csv_record_t *rec, uint64_t *last_line)
{
    if (rec->n == 0 || rec->line < *last_line)
        abort();
    *last_line = rec->line;
    for (size_t i = 0; i < rec->n; i++)
        if (rec->cells[i][rec->lens[i]] != '\0')
            abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; /* fmemopen of 0 bytes is an error on glibc */
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "r");
    if (f == NULL)
        return 0;
    csv_reader_t *r = NULL;
    if (csv_reader_new(f, &r, NULL, 0) == OBS_OK) {
        uint64_t last = 0;
        for (unsigned guard = 0; guard < 1000000; guard++) {
            const csv_record_t *rec = NULL;
            int rc = csv_next(r, &rec);
            if (rc == OBS_EFORMAT)
                continue;
            if (rc != OBS_OK || rec == NULL)
                break;
            check_record(rec, &last);
        }
        if (csv_bytes_read(r) > size)
            abort();
        csv_reader_free(&r);
    }
    fclose(f);
    return 0;
}
