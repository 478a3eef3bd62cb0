/*
 * cli_util.c - helpers shared by the obsync commands: the lazily made
 * client, error printing and the mapping of library codes to exit codes,
 * option matching, time and number parsing, and issue printing.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

obsync_client_t *
cli_client(cli_t *cli)
{
    if (cli->c != NULL)
        return cli->c;
    int rc = obsync_client_new(cli->endpoint, &cli->c);
    if (rc != OBSYNC_OK) {
        (void)fprintf(stderr, "obsync: %s: %s\n", cli->endpoint,
                      obsync_strerror(rc));
        return NULL;
    }
    obsync_client_set_timeout(cli->c, cli->timeout_ms);
    obsync_client_set_cancel(cli->c, &cli_interrupted);
    return cli->c;
}

int
cli_exit_code(const cli_t *cli, int rc)
{
    (void)cli;
    if (cli_interrupted)
        return EXIT_INTERRUPTED;
    switch (rc) {
    case OBSYNC_OK:
        return EXIT_OK;
    case OBSYNC_EREJECTED:
        return EXIT_REJECTED;
    case OBSYNC_EINVAL:
    case OBSYNC_ECONFIG:
        return EXIT_USAGE;
    case OBSYNC_EUNREACH:
    case OBSYNC_ETIMEOUT:
        return EXIT_UNREACH;
    case OBSYNC_ENOENT:
        return EXIT_NOTFOUND;
    case OBSYNC_EFORMAT:
        return EXIT_INPUT;
    default:
        return EXIT_DAEMON;
    }
}

int
cli_fail(cli_t *cli, int rc, const char *context)
{
    const char *detail = cli->c ? obsync_client_errmsg(cli->c) : "";
    if (detail[0] == '\0')
        detail = obsync_strerror(rc);
    if (context != NULL)
        (void)fprintf(stderr, "obsync: %s: %s\n", context, detail);
    else
        (void)fprintf(stderr, "obsync: %s\n", detail);
    return cli_exit_code(cli, rc);
}

int
cli_usage(const char *cmd, const char *msg, const char *arg)
{
    (void)fprintf(stderr, "obsync %s: %s%s%s\n(obsync %s --help for usage)\n",
                  cmd, msg, arg ? ": " : "", arg ? arg : "", cmd);
    return EXIT_USAGE;
}

bool
cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

bool
cli_opt_val(int argc, char **argv, int *i, const char *name, const char **val,
            bool *bad)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '=' && name[1] == '-') {
        *val = a + n + 1;
        return true;
    }
    if (a[n] != '\0')
        return false;
    if (*i + 1 >= argc) {
        (void)fprintf(stderr, "obsync: option %s needs a value\n", name);
        *bad = true;
        return true;
    }
    *val = argv[++*i];
    return true;
}

int
cli_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0]))
        return -1;
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Zone suffix: "", "Z", "+HH:MM", "-HH:MM", "+HHMM". Offset in seconds. */
static int
parse_zone(const char *z, long *off)
{
    *off = 0;
    if (*z == '\0' || strcmp(z, "Z") == 0 || strcmp(z, "z") == 0)
        return 0;
    int h, m;
    char sign = z[0];
    if ((sign != '+' && sign != '-') ||
        (sscanf(z + 1, "%2d:%2d", &h, &m) != 2 &&
         sscanf(z + 1, "%2d%2d", &h, &m) != 2) ||
        h > 23 || m > 59)
        return -1;
    *off = (sign == '+' ? 1 : -1) * (long)(h * 3600 + m * 60);
    return 0;
}

static int
parse_clock(const char *s, struct tm *tm, unsigned *ms, const char **rest)
{
    int n = 0;
    if (sscanf(s, "%2d:%2d%n", &tm->tm_hour, &tm->tm_min, &n) != 2)
        return -1;
    s += n;
    if (*s == ':') {
        if (sscanf(s, ":%2d%n", &tm->tm_sec, &n) != 1)
            return -1;
        s += n;
    }
    if (*s == '.') {
        unsigned frac = 0, digits = 0;
        for (s++; isdigit((unsigned char)*s); s++, digits++)
            if (digits < 3)
                frac = frac * 10 + (unsigned)(*s - '0');
        for (; digits < 3; digits++)
            frac *= 10;
        *ms = frac;
    }
    *rest = s;
    return 0;
}

int
cli_parse_time(const char *s, bool end_of_day, uint64_t *out)
{
    size_t len = strlen(s);
    if (len > 0 && strspn(s, "0123456789") == len)
        return cli_parse_u64(s, out);
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &n) !=
            3 ||
        n != 10 || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
        tm.tm_mday > 31)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    unsigned ms = 0;
    long off = 0;
    bool date_only = s[n] == '\0';
    if (!date_only) {
        const char *rest = NULL;
        if ((s[n] != 'T' && s[n] != ' ') ||
            parse_clock(s + n + 1, &tm, &ms, &rest) != 0 ||
            parse_zone(rest, &off) != 0 || tm.tm_hour > 23 || tm.tm_min > 59 ||
            tm.tm_sec > 60)
            return -1;
    }
    time_t t = timegm(&tm);
    if (t == (time_t)-1 || t - off < 0)
        return -1;
    *out = (uint64_t)(t - off) * 1000 + ms;
    if (date_only && end_of_day)
        *out += 86400000 - 1;
    return 0;
}

void
cli_print_issue(const char *file, const obsync_issue_t *is)
{
    (void)fprintf(stderr, "%s%s:%llu: ", is->warning ? "warning: " : "", file,
                  (unsigned long long)is->line);
    if (is->column[0] != '\0')
        (void)fprintf(stderr, "%s: ", is->column);
    (void)fprintf(stderr, "%s: %s\n", is->rule, is->message);
}

void
cli_json_issue(FILE *f, const obsync_issue_t *is)
{
    (void)fprintf(f,
                  "{\"line\":%llu,\"column\":", (unsigned long long)is->line);
    obsync_json_write_string(f, is->column);
    (void)fputs(",\"rule\":", f);
    obsync_json_write_string(f, is->rule);
    (void)fputs(",\"message\":", f);
    obsync_json_write_string(f, is->message);
    (void)fprintf(f, ",\"warning\":%s}", is->warning ? "true" : "false");
}

const char *
cli_attr(const obsync_obs_t *o, const char *id)
{
    for (size_t i = 0; i < o->n_attrs; i++)
        if (strcmp(o->attrs[i].id, id) == 0)
            return o->attrs[i].value;
    return "";
}
