/*
 * loop.c - the event loop (see loop.h): zmq_poll over registered sockets and
 * fds, cron timers on CLOCK_MONOTONIC, before-sleep hooks, and a signalfd
 * for SIGTERM/SIGINT.
 *
 * It is not a scheduler: handlers run to completion on the loop's thread,
 * in registration order, and must not block. A handler removed during a
 * turn (loop_remove_arg) is marked dead at once and its slot reclaimed at
 * the end of the turn, so a handler may remove itself or another.
 */
#include "loop.h"

#include <sys/signalfd.h>

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "obs_err.h"

typedef enum { H_SOCKET, H_FD, H_CRON, H_SLEEP } handler_kind_t;

typedef struct {
    handler_kind_t kind;
    bool dead;
    void *sock;
    int fd;
    unsigned interval_ms;
    uint64_t due_ms;
    loop_readable_fn *on_readable;
    loop_cron_fn *on_cron;
    loop_sleep_fn *on_sleep;
    void *arg; /* borrowed */
} handler_t;

struct loop {
    handler_t *h;
    size_t n, cap;
    atomic_bool stop;
    bool more_work; /* a before-sleep hook has work ready */
    int sig_fd;     /* -1: signals not watched */
    loop_hup_fn *on_hup;
    void *hup_arg;
};

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
loop_new(loop_t **out)
{
    loop_t *self = calloc(1, sizeof(*self));
    if (self == NULL)
        return OBS_ENOMEM;
    self->sig_fd = -1;
    *out = self;
    return OBS_OK;
}

void
loop_destroy(loop_t **loopp)
{
    if (loopp == NULL || *loopp == NULL)
        return;
    loop_t *self = *loopp;
    if (self->sig_fd >= 0)
        close(self->sig_fd);
    free(self->h);
    free(self);
    *loopp = NULL;
}

static handler_t *
add(loop_t *self, handler_kind_t kind, void *arg)
{
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 8;
        handler_t *h = realloc(self->h, cap * sizeof(*h));
        if (h == NULL)
            return NULL;
        self->h = h;
        self->cap = cap;
    }
    handler_t *h = &self->h[self->n++];
    memset(h, 0, sizeof(*h));
    h->kind = kind;
    h->fd = -1;
    h->arg = arg;
    return h;
}

int
loop_add_socket(loop_t *self, void *sock, loop_readable_fn *fn, void *arg)
{
    handler_t *h = add(self, H_SOCKET, arg);
    if (h == NULL)
        return OBS_ENOMEM;
    h->sock = sock;
    h->on_readable = fn;
    return OBS_OK;
}

int
loop_add_fd(loop_t *self, int fd, loop_readable_fn *fn, void *arg)
{
    handler_t *h = add(self, H_FD, arg);
    if (h == NULL)
        return OBS_ENOMEM;
    h->fd = fd;
    h->on_readable = fn;
    return OBS_OK;
}

int
loop_add_cron(loop_t *self, unsigned interval_ms, loop_cron_fn *fn, void *arg)
{
    handler_t *h = add(self, H_CRON, arg);
    if (h == NULL)
        return OBS_ENOMEM;
    h->interval_ms = interval_ms;
    h->due_ms = mono_ms();
    h->on_cron = fn;
    return OBS_OK;
}

int
loop_add_before_sleep(loop_t *self, loop_sleep_fn *fn, void *arg)
{
    handler_t *h = add(self, H_SLEEP, arg);
    if (h == NULL)
        return OBS_ENOMEM;
    h->on_sleep = fn;
    return OBS_OK;
}

void
loop_remove_socket(loop_t *self, const void *sock)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->h[i].kind == H_SOCKET && self->h[i].sock == sock)
            self->h[i].dead = true;
}

void
loop_remove_arg(loop_t *self, const void *arg)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->h[i].arg == arg)
            self->h[i].dead = true;
}

static void
reap(loop_t *self)
{
    size_t w = 0;
    for (size_t r = 0; r < self->n; r++)
        if (!self->h[r].dead)
            self->h[w++] = self->h[r];
    self->n = w;
}

static void
on_signal_fd(void *arg)
{
    loop_t *self = arg;
    struct signalfd_siginfo si;
    while (read(self->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo != SIGHUP)
            atomic_store(&self->stop, true);
        else if (self->on_hup)
            self->on_hup(self->hup_arg);
    }
}

int
loop_watch_signals(loop_t *self)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    (void)signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
        return OBS_ESYS;
    self->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (self->sig_fd < 0)
        return OBS_ESYS;
    return loop_add_fd(self, self->sig_fd, on_signal_fd, self);
}

/* The poll's timeout: until the next cron, capped by timeout_ms (-1: no
 * cap), 0 when work is ready. */
static long
poll_timeout(const loop_t *self, int timeout_ms, uint64_t now)
{
    if (self->more_work)
        return 0;
    long t = timeout_ms;
    for (size_t i = 0; i < self->n; i++) {
        const handler_t *h = &self->h[i];
        if (h->dead || h->kind != H_CRON)
            continue;
        long left = h->due_ms > now ? (long)(h->due_ms - now) : 0;
        if (t < 0 || left < t)
            t = left;
    }
    return t;
}

/* The cron handlers that are due, each rescheduled from now. */
static void
run_crons(loop_t *self)
{
    uint64_t now = mono_ms();
    for (size_t i = 0; i < self->n; i++) {
        handler_t *h = &self->h[i];
        if (h->dead || h->kind != H_CRON || now < h->due_ms)
            continue;
        h->due_ms = now + h->interval_ms;
        h->on_cron(h->arg, now);
    }
}

/* The before_sleep handlers; true when one of them has more work. */
static bool
run_before_sleep(loop_t *self)
{
    bool more = false;
    for (size_t i = 0; i < self->n; i++) {
        handler_t *h = &self->h[i];
        if (!h->dead && h->kind == H_SLEEP && h->on_sleep(h->arg))
            more = true;
    }
    return more;
}

int
loop_run_once(loop_t *self, int timeout_ms)
{
    /* The handlers that poll this turn: those registered now. */
    size_t n = self->n, n_items = 0;
    zmq_pollitem_t stack_items[16];
    zmq_pollitem_t *items = stack_items;
    size_t *which = NULL, stack_which[16];
    if (n > 16) {
        items = calloc(n, sizeof(*items));
        which = calloc(n, sizeof(*which));
        if (items == NULL || which == NULL) {
            free(items != stack_items ? items : NULL);
            free(which);
            return OBS_ENOMEM;
        }
    } else {
        which = stack_which;
    }
    for (size_t i = 0; i < n; i++) {
        const handler_t *h = &self->h[i];
        if (h->dead || (h->kind != H_SOCKET && h->kind != H_FD))
            continue;
        items[n_items] = (zmq_pollitem_t){h->sock, h->fd, ZMQ_POLLIN, 0};
        which[n_items++] = i;
    }
    int rc = zmq_poll(items, (int)n_items,
                      poll_timeout(self, timeout_ms, mono_ms()));
    int out = OBS_OK;
    if (rc < 0 && zmq_errno() != EINTR)
        out = OBS_ESYS;
    for (size_t k = 0; rc > 0 && k < n_items; k++) {
        handler_t *h = &self->h[which[k]];
        if (!h->dead && (items[k].revents & ZMQ_POLLIN))
            h->on_readable(h->arg);
    }
    run_crons(self);
    self->more_work = run_before_sleep(self);
    reap(self);
    if (items != stack_items) {
        free(items);
        free(which);
    }
    return out;
}

int
loop_run(loop_t *self)
{
    while (!atomic_load(&self->stop)) {
        int rc = loop_run_once(self, -1);
        if (rc != OBS_OK)
            return rc;
    }
    return OBS_OK;
}

void
loop_stop(loop_t *self)
{
    atomic_store(&self->stop, true);
}

bool
loop_stopped(const loop_t *self)
{
    return atomic_load(&self->stop);
}

void
loop_on_hup(loop_t *self, loop_hup_fn *fn, void *arg)
{
    self->on_hup = fn;
    self->hup_arg = arg;
}
