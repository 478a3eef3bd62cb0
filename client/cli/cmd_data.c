/*
 * cmd_data.c - the obsync commands on observations: put, get, delete,
 * query, export and history. Tables for people, JSON lines with --json;
 * all the talking is done by libobsync.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define MAX_PUT_ATTRS 64

/* ---------------------------------------------------------------- output */

static void
print_summary(cli_t *cli, const obsync_summary_t *s, bool dry_run)
{
    if (cli->json) {
        printf("{\"accepted\":%llu,\"unchanged\":%llu,\"rejected\":%llu,"
               "\"deleted\":%llu,\"warnings\":%llu,\"committed\":%s,"
               "\"dry_run\":%s,\"batch_id\":",
               (unsigned long long)s->accepted,
               (unsigned long long)s->unchanged,
               (unsigned long long)s->rejected, (unsigned long long)s->deleted,
               (unsigned long long)s->warnings, s->committed ? "true" : "false",
               dry_run ? "true" : "false");
        obsync_json_write_string(stdout, s->batch_id);
        puts("}");
    } else if (!cli->quiet) {
        printf("accepted %llu, unchanged %llu, rejected %llu, deleted %llu, "
               "warnings %llu (%s)\n",
               (unsigned long long)s->accepted,
               (unsigned long long)s->unchanged,
               (unsigned long long)s->rejected, (unsigned long long)s->deleted,
               (unsigned long long)s->warnings,
               dry_run ? "dry run"
                       : (s->committed ? "committed" : "not committed"));
    }
}

static void
print_issue_cb(void *arg, const obsync_issue_t *is)
{
    cli_print_issue((const char *)arg, is);
}

static int
print_obs_detail(const obsync_obs_t *o)
{
    char t[40];
    obsync_format_time_ms(o->time_ms, t, sizeof(t));
    printf("dataflow     %s\nseries key   %s\nperiod       %s\n"
           "value        %s\n",
           o->dataflow, o->series_key, o->time_period, o->value);
    for (size_t i = 0; i < o->n_dims && o->dim_ids != NULL; i++)
        printf("  %-24s %s\n", o->dim_ids[i], o->dims[i]);
    for (size_t i = 0; i < o->n_attrs; i++)
        printf("  %-24s %s\n", o->attrs[i].id, o->attrs[i].value);
    printf("version      %s hlc %llu origin %s:%llu provider %s%s\n"
           "batch        %s\n",
           t, (unsigned long long)o->hlc, o->origin,
           (unsigned long long)o->origin_seq, o->provider,
           o->tombstone ? " (deleted)" : "", o->batch_id);
    return 0;
}

static int
print_jsonl(void *arg, const obsync_obs_t *o)
{
    (void)arg;
    return obsync_jsonl_write_obs(stdout, o);
}

static int
print_row(void *arg, const obsync_obs_t *o)
{
    (void)arg;
    char t[40];
    obsync_format_time_ms(o->time_ms, t, sizeof(t));
    printf("%-22s %-36s %-10s %-14s %-4s %-16s %-12s %s%s\n", o->dataflow,
           o->series_key, o->time_period, o->value, cli_attr(o, "OBS_STATUS"),
           cli_attr(o, "UNIT_MEASURE"), o->origin, t,
           o->tombstone ? " deleted" : "");
    return 0;
}

static int
print_version(void *arg, const obsync_obs_t *o)
{
    (void)arg;
    static const char *const act[] = {"merge", "replace", "delete"};
    char t[40];
    obsync_format_time_ms(o->time_ms, t, sizeof(t));
    printf("%-24s %-20llu %-12s %-8llu %-10s %-8s %-14s %s\n", t,
           (unsigned long long)o->hlc, o->origin,
           (unsigned long long)o->origin_seq, o->provider,
           o->tombstone ? "delete" : act[o->action % 3], o->value,
           cli_attr(o, "OBS_STATUS"));
    return 0;
}

/* ---------------------------------------------------------------- writes */

static int
cmp_attr(const void *a, const void *b)
{
    return strcmp(((const obsync_attr_t *)a)->id,
                  ((const obsync_attr_t *)b)->id);
}

static void
put_help(void)
{
    puts("usage: obsync put DATAFLOW SERIES_KEY TIME_PERIOD VALUE "
         "[ATTR=VALUE...]\n"
         "                  [--replace] [--dry-run] [--strict]\n"
         "Writes one observation (merge by default: attributes not given "
         "are kept).\n"
         "  --replace  replace the whole observation\n"
         "  --dry-run  validate only\n"
         "  --strict   fail on any issue");
}

int
cmd_put(cli_t *cli, int argc, char **argv)
{
    const char *pos[4];
    int npos = 0;
    obsync_attr_t attrs[MAX_PUT_ATTRS];
    size_t nattrs = 0;
    char issue_file[] = "put"; /* print_issue_cb's arg */
    obsync_put_opts_t o = {OBSYNC_MERGE, false, false, print_issue_cb,
                           issue_file};
    for (int i = 1; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (cli_is_help(argv[i])) {
            put_help();
            return EXIT_OK;
        } else if (strcmp(argv[i], "--replace") == 0) {
            o.action = OBSYNC_REPLACE;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            o.dry_run = true;
        } else if (strcmp(argv[i], "--strict") == 0) {
            o.strict = true;
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            return cli_usage("put", "unknown option", argv[i]);
        } else if (npos == 4 && eq != NULL && nattrs < MAX_PUT_ATTRS) {
            *eq = '\0';
            attrs[nattrs++] = (obsync_attr_t){argv[i], eq + 1};
        } else if (npos < 4) {
            pos[npos++] = argv[i];
        } else {
            return cli_usage("put", "unexpected argument", argv[i]);
        }
    }
    if (npos < 4)
        return cli_usage("put", "DATAFLOW SERIES_KEY TIME_PERIOD VALUE needed",
                         NULL);
    qsort(attrs, nattrs, sizeof(attrs[0]), cmp_attr);
    obsync_obs_t obs;
    memset(&obs, 0, sizeof(obs));
    obs.dataflow = pos[0];
    obs.series_key = pos[1];
    obs.time_period = pos[2];
    obs.value = pos[3];
    obs.n_attrs = nattrs;
    obs.attrs = attrs;
    obsync_summary_t sum;
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    int rc = obsync_put(cli->c, &obs, 1, &o, &sum);
    if (rc != OBSYNC_OK)
        return cli_fail(cli, rc, "put");
    print_summary(cli, &sum, o.dry_run);
    return sum.rejected > 0 || (!o.dry_run && !sum.committed) ? EXIT_REJECTED
                                                              : EXIT_OK;
}

/* Positional DATAFLOW KEY PERIOD plus the flags named in flags (only
 * --dry-run is known). */
static int
key_args(const char *cmd, int argc, char **argv, const char **k, bool *dry_run)
{
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (dry_run != NULL && strcmp(argv[i], "--dry-run") == 0)
            *dry_run = true;
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return cli_usage(cmd, "unknown option", argv[i]);
        else if (n < 3)
            k[n++] = argv[i];
        else
            return cli_usage(cmd, "unexpected argument", argv[i]);
    }
    return n == 3
               ? EXIT_OK
               : cli_usage(cmd, "DATAFLOW SERIES_KEY TIME_PERIOD needed", NULL);
}

static bool
wants_help(int argc, char **argv, const char *text)
{
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            puts(text);
            return true;
        }
    }
    return false;
}

int
cmd_delete(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv,
                   "usage: obsync delete DATAFLOW SERIES_KEY TIME_PERIOD "
                   "[--dry-run]\nTombstones one observation (replicated "
                   "like any change)."))
        return EXIT_OK;
    const char *k[3] = {NULL, NULL, NULL};
    bool dry = false;
    int code = key_args("delete", argc, argv, k, &dry);
    if (code != EXIT_OK)
        return code;
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    obsync_summary_t sum;
    int rc = obsync_delete(cli->c, k[0], k[1], k[2], dry, &sum);
    if (rc != OBSYNC_OK)
        return cli_fail(cli, rc, "delete");
    print_summary(cli, &sum, dry);
    return sum.rejected > 0 ? EXIT_REJECTED : EXIT_OK;
}

/* ---------------------------------------------------------------- reads */

int
cmd_get(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv,
                   "usage: obsync get DATAFLOW SERIES_KEY TIME_PERIOD\n"
                   "Prints one observation with its attributes and version "
                   "(exit 4 if none)."))
        return EXIT_OK;
    const char *k[3] = {NULL, NULL, NULL};
    int code = key_args("get", argc, argv, k, NULL);
    if (code != EXIT_OK)
        return code;
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    obsync_obs_t *o = NULL;
    int rc = obsync_get(cli->c, k[0], k[1], k[2], &o);
    if (rc != OBSYNC_OK)
        return cli_fail(cli, rc, "get");
    if (cli->json)
        obsync_jsonl_write_obs(stdout, o);
    else
        print_obs_detail(o);
    obsync_obs_free(&o);
    return EXIT_OK;
}

int
cmd_history(cli_t *cli, int argc, char **argv)
{
    if (wants_help(argc, argv,
                   "usage: obsync history DATAFLOW SERIES_KEY TIME_PERIOD\n"
                   "Every stored version, newest first: time, hlc, origin, "
                   "origin_seq,\nprovider, action, value, OBS_STATUS (exit 4 "
                   "if none)."))
        return EXIT_OK;
    const char *k[3] = {NULL, NULL, NULL};
    int code = key_args("history", argc, argv, k, NULL);
    if (code != EXIT_OK)
        return code;
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    if (!cli->json)
        printf("%-24s %-20s %-12s %-8s %-10s %-8s %-14s %s\n", "TIME", "HLC",
               "ORIGIN", "SEQ", "PROVIDER", "ACTION", "VALUE", "OBS_STATUS");
    int rc = obsync_history(cli->c, k[0], k[1], k[2],
                            cli->json ? print_jsonl : print_version, NULL);
    return rc == OBSYNC_OK ? EXIT_OK : cli_fail(cli, rc, "history");
}

/* ---------------------------------------------------------------- query */

static const char filter_help[] =
    "  --key PATTERN        series key pattern, empty positions = any "
    "(A.MEX..)\n"
    "  --start P, --end P   TIME_PERIOD range, inclusive\n"
    "  --updated-after T    changed after T (includes deletions)\n"
    "  --as-of T            state as it was at T\n"
    "  --include-deleted    also tombstones\n"
    "  --limit N            at most N observations\n"
    "T is a date (2024-06-26: its start for --updated-after, its end for\n"
    "--as-of), an ISO date-time (2024-06-26T10:00:00Z) or ms since the "
    "epoch.";

static int
time_opt(const char *cmd, const char *v, bool end, uint64_t *out)
{
    if (cli_parse_time(v, end, out) != 0)
        return cli_usage(cmd, "bad time", v);
    return EXIT_OK;
}

/* One filter option at argv[*i]; -1 when it is not a filter option. */
static int
filter_opt(const char *cmd, int argc, char **argv, int *i, obsync_query_t *q)
{
    const char *v = NULL;
    bool bad = false;
    if (strcmp(argv[*i], "--include-deleted") == 0) {
        q->include_deleted = true;
        return EXIT_OK;
    }
    if (cli_opt_val(argc, argv, i, "--key", &q->key_pattern, &bad) ||
        cli_opt_val(argc, argv, i, "--start", &q->start_period, &bad) ||
        cli_opt_val(argc, argv, i, "--end", &q->end_period, &bad))
        return bad ? EXIT_USAGE : EXIT_OK;
    if (cli_opt_val(argc, argv, i, "--updated-after", &v, &bad))
        return bad ? EXIT_USAGE : time_opt(cmd, v, false, &q->updated_after_ms);
    if (cli_opt_val(argc, argv, i, "--as-of", &v, &bad))
        return bad ? EXIT_USAGE : time_opt(cmd, v, true, &q->as_of_ms);
    if (cli_opt_val(argc, argv, i, "--limit", &v, &bad)) {
        if (bad || cli_parse_u64(v, &q->max_obs) != 0)
            return cli_usage(cmd, "bad --limit", v);
        return EXIT_OK;
    }
    return -1;
}

int
cmd_query(cli_t *cli, int argc, char **argv)
{
    obsync_query_t q;
    memset(&q, 0, sizeof(q));
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("usage: obsync query [DATAFLOW] [filters]\n"
                   "Observations as a table (JSON lines with --json).\n%s\n",
                   filter_help);
            return EXIT_OK;
        }
        int code = filter_opt("query", argc, argv, &i, &q);
        if (code > 0)
            return code;
        if (code == 0)
            continue;
        if (argv[i][0] == '-' || q.dataflow != NULL)
            return cli_usage("query", "unexpected argument", argv[i]);
        q.dataflow = argv[i];
    }
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    if (!cli->json)
        printf("%-22s %-36s %-10s %-14s %-4s %-16s %-12s %s\n", "DATAFLOW",
               "SERIES_KEY", "PERIOD", "VALUE", "STAT", "UNIT_MEASURE",
               "ORIGIN", "VERSION_TIME");
    int rc =
        obsync_query(cli->c, &q, cli->json ? print_jsonl : print_row, NULL);
    return rc == OBSYNC_OK ? EXIT_OK : cli_fail(cli, rc, "query");
}

static int
export_run(cli_t *cli, const obsync_query_t *q, obsync_format_t fmt,
           const char *path)
{
    FILE *out = path ? fopen(path, "w") : stdout;
    if (out == NULL) {
        (void)fprintf(stderr, "obsync export: cannot write %s\n", path);
        return EXIT_INPUT;
    }
    uint64_t n = 0;
    int rc = obsync_export(cli->c, q, fmt, out, &n);
    if (path != NULL && fclose(out) != 0 && rc == OBSYNC_OK)
        rc = OBSYNC_ESYS;
    if (rc != OBSYNC_OK)
        return cli_fail(cli, rc, "export");
    if (path != NULL && !cli->quiet)
        (void)fprintf(stderr, "%s: %llu observations\n", path,
                      (unsigned long long)n);
    return EXIT_OK;
}

int
cmd_export(cli_t *cli, int argc, char **argv)
{
    obsync_query_t q;
    memset(&q, 0, sizeof(q));
    const char *path = NULL, *format = "csv";
    for (int i = 1; i < argc; i++) {
        bool bad = false;
        if (cli_is_help(argv[i])) {
            printf("usage: obsync export [DATAFLOW] [filters] "
                   "[--format csv|jsonl] [-o FILE]\nWrites SDMX-CSV 2.x "
                   "(default) or JSON lines to FILE or stdout.\n%s\n",
                   filter_help);
            return EXIT_OK;
        }
        int code = filter_opt("export", argc, argv, &i, &q);
        if (code > 0)
            return code;
        if (code == 0)
            continue;
        if (cli_opt_val(argc, argv, &i, "--format", &format, &bad) ||
            cli_opt_val(argc, argv, &i, "-o", &path, &bad)) {
            if (bad)
                return EXIT_USAGE;
        } else if (argv[i][0] == '-' || q.dataflow != NULL) {
            return cli_usage("export", "unexpected argument", argv[i]);
        } else {
            q.dataflow = argv[i];
        }
    }
    obsync_format_t fmt = OBSYNC_FORMAT_CSV;
    if (strcmp(format, "jsonl") == 0 || strcmp(format, "json") == 0)
        fmt = OBSYNC_FORMAT_JSONL;
    else if (strcmp(format, "csv") != 0)
        return cli_usage("export", "unknown format", format);
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    return export_run(cli, &q, fmt, path);
}
