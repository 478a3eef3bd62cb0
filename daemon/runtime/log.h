/*
 * log.h - the daemon's log API (OpenBSD-shaped, printf-checked).
 *
 * One event a line: "LEVEL message" to stderr (foreground, journald) or
 * syslog. warn() appends strerror(errno); the _r variants append
 * obs_strerror(rc). fatal()/fatalx() log and exit(1): only for start-up
 * failures and impossible states of the daemon, never for input.
 */
#ifndef LOG_H
#define LOG_H

#include <stdbool.h>

enum {
    LOG_LVL_ERR = 0,
    LOG_LVL_WARN = 1,
    LOG_LVL_NOTICE = 2,
    LOG_LVL_INFO = 3,
    LOG_LVL_DEBUG = 4,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/** to_stderr: log to stderr (else syslog, facility daemon). */
void log_init(const char *ident, bool to_stderr, int level);
void log_set_level(int level);
/** Parses "err|warn|notice|info|debug"; -1 if unknown. */
int log_level_parse(const char *name);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_notice(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnr(int rc, const char *fmt, ...) LOG_PRINTF(2, 3);
void log_errx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_errr(int rc, const char *fmt, ...) LOG_PRINTF(2, 3);
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
