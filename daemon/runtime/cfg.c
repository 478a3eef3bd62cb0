/*
 * cfg.c - obsyncd configuration (see cfg.h). The option table below is the
 * single place an option is defined: parsing, defaults, bounds, `-nv` output
 * and the help text of the samples all come from it (Redis static_configs[],
 * Knot schema.c). Called by main.c before the event loop starts.
 */
#include "cfg.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "obs.h"
#include "obs_err.h"

typedef enum {
    T_ROLE,
    T_ID,
    T_STR,
    T_PATH,
    T_SIZE,
    T_UINT,
    T_MODE,
    T_BOOL,
    T_LEVEL,
} opt_type_t;

typedef struct {
    const char *name;
    opt_type_t type;
    bool required;
    size_t off;
    const char *def; /* NULL = no default (required or optional empty) */
    uint64_t min, max;
    const char *help;
} opt_t;

#define OFF(f) offsetof(cfg_t, f)
#define GiB    (1024ull * 1024 * 1024)
#define MiB    (1024ull * 1024)

static const opt_t OPTS[] = {
    {"role", T_ROLE, true, OFF(role), NULL, 0, 0,
     "node (an observatory) or hub (the regional relay)"},
    {"node_id", T_ID, true, OFF(node_id), NULL, 0, 0,
     "this daemon's id: letters, digits, '_' or '-', at most 63"},
    {"provider", T_ID, false, OFF(provider), NULL, 0, 0,
     "data provider this node writes as (provision agreements decide which "
     "REF_AREA codes it may write); default: node_id"},
    {"data_dir", T_PATH, false, OFF(data_dir), "/var/lib/obsync", 0, 0,
     "directory of the LMDB store (created 0700)"},
    {"api_socket", T_PATH, false, OFF(api_socket), NULL, 0, 0,
     "local API socket path (ipc://); default: data_dir/api.sock"},
    {"api_mode", T_MODE, false, OFF(api_mode), "0600", 0, 0777,
     "permissions of the local API socket (octal)"},
    {"api_group", T_STR, false, OFF(api_group), NULL, 0, 0,
     "group owning the local API socket; use with api_mode = 0660"},
    {"structure_file", T_PATH, false, OFF(structure_file), NULL, 0, 0,
     "structure definitions loaded on first start (deploy/structure/)"},
    {"log_level", T_LEVEL, false, OFF(log_level), "notice", 0, 0,
     "err, warn, notice, info or debug"},
    {"map_size", T_SIZE, false, OFF(map_size), "1G", 1 * MiB, 1024 * GiB,
     "initial size of the LMDB map (address space only: the file grows as data "
     "is written)"},
    {"map_max", T_SIZE, false, OFF(map_max), "16G", 1 * MiB, 1024 * GiB,
     "the map grows up to this size; past it writes fail as 'store full'"},
    {"map_step", T_SIZE, false, OFF(map_step), "0", 0, 1024 * GiB,
     "growth step of the map; 0 doubles it"},
    {"max_frame", T_SIZE, false, OFF(max_frame), "64M", 4096, 256 * MiB,
     "largest message accepted on any socket"},
    {"max_import_rows", T_UINT, false, OFF(max_import_rows), "5000000", 1,
     100000000, "rows one import (one transaction) may hold"},
    {"import_idle_timeout", T_UINT, false, OFF(import_idle_timeout), "300", 1,
     86400, "seconds an unfinished import may stay idle before it is dropped"},
    {"group_commit_max", T_UINT, false, OFF(group_commit_max), "4096", 1, 4096,
     "most client writes (put/delete requests) grouped into one "
     "transaction"},
    {"no_sync", T_BOOL, false, OFF(no_sync), "no", 0, 0,
     "yes = do not fsync commits (tests only: acked writes may be lost)"},
    {"hub_endpoint", T_STR, false, OFF(hub_endpoint), NULL, 0, 0,
     "node: the hub's endpoint, tcp://HOST:PORT; unset = standalone node"},
    {"repl_bind", T_STR, false, OFF(repl_bind), "tcp://127.0.0.1:7600", 0, 0,
     "hub: endpoint nodes connect to (port 0 = kernel-chosen; the bound "
     "endpoint is written to data_dir/repl.endpoint)"},
    {"security", T_STR, false, OFF(security), "curve", 0, 0,
     "replication transport security: curve (authenticated and encrypted, "
     "README \"Keys and deployment\") or plaintext (tests and demos only: "
     "no authentication, the daemon warns at start and in status)"},
    {"curve_secret_key", T_PATH, false, OFF(curve_secret_key), NULL, 0, 0,
     "curve: this daemon's secret certificate (`obsync keygen`; the file must "
     "not be readable by group or others)"},
    {"hub_public_key", T_PATH, false, OFF(hub_public_key), NULL, 0, 0,
     "node, curve: the hub's public certificate; the node talks only to the "
     "hub holding its secret half"},
    {"curve_allow_dir", T_PATH, false, OFF(curve_allow_dir), NULL, 0, 0,
     "hub, curve: directory of the public certificates of the nodes allowed "
     "in; each names its node_id and provider. Re-read on SIGHUP, `obsync "
     "reload`, and when the directory changes"},
    {"repl_max_frame", T_SIZE, false, OFF(repl_max_frame), "4M", 2 * MiB,
     256 * MiB,
     "hub: largest message a node may send (the largest legal Publish is "
     "512 KiB of changes plus one change of at most 1 MiB)"},
    {"handshake_timeout_ms", T_UINT, false, OFF(handshake_timeout_ms), "10000",
     100, 600000,
     "hub: a connection that has not finished its security handshake in "
     "this time is closed"},
    {"max_pending_hello", T_UINT, false, OFF(max_pending_hello), "256", 1,
     100000,
     "hub: connections that passed the handshake but have not said Hello; "
     "beyond this, new handshakes are refused"},
    {"abuse_threshold", T_UINT, false, OFF(abuse_threshold), "20", 1, 1000000,
     "hub: protocol errors from one key (or address, in plaintext) within "
     "a minute before it is refused for abuse_backoff_ms"},
    {"abuse_backoff_ms", T_UINT, false, OFF(abuse_backoff_ms), "60000", 1000,
     86400000, "hub: how long a peer over abuse_threshold is refused"},
    {"subscribe_dataflows", T_STR, false, OFF(subscribe_dataflows), NULL, 0, 0,
     "node: dataflows to receive, comma separated; unset = all"},
    {"subscribe_areas", T_STR, false, OFF(subscribe_areas), NULL, 0, 0,
     "node: REF_AREA codes to receive, comma separated; unset = all"},
    {"heartbeat_ms", T_UINT, false, OFF(heartbeat_ms), "1000", 50, 60000,
     "replication: send a heartbeat after this much silence"},
    {"peer_timeout_ms", T_UINT, false, OFF(peer_timeout_ms), "30000", 200,
     600000,
     "replication: a peer silent this long is down (above the longest stall "
     "the link may have: PROTOCOL.md 5.4)"},
    {"log_keep", T_UINT, false, OFF(log_keep), "10000000", 1, 1000000000000ull,
     "hub: changes kept in the replication log; nodes further behind get a "
     "snapshot (entries the hub's state has not applied are kept too)"},
};
#define N_OPTS (sizeof(OPTS) / sizeof(OPTS[0]))

static int fail(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(err, cap, fmt, ap); /* may cut it short */
    va_end(ap);
    return OBS_ECONFIG;
}

const char *
cfg_role_name(cfg_role_t role)
{
    return role == CFG_ROLE_HUB ? "hub" : "node";
}

static char **
str_field(cfg_t *cfg, const opt_t *o)
{
    return (char **)((char *)cfg + o->off);
}

void
cfg_init(cfg_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

void
cfg_fini(cfg_t *cfg)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        opt_type_t t = OPTS[i].type;
        if (t == T_ID || t == T_STR || t == T_PATH || t == T_LEVEL) {
            char **s = str_field(cfg, &OPTS[i]);
            free(*s);
            *s = NULL;
        }
    }
}

static int
parse_u64(const char *v, bool size, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!isdigit((unsigned char)v[0]))
        return -1;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno != 0)
        return -1;
    uint64_t mult = 1;
    if (size && *end != '\0') {
        switch (toupper((unsigned char)*end)) {
        case 'K':
            mult = 1024;
            break;
        case 'M':
            mult = MiB;
            break;
        case 'G':
            mult = GiB;
            break;
        default:
            return -1;
        }
        end++;
        if (toupper((unsigned char)*end) == 'B' ||
            toupper((unsigned char)*end) == 'I')
            end++;
    }
    if (*end != '\0' || (n != 0 && mult > UINT64_MAX / n))
        return -1;
    *out = n * mult;
    return 0;
}

static int
set_string(cfg_t *cfg, const opt_t *o, const char *v)
{
    char **s = str_field(cfg, o);
    char *dup = strdup(v);
    if (dup == NULL)
        return OBS_ENOMEM;
    free(*s);
    *s = dup;
    return OBS_OK;
}

/* The set_* functions below set one option of their type from its text
 * (at p, the option's field); each returns a static reason or NULL. */

static const char *
set_role(cfg_t *cfg, const char *v)
{
    if (strcmp(v, "node") == 0)
        cfg->role = CFG_ROLE_NODE;
    else if (strcmp(v, "hub") == 0)
        cfg->role = CFG_ROLE_HUB;
    else
        return "must be 'node' or 'hub'";
    return NULL;
}

static bool
valid_level(const char *v)
{
    return strcmp(v, "err") == 0 || strcmp(v, "warn") == 0 ||
           strcmp(v, "notice") == 0 || strcmp(v, "info") == 0 ||
           strcmp(v, "debug") == 0;
}

static const char *
set_number(const opt_t *o, char *p, const char *v)
{
    uint64_t n = 0;
    if (parse_u64(v, o->type == T_SIZE, &n) != 0)
        return o->type == T_SIZE ? "must be a size like 512K, 64M or 2G"
                                 : "must be a non-negative integer";
    if (n < o->min || n > o->max)
        return "out of range";
    memcpy(p, &n, sizeof(n));
    return NULL;
}

static const char *
set_mode(char *p, const char *v)
{
    char *end;
    errno = 0;
    unsigned long m = strtoul(v, &end, 8);
    if (errno || *end || v[0] == '\0' || m > 0777)
        return "must be an octal mode like 0600";
    unsigned mode = (unsigned)m;
    memcpy(p, &mode, sizeof(mode));
    return NULL;
}

static const char *
set_bool(char *p, const char *v)
{
    bool b;
    if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "1"))
        b = true;
    else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "0"))
        b = false;
    else
        return "must be yes or no";
    memcpy(p, &b, sizeof(b));
    return NULL;
}

/* Sets one option from its text; returns a static reason or NULL. */
static const char *
set_value(cfg_t *cfg, const opt_t *o, const char *v)
{
    char *p = (char *)cfg + o->off;
    switch (o->type) {
    case T_ROLE:
        return set_role(cfg, v);
    case T_ID:
        if (!obs_id_valid(v))
            return "must be 1-63 letters, digits, '_' or '-'";
        return set_string(cfg, o, v) ? "out of memory" : NULL;
    case T_LEVEL:
        if (!valid_level(v))
            return "must be err, warn, notice, info or debug";
        return set_string(cfg, o, v) ? "out of memory" : NULL;
    case T_PATH:
        if (v[0] == '\0' || strlen(v) > 200)
            return "must be a path of 1-200 characters";
        return set_string(cfg, o, v) ? "out of memory" : NULL;
    case T_STR:
        return set_string(cfg, o, v) ? "out of memory" : NULL;
    case T_SIZE:
    case T_UINT:
        return set_number(o, p, v);
    case T_MODE:
        return set_mode(p, v);
    case T_BOOL:
        return set_bool(p, v);
    }
    return "unknown option type";
}

static const opt_t *
find_opt(const char *name)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (strcmp(OPTS[i].name, name) == 0)
            return &OPTS[i];
    return NULL;
}

static char *
trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

static int
apply_defaults(cfg_t *cfg)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].def && set_value(cfg, &OPTS[i], OPTS[i].def) != NULL)
            return OBS_ENOMEM;
    return OBS_OK;
}

/* The defaults derived from other keys: provider from node_id, api_socket
 * from data_dir. */
static int
derive_defaults(cfg_t *cfg, const char *name, char *err, size_t cap)
{
    const opt_t *provider = find_opt("provider");
    const opt_t *api_socket = find_opt("api_socket");
    if (provider == NULL || api_socket == NULL)
        return OBS_EINVAL; /* the table lost an option: our bug */
    if (cfg->provider == NULL &&
        set_string(cfg, provider, cfg->node_id) != OBS_OK)
        return OBS_ENOMEM;
    if (cfg->api_socket == NULL) {
        char path[256];
        int n = snprintf(path, sizeof(path), "%s/api.sock", cfg->data_dir);
        if (n < 0 || (size_t)n >= 108) /* sun_path */
            return fail(err, cap,
                        "%s: api_socket: data_dir is too long for "
                        "a socket path; set api_socket",
                        name);
        if (set_string(cfg, api_socket, path) != OBS_OK)
            return OBS_ENOMEM;
    } else if (strlen(cfg->api_socket) >= 108) {
        return fail(err, cap, "%s: api_socket: longer than 107 bytes", name);
    }
    return OBS_OK;
}

/* security = curve needs its key files; plaintext must not be mixed with
 * them (a half-configured daemon would look secure and not be). */
static int
check_security(const cfg_t *cfg, bool replicates, const char *name, char *err,
               size_t cap)
{
    bool curve = strcmp(cfg->security, "curve") == 0;
    if (!curve && strcmp(cfg->security, "plaintext") != 0)
        return fail(err, cap,
                    "%s: security: '%s' is not a mode; curve or plaintext",
                    name, cfg->security);
    const char *keys[] = {cfg->curve_secret_key, cfg->hub_public_key,
                          cfg->curve_allow_dir};
    const char *names[] = {"curve_secret_key", "hub_public_key",
                           "curve_allow_dir"};
    for (size_t i = 0; i < 3 && !curve; i++)
        if (keys[i] != NULL)
            return fail(err, cap,
                        "%s: %s: set, but security = plaintext uses no keys",
                        name, names[i]);
    if (!curve || !replicates)
        return OBS_OK;
    if (cfg->curve_secret_key == NULL)
        return fail(err, cap,
                    "%s: curve_secret_key: required with security = curve "
                    "(make one with `obsync keygen`; security = plaintext is "
                    "for tests only)",
                    name);
    if (cfg->role == CFG_ROLE_HUB && cfg->curve_allow_dir == NULL)
        return fail(err, cap,
                    "%s: curve_allow_dir: required on a hub with security = "
                    "curve (the public certificates of its nodes)",
                    name);
    if (cfg->role == CFG_ROLE_NODE && cfg->hub_public_key == NULL)
        return fail(err, cap,
                    "%s: hub_public_key: required on a node with security = "
                    "curve (the hub's public certificate)",
                    name);
    if (cfg->role == CFG_ROLE_HUB && cfg->hub_public_key != NULL)
        return fail(err, cap, "%s: hub_public_key: a node's key, not a hub's",
                    name);
    if (cfg->role == CFG_ROLE_NODE && cfg->curve_allow_dir != NULL)
        return fail(err, cap, "%s: curve_allow_dir: a hub's key, not a node's",
                    name);
    return OBS_OK;
}

/* The rules of the replication keys (security, endpoints, timing, frame
 * size). */
static int
check_replication(const cfg_t *cfg, const char *name, char *err, size_t cap)
{
    bool replicates = cfg->role == CFG_ROLE_HUB || cfg->hub_endpoint;
    if (cfg->hub_endpoint && cfg->role == CFG_ROLE_HUB)
        return fail(err, cap,
                    "%s: hub_endpoint: a hub has no hub (federation "
                    "is not built yet)",
                    name);
    int rc = check_security(cfg, replicates, name, err, cap);
    if (rc != OBS_OK)
        return rc;
    if (cfg->hub_endpoint && strncmp(cfg->hub_endpoint, "tcp://", 6) != 0)
        return fail(err, cap, "%s: hub_endpoint: must be tcp://HOST:PORT",
                    name);
    if (strncmp(cfg->repl_bind, "tcp://", 6) != 0)
        return fail(err, cap, "%s: repl_bind: must be tcp://ADDR:PORT", name);
    if (cfg->heartbeat_ms >= cfg->peer_timeout_ms)
        return fail(err, cap,
                    "%s: heartbeat_ms: must be below "
                    "peer_timeout_ms, or sessions flap",
                    name);
    if (replicates && cfg->max_frame < 4 * MiB)
        return fail(err, cap,
                    "%s: max_frame: at least 4M to replicate "
                    "(a batch is up to 1 MiB of changes)",
                    name);
    return OBS_OK;
}

/* Cross-key rules and derived defaults, after every line was read. */
static int
finish(cfg_t *cfg, const bool *seen, const char *name, char *err, size_t cap)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (OPTS[i].required && !seen[i])
            return fail(err, cap, "%s: %s: required key is missing", name,
                        OPTS[i].name);
    int rc = derive_defaults(cfg, name, err, cap);
    if (rc != OBS_OK)
        return rc;
    if (cfg->map_max < cfg->map_size)
        return fail(err, cap, "%s: map_max: smaller than map_size", name);
    if (cfg->api_mode & 0007) /* operator commands are local and trusted */
        return fail(err, cap,
                    "%s: api_mode: %04o opens the API socket to every local "
                    "user; use 0600, or 0660 with api_group",
                    name, cfg->api_mode);
    return check_replication(cfg, name, err, cap);
}

static int
parse_line(cfg_t *cfg, char *line, unsigned lineno, bool *seen,
           const char *name, char *err, size_t cap)
{
    char *hash = strchr(line, '#');
    if (hash)
        *hash = '\0';
    char *s = trim(line);
    if (*s == '\0')
        return OBS_OK;
    char *eq = strchr(s, '=');
    if (eq == NULL)
        return fail(err, cap, "%s:%u: expected 'key = value', got '%.60s'",
                    name, lineno, s);
    *eq = '\0';
    char *key = trim(s), *val = trim(eq + 1);
    const opt_t *o = find_opt(key);
    if (o == NULL)
        return fail(err, cap, "%s:%u: %.60s: unknown key", name, lineno, key);
    size_t idx = (size_t)(o - OPTS);
    if (seen[idx])
        return fail(err, cap, "%s:%u: %s: set twice", name, lineno, key);
    seen[idx] = true;
    const char *why = set_value(cfg, o, val);
    if (why)
        return fail(err, cap, "%s:%u: %s: '%.80s' %s", name, lineno, key, val,
                    why);
    return OBS_OK;
}

int
cfg_parse(cfg_t *cfg, const char *text, size_t len, const char *name, char *err,
          size_t cap)
{
    cfg_fini(cfg);
    cfg_init(cfg);
    if (apply_defaults(cfg) != OBS_OK)
        return OBS_ENOMEM;
    bool seen[N_OPTS] = {false};
    unsigned lineno = 0;
    size_t pos = 0;
    int rc = OBS_OK;
    while (rc == OBS_OK && pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;
        lineno++;
        if (memchr(text + pos, '\0', n) != NULL) {
            rc = fail(err, cap, "%s:%u: binary data (NUL byte)", name, lineno);
            break;
        }
        if (n > 4096) {
            rc = fail(err, cap, "%s:%u: line longer than 4096 bytes", name,
                      lineno);
            break;
        }
        char line[4097];
        memcpy(line, text + pos, n);
        line[n] = '\0';
        rc = parse_line(cfg, line, lineno, seen, name, err, cap);
        pos += n + (nl ? 1 : 0);
    }
    if (rc == OBS_OK)
        rc = finish(cfg, seen, name, err, cap);
    return rc;
}

#define CFG_FILE_MAX ((size_t)1024 * 1024)

int
cfg_load(cfg_t *cfg, const char *path, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return fail(err, cap, "%s: cannot open: %s", path, strerror(errno));
    char *buf = malloc(CFG_FILE_MAX + 1);
    if (buf == NULL) {
        (void)fclose(f); /* opened for reading: nothing to lose */
        return OBS_ENOMEM;
    }
    size_t n = fread(buf, 1, CFG_FILE_MAX + 1, f);
    bool read_failed = ferror(f) != 0;
    int read_errno = errno;
    (void)fclose(f);
    int rc;
    if (read_failed) /* not a configuration cut short */
        rc = fail(err, cap, "%s: cannot read: %s", path, strerror(read_errno));
    else if (n > CFG_FILE_MAX)
        rc = fail(err, cap, "%s: larger than 1 MiB", path);
    else
        rc = cfg_parse(cfg, buf, n, path, err, cap);
    free(buf);
    return rc;
}

static void
print_value(const cfg_t *cfg, const opt_t *o, FILE *out)
{
    const char *p = (const char *)cfg + o->off;
    uint64_t n;
    switch (o->type) {
    case T_ROLE:
        (void)fprintf(out, "%s", cfg_role_name(cfg->role));
        break;
    case T_SIZE:
    case T_UINT:
        memcpy(&n, p, sizeof(n));
        (void)fprintf(out, "%" PRIu64, n);
        break;
    case T_MODE: {
        unsigned m;
        memcpy(&m, p, sizeof(m));
        (void)fprintf(out, "%04o", m);
        break;
    }
    case T_BOOL: {
        bool b;
        memcpy(&b, p, sizeof(b));
        (void)fprintf(out, "%s", b ? "yes" : "no");
        break;
    }
    default: {
        const char *s;
        memcpy(&s, p, sizeof(s));
        (void)fprintf(out, "%s", s ? s : "");
    }
    }
}

static bool
is_unset(const cfg_t *cfg, const opt_t *o)
{
    if (o->type != T_ID && o->type != T_STR && o->type != T_PATH &&
        o->type != T_LEVEL)
        return false;
    const char *s;
    memcpy(&s, (const char *)cfg + o->off, sizeof(s));
    return s == NULL;
}

void
cfg_print(const cfg_t *cfg, FILE *out)
{
    for (size_t i = 0; i < N_OPTS; i++) {
        /* Unset options print commented out, so the output parses again to
         * the same configuration (`obsyncd -nv` output is a valid file). */
        if (is_unset(cfg, &OPTS[i])) {
            (void)fprintf(out, "#%s =\n", OPTS[i].name);
            continue;
        }
        (void)fprintf(out, "%s = ", OPTS[i].name);
        print_value(cfg, &OPTS[i], out);
        (void)fputc('\n', out);
    }
}

void
cfg_print_sample(FILE *out, cfg_role_t role)
{
    (void)fprintf(out,
                  "# obsyncd configuration (%s). `key = value`; # comments.\n",
                  cfg_role_name(role));
    for (size_t i = 0; i < N_OPTS; i++) {
        (void)fprintf(out, "\n# %s\n", OPTS[i].help);
        if (OPTS[i].required)
            (void)fprintf(out, "%s = %s\n", OPTS[i].name,
                          i == 0 ? cfg_role_name(role) : "CHANGE-ME");
        else
            (void)fprintf(out, "#%s = %s\n", OPTS[i].name,
                          OPTS[i].def ? OPTS[i].def : "");
    }
}
