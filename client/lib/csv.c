/*
 * csv.c - streaming RFC 4180 reader used by libobsync's import (import.c).
 * It lexes bytes into records of cells and tracks line numbers; it knows
 * nothing of SDMX columns or validation (the daemon maps and validates). It
 * reads through one 64 KiB buffer and keeps only the current record, so the
 * memory used is bounded by the record limits of csv.h, not by the file.
 * Lenient where RFC 4180 is silent: a quote inside an unquoted cell, or text
 * after a closing quote, is kept as text; a lone CR ends a line like LF.
 */
#include "csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "obs_err.h"

enum csv_state { S_START, S_UNQ, S_Q, S_QQ };

struct csv_reader {
    FILE *f;            /* borrowed */
    unsigned char *buf; /* owned, CSV_SNIFF_LEN bytes */
    size_t len, pos;
    bool eof, done;
    uint64_t bytes; /* consumed */
    uint64_t line;  /* line of the next byte */
    bool prev_cr;   /* last byte was CR: a following LF is the same line end */
    bool skip_lf;   /* a record ended on CR: swallow one LF */
    char sep;
    /* the record being built */
    char *data; /* owned: cells one after another, NUL-terminated */
    size_t dlen, dcap;
    size_t *offs; /* owned: start of each cell in data */
    size_t *lens; /* owned */
    char **cells; /* owned array, pointers into data */
    size_t ncells, ccap;
    size_t field_start;
    bool bad;
    uint64_t bad_line;
    csv_record_t rec;
    char err[256];
};

static int
fill(csv_reader_t *r)
{
    if (r->pos < r->len || r->eof)
        return OBS_OK;
    r->len = fread(r->buf, 1, CSV_SNIFF_LEN, r->f);
    r->pos = 0;
    if (r->len == 0) {
        if (ferror(r->f))
            return OBS_ESYS;
        r->eof = true;
    }
    return OBS_OK;
}

/* Next byte, or -1 at end of file. */
static int
next_byte(csv_reader_t *r, int *rc)
{
    *rc = fill(r);
    if (*rc != OBS_OK || r->pos >= r->len)
        return -1;
    r->bytes++;
    return r->buf[r->pos++];
}

static void
count_line(csv_reader_t *r, int c)
{
    if (c == '\r' || (c == '\n' && !r->prev_cr))
        r->line++;
    r->prev_cr = c == '\r';
}

static void
mark_bad(csv_reader_t *r, const char *what, uint64_t line)
{
    if (r->bad)
        return;
    r->bad = true;
    r->bad_line = r->rec.line;
    (void)snprintf(r->err, sizeof(r->err), "line %llu: %s",
                   (unsigned long long)line, what); /* may cut what short */
}

static int
grow_data(csv_reader_t *r, size_t need)
{
    if (r->dlen + need <= r->dcap)
        return OBS_OK;
    size_t cap = r->dcap ? r->dcap : 4096;
    while (cap < r->dlen + need)
        cap *= 2;
    char *n = realloc(r->data, cap);
    if (n == NULL)
        return OBS_ENOMEM;
    r->data = n;
    r->dcap = cap;
    return OBS_OK;
}

static int
append(csv_reader_t *r, int c)
{
    if (r->bad)
        return OBS_OK; /* the record is lost anyway: keep memory bounded */
    if (r->dlen - r->field_start >= CSV_FIELD_MAX) {
        mark_bad(r, "field longer than 8 MiB", r->rec.line);
        return OBS_OK;
    }
    if (r->dlen >= CSV_RECORD_MAX) {
        mark_bad(r, "record longer than 32 MiB", r->rec.line);
        return OBS_OK;
    }
    int rc = grow_data(r, 1);
    if (rc == OBS_OK)
        r->data[r->dlen++] = (char)c;
    return rc;
}

static int
end_field(csv_reader_t *r)
{
    if (r->bad)
        return OBS_OK;
    if (r->ncells >= CSV_CELLS_MAX) {
        mark_bad(r, "more than 4096 cells", r->rec.line);
        return OBS_OK;
    }
    int rc = grow_data(r, 1);
    if (rc != OBS_OK)
        return rc;
    if (r->ncells == r->ccap) {
        size_t cap = r->ccap ? r->ccap * 2 : 32;
        size_t *o = realloc(r->offs, cap * sizeof(*o));
        if (o == NULL)
            return OBS_ENOMEM;
        r->offs = o;
        size_t *l = realloc(r->lens, cap * sizeof(*l));
        if (l == NULL)
            return OBS_ENOMEM;
        r->lens = l;
        char **c = realloc(r->cells, cap * sizeof(*c));
        if (c == NULL)
            return OBS_ENOMEM;
        r->cells = c;
        r->ccap = cap;
    }
    r->offs[r->ncells] = r->field_start;
    r->lens[r->ncells] = r->dlen - r->field_start;
    r->ncells++;
    r->data[r->dlen++] = '\0';
    r->field_start = r->dlen;
    return OBS_OK;
}

static void
publish(csv_reader_t *r)
{
    for (size_t i = 0; i < r->ncells; i++)
        r->cells[i] = r->data + r->offs[i];
    r->rec.n = r->ncells;
    r->rec.cells = r->cells;
    r->rec.lens = r->lens;
}

/* One byte of the record state machine. *end set when the record ends. */
static int
step(csv_reader_t *r, enum csv_state *st, int c, bool *end)
{
    bool nl = c == '\r' || c == '\n';
    switch (*st) {
    case S_START:
    case S_UNQ:
        if (c == '"' && *st == S_START) {
            *st = S_Q;
            return OBS_OK;
        }
        if (c == r->sep || nl) {
            *st = S_START;
            *end = nl;
            return end_field(r);
        }
        *st = S_UNQ;
        return append(r, c);
    case S_Q:
        if (c == '"') {
            *st = S_QQ;
            return OBS_OK;
        }
        return append(r, c);
    case S_QQ:
        if (c == '"') {
            *st = S_Q;
            return append(r, c);
        }
        if (c == r->sep || nl) {
            *st = S_START;
            *end = nl;
            return end_field(r);
        }
        *st = S_UNQ;
        return append(r, c);
    }
    return OBS_OK;
}

/* How many bytes from r->pos step() would only append in state st (inside
 * a field): none is the separator (unquoted), a quote (quoted), CR, LF or
 * NUL. csv_next copies such a run at once instead of byte by byte. */
static size_t
plain_run(const csv_reader_t *r, enum csv_state st)
{
    const unsigned char *p = r->buf + r->pos, *q = p, *end = r->buf + r->len;
    unsigned char stop = st == S_UNQ ? (unsigned char)r->sep : '"';
    while (q < end && *q != stop && *q != '\n' && *q != '\r' && *q != 0)
        q++;
    return (size_t)(q - p);
}

/* Takes up to n plain bytes at once: appended while no limit can be
 * reached (step() takes the byte at a limit and marks the record), passed
 * over once the record is marked (append() drops them then). *taken = how
 * many. */
static int
take_run(csv_reader_t *r, size_t n, size_t *taken)
{
    if (!r->bad) {
        size_t field = r->dlen - r->field_start;
        size_t room = field + 1 < CSV_FIELD_MAX ? CSV_FIELD_MAX - 1 - field : 0;
        if (r->dlen + 1 >= CSV_RECORD_MAX)
            room = 0;
        else if (room > CSV_RECORD_MAX - 1 - r->dlen)
            room = CSV_RECORD_MAX - 1 - r->dlen;
        if (n > room)
            n = room;
        int rc = grow_data(r, n);
        if (rc != OBS_OK)
            return rc;
        memcpy(r->data + r->dlen, r->buf + r->pos, n);
        r->dlen += n;
    }
    r->pos += n;
    r->bytes += n;
    if (n > 0)
        r->prev_cr = false;
    *taken = n;
    return OBS_OK;
}

static void
reset_record(csv_reader_t *r)
{
    r->dlen = 0;
    r->ncells = 0;
    r->field_start = 0;
    r->bad = false;
    r->err[0] = '\0';
    r->rec.line = r->line;
}

static int
finish_record(csv_reader_t *r, const csv_record_t **rec)
{
    if (r->bad)
        return OBS_EFORMAT;
    publish(r);
    *rec = &r->rec;
    return OBS_OK;
}

static int
at_eof(csv_reader_t *r, enum csv_state st, bool any, const csv_record_t **rec)
{
    r->done = true;
    if (!any)
        return OBS_OK;
    if (st == S_Q) {
        r->bad = false;
        mark_bad(r, "unterminated quoted field (truncated file?)", r->rec.line);
        return OBS_EFORMAT;
    }
    int rc = end_field(r);
    if (rc != OBS_OK)
        return rc;
    return finish_record(r, rec);
}

/* Inside a field (state st), copies the run of plain bytes ahead at once;
 * *taken = how many (0: go byte by byte). */
static int
take_plain(csv_reader_t *r, enum csv_state st, size_t *taken)
{
    *taken = 0;
    size_t run;
    if ((st == S_UNQ || st == S_Q) && r->pos < r->len &&
        (run = plain_run(r, st)) > 1)
        return take_run(r, run, taken);
    return OBS_OK;
}

/* After a record that ended on CR: true when c is the LF of that CR (then
 * counted and to be skipped). */
static bool
swallow_lf(csv_reader_t *r, int c)
{
    if (!r->skip_lf)
        return false;
    r->skip_lf = false;
    if (c != '\n')
        return false;
    count_line(r, c);
    return true;
}

int
csv_next(csv_reader_t *r, const csv_record_t **rec)
{
    *rec = NULL;
    if (r->done)
        return OBS_OK;
    reset_record(r);
    enum csv_state st = S_START;
    bool any = false, end = false;
    for (;;) {
        size_t taken;
        int rc = take_plain(r, st, &taken);
        if (rc != OBS_OK)
            return rc;
        if (taken > 0)
            continue;
        int c = next_byte(r, &rc);
        if (rc != OBS_OK) {
            r->done = true;
            (void)snprintf(r->err, sizeof(r->err), "line %llu: read error",
                           (unsigned long long)r->line);
            return rc;
        }
        if (c < 0)
            return at_eof(r, st, any, rec);
        if (swallow_lf(r, c))
            continue;
        if (!any) {
            any = true;
            r->rec.line = r->line;
        }
        if (c == 0)
            mark_bad(r, "binary data", r->line);
        else if ((rc = step(r, &st, c, &end)) != OBS_OK)
            return rc;
        count_line(r, c);
        if (end) {
            r->skip_lf = c == '\r';
            return finish_record(r, rec);
        }
    }
}

/* ---------------------------------------------------------------- open */

static bool
is_sep(int c)
{
    return c == ',' || c == ';' || c == '\t' || c == '|';
}

/* The SDMX-CSV rule: the character after a leading DATAFLOW or STRUCTURE
 * cell (optionally quoted, optionally STRUCTURE[;]) is the separator. */
static char
sdmx_separator(const unsigned char *p, size_t n)
{
    size_t i = 0;
    if (i < n && p[i] == '"')
        i++;
    size_t name = 0;
    if (n - i >= 8 && strncasecmp((const char *)p + i, "DATAFLOW", 8) == 0)
        name = 8;
    else if (n - i >= 9 &&
             strncasecmp((const char *)p + i, "STRUCTURE", 9) == 0)
        name = 9;
    if (name == 0)
        return 0;
    i += name;
    if (i < n && p[i] == '[') {
        while (i < n && p[i] != ']' && p[i] != '\n')
            i++;
        i++;
    }
    if (i < n && p[i] == '"')
        i++;
    if (i < n && is_sep(p[i]))
        return (char)p[i];
    return 0;
}

/* The most frequent candidate outside quotes in the first line. */
static char
sniff_separator(const unsigned char *p, size_t n)
{
    static const char cand[] = {',', ';', '\t', '|'};
    size_t count[4] = {0, 0, 0, 0};
    bool inq = false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"')
            inq = !inq;
        else if (!inq && (p[i] == '\n' || p[i] == '\r'))
            break;
        for (size_t k = 0; k < 4 && !inq; k++)
            count[k] += p[i] == (unsigned char)cand[k];
    }
    size_t best = 0;
    for (size_t k = 1; k < 4; k++)
        if (count[k] > count[best])
            best = k;
    return cand[best];
}

static int
check_start(csv_reader_t *r, char *msg, size_t msg_len)
{
    int rc = fill(r);
    if (rc != OBS_OK) {
        (void)snprintf(msg, msg_len, "read error");
        return rc;
    }
    if (r->len >= 3 && memcmp(r->buf, "\xEF\xBB\xBF", 3) == 0) {
        r->pos = 3;
        r->bytes = 3;
    }
    if (r->pos >= r->len) {
        (void)snprintf(msg, msg_len, "empty file");
        return OBS_EFORMAT;
    }
    uint64_t line = 1;
    for (size_t i = r->pos; i < r->len; i++) {
        if (r->buf[i] == 0) {
            (void)snprintf(msg, msg_len, "binary data at line %llu",
                           (unsigned long long)line);
            return OBS_EFORMAT;
        }
        line += r->buf[i] == '\n';
    }
    const unsigned char *p = r->buf + r->pos;
    size_t n = r->len - r->pos;
    r->sep = sdmx_separator(p, n);
    if (r->sep == 0)
        r->sep = sniff_separator(p, n);
    return OBS_OK;
}

int
csv_reader_new(FILE *f, csv_reader_t **out, char *msg, size_t msg_len)
{
    char scratch[8];
    if (msg == NULL) {
        msg = scratch;
        msg_len = sizeof(scratch);
    }
    msg[0] = '\0';
    *out = NULL;
    csv_reader_t *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->buf = malloc(CSV_SNIFF_LEN)) == NULL) {
        free(r);
        (void)snprintf(msg, msg_len, "out of memory");
        return OBS_ENOMEM;
    }
    r->f = f;
    r->line = 1;
    int rc = check_start(r, msg, msg_len);
    if (rc != OBS_OK) {
        csv_reader_free(&r);
        return rc;
    }
    *out = r;
    return OBS_OK;
}

void
csv_reader_free(csv_reader_t **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    csv_reader_t *r = *rp;
    free(r->buf);
    free(r->data);
    free(r->offs);
    free(r->lens);
    free(r->cells);
    free(r);
    *rp = NULL;
}

char
csv_separator(const csv_reader_t *r)
{
    return r->sep;
}

uint64_t
csv_bytes_read(const csv_reader_t *r)
{
    return r->bytes;
}

const char *
csv_errmsg(const csv_reader_t *r)
{
    return r->err;
}

uint64_t
csv_error_line(const csv_reader_t *r)
{
    return r->err[0] ? r->bad_line : 0;
}
