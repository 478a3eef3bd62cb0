/*
 * main.c - obsyncd: flags, configuration, then the engine of the role the
 * configuration names. Small on purpose (Malamute's main, OpenBSD ntpd):
 * everything else lives in modules that tests can embed.
 *
 *   obsyncd -c FILE [-d] [-n [-v]] [-v...]
 */
#include <sys/resource.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "engine.h"
#include "log.h"
#include "loop.h"
#include "mem.h"
#include "obs_err.h"

static void
usage(FILE *out)
{
    (void)fprintf(
        out, "usage: obsyncd -c FILE [-d] [-n] [-v]...\n"
             "  -c FILE  configuration file (see deploy/conf/)\n"
             "  -d       stay in the foreground and log to stderr\n"
             "  -n       check the configuration and exit (0 ok, 1 bad);\n"
             "           with -v also print the normalised configuration\n"
             "  -v       more verbose logging (repeatable)\n"
             "  -S ROLE  print a commented sample configuration and exit\n");
}

/* The exit code once -S or -nv printed to stdout: 1 when some of it could
 * not be written (a cut-off configuration must not look like a whole one). */
static int
stdout_status(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        (void)fprintf(stderr, "obsyncd: cannot write to stdout\n");
        return 1;
    }
    return 0;
}

/* A hub holds a descriptor per connection, and libzmq aborts when it
 * cannot get one (a listener's accept, an ipc client): take the hard
 * limit, not the soft 1024 of most systems. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
main(int argc, char **argv)
{
    mem_tune();
    const char *path = NULL;
    bool foreground = false, check = false;
    int verbose = 0, opt;
    while ((opt = getopt(argc, argv, "c:dnvhS:")) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 'd':
            foreground = true;
            break;
        case 'n':
            check = true;
            break;
        case 'v':
            verbose++;
            break;
        case 'S':
            cfg_print_sample(stdout, strcmp(optarg, "hub") == 0
                                         ? CFG_ROLE_HUB
                                         : CFG_ROLE_NODE);
            return stdout_status();
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    cfg_t cfg;
    cfg_init(&cfg);
    char err[512];
    if (cfg_load(&cfg, path, err, sizeof(err)) != OBS_OK) {
        (void)fprintf(stderr, "obsyncd: %s\n", err);
        cfg_fini(&cfg);
        return 1;
    }
    if (check) {
        if (verbose)
            cfg_print(&cfg, stdout);
        else
            (void)fprintf(stderr, "obsyncd: %s: configuration OK\n", path);
        cfg_fini(&cfg);
        return stdout_status();
    }
    int level = log_level_parse(cfg.log_level) + verbose;
    log_init("obsyncd", foreground || isatty(STDERR_FILENO),
             level > LOG_LVL_DEBUG ? LOG_LVL_DEBUG : level);
    if (cfg.no_sync)
        log_warnx("no_sync = yes: commits are not synced; acknowledged writes "
                  "can be lost in a crash. For tests only.");
    raise_fd_limit();
    loop_t *loop = NULL;
    engine_t *engine = NULL;
    err[0] = '\0';
    int rc = loop_new(&loop);
    if (rc == OBS_OK && (rc = loop_watch_signals(loop)) != OBS_OK)
        (void)snprintf(err, sizeof(err), "signals: %s", strerror(errno));
    if (rc == OBS_OK)
        rc = engine_new(&cfg, loop, &engine, err, sizeof(err));
    if (rc != OBS_OK) {
        log_errx("cannot start: %s (%s)", err[0] ? err : obs_strerror(rc),
                 obs_errname(rc));
        loop_destroy(&loop);
        cfg_fini(&cfg);
        return 1;
    }
    rc = loop_run(loop);
    if (rc != OBS_OK)
        log_errr(rc, "event loop failed");
    engine_destroy(&engine);
    loop_destroy(&loop);
    cfg_fini(&cfg);
    return rc == OBS_OK ? 0 : 1;
}
