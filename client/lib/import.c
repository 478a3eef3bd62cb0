/*
 * import.c - obsync_import_file: streams one CSV file to the daemon as
 * ImportBegin, ImportRows chunks (<= 2000 rows or <= 4 MiB; at most two
 * unanswered, so the daemon maps one while the next is read here: that is
 * the flow control) and ImportFinish. The CSV lexing is csv.c; the
 * mapping to SDMX columns and the validation are the daemon's. A record the
 * reader cannot read becomes a local rejected-row issue (rule R0-csv). Any
 * failure after ImportBegin sends ImportFinish{abort} as a best effort.
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "csv.h"
#include "obs_err.h"

#define CHUNK_ROWS    2000
#define CHUNK_BYTES   ((size_t)4 * 1024 * 1024)
#define ABORT_WAIT_MS 5000

/* Rows of one chunk, copied out of the reader's record buffer. */
typedef struct {
    char *data; /* cells, NUL-terminated, one after another */
    size_t len, cap;
    size_t *offs; /* start of each cell */
    size_t n_offs, offs_cap;
    uint64_t lines[CHUNK_ROWS];
    size_t first[CHUNK_ROWS], count[CHUNK_ROWS];
    size_t n_rows;
} chunk_t;

typedef struct {
    obsync_client_t *c;
    const char *path;
    const obsync_import_opts_t *o;
    FILE *f;
    csv_reader_t *r;
    uint64_t size;
    uint64_t import_id;
    bool begun;
    uint64_t rows, local_rejected;
    uint64_t pending; /* corr_id of the ImportRows not answered yet, 0 none */
    chunk_t ch;
} imp_t;

static void
issue(imp_t *im, const obsync_issue_t *is)
{
    if (im->o->on_issue != NULL)
        im->o->on_issue(im->o->arg, is);
}

/* ---------------------------------------------------------------- chunk */

static int
chunk_reserve(chunk_t *ch, size_t bytes, size_t cells)
{
    if (ch->len + bytes > ch->cap) {
        size_t cap = ch->cap ? ch->cap : 65536;
        while (cap < ch->len + bytes)
            cap *= 2;
        char *d = realloc(ch->data, cap);
        if (d == NULL)
            return OBSYNC_ENOMEM;
        ch->data = d;
        ch->cap = cap;
    }
    if (ch->n_offs + cells > ch->offs_cap) {
        size_t cap = ch->offs_cap ? ch->offs_cap : 4096;
        while (cap < ch->n_offs + cells)
            cap *= 2;
        size_t *o = realloc(ch->offs, cap * sizeof(*o));
        if (o == NULL)
            return OBSYNC_ENOMEM;
        ch->offs = o;
        ch->offs_cap = cap;
    }
    return OBSYNC_OK;
}

static int
chunk_add(chunk_t *ch, const csv_record_t *rec)
{
    size_t bytes = 0;
    for (size_t i = 0; i < rec->n; i++)
        bytes += rec->lens[i] + 1;
    int rc = chunk_reserve(ch, bytes, rec->n);
    if (rc != OBSYNC_OK)
        return rc;
    ch->lines[ch->n_rows] = rec->line;
    ch->first[ch->n_rows] = ch->n_offs;
    ch->count[ch->n_rows] = rec->n;
    for (size_t i = 0; i < rec->n; i++) {
        ch->offs[ch->n_offs++] = ch->len;
        memcpy(ch->data + ch->len, rec->cells[i], rec->lens[i] + 1);
        ch->len += rec->lens[i] + 1;
    }
    ch->n_rows++;
    return OBSYNC_OK;
}

static bool
chunk_full(const chunk_t *ch)
{
    return ch->n_rows >= CHUNK_ROWS || ch->len >= CHUNK_BYTES;
}

static void
chunk_fini(chunk_t *ch)
{
    free(ch->data);
    free(ch->offs);
}

/* ---------------------------------------------------------------- wire */

static void
progress_issues(imp_t *im, const msg_import_progress_t *p)
{
    for (size_t i = 0; i < p->issues.n; i++) {
        obsync_issue_t is;
        cl_issue_from_msg(&p->issues.items[i], &is);
        issue(im, &is);
    }
}

/* Waits for the answer to the ImportRows in flight, if any. */
static int
await_chunk(imp_t *im)
{
    if (im->pending == 0)
        return OBSYNC_OK;
    msg_t *rep = NULL;
    int rc = cl_recv_expect(im->c, im->pending, MSG_IMPORT_PROGRESS, &rep);
    im->pending = 0;
    if (rc == OBSYNC_OK)
        progress_issues(im, &rep->u.import_progress);
    msg_destroy(&rep);
    if (rc == OBSYNC_OK && im->o->on_progress != NULL)
        im->o->on_progress(im->o->arg, im->rows, csv_bytes_read(im->r),
                           im->size);
    return rc;
}

/* Sends the chunk, then waits for the answer to the one before it: the
 * daemon has this one queued while the next is read. */
static int
send_chunk(imp_t *im)
{
    chunk_t *ch = &im->ch;
    msg_csv_row_t *rows = calloc(ch->n_rows + 1, sizeof(*rows));
    const char **cells = calloc(ch->n_offs + 1, sizeof(*cells));
    int rc = rows && cells ? OBSYNC_OK : OBSYNC_ENOMEM;
    for (size_t i = 0; rc == OBSYNC_OK && i < ch->n_offs; i++)
        cells[i] = ch->data + ch->offs[i];
    for (size_t i = 0; rc == OBSYNC_OK && i < ch->n_rows; i++) {
        rows[i].line = ch->lines[i];
        rows[i].cells = (msg_strs_t){cells + ch->first[i], ch->count[i]};
    }
    uint64_t corr = 0;
    if (rc == OBSYNC_OK) {
        msg_t req = {.type = MSG_IMPORT_ROWS};
        req.u.import_rows =
            (msg_import_rows_t){im->import_id, rows, ch->n_rows};
        rc = cl_send(im->c, &req, &corr);
    } else {
        cl_fail(im->c, rc, "out of memory");
    }
    free(rows);
    free(cells);
    size_t n = ch->n_rows;
    ch->n_rows = ch->len = ch->n_offs = 0;
    if (rc != OBSYNC_OK)
        return rc;
    rc = await_chunk(im);
    im->rows += n;
    im->pending = corr;
    return rc;
}

#define COMMIT_WAIT_MS (30 * 60 * 1000)

static int
finish(imp_t *im, bool abort, obsync_summary_t *sum)
{
    msg_t req = {.type = MSG_IMPORT_FINISH}, *rep = NULL;
    req.u.import_finish = (msg_import_finish_t){im->import_id, abort};
    /* The daemon answers only after the commit, which for a large import
     * can outlast the per-request timeout: a timeout here would report a
     * failure for data that is then stored. So wait at least COMMIT_WAIT_MS. */
    int timeout = im->c->timeout_ms;
    if (!abort && timeout < COMMIT_WAIT_MS)
        im->c->timeout_ms = COMMIT_WAIT_MS;
    int rc = cl_call_expect(im->c, &req, MSG_WRITE_SUMMARY, &rep);
    im->c->timeout_ms = timeout;
    im->begun = false;
    if (rc != OBSYNC_OK)
        return rc;
    cl_summary_from_msg(&rep->u.write_summary, sum, im->o->on_issue,
                        im->o->arg);
    sum->rejected += im->local_rejected;
    msg_destroy(&rep);
    return OBSYNC_OK;
}

/* Best effort after a client-side failure: keep the first error's detail. */
static void
abort_import(imp_t *im)
{
    if (!im->begun)
        return;
    char keep[sizeof(im->c->err)];
    memcpy(keep, im->c->err, sizeof(keep));
    int timeout = im->c->timeout_ms;
    volatile sig_atomic_t *cancel = im->c->cancel;
    im->c->timeout_ms = timeout < ABORT_WAIT_MS ? timeout : ABORT_WAIT_MS;
    im->c->cancel = NULL;
    obsync_summary_t ignored;
    finish(im, true, &ignored);
    im->c->timeout_ms = timeout;
    im->c->cancel = cancel;
    memcpy(im->c->err, keep, sizeof(keep));
}

static const char *
base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static int
begin(imp_t *im, const csv_record_t *hdr, obsync_summary_t *sum)
{
    char sep[2] = {csv_separator(im->r), '\0'};
    msg_t req = {.type = MSG_IMPORT_BEGIN}, *rep = NULL;
    msg_import_begin_t *ib = &req.u.import_begin;
    ib->source_name = base_name(im->path);
    ib->header = (msg_strs_t){(const char *const *)hdr->cells, hdr->n};
    ib->separator = sep;
    ib->decimal_comma = im->o->decimal_comma;
    ib->strict = im->o->strict;
    ib->dry_run = im->o->dry_run;
    ib->commit_rows = im->o->commit_rows;
    ib->header_line = hdr->line;
    ib->ignore_columns =
        (msg_strs_t){im->o->ignore_columns, im->o->n_ignore_columns};
    int rc = cl_call(im->c, &req, &rep);
    if (rc != OBSYNC_OK)
        return rc;
    if (rep->type == MSG_IMPORT_PROGRESS) {
        im->import_id = rep->u.import_progress.import_id;
        im->begun = true;
        progress_issues(im, &rep->u.import_progress);
    } else if (rep->type == MSG_WRITE_SUMMARY) {
        cl_summary_from_msg(&rep->u.write_summary, sum, im->o->on_issue,
                            im->o->arg);
        rc = cl_fail(im->c, OBSYNC_EFORMAT, "%s: header not usable", im->path);
    } else {
        rc = cl_fail(im->c, OBSYNC_EPROTO, "unexpected reply to ImportBegin");
    }
    msg_destroy(&rep);
    return rc;
}

/* ---------------------------------------------------------------- file */

static int
open_file(imp_t *im)
{
    struct stat st;
    if (stat(im->path, &st) != 0 || S_ISDIR(st.st_mode))
        return cl_fail(im->c, OBSYNC_EFORMAT, "%s: %s", im->path,
                       S_ISDIR(st.st_mode) ? "is a directory"
                                           : strerror(errno));
    im->size = (uint64_t)st.st_size;
    im->f = fopen(im->path, "rb");
    if (im->f == NULL)
        return cl_fail(im->c, OBSYNC_EFORMAT, "%s: %s", im->path,
                       strerror(errno));
    char msg[256];
    int rc = csv_reader_new(im->f, &im->r, msg, sizeof(msg));
    if (rc != OBSYNC_OK)
        return cl_fail(im->c, rc == OBS_ENOMEM ? rc : OBSYNC_EFORMAT, "%s: %s",
                       im->path, msg);
    return OBSYNC_OK;
}

static bool
blank(const csv_record_t *rec)
{
    return rec->n == 1 && rec->lens[0] == 0;
}

static int
read_header(imp_t *im, const csv_record_t **hdr)
{
    for (;;) {
        int rc = csv_next(im->r, hdr);
        if (rc != OBSYNC_OK)
            return cl_fail(im->c, rc == OBS_ENOMEM ? rc : OBSYNC_EFORMAT,
                           "%s: %s", im->path, csv_errmsg(im->r));
        if (*hdr == NULL)
            return cl_fail(im->c, OBSYNC_EFORMAT, "%s: no header", im->path);
        if (!blank(*hdr))
            return OBSYNC_OK;
    }
}

/* A record the reader refused: a local rejected row. true = go on. */
static bool
local_reject(imp_t *im)
{
    const char *m = csv_errmsg(im->r);
    const char *colon = strstr(m, ": ");
    obsync_issue_t is = {csv_error_line(im->r), "", "R0-csv",
                         colon ? colon + 2 : m, false};
    issue(im, &is);
    im->local_rejected++;
    return !im->o->strict;
}

/* Streams every data record. *abort set when a strict import must stop. */
static int
stream_rows(imp_t *im, bool *abort)
{
    for (;;) {
        if (cl_cancelled(im->c))
            return cl_fail(im->c, OBSYNC_ESYS, "interrupted");
        const csv_record_t *rec = NULL;
        int rc = csv_next(im->r, &rec);
        if (rc == OBS_EFORMAT) {
            if (!local_reject(im)) {
                *abort = true;
                break;
            }
            continue;
        }
        if (rc != OBSYNC_OK)
            return cl_fail(im->c, rc, "%s: %s", im->path, csv_errmsg(im->r));
        if (rec == NULL)
            break;
        if (blank(rec))
            continue;
        if ((rc = chunk_add(&im->ch, rec)) != OBSYNC_OK)
            return cl_fail(im->c, rc, "out of memory");
        if (chunk_full(&im->ch) && (rc = send_chunk(im)) != OBSYNC_OK)
            return rc;
    }
    int rc = im->ch.n_rows > 0 && !*abort ? send_chunk(im) : OBSYNC_OK;
    return rc == OBSYNC_OK ? await_chunk(im) : rc;
}

static int
run(imp_t *im, obsync_summary_t *sum)
{
    const csv_record_t *hdr = NULL;
    int rc = open_file(im);
    if (rc == OBSYNC_OK)
        rc = read_header(im, &hdr);
    if (rc == OBSYNC_OK)
        rc = begin(im, hdr, sum);
    bool abort = false;
    if (rc == OBSYNC_OK)
        rc = stream_rows(im, &abort);
    if (rc == OBSYNC_OK)
        rc = finish(im, abort, sum);
    if (rc != OBSYNC_OK)
        abort_import(im);
    return rc;
}

int
obsync_import_file(obsync_client_t *c, const char *path,
                   const obsync_import_opts_t *opts, obsync_summary_t *sum)
{
    static const obsync_import_opts_t defaults = {0};
    obsync_summary_t scratch;
    if (c == NULL || path == NULL)
        return OBSYNC_EINVAL;
    if (sum == NULL)
        sum = &scratch;
    memset(sum, 0, sizeof(*sum));
    imp_t im = {.c = c, .path = path, .o = opts ? opts : &defaults};
    int rc = run(&im, sum);
    chunk_fini(&im.ch);
    csv_reader_free(&im.r);
    if (im.f != NULL)
        (void)fclose(im.f); /* opened for reading: nothing to lose */
    return rc;
}
