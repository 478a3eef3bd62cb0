/*
 * test_loop.c - unit tests for runtime/loop.c: handlers for ZeroMQ sockets
 * and fds, cron timers, before-sleep hooks and their order in a turn,
 * removal from inside a handler, and SIGTERM through the signalfd.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <zmq.h>

#include "loop.h"
#include "obs_err.h"

typedef struct {
    loop_t *loop;
    int calls;
    char order[16]; /* one letter per call: r(eadable) c(ron) s(leep) */
    size_t n_order;
    int fd;       /* drained by on_fd */
    bool more;    /* what on_sleep returns */
    void *remove; /* on_fd removes this arg's handlers */
    uint64_t cron_ms[8];
    size_t n_cron;
} probe_t;

static void
note(probe_t *p, char c)
{
    if (p->n_order < sizeof(p->order) - 1)
        p->order[p->n_order++] = c;
}

static void
on_fd(void *arg)
{
    probe_t *p = arg;
    char buf[16];
    (void)!read(p->fd, buf, sizeof(buf));
    p->calls++;
    note(p, 'r');
    if (p->remove)
        loop_remove_arg(p->loop, p->remove);
}

static void
on_cron(void *arg, uint64_t now_ms)
{
    probe_t *p = arg;
    if (p->n_cron < 8)
        p->cron_ms[p->n_cron++] = now_ms;
    note(p, 'c');
}

static bool
on_sleep(void *arg)
{
    probe_t *p = arg;
    note(p, 's');
    return p->more;
}

static uint64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A readable fd calls its handler, then crons, then before-sleep: the
 * turn's order; an fd with nothing to read is not called. */
static void
test_loop_turn_order(void **state)
{
    (void)state;
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    probe_t p = {.loop = loop, .fd = fds[0]};
    assert_int_equal(loop_add_fd(loop, fds[0], on_fd, &p), OBS_OK);
    assert_int_equal(loop_add_cron(loop, 1000, on_cron, &p), OBS_OK);
    assert_int_equal(loop_add_before_sleep(loop, on_sleep, &p), OBS_OK);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(loop_run_once(loop, 1000), OBS_OK);
    p.order[p.n_order] = '\0';
    assert_string_equal(p.order, "rcs"); /* the cron's first turn is now */
    p.n_order = 0;
    assert_int_equal(loop_run_once(loop, 10), OBS_OK); /* nothing to read */
    p.order[p.n_order] = '\0';
    assert_string_equal(p.order, "s");
    assert_int_equal(p.calls, 1);
    loop_destroy(&loop);
    assert_null(loop);
    close(fds[0]);
    close(fds[1]);
}

/* With no input the poll waits for the next cron (timeout -1), and a cron
 * fires again only after its interval. */
static void
test_loop_waits_for_cron(void **state)
{
    (void)state;
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    probe_t p = {.loop = loop};
    assert_int_equal(loop_add_cron(loop, 50, on_cron, &p), OBS_OK);
    assert_int_equal(loop_run_once(loop, -1), OBS_OK);
    assert_int_equal(p.n_cron, 1);
    uint64_t t0 = mono_ms();
    assert_int_equal(loop_run_once(loop, -1), OBS_OK);
    assert_int_equal(p.n_cron, 2);
    assert_true(mono_ms() - t0 >= 45); /* waited for it, did not spin */
    assert_true(p.cron_ms[1] - p.cron_ms[0] >= 45);
    loop_destroy(&loop);
}

/* A before-sleep hook with more work makes the next poll not wait. */
static void
test_loop_more_work_does_not_wait(void **state)
{
    (void)state;
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    probe_t p = {.loop = loop, .more = true};
    assert_int_equal(loop_add_before_sleep(loop, on_sleep, &p), OBS_OK);
    assert_int_equal(loop_add_cron(loop, 60000, on_cron, &p), OBS_OK);
    assert_int_equal(loop_run_once(loop, -1), OBS_OK); /* first cron */
    uint64_t t0 = mono_ms();
    for (int i = 0; i < 5; i++)
        assert_int_equal(loop_run_once(loop, -1), OBS_OK);
    assert_true(mono_ms() - t0 < 1000);
    loop_destroy(&loop);
}

/* A handler that removes another arg's handlers: they are not called in
 * the same turn, nor after. */
static void
test_loop_remove_inside_handler(void **state)
{
    (void)state;
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    probe_t victim = {.loop = loop};
    probe_t p = {.loop = loop, .fd = fds[0], .remove = &victim};
    assert_int_equal(loop_add_fd(loop, fds[0], on_fd, &p), OBS_OK);
    assert_int_equal(loop_add_cron(loop, 1, on_cron, &victim), OBS_OK);
    assert_int_equal(loop_add_before_sleep(loop, on_sleep, &victim), OBS_OK);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_int_equal(loop_run_once(loop, 1000), OBS_OK);
    assert_int_equal(p.calls, 1);
    assert_int_equal(victim.n_order, 0);
    assert_int_equal(loop_run_once(loop, 10), OBS_OK);
    assert_int_equal(victim.n_order, 0);
    loop_destroy(&loop);
    close(fds[0]);
    close(fds[1]);
}

static void
on_sock(void *arg)
{
    probe_t *p = arg;
    void *sock = p->remove;
    char buf[16];
    while (zmq_recv(sock, buf, sizeof(buf), ZMQ_DONTWAIT) >= 0)
        p->calls++;
}

/* A ZeroMQ socket's handler runs when a message is there; after
 * loop_remove_socket it is not polled (the socket may then be closed). */
static void
test_loop_socket_and_remove(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *a = zmq_socket(ctx, ZMQ_PAIR), *b = zmq_socket(ctx, ZMQ_PAIR);
    assert_int_equal(zmq_bind(a, "inproc://loop-test"), 0);
    assert_int_equal(zmq_connect(b, "inproc://loop-test"), 0);
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    probe_t p = {.loop = loop, .remove = a};
    assert_int_equal(loop_add_socket(loop, a, on_sock, &p), OBS_OK);
    assert_int_equal(zmq_send(b, "hi", 2, 0), 2);
    for (int i = 0; i < 50 && p.calls == 0; i++)
        assert_int_equal(loop_run_once(loop, 100), OBS_OK);
    assert_int_equal(p.calls, 1);
    loop_remove_socket(loop, a);
    assert_int_equal(loop_run_once(loop, 0), OBS_OK); /* reaped */
    int linger = 0;
    zmq_setsockopt(a, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(a);
    assert_int_equal(zmq_send(b, "hi", 2, 0), 2);
    assert_int_equal(loop_run_once(loop, 10), OBS_OK); /* no closed socket */
    assert_int_equal(p.calls, 1);
    loop_destroy(&loop);
    zmq_setsockopt(b, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(b);
    zmq_ctx_term(ctx);
}

static bool
raise_term(void *arg)
{
    int *turns = arg;
    if (++*turns == 2)
        raise(SIGTERM); /* blocked: it waits in the signalfd */
    return false;
}

/* SIGTERM stops loop_run through the signalfd: no global flag. */
static void
test_loop_sigterm_stops_run(void **state)
{
    (void)state;
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    assert_int_equal(loop_watch_signals(loop), OBS_OK);
    int turns = 0;
    probe_t p = {.loop = loop};
    assert_int_equal(loop_add_cron(loop, 10, on_cron, &p), OBS_OK);
    assert_int_equal(loop_add_before_sleep(loop, raise_term, &turns), OBS_OK);
    assert_false(loop_stopped(loop));
    assert_int_equal(loop_run(loop), OBS_OK);
    assert_true(loop_stopped(loop));
    assert_true(turns >= 2);
    loop_destroy(&loop);
}

/* loop_stop ends loop_run after the current turn. */
static bool
stop_at_three(void *arg)
{
    probe_t *p = arg;
    if (++p->calls == 3)
        loop_stop(p->loop);
    return true;
}

static void
test_loop_stop(void **state)
{
    (void)state;
    loop_t *loop = NULL;
    assert_int_equal(loop_new(&loop), OBS_OK);
    probe_t p = {.loop = loop}, timer = {.loop = loop};
    /* something to wake the first poll: a loop with no socket, fd or timer
     * waits for ever */
    assert_int_equal(loop_add_cron(loop, 10, on_cron, &timer), OBS_OK);
    assert_int_equal(loop_add_before_sleep(loop, stop_at_three, &p), OBS_OK);
    assert_int_equal(loop_run(loop), OBS_OK);
    assert_int_equal(p.calls, 3);
    loop_destroy(&loop);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_turn_order),
        cmocka_unit_test(test_loop_waits_for_cron),
        cmocka_unit_test(test_loop_more_work_does_not_wait),
        cmocka_unit_test(test_loop_remove_inside_handler),
        cmocka_unit_test(test_loop_socket_and_remove),
        cmocka_unit_test(test_loop_sigterm_stops_run),
        cmocka_unit_test(test_loop_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
