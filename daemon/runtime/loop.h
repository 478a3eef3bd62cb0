/*
 * loop.h - the event loop one or more daemons run on (STYLE.md §2.5, Redis's
 * ae shape): handlers registered for ZeroMQ sockets and raw fds, cron
 * timers, and before-sleep hooks.
 *
 * A turn is: poll every registered socket and fd → call the handlers of
 * those that are readable, in registration order → call every cron timer
 * that is due (times on CLOCK_MONOTONIC) → call every before-sleep hook
 * (group commits, flushing streams). The poll waits for the next timer, or
 * not at all when a before-sleep hook said it has more work.
 *
 * Nothing here is global: several loops can run in one process, and several
 * daemons can share one loop (component tests). Signals reach a loop through
 * loop_watch_signals (a signalfd), never through a global flag.
 * Threading: a loop and everything on it belong to the thread that runs it.
 * Ownership: the loop borrows sockets, fds and args; handlers stay
 * registered until removed or the loop is destroyed.
 */
#ifndef LOOP_H
#define LOOP_H

#include <stdbool.h>
#include <stdint.h>

typedef struct loop loop_t;

/** A socket or fd is readable. */
typedef void(loop_readable_fn)(void *arg);
/** A timer is due; now_ms is CLOCK_MONOTONIC in milliseconds. */
typedef void(loop_cron_fn)(void *arg, uint64_t now_ms);
/** Before the loop sleeps; returns true when it has more work ready (the
 * next poll then does not wait). */
typedef bool(loop_sleep_fn)(void *arg);

/** OBS_ENOMEM. */
int loop_new(loop_t **out);
/** NULL-safe; sets *loopp to NULL. Closes the signalfd, nothing else. */
void loop_destroy(loop_t **loopp);

/** Calls fn(arg) whenever the ZeroMQ socket is readable. OBS_ENOMEM. */
int loop_add_socket(loop_t *self, void *sock, loop_readable_fn *fn, void *arg);
/** Calls fn(arg) whenever fd is readable. OBS_ENOMEM. */
int loop_add_fd(loop_t *self, int fd, loop_readable_fn *fn, void *arg);
/** Removes every handler registered with arg (sockets, fds, timers,
 * hooks): an object calls it before it destroys itself. Safe inside a
 * handler. */
void loop_remove_arg(loop_t *self, const void *arg);
/** Removes the handler of sock (before the socket is closed: a closed
 * socket in the poll set fails the poll). Safe inside a handler. */
void loop_remove_socket(loop_t *self, const void *sock);
/** Calls fn(arg, now) every interval_ms, first at the end of the next
 * turn (a node says Hello at once). OBS_ENOMEM. */
int loop_add_cron(loop_t *self, unsigned interval_ms, loop_cron_fn *fn,
                  void *arg);
/** Calls fn(arg) at the end of every turn. OBS_ENOMEM. */
int loop_add_before_sleep(loop_t *self, loop_sleep_fn *fn, void *arg);

/** SIGTERM and SIGINT stop the loop, SIGHUP calls the loop_on_hup
 * handler (through a signalfd: the signals are blocked in the calling
 * thread, so call it before any other thread starts); SIGPIPE is ignored.
 * OBS_ESYS. */
int loop_watch_signals(loop_t *self);

typedef void(loop_hup_fn)(void *arg);
/** fn(arg) runs on the loop at each SIGHUP (one handler; NULL: none). */
void loop_on_hup(loop_t *self, loop_hup_fn *fn, void *arg);

/** One turn, waiting at most timeout_ms for input (less when a timer is
 * due sooner; -1: until a timer, so a loop with no socket, fd or timer
 * waits for ever). OBS_OK, OBS_ESYS (poll failed). */
int loop_run_once(loop_t *self, int timeout_ms);
/** Turns until loop_stop. OBS_OK, or OBS_ESYS when poll fails. */
int loop_run(loop_t *self);
/** Ends loop_run after the current turn. May be called from another thread
 * (the loop notices it when its poll returns). */
void loop_stop(loop_t *self);
/** True once loop_stop was called or a watched signal arrived. */
bool loop_stopped(const loop_t *self);

#endif
