/*
 * cmd_import.c - `obsync import FILE...`: imports each file through
 * obsync_import_file, printing issues (capped by --max-issues), progress and
 * a summary line per file, or one JSON object per file with --json. The exit
 * code is the worst over all files.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_IGNORE 64

typedef struct {
    cli_t *cli;
    const char *file;
    uint64_t max_issues, shown, more;
    bool progress, tty;
    FILE *json_issues; /* memstream collecting issues for --json */
    char *json_buf;
    size_t json_len;
} imp_ui_t;

static void
help(void)
{
    puts("usage: obsync import FILE... [--strict] [--dry-run] "
         "[--decimal-comma]\n"
         "                     [--ignore-column C]... [--max-issues N] "
         "[--progress]\n"
         "                     [--commit-every N]\n"
         "Imports SDMX-CSV files (v1 DATAFLOW or v2.x STRUCTURE headers), one "
         "transaction\nper file. Issues go to stderr as FILE:LINE: COLUMN: "
         "RULE: message (warnings\nprefixed 'warning:'), at most N per file "
         "(default 50); a summary line per\nfile goes to stdout.\n"
         "  --strict         any rejected row aborts the file's import\n"
         "  --dry-run        validate and count, store nothing\n"
         "  --decimal-comma  OBS_VALUE may use ',' as decimal mark\n"
         "  --ignore-column  ignore a column of the file (repeatable)\n"
         "  --commit-every N commit every N rows as they arrive instead of "
         "the file as\n"
         "                   one transaction: replication starts at once; a "
         "failure keeps\n"
         "                   the parts already committed (rerun the file)\n"
         "  --progress       show progress even when stderr is not a tty");
}

static void
on_issue(void *arg, const obsync_issue_t *is)
{
    imp_ui_t *ui = arg;
    if (ui->shown >= ui->max_issues) {
        ui->more++;
        return;
    }
    ui->shown++;
    if (ui->json_issues != NULL) {
        if (ui->shown > 1)
            (void)fputc(',', ui->json_issues); /* checked in print_json */
        cli_json_issue(ui->json_issues, is);
    } else {
        if (ui->tty && ui->progress)
            (void)fputs("\r\033[K", stderr);
        cli_print_issue(ui->file, is);
    }
}

static void
on_progress(void *arg, uint64_t rows, uint64_t bytes, uint64_t total)
{
    imp_ui_t *ui = arg;
    if (!ui->progress)
        return;
    unsigned pct = total ? (unsigned)(bytes * 100 / total) : 100;
    (void)fprintf(stderr, "%s%s: %llu rows, %u%%%s", ui->tty ? "\r\033[K" : "",
                  ui->file, (unsigned long long)rows, pct, ui->tty ? "" : "\n");
}

static const char *
outcome(const obsync_summary_t *s, bool dry_run)
{
    if (dry_run)
        return "dry run";
    return s->committed ? "committed" : "not committed";
}

static void
print_json(imp_ui_t *ui, int rc, const obsync_summary_t *s, bool dry_run)
{
    /* The memstream's buffer holds all the issues only after a flush that
     * worked; when it failed (out of memory) they count as omitted rather
     * than be printed cut off. */
    const char *issues = "";
    uint64_t omitted = ui->more + s->issues_omitted;
    if (ui->json_issues != NULL && fflush(ui->json_issues) == 0 &&
        !ferror(ui->json_issues) && ui->json_buf != NULL)
        issues = ui->json_buf;
    else
        omitted += ui->shown;
    (void)fputs("{\"file\":", stdout);
    obsync_json_write_string(stdout, ui->file);
    printf(",\"accepted\":%llu,\"unchanged\":%llu,\"rejected\":%llu,"
           "\"deleted\":%llu,\"warnings\":%llu,\"committed\":%s,"
           "\"dry_run\":%s,\"batch_id\":",
           (unsigned long long)s->accepted, (unsigned long long)s->unchanged,
           (unsigned long long)s->rejected, (unsigned long long)s->deleted,
           (unsigned long long)s->warnings, s->committed ? "true" : "false",
           dry_run ? "true" : "false");
    obsync_json_write_string(stdout, s->batch_id);
    printf(",\"issues\":[%s],\"issues_omitted\":%llu", issues,
           (unsigned long long)omitted);
    if (rc != OBSYNC_OK) {
        (void)fputs(",\"error\":", stdout);
        obsync_json_write_string(stdout, obsync_client_errmsg(ui->cli->c));
    }
    puts("}");
}

static int
import_one(imp_ui_t *ui, const obsync_import_opts_t *opts)
{
    cli_t *cli = ui->cli;
    obsync_summary_t sum;
    memset(&sum, 0, sizeof(sum));
    ui->shown = ui->more = 0;
    if (cli->json)
        ui->json_issues = open_memstream(&ui->json_buf, &ui->json_len);
    int rc = obsync_import_file(cli->c, ui->file, opts, &sum);
    if (ui->progress && ui->tty)
        (void)fputs("\r\033[K", stderr);
    int code = rc == OBSYNC_OK ? EXIT_OK : cli_exit_code(cli, rc);
    if (rc == OBSYNC_OK &&
        (sum.rejected > 0 || (!opts->dry_run && !sum.committed)))
        code = EXIT_REJECTED;
    if (cli->json) {
        print_json(ui, rc, &sum, opts->dry_run);
        if (ui->json_issues != NULL)       /* NULL: open_memstream failed */
            (void)fclose(ui->json_issues); /* json_buf already printed */
        free(ui->json_buf);
        ui->json_issues = NULL;
        ui->json_buf = NULL;
        return code;
    }
    uint64_t more = ui->more + sum.issues_omitted;
    if (more > 0)
        (void)fprintf(stderr, "%s: ... %llu more\n", ui->file,
                      (unsigned long long)more);
    if (rc != OBSYNC_OK && rc != OBSYNC_EFORMAT)
        return cli_fail(cli, rc, ui->file);
    if (rc == OBSYNC_EFORMAT)
        (void)fprintf(stderr, "obsync: %s\n", obsync_client_errmsg(cli->c));
    if (rc == OBSYNC_OK && !cli->quiet)
        printf("%s: accepted %llu, unchanged %llu, rejected %llu, deleted "
               "%llu, warnings %llu (%s)\n",
               ui->file, (unsigned long long)sum.accepted,
               (unsigned long long)sum.unchanged,
               (unsigned long long)sum.rejected,
               (unsigned long long)sum.deleted,
               (unsigned long long)sum.warnings, outcome(&sum, opts->dry_run));
    return code;
}

/* One option with a value at argv[*i]: EXIT_OK when taken, a usage exit
 * code when bad, -1 when argv[*i] is not one of them. */
static int
value_opt(int argc, char **argv, int *i, obsync_import_opts_t *o, imp_ui_t *ui,
          const char **ignore)
{
    const char *v = NULL;
    bool bad = false;
    if (cli_opt_val(argc, argv, i, "--ignore-column", &v, &bad)) {
        if (bad || o->n_ignore_columns >= MAX_IGNORE)
            return cli_usage("import", "bad --ignore-column", v);
        ignore[o->n_ignore_columns++] = v;
        return EXIT_OK;
    }
    if (cli_opt_val(argc, argv, i, "--commit-every", &v, &bad)) {
        if (bad || cli_parse_u64(v, &o->commit_rows) != 0 ||
            o->commit_rows == 0)
            return cli_usage("import", "bad --commit-every (rows > 0)", v);
        return EXIT_OK;
    }
    if (cli_opt_val(argc, argv, i, "--max-issues", &v, &bad)) {
        if (bad || cli_parse_u64(v, &ui->max_issues) != 0)
            return cli_usage("import", "bad --max-issues", v);
        return EXIT_OK;
    }
    return -1;
}

/* Parses options; files are left in files[0..*n). */
static int
parse(int argc, char **argv, obsync_import_opts_t *o, imp_ui_t *ui,
      const char **ignore, const char **files, int *n)
{
    for (int i = 1; i < argc; i++) {
        int code;
        if (cli_is_help(argv[i])) {
            help();
            exit(EXIT_OK);
        } else if (strcmp(argv[i], "--strict") == 0) {
            o->strict = true;
        } else if (strcmp(argv[i], "--dry-run") == 0) {
            o->dry_run = true;
        } else if (strcmp(argv[i], "--decimal-comma") == 0) {
            o->decimal_comma = true;
        } else if (strcmp(argv[i], "--progress") == 0) {
            ui->progress = true;
        } else if ((code = value_opt(argc, argv, &i, o, ui, ignore)) >= 0) {
            if (code != EXIT_OK)
                return code;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage("import", "unknown option", argv[i]);
        } else {
            files[(*n)++] = argv[i];
        }
    }
    if (o->strict && o->commit_rows > 0)
        return cli_usage("import",
                         "--strict needs the file as one transaction, "
                         "not --commit-every",
                         NULL);
    return *n > 0 ? EXIT_OK : cli_usage("import", "no FILE given", NULL);
}

int
cmd_import(cli_t *cli, int argc, char **argv)
{
    const char *ignore[MAX_IGNORE];
    const char **files = calloc((size_t)argc + 1, sizeof(char *));
    if (files == NULL)
        return EXIT_DAEMON;
    obsync_import_opts_t o;
    memset(&o, 0, sizeof(o));
    imp_ui_t ui = {.cli = cli, .max_issues = 50};
    int n = 0;
    int code = parse(argc, argv, &o, &ui, ignore, files, &n);
    ui.tty = isatty(STDERR_FILENO);
    ui.progress = !cli->quiet && !cli->json && (ui.progress || ui.tty);
    o.ignore_columns = ignore;
    o.on_issue = on_issue;
    o.on_progress = on_progress;
    o.arg = &ui;
    if (code == EXIT_OK && cli_client(cli) == NULL)
        code = EXIT_USAGE;
    for (int i = 0; code != EXIT_USAGE && i < n && !cli_interrupted; i++) {
        ui.file = files[i];
        int c = import_one(&ui, &o);
        code = c > code ? c : code;
        if (c == EXIT_UNREACH || c == EXIT_INTERRUPTED)
            break; /* the next files would fail the same way */
    }
    free(files);
    return code;
}
