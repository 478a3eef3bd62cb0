#!/usr/bin/env python3
"""t_slow_link_blackhole.py - a line that goes dead is detected within the
documented bound and heals by itself; sessions that keep failing say so
(PROTOCOL.md §5.4 "Slow links", "Liveness").

1. Blackhole with the DEFAULT settings: hub, COL, and JAM behind a 20 kB/s
   LinkProxy with 300 ms latency. JAM is streaming, idle, when the line is
   blackholed (nothing crosses, connections stay open) for 60 s. Both ends
   notice within peer_timeout_ms (30 s) + the documented slack (the bytes
   in flight, nothing here, + 5 s for polling): JAM's link leaves
   "streaming" and the hub marks JAM down. COL imports 200 observations
   meanwhile. When the line heals, JAM reconnects without help and
   everything converges, exports byte-identical.
2. No progress, said: JAM with peer_timeout_ms = 2000 (heartbeat 500) behind
   a blackholed line: each session ends without a Welcome; after three,
   JAM logs a warning naming the likely cause and peer_timeout_ms, and its
   status shows link "no progress" with a reconnect count of at least 3.
   When the line heals it streams again and its link is no longer
   "no progress".
Durability is not under test (no_sync). Run by ctest as
integration.slow_link_blackhole."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402
import slow_link as sl  # noqa: E402

BLACKHOLE_S = 60
PEER_TIMEOUT_S = 30  # obsyncd's default
SLACK_S = 5


def test_blackhole_detected_and_healed(env):
    hub, col, jam, proxy = sl.setup(env, "b", sl.PROFILES["20kBps-300ms"])
    col.start()
    jam.start()
    h.wait_until(lambda: rh.must_status(jam)["repl_state"] == "streaming",
                 30, "JAM streaming through the line")
    rh.wait_converged(hub, [col, jam], 60)
    proxy.blackhole(True)
    t0 = time.monotonic()
    sl.import_rows(env, col, 200)
    bound = PEER_TIMEOUT_S + SLACK_S
    h.wait_until(lambda: rh.must_status(jam)["repl_state"] != "streaming",
                 bound, "JAM to notice the dead line", interval=0.5)
    t_node = time.monotonic() - t0
    h.wait_until(lambda: not sl.peer(hub, "JAM")["up"],
                 max(1.0, bound - (time.monotonic() - t0)),
                 "the hub to mark JAM down", interval=0.5)
    t_hub = time.monotonic() - t0
    h.log("  ..   dead line noticed by JAM after %.1f s, by the hub after "
          "%.1f s (bound %d s)" % (t_node, t_hub, bound))
    h.check(t_node >= PEER_TIMEOUT_S - 2,
            "JAM did not give up before peer_timeout_ms", "%.1f s" % t_node)
    left = BLACKHOLE_S - (time.monotonic() - t0)
    if left > 0:
        time.sleep(left)  # the blackhole's length is the test's input
    proxy.blackhole(False)
    t1 = time.monotonic()
    rh.wait_converged(hub, [col, jam], 120, what="healing")
    h.log("  ..   converged %.1f s after the line healed" %
          (time.monotonic() - t1))
    rh.compare_exports([hub, col, jam])
    st = rh.must_status(jam)
    h.check(st["reconnects"] >= 1, "JAM counted its reconnect",
            repr(st["reconnects"]))
    sl.stop_proxies(env)


def test_no_progress_is_said(env):
    hub, col, jam, proxy = sl.setup(env, "n", sl.PROFILES["20kBps-300ms"])
    # 5 s: a CURVE handshake and the Hello take four round trips of this
    # line (~2.5 s), which a shorter timeout would cut every time
    jam.write_config(peer_timeout_ms=5000, heartbeat_ms=500)
    proxy.blackhole(True)
    jam.start()

    def no_progress():
        st = rh.must_status(jam)
        sl.status_fields(st, ("link", "reconnects"), "JAM")
        return st["link"] == "no progress" and st["reconnects"] >= 3
    h.wait_until(no_progress, 45, "JAM's status to say no progress")
    h.check(jam.wait_log(r"node: 3 sessions in a row ended without "
                         r"progress.*peer_timeout_ms \(5000 ms\)", 5,
                         "JAM's warning"), "")
    proxy.blackhole(False)
    h.wait_until(lambda: rh.must_status(jam)["repl_state"] == "streaming",
                 30, "JAM streaming once the line healed")
    col.start()
    sl.import_rows(env, col, 20)
    rh.wait_converged(hub, [col, jam], 60)
    h.check(rh.must_status(jam)["link"] != "no progress",
            "JAM's link is no longer 'no progress'", "")
    sl.stop_proxies(env)


if __name__ == "__main__":
    h.main([test_blackhole_detected_and_healed, test_no_progress_is_said])
