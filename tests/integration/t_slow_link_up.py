#!/usr/bin/env python3
"""t_slow_link_up.py - a small-island node's own changes go up a slow line,
and it catches up over it after being off, with obsyncd's DEFAULT heartbeat
and peer timeout (PROTOCOL.md §5.4 "Slow links").

Hub, node COL, node JAM behind a LinkProxy of 20 kB/s each way with 300 ms
latency (link_proxy.py). Scaled down from issue 14 (the benchmark runs the
full sizes):
1. Up: JAM imports 500 observations; they cross the line in Publishes sized
   to it and reach the hub and COL. JAM's session never drops (one
   connection, no reconnect counted), the time is within 2x (bytes that
   crossed up / 20 kB/s) + 10 s, JAM's status shows the rate its Publishes
   are acknowledged at, and the hub's row the rate they arrive at.
2. Catch-up: JAM is stopped; COL imports 1,500 observations; JAM starts and
   catches up over the line. From its first status after the Welcome its lag
   counts against the hub's log end (1,500 behind, not what the last batch
   said), it shows a rate and a time left while it catches up, it gets
   there within 2x the line's time + 10 s, with no reconnect, and all
   exports end byte-identical.
Durability is not under test (no_sync). Run by ctest as
integration.slow_link_up."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402
import slow_link as sl  # noqa: E402

PROFILE = "20kBps-300ms"
N_UP = 500
N_CATCHUP = 1500


def test_up_then_catch_up(env):
    kw = sl.PROFILES[PROFILE]
    hub, col, jam, proxy = sl.setup(env, "u", kw)
    col.start()
    jam.start()
    h.wait_until(lambda: rh.must_status(jam)["repl_state"] == "streaming",
                 30, "JAM streaming through the line")

    # 1. up
    t0 = time.monotonic()
    sl.import_rows(env, jam, N_UP)
    rh.wait_converged(hub, [col, jam], 300, what="JAM's import at the hub")
    secs = time.monotonic() - t0
    rh.compare_exports([hub, col, jam])
    h.eq(proxy.connections, 1, "JAM's one connection (no reconnect)")
    st = rh.must_status(jam)
    sl.status_fields(st, ("rate_out_bps", "reconnects", "link"), "JAM")
    h.eq(st["reconnects"], 0, "JAM counts no reconnect")
    h.check(0.5 * kw["up_bps"] < st["rate_out_bps"] < 2 * kw["up_bps"],
            "JAM measured its Publishes at about the line's rate",
            "%d B/s" % st["rate_out_bps"])
    row = sl.peer(hub, "JAM")
    sl.status_fields(row, ("rate_in_bps", "reconnects"), "the hub's row")
    h.eq(row["reconnects"], 0, "the hub counts no reconnect of JAM")
    h.eq(row["accepted"], N_UP, "the hub accepted JAM's %d changes" % N_UP)
    sl.check_rate("%d observations up" % N_UP, secs, proxy.bytes_up,
                  kw["up_bps"], kw["latency_ms"])

    # 2. catch-up after JAM was off
    jam.stop()
    sl.import_rows(env, col, N_CATCHUP)
    hub_last = rh.hub_log_last(rh.wait_converged(hub, [col], 60)[hub.name])
    conns, down0 = proxy.connections, proxy.bytes_down
    t0 = time.monotonic()
    jam.start()
    samples = []

    def caught_up():
        s = rh.status(jam)
        if s is not None:
            samples.append(s)
        return rh.converged(hub, [col, jam])
    h.wait_until(caught_up, 600, "JAM to catch up over the line",
                 interval=0.5, max_interval=1.0)
    secs = time.monotonic() - t0
    rh.compare_exports([hub, col, jam])
    h.eq(proxy.connections, conns + 1, "JAM's catch-up on one connection")
    h.eq(rh.must_status(jam)["reconnects"], 0, "JAM counts no reconnect")
    behind = [s for s in samples
              if s["repl_state"] == "streaming" and
              s["hub_cursor"] < hub_last]
    h.check(behind, "JAM was sampled while it caught up", "")
    h.check(all(s["log_last"] == hub_last and
                s["lag_changes"] == hub_last - s["hub_cursor"]
                for s in behind),
            "JAM's lag counted against the hub's log end throughout",
            repr([(s["hub_cursor"], s["log_last"], s["lag_changes"])
                  for s in behind][:8]))
    h.check(any(s["eta_s"] > 0 and s["apply_rate"] > 0 for s in behind),
            "JAM showed a rate and a time left while it caught up",
            repr([(s["apply_rate"], s["eta_s"]) for s in behind][:8]))
    sl.check_rate("catch-up of %d observations" % N_CATCHUP, secs,
                  proxy.bytes_down - down0, kw["down_bps"], kw["latency_ms"])
    sl.stop_proxies(env)


if __name__ == "__main__":
    h.main([test_up_then_catch_up])
