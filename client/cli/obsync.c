/*
 * obsync.c - main() of the obsync command-line tool: global options, socket
 * resolution (-s, OBSYNC_SOCKET, api_socket in the daemon config of -c, the
 * default path), the SIGINT flag and dispatch to the cmd_*.c files. It talks
 * to obsyncd only through libobsync. Exit codes are listed in usage() and
 * docs/cli.md.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define DEFAULT_SOCKET "/var/lib/obsync/api.sock"

volatile sig_atomic_t cli_interrupted;

static void
on_sigint(int sig)
{
    (void)sig;
    cli_interrupted = 1;
}

static void
usage(FILE *f)
{
    (void)fputs(
        "usage: obsync [-s SOCKET|-c CONFIG] [--json] [--timeout SEC] [-q]\n"
        "              COMMAND [ARGS]\n"
        "\n"
        "commands:\n"
        "  status                              node status\n"
        "  import FILE...                      import SDMX-CSV files\n"
        "  put DATAFLOW KEY PERIOD VALUE [ATTR=VALUE...]\n"
        "  get DATAFLOW KEY PERIOD\n"
        "  delete DATAFLOW KEY PERIOD\n"
        "  query [DATAFLOW] [filters]          observations as a table\n"
        "  export [DATAFLOW] [filters]         SDMX-CSV 2.x or JSON lines\n"
        "  history DATAFLOW KEY PERIOD         every version, newest first\n"
        "  structure list|show|load            code lists, DSDs, dataflows\n"
        "  reload                              hub: re-read the allow-list\n"
        "  keygen NAME [--provider P|--hub] [--dir DIR] [--force]\n"
        "                                      write a CURVE key pair (no "
        "daemon)\n"
        "  (obsync COMMAND --help for each)\n"
        "\n"
        "options:\n"
        "  -s SOCKET      daemon API socket (path or ipc://PATH)\n"
        "  -c CONFIG      read api_socket from this obsyncd config\n"
        "                 (else $OBSYNC_SOCKET, else " DEFAULT_SOCKET ")\n"
        "  --json         machine-readable output\n"
        "  --timeout SEC  wait this long for each reply (default 30)\n"
        "  -q             no progress or summary lines\n"
        "\n"
        "exit codes:\n"
        "  0 ok                 1 rows rejected or strict import aborted\n"
        "  2 usage/config error 3 daemon unreachable or timed out\n"
        "  4 not found          5 input file unreadable, empty, binary or\n"
        "                         malformed (no usable header); keygen:\n"
        "                         a key file cannot be written\n"
        "  6 daemon refused or failed (store full, protocol error, ...)\n"
        "  130 interrupted\n",
        f);
}

/* The value of `key = value` on this config line, or NULL (line edited in
 * place). */
static char *
line_value(char *line, const char *key)
{
    size_t klen = strlen(key);
    char *s = line + strspn(line, " \t");
    char *eq = strchr(s, '=');
    if (*s == '#' || eq == NULL || strncmp(s, key, klen) != 0 ||
        strspn(s + klen, " \t") != (size_t)(eq - s - klen))
        return NULL;
    char *v = eq + 1 + strspn(eq + 1, " \t");
    char *hash = strchr(v, '#');
    if (hash != NULL)
        *hash = '\0';
    size_t n = strcspn(v, "\r\n");
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    v[n] = '\0';
    return v;
}

/* The daemon's API socket from its config, as the daemon derives it:
 * api_socket, else data_dir/api.sock, else the default data_dir's. */
static char *
config_socket(const char *path, bool *bad)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        (void)fprintf(stderr, "obsync: %s: cannot read config\n", path);
        *bad = true;
        return NULL;
    }
    char line[4096], dir[4096] = "/var/lib/obsync";
    char *found = NULL, *v;
    while (found == NULL && fgets(line, sizeof(line), f) != NULL) {
        if ((v = line_value(line, "api_socket")) != NULL)
            found = strdup(v);
        else if ((v = line_value(line, "data_dir")) != NULL)
            (void)snprintf(dir, sizeof(dir), "%s", v);
    }
    (void)fclose(f); /* opened for reading: nothing to lose */
    if (found == NULL) {
        size_t n = strlen(dir) + sizeof("/api.sock");
        if ((found = malloc(n)) != NULL)
            (void)snprintf(found, n, "%s/api.sock", dir);
    }
    return found;
}

typedef struct {
    const char *name;
    int (*fn)(cli_t *, int, char **);
} command_t;

static const command_t commands[] = {
    {"status", cmd_status},
    {"import", cmd_import},
    {"put", cmd_put},
    {"get", cmd_get},
    {"delete", cmd_delete},
    {"query", cmd_query},
    {"export", cmd_export},
    {"history", cmd_history},
    {"structure", cmd_structure},
    {"reload", cmd_reload},
    {"keygen", cmd_keygen},
};

/* Global options; returns the index of COMMAND or -1 after an error. */
static int
global_opts(int argc, char **argv, cli_t *cli, const char **sock,
            const char **cfg)
{
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *v = NULL;
        bool bad = false;
        if (strcmp(argv[i], "--json") == 0)
            cli->json = true;
        else if (strcmp(argv[i], "-q") == 0)
            cli->quiet = true;
        else if (cli_is_help(argv[i])) {
            usage(stdout);
            exit(EXIT_OK);
        } else if (cli_opt_val(argc, argv, &i, "-s", sock, &bad) ||
                   cli_opt_val(argc, argv, &i, "-c", cfg, &bad)) {
            if (bad)
                return -1;
        } else if (cli_opt_val(argc, argv, &i, "--timeout", &v, &bad)) {
            uint64_t s;
            if (bad || cli_parse_u64(v, &s) != 0 || s == 0 || s > 86400)
                return -1;
            cli->timeout_ms = (int)(s * 1000);
        } else {
            return -1;
        }
    }
    return i < argc ? i : -1;
}

int
main(int argc, char **argv)
{
    cli_t cli = {0};
    const char *sock = NULL, *cfg = NULL;
    int at = global_opts(argc, argv, &cli, &sock, &cfg);
    if (at < 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char *from_cfg = NULL;
    bool bad = false;
    if (sock == NULL)
        sock = getenv("OBSYNC_SOCKET");
    if ((sock == NULL || sock[0] == '\0') && cfg != NULL)
        sock = from_cfg = config_socket(cfg, &bad);
    if (bad)
        return EXIT_USAGE;
    cli.endpoint = sock && sock[0] ? sock : DEFAULT_SOCKET;

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint; /* no SA_RESTART: waits see EINTR */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int rc = -1;
    for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
        if (strcmp(argv[at], commands[k].name) == 0)
            rc = commands[k].fn(&cli, argc - at, argv + at);
    if (rc < 0) {
        (void)fprintf(stderr, "obsync: unknown command '%s'\n", argv[at]);
        usage(stderr);
        rc = EXIT_USAGE;
    }
    obsync_client_destroy(&cli.c);
    free(from_cfg);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = EXIT_DAEMON;
    return rc;
}
