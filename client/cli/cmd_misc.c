/*
 * cmd_misc.c - `obsync status` and `obsync structure list|show|load`.
 * Human-readable by default, JSON with --json; libobsync does the talking.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define STRUCTURE_FILE_MAX (32u * 1024u * 1024u)

/* ---------------------------------------------------------------- status */

static void
status_json(const obsync_status_t *s)
{
    fputs("{\"node_id\":", stdout);
    obsync_json_write_string(stdout, s->node_id);
    fputs(",\"role\":", stdout);
    obsync_json_write_string(stdout, s->role);
    fputs(",\"provider\":", stdout);
    obsync_json_write_string(stdout, s->provider);
    fputs(",\"epoch\":", stdout);
    obsync_json_write_string(stdout, s->epoch);
    printf(
        ",\"observations\":%llu,\"tombstones\":%llu,"
        "\"history_versions\":%llu,\"outbox_depth\":%llu,"
        "\"last_origin_seq\":%llu,\"hlc\":%llu,\"map_size\":%llu,"
        "\"map_used\":%llu,\"commits\":%llu,\"writes_grouped\":%llu,"
        "\"hub_cursor\":%llu,\"uptime_s\":%llu,\"dataflows\":[",
        (unsigned long long)s->observations, (unsigned long long)s->tombstones,
        (unsigned long long)s->history_versions,
        (unsigned long long)s->outbox_depth,
        (unsigned long long)s->last_origin_seq, (unsigned long long)s->hlc,
        (unsigned long long)s->map_size, (unsigned long long)s->map_used,
        (unsigned long long)s->commits, (unsigned long long)s->writes_grouped,
        (unsigned long long)s->hub_cursor, (unsigned long long)s->uptime_s);
    for (size_t i = 0; i < s->n_dataflows; i++) {
        if (i > 0)
            fputc(',', stdout);
        obsync_json_write_string(stdout, s->dataflows[i]);
    }
    puts("]}");
}

static void
status_text(const obsync_status_t *s)
{
    char t[40];
    obsync_format_time_ms(s->hlc >> 16, t, sizeof(t));
    uint64_t up = s->uptime_s;
    double pct =
        s->map_size ? 100.0 * (double)s->map_used / (double)s->map_size : 0.0;
    printf("node id           %s\nrole              %s\n"
           "provider          %s\nepoch             %s\n",
           s->node_id, s->role, s->provider, s->epoch);
    printf("observations      %llu\ntombstones        %llu\n"
           "history versions  %llu\noutbox depth      %llu\n",
           (unsigned long long)s->observations,
           (unsigned long long)s->tombstones,
           (unsigned long long)s->history_versions,
           (unsigned long long)s->outbox_depth);
    printf("hlc               %llu (%s)\n"
           "map               %llu of %llu bytes used (%.1f%%)\n"
           "commits           %llu\ngrouped writes    %llu\n"
           "uptime            %llud %02lluh %02llum %02llus\n",
           (unsigned long long)s->hlc, t, (unsigned long long)s->map_used,
           (unsigned long long)s->map_size, pct, (unsigned long long)s->commits,
           (unsigned long long)s->writes_grouped,
           (unsigned long long)(up / 86400),
           (unsigned long long)(up / 3600 % 24),
           (unsigned long long)(up / 60 % 60), (unsigned long long)(up % 60));
    printf("dataflows         %zu\n", s->n_dataflows);
    for (size_t i = 0; i < s->n_dataflows; i++)
        printf("  %s\n", s->dataflows[i]);
}

int
cmd_status(cli_t *cli, int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        puts("usage: obsync status\nNode id, role, provider, epoch, counts, "
             "outbox depth, hlc, map use,\ncommits, grouped writes, uptime "
             "and dataflows of the daemon.");
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_usage("status", "unexpected argument", argv[1]);
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    obsync_status_t *s = NULL;
    int rc = obsync_status(cli->c, &s);
    if (rc != OBSYNC_OK)
        return cli_fail(cli, rc, "status");
    if (cli->json)
        status_json(s);
    else
        status_text(s);
    obsync_status_free(&s);
    return EXIT_OK;
}

/* ---------------------------------------------------------------- structure */

static void
structure_help(void)
{
    puts("usage: obsync structure list [codelist|dsd|dataflow|agreement]\n"
         "       obsync structure show URN\n"
         "       obsync structure load FILE [--dry-run]\n"
         "Lists, shows or loads structural artefacts (exit 4 for an unknown "
         "URN).");
}

static int
print_artefact(void *arg, const obsync_artefact_t *a)
{
    const cli_t *cli = arg;
    if (!cli->json) {
        printf("%-10s %-40s %6u  %s\n", a->kind, a->urn, a->items, a->name);
        return 0;
    }
    fputs("{\"kind\":", stdout);
    obsync_json_write_string(stdout, a->kind);
    fputs(",\"urn\":", stdout);
    obsync_json_write_string(stdout, a->urn);
    fputs(",\"name\":", stdout);
    obsync_json_write_string(stdout, a->name);
    printf(",\"items\":%u,\"text\":", a->items);
    obsync_json_write_string(stdout, a->text);
    puts("}");
    return 0;
}

static int
show_artefact(void *arg, const obsync_artefact_t *a)
{
    const cli_t *cli = arg;
    if (cli->json || a->text[0] == '\0')
        return print_artefact(arg, a); /* no definition text: its summary */
    fputs(a->text, stdout);
    if (a->text[0] && a->text[strlen(a->text) - 1] != '\n')
        fputc('\n', stdout);
    return 0;
}

typedef struct {
    const char *file;
    bool errors;
} load_ui_t;

static void
load_issue(void *arg, const obsync_issue_t *is)
{
    load_ui_t *ui = arg;
    ui->errors |= !is->warning;
    cli_print_issue(ui->file, is);
}

static char *
read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap + 1);
    while (buf != NULL) {
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0 || len > STRUCTURE_FILE_MAX)
            break;
        char *n = len == cap ? realloc(buf, (cap *= 2) + 1) : buf;
        if (n == NULL)
            free(buf);
        buf = n;
    }
    bool bad = ferror(f) || len == 0 || len > STRUCTURE_FILE_MAX;
    fclose(f);
    if (buf != NULL)
        buf[len] = '\0';
    if (bad || (buf != NULL && strlen(buf) != len)) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int
structure_load(cli_t *cli, const char *path, bool dry)
{
    char *text = read_text(path);
    if (text == NULL) {
        fprintf(stderr,
                "obsync structure: %s: unreadable, empty, binary or "
                "over 32 MiB\n",
                path);
        return EXIT_INPUT;
    }
    const char *slash = strrchr(path, '/');
    load_ui_t ui = {path, false};
    uint32_t loaded = 0;
    int rc = obsync_structure_load(cli->c, text, slash ? slash + 1 : path, dry,
                                   load_issue, &ui, &loaded);
    free(text);
    if (rc != OBSYNC_OK)
        return cli_fail(cli, rc, path);
    if (cli->json) {
        fputs("{\"file\":", stdout);
        obsync_json_write_string(stdout, path);
        printf(",\"loaded\":%u,\"dry_run\":%s,\"errors\":%s}\n", loaded,
               dry ? "true" : "false", ui.errors ? "true" : "false");
    } else if (!cli->quiet)
        printf("%s: loaded %u artefacts%s\n", path, loaded,
               dry ? " (dry run)" : "");
    return ui.errors ? EXIT_REJECTED : EXIT_OK;
}

int
cmd_structure(cli_t *cli, int argc, char **argv)
{
    if (argc < 2 || cli_is_help(argv[1])) {
        structure_help();
        return argc < 2 ? EXIT_USAGE : EXIT_OK;
    }
    for (int i = 2; i < argc; i++)
        if (cli_is_help(argv[i])) {
            structure_help();
            return EXIT_OK;
        }
    const char *sub = argv[1];
    const char *arg = argc > 2 ? argv[2] : NULL;
    bool dry = argc > 3 && strcmp(argv[3], "--dry-run") == 0;
    if (strcmp(sub, "list") == 0 && argc <= 3) {
        if (cli_client(cli) == NULL)
            return EXIT_USAGE;
        int rc = obsync_structure_list(cli->c, arg, NULL, print_artefact, cli);
        return rc == OBSYNC_OK ? EXIT_OK : cli_fail(cli, rc, "structure");
    }
    if (strcmp(sub, "show") == 0 && argc == 3) {
        if (cli_client(cli) == NULL)
            return EXIT_USAGE;
        int rc = obsync_structure_list(cli->c, NULL, arg, show_artefact, cli);
        return rc == OBSYNC_OK ? EXIT_OK : cli_fail(cli, rc, "structure");
    }
    if (strcmp(sub, "load") == 0 && arg != NULL && (argc == 3 || dry)) {
        if (cli_client(cli) == NULL)
            return EXIT_USAGE;
        return structure_load(cli, arg, dry);
    }
    return cli_usage("structure", "bad arguments", sub);
}
