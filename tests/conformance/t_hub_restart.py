#!/usr/bin/env python3
"""t_hub_restart.py - a node written from the spec resumes publishing across
hub restarts: nothing lost, nothing applied twice.

The Python node PYCOL publishes while the hub is stopped twice in the middle
of its stream:
1. SIGTERM: the hub must say Goodbye{code 0} (orderly stop, decision 4) to
   the Python node before it exits 0; restarted on the same port, the node
   reconnects (Hello with its cursor and hub epoch), learns from
   Welcome.last_origin_seq what the hub holds and publishes the rest.
2. kill -9: no Goodbye from the killed hub; the node notices the silence
   (peer_timeout_ms) or is told by the restarted hub (Goodbye{-6},
   OBS_ENOENT) that it has no session for it, reconnects and publishes the
   rest.
3. A last batch on a healthy hub.
In all 3,000 changes (2,000 keys, 1,000 of them written twice). At the end
every change is acknowledged; the hub's log and history hold exactly 3,000
entries and its peer row 3,000 accepted (a change resent after a restart is
a duplicate, never a second version); the C node MEX, which stayed up,
applied each once (history 3,000) and holds exactly the Python node's
versions. Run by ctest as conformance.hub_restart."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, on, rh  # noqa: E402

ROUND = 1000
KEYS = 2000


def make(py, rng, start, n):
    """n changes: keys start.. (mod KEYS), so later rounds rewrite."""
    for i in range(start, start + n):
        cf.put_new(py, "COL", i % KEYS, rng)


def restart_hub(hub):
    rh.start_hub(hub)


def in_flight_stop(hub, py, rng, start, n, kill):
    """Freezes the hub (SIGSTOP), makes n changes, waits until PYCOL has
    sent them all (they wait unacknowledged in the hub's socket), then
    stops the hub: kill -9, or SIGTERM (it must exit 0) and SIGCONT."""
    rh.sigstop(hub)
    try:
        py.pause_publishing(True)  # then in Publishes of max_batch
        make(py, rng, start, n)
        py.pause_publishing(False)
        cf.wait(py, lambda: py.pub_sent == py.origin_seq or
                len(py.in_flight) >= py.window, 1,
                "PYCOL to send its changes to the frozen hub")
        acked, sent = py.pub_acked, py.pub_sent
        if kill:
            hub.kill9()
        else:
            hub.proc.send_signal(signal.SIGTERM)
            rh.sigcont(hub)
            rc = hub.proc.wait(timeout=30)
            hub.proc = None
            h.eq(rc, 0, "hub exit code after SIGTERM")
    except BaseException:
        if hub.running():
            rh.sigcont(hub)
        raise
    h.log("  ok   hub %s with PYCOL's changes %d..%d unacknowledged" %
          ("killed -9" if kill else "stopped with SIGTERM", acked + 1, sent))


def resumed(py, sess, made):
    """PYCOL reconnected to the restarted hub (Hello with its cursor, a
    Welcome telling what the hub kept)."""
    cf.wait(py, lambda: py.session > sess and py.state in ("streaming",
                                                             "snapshot"),
            30, "PYCOL to reconnect to the restarted hub")
    with py.lock:
        w = py.welcomes[-1][1]
    h.check(w.last_origin_seq <= made, "Welcome.last_origin_seq %d <= %d "
            "made" % (w.last_origin_seq, made))
    h.log("  ..   the hub kept %d of PYCOL's changes; it publishes the rest"
          % w.last_origin_seq)


@cf.case
def test_resume_after_hub_restarts(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    mex = rh.node(env, "mex", hub, no_sync=True)
    mex.start()
    py = cf.node(env, hub, "PYCOL", provider="COL", max_batch=50)
    cf.wait(py, lambda: py.state == "streaming", 20, "PYCOL streaming")
    rng = env.rng

    # 1. SIGTERM with changes in flight: the hub is frozen while PYCOL
    # sends them, then stopped
    make(py, rng, 0, ROUND // 2)
    cf.wait(py, py.all_acked, 20, "the first %d acks" % (ROUND // 2))
    sess = py.session
    in_flight_stop(hub, py, rng, ROUND // 2, ROUND // 2, kill=False)
    sess = py.session
    cf.expect_goodbye(env, py, sess, 0, "hub stopping on SIGTERM",
                      timeout=2)
    restart_hub(hub)
    resumed(py, sess, ROUND)
    cf.wait(py, py.all_acked, 30, "round 1 acknowledged")

    # 2. kill -9 with changes in flight
    sess = py.session
    in_flight_stop(hub, py, rng, ROUND, ROUND, kill=True)
    restart_hub(hub)
    resumed(py, sess, 2 * ROUND)
    with py.lock:
        gone = [g[1] for g in py.goodbyes if g[0] == sess]
    # a killed hub says nothing; its successor may tell the session it
    # has no session for (the DEALER reconnects by itself): -6, say Hello
    h.check(all(c == on.OBS_ENOENT for c in gone), "no Goodbye from the "
            "killed hub (its successor's: %r)" % gone)
    cf.wait(py, py.all_acked, 30, "round 2 acknowledged")

    # 3. a healthy round
    make(py, rng, 2 * ROUND, ROUND)
    cf.wait(py, py.all_acked, 30, "round 3 acknowledged")
    total = 3 * ROUND
    h.eq(py.origin_seq, total, "changes made")

    hs = rh.wait_converged(hub, [mex], 60, full=[hub, mex],
                           what="hub and MEX")[hub.name]
    h.eq(rh.hub_log_last(hs), total, "hub log_last (each change logged "
         "once)")
    h.eq(hs["history_versions"], total, "hub history versions")
    # (its accepted/duplicates counts start again with each hub run)
    row = rh.need(rh.peer_row(hs, "PYCOL"), "rejected", "last_origin_seq",
                  who="the hub's row")
    h.eq((row["rejected"], row["last_origin_seq"]), (0, total),
         "hub's peer row (rejected, last_origin_seq)")
    h.eq(rh.must_status(mex)["history_versions"], total,
         "MEX history versions (each change applied once)")
    mine = cf.store_view(py)
    h.eq(len(mine), KEYS, "observations in the Python store")
    cf.compare(mine, cf.export_view(mex), "Python node", "MEX")
    cf.compare(mine, cf.export_view(hub), "Python node", "hub")
    with py.lock:
        h.log("  ..   PYCOL: %d sessions, goodbyes %r" %
              (py.session, [(g[0], g[1]) for g in py.goodbyes]))


if __name__ == "__main__":
    h.main([test_resume_after_hub_restarts])
