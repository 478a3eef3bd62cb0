#!/usr/bin/env python3
"""bench_slow_link.py: replication over slow lines at full size (issue 14),
rate against the line's speed.

A hub, node COL (fast) and node JAM behind a LinkProxy
(tests/integration/link_proxy.py), every daemon with its build's DEFAULT
heartbeat and peer timeout. Rows, each on fresh daemons:
  down  20 kB/s, 300 ms latency      20,000 observations COL -> JAM
  down  5 kB/s, 10 s stall a minute   5,000
  down  2 kB/s                        1,000
  up    20 kB/s, 300 ms latency       2,000 observations JAM -> hub
  catch-up 20 kB/s                   50,000 after JAM was off
Each row prints the seconds, the bytes that crossed the line, the share of
the line's rate obsync used (the reference measured in the same run is the
line itself: bytes crossed / (seconds x its rate)), and the connections JAM
made (1 = no reconnect). A row that does not converge within --timeout x the
line's time for its bytes (estimated at 250 bytes a change) says so. --scale
shrinks every size (0.1 for a quick look); --bin picks a build (compare two
builds in one run: before and after a change). Talks to 127.0.0.1 only.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

ROWS = [
    ("down", "20kBps-300ms", 20000),
    ("down", "5kBps-stalls", 5000),
    ("down", "2kBps", 1000),
    ("up", "20kBps-300ms", 2000),
    ("catch-up", "20kBps-300ms", 50000),
]
BYTES_PER_CHANGE = 250


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", help="dir with obsyncd and obsync")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=3.0,
                    help="give up after this many times the line's time")
    ap.add_argument("--rows", default="",
                    help="comma list of row numbers (1-based) to run")
    a = ap.parse_args()
    if a.bin:
        os.environ["OBSYNCD"] = os.path.join(a.bin, "obsyncd")
        os.environ["OBSYNC"] = os.path.join(a.bin, "obsync")
    os.environ.setdefault("OBSYNC_TEST_DEADLINE", "36000")
    import harness as h
    import repl_harness as rh
    import slow_link as sl

    pick = {int(x) for x in a.rows.split(",") if x}
    results = []
    env = h.Env("bench_slow_link")
    try:
        for i, (way, profile, n) in enumerate(ROWS, 1):
            if pick and i not in pick:
                continue
            n = max(10, int(n * a.scale))
            kw = sl.PROFILES[profile]
            bps = kw["down_bps"] if way != "up" else kw["up_bps"]
            limit = a.timeout * n * BYTES_PER_CHANGE / bps + 60
            hub, col, jam, proxy = sl.setup(env, "r%d" % i, kw)
            col.start()
            if way != "catch-up":
                jam.start()
                h.wait_until(lambda: rh.status(jam) is not None and
                             rh.status(jam)["repl_state"] == "streaming",
                             60, "JAM streaming")
            sl.import_rows(env, jam if way == "up" else col, n)
            t0 = time.monotonic()
            if way == "catch-up":
                jam.start()
            ok = True
            try:
                rh.wait_converged(hub, [col, jam], limit, what=profile)
            except h.TestFailure:
                ok = False
            secs = time.monotonic() - t0
            crossed = proxy.bytes_up if way == "up" else proxy.bytes_down
            results.append((way, profile, n, bps, secs, crossed,
                            proxy.connections, ok))
            sl.stop_proxies(env)
            env.kill_all()
    finally:
        env.cleanup()
    print("\n%-9s %-14s %7s %8s %9s %10s %8s %6s  %s" %
          ("row", "line", "changes", "line B/s", "seconds", "bytes",
           "of line", "conns", "result"))
    for way, profile, n, bps, secs, crossed, conns, ok in results:
        share = 100.0 * crossed / (secs * bps) if secs else 0.0
        print("%-9s %-14s %7d %8d %9.1f %10d %7.0f%% %6d  %s" %
              (way, profile, n, bps, secs, crossed, share, conns,
               "converged" if ok else "NOT converged in %.0f s" % secs))


if __name__ == "__main__":
    main()
