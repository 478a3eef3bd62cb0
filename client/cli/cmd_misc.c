/*
 * cmd_misc.c - `obsync structure list|show|load` (`obsync status` is in
 * cmd_status.c). Human-readable by default, JSON with --json; libobsync does
 * the talking.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define STRUCTURE_FILE_MAX ((size_t)32 * 1024 * 1024)

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
    (void)fputs("{\"kind\":", stdout);
    obsync_json_write_string(stdout, a->kind);
    (void)fputs(",\"urn\":", stdout);
    obsync_json_write_string(stdout, a->urn);
    (void)fputs(",\"name\":", stdout);
    obsync_json_write_string(stdout, a->name);
    printf(",\"items\":%u,\"text\":", a->items);
    obsync_json_write_string(stdout, a->text);
    puts("}");
    return 0;
}

/* What an artefact's item count counts (StructureList fills `items` so). */
static const char *
items_label(const char *kind)
{
    if (strcmp(kind, "codelist") == 0)
        return "codes";
    if (strcmp(kind, "dsd") == 0)
        return "components";
    if (strcmp(kind, "dataflow") == 0)
        return "dimensions";
    if (strcmp(kind, "agreement") == 0)
        return "areas";
    return "items";
}

/* The daemon sends no definition text (v1): show what it does send. */
static void
show_summary(const obsync_artefact_t *a)
{
    bool agr = strcmp(a->kind, "agreement") == 0;
    printf("kind        %s\nurn         %s\n%-11s %s\n%-11s %u\n"
           "definition  not sent by the daemon; see the structure file it "
           "loaded\n",
           a->kind, a->urn, agr ? "first area" : "name",
           a->name[0] ? a->name : "-", items_label(a->kind), a->items);
}

static int
show_artefact(void *arg, const obsync_artefact_t *a)
{
    const cli_t *cli = arg;
    if (cli->json)
        return print_artefact(arg, a);
    if (a->text[0] == '\0') {
        show_summary(a);
        return 0;
    }
    (void)fputs(a->text, stdout);
    if (a->text[0] && a->text[strlen(a->text) - 1] != '\n')
        (void)fputc('\n', stdout);
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
    (void)fclose(f); /* opened for reading: nothing to lose */
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
        (void)fprintf(stderr,
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
        (void)fputs("{\"file\":", stdout);
        obsync_json_write_string(stdout, path);
        printf(",\"loaded\":%u,\"dry_run\":%s,\"errors\":%s}\n", loaded,
               dry ? "true" : "false", ui.errors ? "true" : "false");
    } else if (!cli->quiet)
        printf("%s: loaded %u artefacts%s\n", path, loaded,
               dry ? " (dry run)" : "");
    return ui.errors ? EXIT_REJECTED : EXIT_OK;
}

/* `structure list [KIND]` (urn NULL) and `structure show URN`. */
static int
structure_list(cli_t *cli, const char *kind, const char *urn,
               obsync_artefact_cb cb)
{
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    int rc = obsync_structure_list(cli->c, kind, urn, cb, cli);
    return rc == OBSYNC_OK ? EXIT_OK : cli_fail(cli, rc, "structure");
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
    if (strcmp(sub, "list") == 0 && argc <= 3)
        return structure_list(cli, arg, NULL, print_artefact);
    if (strcmp(sub, "show") == 0 && argc == 3)
        return structure_list(cli, NULL, arg, show_artefact);
    if (strcmp(sub, "load") == 0 && arg != NULL && (argc == 3 || dry)) {
        if (cli_client(cli) == NULL)
            return EXIT_USAGE;
        return structure_load(cli, arg, dry);
    }
    return cli_usage("structure", "bad arguments", sub);
}
