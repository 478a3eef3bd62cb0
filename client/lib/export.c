/*
 * export.c - pure output formatting of observations for libobsync: SDMX-CSV
 * 2.x rows with a union header over several dataflows, JSON lines, JSON
 * string escaping and ISO 8601 times. It does no I/O besides writing to the
 * FILE* it is given and knows nothing of the daemon; obsync_export()
 * (client.c) feeds it the pages of a query, the CLI uses it for --json.
 * OBS_VALUE and every code are written exactly as stored, so an export can be
 * imported again without change.
 */
#include <sys/types.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "obsync/obsync.h"

struct obsync_csv_writer {
    FILE *f;       /* borrowed */
    size_t n_dims; /* union of dimension ids */
    char **dims;   /* owned */
    size_t n_attrs;
    char **attrs;       /* owned */
    const char **cells; /* owned scratch: n_dims + n_attrs */
};

/* ---------------------------------------------------------------- CSV */

/* The writers below ignore what each stdio call returns: the stream's
 * error indicator is sticky, and every public writer returns
 * ferror(f) ? OBSYNC_ESYS : OBSYNC_OK once its record is out. */
static void
put_s(FILE *f, const char *s)
{
    (void)fputs(s, f);
}

static void
put_c(FILE *f, int c)
{
    (void)fputc(c, f);
}

static void
csv_cell(FILE *f, const char *s)
{
    if (s == NULL)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        put_s(f, s);
        return;
    }
    put_c(f, '"');
    for (; *s; s++) {
        if (*s == '"')
            put_c(f, '"');
        put_c(f, *s);
    }
    put_c(f, '"');
}

static ssize_t
find_id(char *const *ids, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(ids[i], id) == 0)
            return (ssize_t)i;
    return -1;
}

/* Appends the ids not yet in *set (set grows by at most n). */
static int
union_add(char **set, size_t *n_set, const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == NULL || find_id(set, *n_set, ids[i]) >= 0)
            continue;
        char *dup = strdup(ids[i]);
        if (dup == NULL)
            return OBSYNC_ENOMEM;
        set[(*n_set)++] = dup;
    }
    return OBSYNC_OK;
}

static int
build_union(obsync_csv_writer_t *w, const obsync_columns_t *cols, size_t n)
{
    size_t max_d = 0, max_a = 0;
    for (size_t i = 0; i < n; i++) {
        max_d += cols[i].n_dim_ids;
        max_a += cols[i].n_attr_ids;
    }
    w->dims = calloc(max_d + 1, sizeof(char *));
    w->attrs = calloc(max_a + 1, sizeof(char *));
    w->cells = calloc(max_d + max_a + 1, sizeof(char *));
    if (w->dims == NULL || w->attrs == NULL || w->cells == NULL)
        return OBSYNC_ENOMEM;
    int rc = OBSYNC_OK;
    for (size_t i = 0; i < n && rc == OBSYNC_OK; i++) {
        rc = union_add(w->dims, &w->n_dims, cols[i].dim_ids, cols[i].n_dim_ids);
        if (rc == OBSYNC_OK)
            rc = union_add(w->attrs, &w->n_attrs, cols[i].attr_ids,
                           cols[i].n_attr_ids);
    }
    return rc;
}

static int
write_header(obsync_csv_writer_t *w)
{
    put_s(w->f, "STRUCTURE,STRUCTURE_ID,ACTION");
    for (size_t i = 0; i < w->n_dims; i++) {
        put_c(w->f, ',');
        csv_cell(w->f, w->dims[i]);
    }
    put_s(w->f, ",TIME_PERIOD,OBS_VALUE");
    for (size_t i = 0; i < w->n_attrs; i++) {
        put_c(w->f, ',');
        csv_cell(w->f, w->attrs[i]);
    }
    put_c(w->f, '\n');
    return ferror(w->f) ? OBSYNC_ESYS : OBSYNC_OK;
}

int
obsync_csv_writer_new(FILE *f, const obsync_columns_t *cols, size_t n,
                      obsync_csv_writer_t **out)
{
    if (out == NULL)
        return OBSYNC_EINVAL;
    *out = NULL;
    if (f == NULL || (cols == NULL && n > 0))
        return OBSYNC_EINVAL;
    obsync_csv_writer_t *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return OBSYNC_ENOMEM;
    w->f = f;
    int rc = build_union(w, cols, n);
    if (rc == OBSYNC_OK)
        rc = write_header(w);
    if (rc != OBSYNC_OK) {
        obsync_csv_writer_free(&w);
        return rc;
    }
    *out = w;
    return OBSYNC_OK;
}

void
obsync_csv_writer_free(obsync_csv_writer_t **wp)
{
    if (wp == NULL || *wp == NULL)
        return;
    obsync_csv_writer_t *w = *wp;
    for (size_t i = 0; i < w->n_dims; i++)
        free(w->dims[i]);
    for (size_t i = 0; i < w->n_attrs; i++)
        free(w->attrs[i]);
    free(w->dims);
    free(w->attrs);
    free(w->cells);
    free(w);
    *wp = NULL;
}

/* Puts obs's dimension and attribute values in header order. */
static int
map_cells(obsync_csv_writer_t *w, const obsync_obs_t *obs)
{
    size_t n = w->n_dims + w->n_attrs;
    for (size_t i = 0; i < n; i++)
        w->cells[i] = NULL;
    if (obs->n_dims > 0 && obs->dim_ids == NULL)
        return OBSYNC_EPROTO;
    for (size_t i = 0; i < obs->n_dims; i++) {
        ssize_t j = find_id(w->dims, w->n_dims, obs->dim_ids[i]);
        if (j < 0)
            return OBSYNC_EPROTO;
        w->cells[j] = obs->dims[i];
    }
    for (size_t i = 0; i < obs->n_attrs; i++) {
        ssize_t j = find_id(w->attrs, w->n_attrs, obs->attrs[i].id);
        if (j < 0)
            return OBSYNC_EPROTO;
        w->cells[w->n_dims + (size_t)j] = obs->attrs[i].value;
    }
    return OBSYNC_OK;
}

int
obsync_csv_write_obs(obsync_csv_writer_t *w, const obsync_obs_t *obs)
{
    if (w == NULL || obs == NULL)
        return OBSYNC_EINVAL;
    int rc = map_cells(w, obs);
    if (rc != OBSYNC_OK)
        return rc;
    put_s(w->f, "dataflow,");
    csv_cell(w->f, obs->dataflow);
    put_s(w->f, obs->tombstone ? ",D" : ",M");
    for (size_t i = 0; i < w->n_dims; i++) {
        put_c(w->f, ',');
        csv_cell(w->f, w->cells[i]);
    }
    put_c(w->f, ',');
    csv_cell(w->f, obs->time_period);
    put_c(w->f, ',');
    csv_cell(w->f, obs->value);
    for (size_t i = 0; i < w->n_attrs; i++) {
        put_c(w->f, ',');
        csv_cell(w->f, w->cells[w->n_dims + i]);
    }
    put_c(w->f, '\n');
    return ferror(w->f) ? OBSYNC_ESYS : OBSYNC_OK;
}

/* ---------------------------------------------------------------- JSON */

/* Length of the valid UTF-8 sequence at s (>= 0x80), or 0 if invalid. */
static size_t
utf8_len(const unsigned char *s)
{
    size_t n;
    unsigned min;
    unsigned cp;
    if (s[0] >= 0xC2 && s[0] <= 0xDF) {
        n = 2, min = 0x80, cp = s[0] & 0x1F;
    } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
        n = 3, min = 0x800, cp = s[0] & 0x0F;
    } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
        n = 4, min = 0x10000, cp = s[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

static void
json_escape_byte(FILE *f, unsigned char c)
{
    switch (c) {
    case '"':
        put_s(f, "\\\"");
        break;
    case '\\':
        put_s(f, "\\\\");
        break;
    case '\n':
        put_s(f, "\\n");
        break;
    case '\r':
        put_s(f, "\\r");
        break;
    case '\t':
        put_s(f, "\\t");
        break;
    case '\b':
        put_s(f, "\\b");
        break;
    case '\f':
        put_s(f, "\\f");
        break;
    default:
        (void)fprintf(f, "\\u%04x", c);
        break;
    }
}

int
obsync_json_write_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    put_c(f, '"');
    while (*p) {
        if (*p < 0x20 || *p == '"' || *p == '\\') {
            json_escape_byte(f, *p++);
        } else if (*p < 0x80) {
            put_c(f, *p++);
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                put_s(f, "\\ufffd"); /* invalid byte: never emit bad JSON */
                p++;
            } else {
                (void)fwrite(p, 1, n, f);
                p += n;
            }
        }
    }
    put_c(f, '"');
    return ferror(f) ? OBSYNC_ESYS : OBSYNC_OK;
}

void
obsync_format_time_ms(uint64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (len == 0)
        return;
    if (gmtime_r(&t, &tm) == NULL) {
        buf[0] = '\0';
        return;
    }
    char day[32]; /* any int year: 11 characters, with a sign */
    if (strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        buf[0] = '\0'; /* day's contents are unspecified then */
        return;
    }
    (void)snprintf(buf, len, "%s.%03uZ", day, (unsigned)(ms % 1000));
}

static const char *
action_name(obsync_action_t a)
{
    switch (a) {
    case OBSYNC_REPLACE:
        return "replace";
    case OBSYNC_DELETE:
        return "delete";
    default:
        return "merge";
    }
}

static void
json_key(FILE *f, const char *key, bool first)
{
    if (!first)
        put_c(f, ',');
    obsync_json_write_string(f, key);
    put_c(f, ':');
}

static void
json_dims(FILE *f, const obsync_obs_t *obs)
{
    put_c(f, obs->dim_ids ? '{' : '[');
    for (size_t i = 0; i < obs->n_dims; i++) {
        if (obs->dim_ids)
            json_key(f, obs->dim_ids[i], i == 0);
        else if (i > 0)
            put_c(f, ',');
        obsync_json_write_string(f, obs->dims[i]);
    }
    put_c(f, obs->dim_ids ? '}' : ']');
}

static void
json_version(FILE *f, const obsync_obs_t *obs)
{
    char t[40];
    obsync_format_time_ms(obs->time_ms, t, sizeof(t));
    (void)fprintf(f, "{\"hlc\":%llu,\"time\":", (unsigned long long)obs->hlc);
    obsync_json_write_string(f, t);
    json_key(f, "origin", false);
    obsync_json_write_string(f, obs->origin);
    (void)fprintf(f, ",\"origin_seq\":%llu",
                  (unsigned long long)obs->origin_seq);
    json_key(f, "provider", false);
    obsync_json_write_string(f, obs->provider);
    (void)fprintf(f, ",\"action\":\"%s\",\"tombstone\":%s",
                  action_name(obs->action), obs->tombstone ? "true" : "false");
    json_key(f, "batch_id", false);
    obsync_json_write_string(f, obs->batch_id);
    (void)fprintf(f, ",\"hub_seq\":%llu}", (unsigned long long)obs->hub_seq);
}

int
obsync_jsonl_write_obs(FILE *f, const obsync_obs_t *obs)
{
    if (f == NULL || obs == NULL)
        return OBSYNC_EINVAL;
    put_c(f, '{');
    json_key(f, "dataflow", true);
    obsync_json_write_string(f, obs->dataflow);
    json_key(f, "series_key", false);
    obsync_json_write_string(f, obs->series_key);
    json_key(f, "dims", false);
    json_dims(f, obs);
    json_key(f, "time_period", false);
    obsync_json_write_string(f, obs->time_period);
    json_key(f, "value", false);
    obsync_json_write_string(f, obs->value);
    json_key(f, "attrs", false);
    put_c(f, '{');
    for (size_t i = 0; i < obs->n_attrs; i++) {
        json_key(f, obs->attrs[i].id, i == 0);
        obsync_json_write_string(f, obs->attrs[i].value);
    }
    put_c(f, '}');
    json_key(f, "version", false);
    json_version(f, obs);
    put_s(f, "}\n");
    return ferror(f) ? OBSYNC_ESYS : OBSYNC_OK;
}
