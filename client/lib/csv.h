/*
 * csv.h - streaming RFC 4180 reader for SDMX-CSV import (libobsync internal).
 *
 * Reads a FILE* through a bounded buffer (never the whole file). Strips a
 * UTF-8 BOM, finds the separator (the character after a leading DATAFLOW or
 * STRUCTURE header cell, else the most frequent of , ; TAB | in the first
 * line), and returns one record at a time with the 1-based line on which it
 * starts. Errors (OBS_EFORMAT) carry a sentence from csv_errmsg(); an error
 * on one record leaves the reader positioned after that record, so the
 * caller may report it and go on.
 */
#ifndef OBSYNC_CSV_H
#define OBSYNC_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CSV_FIELD_MAX  ((size_t)8 * 1024 * 1024)  /* one cell */
#define CSV_RECORD_MAX ((size_t)32 * 1024 * 1024) /* all cells of a record */
#define CSV_CELLS_MAX  4096u                      /* cells of a record */
#define CSV_SNIFF_LEN  ((size_t)64 * 1024)        /* binary check, separator */

typedef struct csv_reader csv_reader_t;

typedef struct {
    uint64_t line; /* 1-based line where the record starts */
    size_t n;      /* cells, >= 1 */
    char **cells;  /* NUL-terminated; borrowed until the next csv_next */
    size_t *lens;  /* byte length of each cell */
} csv_record_t;

/**
 * Starts reading f (borrowed; not closed). Reads up to CSV_SNIFF_LEN bytes
 * at once. Errors: OBS_ENOMEM; OBS_EFORMAT for an empty file ("empty file")
 * or a NUL byte in the first 64 KiB ("binary data at line N"); OBS_ESYS for
 * a read error. On error *out is NULL and msg (may be NULL) gets the sentence.
 */
int csv_reader_new(FILE *f, csv_reader_t **out, char *msg, size_t msg_len);
void csv_reader_free(csv_reader_t **r);

/** The detected separator: ',', ';', '\t' or '|'. */
char csv_separator(const csv_reader_t *r);
/** Bytes consumed from the file so far (BOM included). */
uint64_t csv_bytes_read(const csv_reader_t *r);

/**
 * Reads the next record. OBS_OK with *rec set, or with *rec NULL at end of
 * file. OBS_EFORMAT for a bad record (binary data, field over 8 MiB, record
 * over 32 MiB or 4096 cells, unterminated quote at end of file): *rec is
 * NULL, csv_errmsg() says "line N: ...", and the next call goes on after it.
 * OBS_ESYS on a read error, OBS_ENOMEM (both final).
 */
int csv_next(csv_reader_t *r, const csv_record_t **rec);
/** Sentence of the last error; "" when none. Valid until the next call. */
const char *csv_errmsg(const csv_reader_t *r);
/** Line where the record of the last error starts (0: none). */
uint64_t csv_error_line(const csv_reader_t *r);

#endif
