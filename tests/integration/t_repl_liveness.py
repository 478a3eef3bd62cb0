#!/usr/bin/env python3
"""t_repl_liveness.py - nodes that vanish are marked down and come back
without operator action (DESIGN.md §3.7).

Hub and nodes COL and MEX, heartbeats every 200 ms, peer_timeout_ms 1500.
The hub and both nodes are frozen with SIGSTOP for twice the peer timeout;
the hub is resumed first, so its first cron tick finds BOTH sessions silent
past the timeout and ends them in the same pass (this once freed one
session while still reading the other: a heap-use-after-free in reap() of
repl_hub.c, seen under ASan). The hub must stay up, mark both nodes down
(its peer rows, and a "node X is down" log line for each), and, once the
nodes are resumed, see them up again and carry new writes from both to
both, exports identical.
Durability is not under test (no_sync). Run by ctest as
integration.repl_liveness."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

CONVERGE_S = 60


def peers_state(hub, want_up):
    """Whether the hub's rows for COL and MEX both say up == want_up (False
    while the hub does not answer)."""
    rh.check_alive([hub])
    st = rh.status(hub, timeout=5)
    if st is None:
        return False
    rows = [rh.need(rh.peer_row(st, n), "up", who="the hub's row for %s" % n)
            for n in ("COL", "MEX")]
    return all(r["up"] == want_up for r in rows)


def test_two_nodes_vanish_at_once(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    col = rh.node(env, "col", hub, no_sync=True)
    mex = rh.node(env, "mex", hub, no_sync=True)
    col.start()
    mex.start()
    p = env.path("col.csv")
    rh.write_rows(p, "COL", 500, env.rng)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    h.check(peers_state(hub, True), "the hub's rows say COL and MEX are up")

    since = hub.log_size()
    for d in (hub, col, mex):
        rh.sigstop(d)
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 2 * rh.PEER_TIMEOUT_MS / 1000.0:
            time.sleep(0.05)  # the outage itself: nothing to poll
        rh.sigcont(hub)
        h.wait_until(lambda: peers_state(hub, False), 30,
                     "the hub to mark COL and MEX down")
        h.log("  ok   the hub marked both silent nodes down")
        for n in ("COL", "MEX"):
            hub.wait_log(r"node %s is down" % n, 10,
                         "the hub's log line: node %s is down" % n,
                         since=since)
        rh.check_alive([hub])
    finally:
        rh.sigcont(col)
        rh.sigcont(mex)
    h.wait_until(lambda: peers_state(hub, True), 30,
                 "the hub to see COL and MEX up again")
    h.log("  ok   both nodes are up again")
    p = env.path("mex.csv")
    rh.write_rows(p, "MEX", 500, env.rng)
    rh.import_ok(mex, p)
    key, period = rh.ident("COL", 0)
    col.cli("put", h.DF_VIOLENCE, key, period, "7.5",
            "UNIT_MEASURE=PER_100000_POP")
    sts = rh.wait_converged(hub, [col, mex], CONVERGE_S)
    h.eq(sts[hub.name]["observations"], 1000, "the hub holds both nodes' "
         "writes")
    rh.compare_exports([hub, col, mex])


if __name__ == "__main__":
    h.main([test_two_nodes_vanish_at_once])
