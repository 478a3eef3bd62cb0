/*
 * cmd_status.c - `obsync status`: the daemon's counts and, below them, the
 * security of its replication link (a loud line when it is plaintext) and
 * its replication: on a node its hub link (state, cursor, lag, outbox), on a
 * hub its log and a table with one row per node; --json prints every field
 * of obsync_status_t under the proto's field names. Also `obsync reload`,
 * the same request with its reload flag set. It only formats what
 * obsync_status / obsync_reload (libobsync) return; obsync.c dispatches to
 * cmd_status and cmd_reload.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

typedef unsigned long long ull_t;

/* The bound on clock skew (PROTOCOL.md §5.4 "Clocks"): past it a node
 * refuses local writes. */
#define CLOCK_LIMIT_MS ((int64_t)5 * 60 * 1000)

#define PLAINTEXT_WARNING                                                  \
    "WARNING: replication is PLAINTEXT: not authenticated, not encrypted " \
    "(tests and demos only)"

/* ---------------------------------------------------------------- json */

static void
json_str(const char *key, const char *val)
{
    printf(",\"%s\":", key);
    obsync_json_write_string(stdout, val);
}

static void
json_u64(const char *key, uint64_t v)
{
    printf(",\"%s\":%llu", key, (ull_t)v);
}

/* refused as {"reason":count,...}: every reason the daemon sent */
static void
json_refused(const obsync_refusal_t *r, size_t n)
{
    (void)fputs(",\"refused\":{", stdout);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            (void)fputc(',', stdout);
        obsync_json_write_string(stdout, r[i].reason);
        printf(":%llu", (ull_t)r[i].count);
    }
    (void)fputc('}', stdout);
}

static void
peer_json(const obsync_peer_status_t *p)
{
    (void)fputs("{\"node_id\":", stdout);
    obsync_json_write_string(stdout, p->node_id);
    printf(",\"up\":%s", p->up ? "true" : "false");
    json_u64("last_seen_ms", p->last_seen_ms);
    json_str("address", p->address);
    json_u64("cursor", p->cursor);
    json_u64("lag_changes", p->lag_changes);
    json_u64("lag_ms", p->lag_ms);
    json_u64("accepted", p->accepted);
    json_u64("rejected", p->rejected);
    json_u64("conflicts", p->conflicts);
    json_u64("bytes_in", p->bytes_in);
    json_u64("bytes_out", p->bytes_out);
    json_str("state", p->state);
    json_u64("duplicates", p->duplicates);
    json_u64("last_origin_seq", p->last_origin_seq);
    json_u64("clock_refused", p->clock_refused);
    json_str("link", p->link);
    json_u64("rate_out_bps", p->rate_out_bps);
    json_u64("rate_in_bps", p->rate_in_bps);
    json_u64("reconnects", p->reconnects);
    json_str("key", p->key);
    json_refused(p->refused, p->n_refused);
    (void)fputc('}', stdout);
}

static void
security_json(const obsync_status_t *s)
{
    json_str("security", s->security);
    json_str("public_key", s->public_key);
    json_str("hub_key", s->hub_key);
    json_u64("allowed_keys", s->allowed_keys);
    json_refused(s->refused, s->n_refused);
    json_u64("connections", s->connections);
    json_u64("pending_hello", s->pending_hello);
    json_u64("handshake_failures", s->handshake_failures);
    json_u64("backoffs", s->backoffs);
    json_str("reload", s->reload);
}

static void
status_json(const obsync_status_t *s)
{
    (void)fputs("{\"node_id\":", stdout);
    obsync_json_write_string(stdout, s->node_id);
    json_str("role", s->role);
    json_str("provider", s->provider);
    json_str("epoch", s->epoch);
    json_u64("observations", s->observations);
    json_u64("tombstones", s->tombstones);
    json_u64("history_versions", s->history_versions);
    json_u64("outbox_depth", s->outbox_depth);
    json_u64("last_origin_seq", s->last_origin_seq);
    json_u64("hlc", s->hlc);
    json_u64("map_size", s->map_size);
    json_u64("map_used", s->map_used);
    json_u64("commits", s->commits);
    json_u64("writes_grouped", s->writes_grouped);
    json_u64("hub_cursor", s->hub_cursor);
    json_u64("uptime_s", s->uptime_s);
    json_str("hub_endpoint", s->hub_endpoint);
    json_str("repl_state", s->repl_state);
    json_u64("lag_changes", s->lag_changes);
    json_u64("lag_ms", s->lag_ms);
    json_u64("log_first", s->log_first);
    json_u64("log_last", s->log_last);
    json_u64("state_applied", s->state_applied);
    json_u64("batches_shared", s->batches_shared);
    json_u64("outbox_acked", s->outbox_acked);
    json_u64("snapshots", s->snapshots);
    printf(",\"clock_known\":%s,\"clock_skew_ms\":%lld",
           s->clock_known ? "true" : "false", (long long)s->clock_skew_ms);
    json_u64("restamped", s->restamped);
    json_u64("renumbered", s->renumbered);
    json_u64("pending_rejects", s->pending_rejects);
    json_str("link", s->link);
    json_u64("rate_in_bps", s->rate_in_bps);
    json_u64("rate_out_bps", s->rate_out_bps);
    json_u64("reconnects", s->reconnects);
    json_u64("apply_rate", s->apply_rate);
    json_u64("eta_s", s->eta_s);
    security_json(s);
    (void)fputs(",\"peers\":[", stdout);
    for (size_t i = 0; i < s->n_peers; i++) {
        if (i > 0)
            (void)fputc(',', stdout);
        peer_json(&s->peers[i]);
    }
    (void)fputs("],\"dataflows\":[", stdout);
    for (size_t i = 0; i < s->n_dataflows; i++) {
        if (i > 0)
            (void)fputc(',', stdout);
        obsync_json_write_string(stdout, s->dataflows[i]);
    }
    puts("]}");
}

/* ---------------------------------------------------------------- text */

static void
counts_text(const obsync_status_t *s)
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
           (ull_t)s->observations, (ull_t)s->tombstones,
           (ull_t)s->history_versions, (ull_t)s->outbox_depth);
    printf("hlc               %llu (%s)\n"
           "map               %llu of %llu bytes used (%.1f%%)\n"
           "commits           %llu\ngrouped writes    %llu\n"
           "uptime            %llud %02lluh %02llum %02llus\n",
           (ull_t)s->hlc, t, (ull_t)s->map_used, (ull_t)s->map_size, pct,
           (ull_t)s->commits, (ull_t)s->writes_grouped, (ull_t)(up / 86400),
           (ull_t)(up / 3600 % 24), (ull_t)(up / 60 % 60), (ull_t)(up % 60));
    printf("dataflows         %zu\n", s->n_dataflows);
    for (size_t i = 0; i < s->n_dataflows; i++)
        printf("  %s\n", s->dataflows[i]);
}

/* A byte rate for people: "-" (not measured), "850B/s", "20.4kB/s",
 * "3.1MB/s". */
static const char *
rate_text(uint64_t bps, char *buf, size_t cap)
{
    if (bps == 0)
        (void)snprintf(buf, cap, "-");
    else if (bps < 1000)
        (void)snprintf(buf, cap, "%lluB/s", (ull_t)bps);
    else if (bps < 1000000)
        (void)snprintf(buf, cap, "%.1fkB/s", (double)bps / 1e3);
    else
        (void)snprintf(buf, cap, "%.1fMB/s", (double)bps / 1e6);
    return buf;
}

static void
node_repl_text(const obsync_status_t *s)
{
    printf("replication\n"
           "  hub endpoint    %s\n"
           "  state           %s\n"
           "  cursor          %llu (hub log last %llu)\n"
           "  lag             %llu changes, %.1f s\n"
           "  outbox          %llu waiting, acked up to origin_seq %llu\n"
           "  snapshots       %llu taken\n",
           s->hub_endpoint, s->repl_state[0] ? s->repl_state : "?",
           (ull_t)s->hub_cursor, (ull_t)s->log_last, (ull_t)s->lag_changes,
           (double)s->lag_ms / 1000.0, (ull_t)s->outbox_depth,
           (ull_t)s->outbox_acked, (ull_t)s->snapshots);
    char in[32], out[32];
    printf("  link            %s: in %s, out %s, %llu reconnect(s)\n",
           s->link[0] ? s->link : "?",
           rate_text(s->rate_in_bps, in, sizeof(in)),
           rate_text(s->rate_out_bps, out, sizeof(out)), (ull_t)s->reconnects);
    if (s->eta_s)
        printf("  catching up     %llu entries/s, about %llum %02llus left\n",
               (ull_t)s->apply_rate, (ull_t)(s->eta_s / 60),
               (ull_t)(s->eta_s % 60));
    if (s->clock_known)
        printf("  clock           %+.1f s against the hub's%s\n",
               (double)s->clock_skew_ms / 1000.0,
               s->clock_skew_ms > CLOCK_LIMIT_MS ||
                       s->clock_skew_ms < -CLOCK_LIMIT_MS
                   ? " (local writes refused: fix the clock)"
                   : "");
    else
        printf("  clock           not compared with the hub's yet\n");
    if (s->restamped || s->renumbered || s->pending_rejects)
        printf("  recovered       %llu re-stamped, %llu renumbered, %llu "
               "refused by the hub for their clock and waiting\n",
               (ull_t)s->restamped, (ull_t)s->renumbered,
               (ull_t)s->pending_rejects);
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Width of the widest of a column's header and cells. */
static int
col_width(const obsync_status_t *s, const char *head, bool address)
{
    size_t w = strlen(head);
    for (size_t i = 0; i < s->n_peers; i++) {
        const char *v = address ? s->peers[i].address : s->peers[i].node_id;
        size_t n = strlen(v[0] ? v : "-");
        w = n > w ? n : w;
    }
    return w > 64 ? 64 : (int)w;
}

static uint64_t
refused_total(const obsync_refusal_t *r, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += r[i].count;
    return t;
}

static void
peer_row(const obsync_peer_status_t *p, int wid, int wadr, uint64_t now)
{
    char seen[32] = "-", rate[32], state[64];
    if (p->last_seen_ms != 0)
        (void)snprintf(
            seen, sizeof(seen), "%llus",
            (ull_t)(now > p->last_seen_ms ? now - p->last_seen_ms : 0) / 1000u);
    (void)snprintf(state, sizeof(state), "%s%s%s", p->state[0] ? p->state : "-",
                   p->link[0] && strcmp(p->link, "ok") != 0 ? ", " : "",
                   p->link[0] && strcmp(p->link, "ok") != 0 ? p->link : "");
    printf("%-*s %-4s %9s %-*s %-8s %8llu %8llu %9llu %9llu %10llu %9llu "
           "%10llu %10llu %10s %6llu %7llu %s\n",
           wid, p->node_id, p->up ? "UP" : "DOWN", seen, wadr,
           p->address[0] ? p->address : "-", p->key[0] ? p->key : "-",
           (ull_t)p->cursor, (ull_t)p->lag_changes, (ull_t)p->accepted,
           (ull_t)p->rejected, (ull_t)p->duplicates, (ull_t)p->conflicts,
           (ull_t)p->bytes_in, (ull_t)p->bytes_out,
           rate_text(p->rate_out_bps, rate, sizeof(rate)), (ull_t)p->reconnects,
           (ull_t)refused_total(p->refused, p->n_refused), state);
}

static void
hub_repl_text(const obsync_status_t *s)
{
    size_t up = 0;
    for (size_t i = 0; i < s->n_peers; i++)
        up += s->peers[i].up;
    printf("replication       hub\n"
           "  bind endpoint   %s\n"
           "  log             %llu..%llu\n"
           "  state           applied up to %llu (%llu behind the log)\n"
           "  snapshots       %llu sent\n"
           "  batches shared  %llu\n"
           "  nodes           %zu known, %zu up\n",
           s->hub_endpoint[0] ? s->hub_endpoint : "-", (ull_t)s->log_first,
           (ull_t)s->log_last, (ull_t)s->state_applied,
           (ull_t)(s->log_last > s->state_applied
                       ? s->log_last - s->state_applied
                       : 0),
           (ull_t)s->snapshots, (ull_t)s->batches_shared, s->n_peers, up);
    if (s->n_peers == 0)
        return;
    int wid = col_width(s, "NODE", false), wadr = col_width(s, "ADDRESS", true);
    printf("\n%-*s %-4s %9s %-*s %-8s %8s %8s %9s %9s %10s %9s %10s %10s "
           "%10s %6s %7s %s\n",
           wid, "NODE", "UP", "LAST SEEN", wadr, "ADDRESS", "KEY", "CURSOR",
           "LAG", "ACCEPTED", "REJECTED", "DUPLICATES", "CONFLICTS", "BYTES IN",
           "BYTES OUT", "RATE OUT", "RECONN", "REFUSED", "STATE");
    uint64_t now = wall_ms();
    for (size_t i = 0; i < s->n_peers; i++)
        peer_row(&s->peers[i], wid, wadr, now);
}

/* "reason=N ..." of the non-zero counts ("none" when every one is 0),
 * cut short with "..." past cap. */
static const char *
refused_text(const obsync_refusal_t *r, size_t n, char *buf, size_t cap)
{
    size_t at = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++) {
        if (r[i].count == 0)
            continue;
        int k = snprintf(buf + at, cap - at, "%s%s=%llu", at ? " " : "",
                         r[i].reason, (ull_t)r[i].count);
        at = k < 0 ? cap : at + (size_t)k;
    }
    if (at >= cap && cap > 4)
        memcpy(buf + cap - 4, "...", 4);
    return buf[0] ? buf : "none";
}

/* The replication link's security: the mode, the keys, and on a hub what
 * its door let in and kept out. Nothing from an older daemon. */
static void
security_text(const obsync_status_t *s)
{
    bool hub = strcmp(s->role, "hub") == 0;
    if (s->security[0] == '\0')
        return;
    if (!hub && s->hub_endpoint[0] == '\0') {
        printf("security          %s (no replication)\n", s->security);
        return;
    }
    if (strcmp(s->security, "curve") != 0) {
        printf("security          %s\n%s\n", s->security, PLAINTEXT_WARNING);
        return;
    }
    printf("security          curve, public key %s\n",
           s->public_key[0] ? s->public_key : "?");
    if (!hub) {
        printf("  hub key         %s\n", s->hub_key[0] ? s->hub_key : "?");
        return;
    }
    char refused[512];
    printf("  allow-list      %llu node key(s)\n"
           "  connections     %llu open, %llu waiting for Hello, %llu "
           "handshake failure(s), %llu back-off(s)\n"
           "  refused         %s\n",
           (ull_t)s->allowed_keys, (ull_t)s->connections,
           (ull_t)s->pending_hello, (ull_t)s->handshake_failures,
           (ull_t)s->backoffs,
           refused_text(s->refused, s->n_refused, refused, sizeof(refused)));
}

static void
status_text(const obsync_status_t *s)
{
    counts_text(s);
    security_text(s);
    if (strcmp(s->role, "hub") == 0)
        hub_repl_text(s);
    else if (s->hub_endpoint[0] == '\0')
        puts("replication       standalone (no hub_endpoint)");
    else
        node_repl_text(s);
}

int
cmd_status(cli_t *cli, int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        puts("usage: obsync status\nNode id, role, provider, epoch, counts, "
             "outbox depth, hlc, map use,\ncommits, grouped writes, uptime, "
             "dataflows, security (curve or plaintext,\nthe keys; on a hub "
             "its allow-list, connections and refusals) and\nreplication: on "
             "a node its hub link (state, cursor, lag, outbox), on a\nhub "
             "its log and one row per node.");
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

/* A refused reload is the daemon's answer (exit 6 whatever its code);
 * no answer at all is reported as for any other command. */
static int
reload_failed(cli_t *cli, int rc)
{
    if (cli_interrupted || rc == OBSYNC_EUNREACH || rc == OBSYNC_ETIMEOUT)
        return cli_fail(cli, rc, "reload");
    const char *msg = obsync_client_errmsg(cli->c);
    if (strncmp(msg, "reload: ", 8) == 0)
        msg += 8; /* the daemon's own prefix */
    (void)fprintf(stderr, "obsync: reload: %s\n",
                  msg[0] ? msg : obsync_strerror(rc));
    return EXIT_DAEMON;
}

int
cmd_reload(cli_t *cli, int argc, char **argv)
{
    if (argc > 1 && cli_is_help(argv[1])) {
        puts("usage: obsync reload\nMakes a hub re-read its allow-list (the "
             "nodes' public certificates in\ncurve_allow_dir) now, as SIGHUP "
             "does, and prints how many keys it allows.\nA list with a bad "
             "file is refused: the old list stays, the message\nnames the "
             "file, exit 6. On a node or a plaintext hub there is nothing\nto "
             "reload (exit 0).");
        return EXIT_OK;
    }
    if (argc > 1)
        return cli_usage("reload", "unexpected argument", argv[1]);
    if (cli_client(cli) == NULL)
        return EXIT_USAGE;
    obsync_status_t *s = NULL;
    int rc = obsync_reload(cli->c, &s);
    if (rc != OBSYNC_OK)
        return reload_failed(cli, rc);
    if (cli->json) {
        (void)fputs("{\"reload\":", stdout);
        obsync_json_write_string(stdout, s->reload);
        puts("}");
    } else if (!cli->quiet) {
        bool list =
            strcmp(s->role, "hub") == 0 && strcmp(s->security, "curve") == 0;
        printf("%s: %s\n", list ? "allow-list reloaded" : "nothing to reload",
               s->reload);
    }
    obsync_status_free(&s);
    return EXIT_OK;
}
