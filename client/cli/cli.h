/*
 * cli.h - shared pieces of the obsync command-line tool (the client/cli
 * sources): the run context, option helpers, output helpers and exit codes. The
 * CLI uses only the public libobsync API (obsync/obsync.h).
 */
#ifndef OBSYNC_CLI_H
#define OBSYNC_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "obsync/obsync.h"

/* Exit codes (docs/cli.md). */
enum {
    EXIT_OK = 0,
    EXIT_REJECTED = 1,
    EXIT_USAGE = 2,
    EXIT_UNREACH = 3,
    EXIT_NOTFOUND = 4,
    EXIT_INPUT = 5,
    EXIT_DAEMON = 6,
    EXIT_INTERRUPTED = 130,
};

typedef struct {
    const char *endpoint; /* resolved socket */
    bool json, quiet;
    int timeout_ms;
    obsync_client_t *c; /* owned, made on first use */
} cli_t;

extern volatile sig_atomic_t cli_interrupted;

/** The client, connected lazily; NULL after printing an error. */
obsync_client_t *cli_client(cli_t *cli);
/** Prints "obsync: CONTEXT: detail" for rc and returns the exit code. */
int cli_fail(cli_t *cli, int rc, const char *context);
/** Exit code for a library code. */
int cli_exit_code(const cli_t *cli, int rc);
/** Usage error: prints "obsync CMD: message" + hint, returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *msg, const char *arg);

/** True when argv[*i] is --name (or --name=V); *val gets the value,
 * consuming the next argument if needed. *bad set when it is missing. */
bool cli_opt_val(int argc, char **argv, int *i, const char *name,
                 const char **val, bool *bad);
bool cli_is_help(const char *arg);

/** Parses T: digits = ms since the epoch; YYYY-MM-DD (start of day, or its
 * last ms when end_of_day); YYYY-MM-DDTHH:MM[:SS[.mmm]][Z|+HH:MM|-HH:MM]
 * (UTC when no zone). 0 or -1. */
int cli_parse_time(const char *s, bool end_of_day, uint64_t *out);
/** Parses an unsigned decimal; 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);

/** Prints one issue as FILE:LINE: COLUMN: RULE: message to stderr. */
void cli_print_issue(const char *file, const obsync_issue_t *is);
/** Prints an issue as a JSON object to f. */
void cli_json_issue(FILE *f, const obsync_issue_t *is);
const char *cli_attr(const obsync_obs_t *o, const char *id);

int cmd_status(cli_t *cli, int argc, char **argv);
int cmd_reload(cli_t *cli, int argc, char **argv);
int cmd_keygen(cli_t *cli, int argc, char **argv);
int cmd_import(cli_t *cli, int argc, char **argv);
int cmd_put(cli_t *cli, int argc, char **argv);
int cmd_get(cli_t *cli, int argc, char **argv);
int cmd_delete(cli_t *cli, int argc, char **argv);
int cmd_query(cli_t *cli, int argc, char **argv);
int cmd_export(cli_t *cli, int argc, char **argv);
int cmd_history(cli_t *cli, int argc, char **argv);
int cmd_structure(cli_t *cli, int argc, char **argv);

#endif
