#!/usr/bin/env python3
"""t_repl_catchup.py - catch-up from the log and bootstrap from a snapshot
(DESIGN.md §3.4).

1. Log catch-up: node MEX, in step with the hub, is stopped (SIGTERM) while
   node COL makes 100,000 changes; restarted, MEX resumes from its cursor
   through the log (no snapshot): the sampled cursor never goes back, the
   lag (lag_changes, once MEX streams) only shrinks, to 0, and all three
   stores end byte-identical.
2. Snapshot: the hub is restarted with log_keep = 1000, so it trims its log
   to the newest 1000 entries. A brand-new empty node JAM bootstraps through
   a snapshot (JAM's log says "snapshot complete" and its status
   `snapshots` >= 1), and so does MEX after being away while 5,000 more
   changes pushed its cursor out of the log. After the snapshots, new
   changes reach them through the log again, MEX and JAM sharing the
   LogBatches the hub packs (status batches_shared grows). Every store ends
   identical.
Durability is not under test (no_sync). Run by ctest as
integration.repl_catchup."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = int(os.environ.get("OBSYNC_REPL_ROWS", "100000"))
N2 = 5000
LOG_KEEP = 1000
CONVERGE_S = 300
REPLY_S = 300
SNAP_DONE = r"snapshot complete"


def sample_catchup(hub, mex, last):
    """Polls MEX's status back to back (no backoff: the catch-up may take
    well under a second) until its cursor reaches last; returns the samples
    [(cursor, lag_changes, repl_state)]."""
    samples = []
    deadline = time.monotonic() + CONVERGE_S
    while time.monotonic() < deadline:
        st = rh.status(mex, timeout=10)
        if st is not None:
            rh.need(st, "hub_cursor", "lag_changes", "repl_state",
                    who="MEX's status")
            samples.append((st["hub_cursor"], st["lag_changes"],
                            st["repl_state"]))
            if st["hub_cursor"] >= last:
                return samples
        time.sleep(0.005)
    h.fail("MEX did not catch up to %d in %d s; samples %r" %
           (last, CONVERGE_S, samples[-10:]))


def check_samples(samples, before, last):
    cursors = [c for c, _, _ in samples]
    h.check(all(a <= b for a, b in zip(cursors, cursors[1:])),
            "MEX's cursor never went back during the catch-up",
            repr(cursors[:50]))
    mids = [c for c in cursors if before < c < last]
    h.log("  ..   %d status samples, %d of them mid catch-up" %
          (len(samples), len(mids)))
    # Before its first Welcome a restarted node does not know the hub's
    # log end (lag_changes reads 0 then): only streaming samples count.
    lags = [l for _, l, s in samples if s == "streaming"]
    h.log("  ..   samples (cursor, lag, state): %s" % samples[:20])
    h.check(lags, "MEX was sampled streaming", repr(samples[-10:]))
    h.check(all(a >= b for a, b in zip(lags, lags[1:])),
            "MEX's lag_changes only shrank", repr(lags[:50]))
    h.eq(lags[-1], 0, "MEX's lag ends at 0")


def test_catchup_from_log(env):
    hub = rh.start_hub(rh.hub(env, "hub1", no_sync=True, map_size="512M"))
    col = rh.node(env, "col1", hub, "COL", no_sync=True, map_size="512M")
    mex = rh.node(env, "mex1", hub, "MEX", no_sync=True, map_size="512M")
    col.start()
    mex.start()
    # MEX first gets a cursor (a node with cursor 0 would take a snapshot)
    p = env.path("col0.csv")
    rh.write_rows(p, "COL", 1000, env.rng)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    mex.stop()
    before = rh.hub_log_last(rh.must_status(hub))
    p = env.path("col.csv")
    rh.write_rows(p, "COL", N, env.rng, offset=1000)
    t0 = time.monotonic()
    h.eq(rh.import_ok(col, p, reply_timeout=REPLY_S), N,
         "COL imports %d rows while MEX is away" % N)
    rh.wait_converged(hub, [col], CONVERGE_S, full=[hub, col],
                      what="the hub has COL's %d changes" % N)
    h.log("  ..   import and publish took %.1f s" % (time.monotonic() - t0))
    last = rh.hub_log_last(rh.must_status(hub))
    mex.spawn()
    t1 = time.monotonic()
    samples = sample_catchup(hub, mex, last)
    h.log("  ..   MEX caught up %d changes in %.1f s" %
          (last - before, time.monotonic() - t1))
    check_samples(samples, before, last)
    h.check(not rh.log_has(mex, SNAP_DONE) and
            all(s != "snapshot" for _, _, s in samples),
            "MEX caught up from the log, without a snapshot")
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    rh.compare_exports([hub, col, mex])


def wait_trimmed(hub, since):
    """Waits until the hub's log holds at most LOG_KEEP entries (its status
    log_first..log_last) and the hub has logged a trim after byte offset
    since of its log."""
    def trimmed():
        st = rh.status(hub)
        if st is None:
            return False
        rh.need(st, "log_first", "log_last", who="the hub's status")
        return st["log_last"] - st["log_first"] + 1 <= LOG_KEEP
    h.wait_until(trimmed, 60, "the hub to trim its log to %d" % LOG_KEEP)
    hub.wait_log(r"log trimmed", 10, "the hub's log line: log trimmed",
                 since=since)
    h.log("  ok   the hub trimmed its log to %d entries" % LOG_KEEP)


def check_snapshot(n, since_count, what):
    h.wait_until(lambda: rh.count_log(n, SNAP_DONE) > since_count, 60,
                 "%s: 'snapshot complete' in its log" % n.name)
    h.log("  ok   %s: %s went through a snapshot" % (n.name, what))
    st = rh.need(rh.must_status(n), "snapshots", who="%s's status" % n.name)
    h.check(st["snapshots"] >= 1, "%s: status snapshots >= 1" % n.name,
            repr(st["snapshots"]))


def test_snapshot_bootstrap(env):
    hub = rh.start_hub(rh.hub(env, "hub2", no_sync=True, map_size="512M"))
    col = rh.node(env, "col2", hub, "COL", no_sync=True, map_size="512M")
    mex = rh.node(env, "mex2", hub, "MEX", no_sync=True, map_size="512M")
    col.start()
    mex.start()
    p = env.path("col2.csv")
    rh.write_rows(p, "COL", N // 4, env.rng)
    rh.import_ok(col, p, reply_timeout=REPLY_S)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)

    since = hub.log_size()
    hub.restart(log_keep=LOG_KEEP)
    wait_trimmed(hub, since)
    # a brand-new, empty node
    jam = rh.node(env, "jam2", hub, "JAM", no_sync=True, map_size="512M")
    jam.start()
    check_snapshot(jam, 0, "a brand-new node")
    rh.wait_converged(hub, [col, mex, jam], CONVERGE_S)
    rh.compare_exports([hub, col, mex, jam])

    # MEX away while more than log_keep changes are made
    mex_snaps = rh.count_log(mex, SNAP_DONE)
    mex.stop()
    since = hub.log_size()
    p = env.path("col3.csv")
    rh.write_rows(p, "COL", N2, env.rng, offset=N // 4)
    rh.import_ok(col, p, reply_timeout=REPLY_S)
    rh.wait_converged(hub, [col, jam], CONVERGE_S)
    wait_trimmed(hub, since)
    mex.start()
    check_snapshot(mex, mex_snaps, "a node behind the trimmed log")
    rh.wait_converged(hub, [col, mex, jam], CONVERGE_S)

    # after the snapshots, the log again
    key, period = rh.ident("MEX", 0)
    mex.cli("put", h.DF_VIOLENCE, key, period, "3.25",
            "UNIT_MEASURE=PER_100000_POP")
    rh.wait_converged(hub, [col, mex, jam], CONVERGE_S)
    got = jam.get(h.DF_VIOLENCE, key, period)
    h.eq(got and got.get("value"), "3.25", "JAM got MEX's later put")

    # fan-out: MEX and JAM stand at the hub's log end with the same
    # subscription, so each LogBatch of COL's next import is read and packed
    # once and sent to both (PROTOCOL.md §5.4)
    shared = rh.must_status(hub)["batches_shared"]
    p = env.path("col4.csv")
    rh.write_rows(p, "COL", 3000, env.rng, offset=N // 4 + N2)
    rh.import_ok(col, p, reply_timeout=REPLY_S)
    rh.wait_converged(hub, [col, mex, jam], CONVERGE_S)
    now = rh.must_status(hub)["batches_shared"]
    h.check(now > shared, "the hub sent MEX and JAM shared LogBatches",
            "%d before, %d after" % (shared, now))
    rh.compare_exports([hub, col, mex, jam])
    rh.compare_versions([hub, col, mex, jam])


if __name__ == "__main__":
    h.main([test_catchup_from_log, test_snapshot_bootstrap])
