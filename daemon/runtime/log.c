/*
 * log.c - the daemon log (see log.h). Formats one line and writes it with a
 * single write(2) to stderr, or hands it to syslog. Not for libobsync, which
 * never prints.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "obs_err.h"

static struct {
    bool to_stderr;
    int level;
    const char *ident;
} L = {true, LOG_LVL_NOTICE, "obsyncd"};

static const char *const level_names[] = {"err", "warn", "notice", "info",
                                          "debug"};
static const int syslog_prio[] = {LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO,
                                  LOG_DEBUG};

void
log_init(const char *ident, bool to_stderr, int level)
{
    L.ident = ident;
    L.to_stderr = to_stderr;
    L.level = level;
    if (!to_stderr)
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void
log_set_level(int level)
{
    L.level = level;
}

int
log_level_parse(const char *name)
{
    for (int i = 0; i <= LOG_LVL_DEBUG; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

static void vlog(int level, const char *suffix, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void
vlog(int level, const char *suffix, const char *fmt, va_list ap)
{
    if (level > L.level)
        return;
    char msg[2048];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return;
    if (!L.to_stderr) {
        syslog(syslog_prio[level], "%s%s%s", msg, suffix ? ": " : "",
               suffix ? suffix : "");
        return;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[2300];
    int len = snprintf(
        line, sizeof(line),
        "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s %s%s%s\n",
        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
        tm.tm_sec, ts.tv_nsec / 1000000, L.ident, (int)getpid(),
        level_names[level], msg, suffix ? ": " : "", suffix ? suffix : "");
    if (len > (int)sizeof(line) - 1)
        len = (int)sizeof(line) - 1;
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}

#define LOG_BODY(level, suffix)   \
    va_list ap;                   \
    va_start(ap, fmt);            \
    vlog(level, suffix, fmt, ap); \
    va_end(ap)

void
log_debug(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_DEBUG, NULL);
}

void
log_info(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_INFO, NULL);
}

void
log_notice(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_NOTICE, NULL);
}

void
log_warn(const char *fmt, ...)
{
    const char *e = strerror(errno);
    LOG_BODY(LOG_LVL_WARN, e);
}

void
log_warnx(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_WARN, NULL);
}

void
log_warnr(int rc, const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_WARN, obs_strerror(rc));
}

void
log_errx(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_ERR, NULL);
}

void
log_errr(int rc, const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_ERR, obs_strerror(rc));
}

void
fatal(const char *fmt, ...)
{
    const char *e = strerror(errno);
    LOG_BODY(LOG_LVL_ERR, e);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    LOG_BODY(LOG_LVL_ERR, NULL);
    exit(1);
}
