/*
 * cfg.h - obsyncd's configuration: one table of options (name, type,
 * default, bounds, help) drives the parser, validation, `obsyncd -nv` and
 * the commented samples in deploy/conf/ (a test checks they agree).
 *
 * Syntax: `key = value` lines, `#` starts a comment, blank lines ignored.
 * Sizes take K, M, G suffixes (powers of 1024). Unknown keys, bad values and
 * duplicates are errors that name the file, the line and the key.
 * Ownership: cfg_t owns its strings; cfg_fini frees them.
 */
#ifndef CFG_H
#define CFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { CFG_ROLE_NODE = 0, CFG_ROLE_HUB = 1 } cfg_role_t;

typedef struct {
    cfg_role_t role;
    char *node_id;
    char *provider;
    char *data_dir;
    char *api_socket;
    unsigned api_mode;
    char *api_group;
    char *structure_file;
    char *log_level;
    uint64_t map_size;
    uint64_t map_max;
    uint64_t map_step;
    uint64_t max_frame;
    uint64_t max_import_rows;
    uint64_t import_idle_timeout;
    uint64_t group_commit_max;
    bool no_sync;
    /* replication */
    char *hub_endpoint;      /* node: the hub's tcp:// endpoint; NULL =
                                standalone */
    char *repl_bind;         /* hub: where nodes connect */
    char *security;          /* "curve" or "plaintext" */
    char *curve_secret_key;  /* this daemon's secret certificate */
    char *hub_public_key;    /* node: the hub's public certificate */
    char *curve_allow_dir;   /* hub: allowed nodes' public certificates */
    uint64_t repl_max_frame; /* hub: largest message from a node */
    uint64_t handshake_timeout_ms;
    uint64_t max_pending_hello;
    uint64_t abuse_threshold;  /* protocol errors a minute, then refused */
    uint64_t abuse_backoff_ms; /* ... for this long */
    char *subscribe_dataflows; /* node: comma list, NULL = all */
    char *subscribe_areas;     /* node: comma list, NULL = all */
    uint64_t heartbeat_ms;
    uint64_t peer_timeout_ms;
    uint64_t log_keep; /* hub: log entries kept; older are trimmed */
} cfg_t;

void cfg_init(cfg_t *cfg);
void cfg_fini(cfg_t *cfg);

/** Parses the file at path into cfg (initialised with defaults first).
 * On error returns OBS_ECONFIG and writes "path:line: key: what is wrong"
 * into err (cap bytes). Checks required keys and cross-key rules. */
int cfg_load(cfg_t *cfg, const char *path, char *err, size_t cap);
/** Same from a string (name is used in messages); for tests and fuzzing. */
int cfg_parse(cfg_t *cfg, const char *text, size_t len, const char *name,
              char *err, size_t cap);

/** Writes the normalised configuration, one `key = value` per line with
 * every option (defaults included), for `obsyncd -nv`. A write error is
 * left in out's error indicator (ferror) for the caller. */
void cfg_print(const cfg_t *cfg, FILE *out);
/** Writes a commented sample: every option with its help and default.
 * Write errors as for cfg_print. */
void cfg_print_sample(FILE *out, cfg_role_t role);

const char *cfg_role_name(cfg_role_t role);

#endif
