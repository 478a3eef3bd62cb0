#!/usr/bin/env python3
"""t_slow_link_down.py - replication to a small-island node over a slow line,
with obsyncd's DEFAULT heartbeat and peer timeout (PROTOCOL.md §5.4 "Slow
links").

A hub, node COL (fast, writes) and node JAM behind a LinkProxy (link_proxy.py)
that caps the bandwidth each way, adds latency, and stalls. For each line
profile of issue 14, scaled down to keep the suite short (the benchmark
tests/bench/bench_slow_link.py runs the full sizes):
  20 kB/s with 300 ms latency, 1,000 observations;
  5 kB/s with a 10 s stall every minute (the first at 5 s), 300;
  2 kB/s, 100;
the hub imports them (COL's rows, one transaction) and they stream down
to JAM (and COL). Checked: everything converges
and the exports are byte-identical; JAM's session never drops (the proxy saw
one connection, JAM's and the hub's reconnect counts are 0); the time is
within 2x (bytes that crossed the line / its rate) + the stalls + 10 s; the
hub counted no byte twice (what crossed the line is at most 1.25x what the
hub counts as delivered); while it streams, JAM's status shows the link as
"slow link" with a measured rate, its lag counts against the hub's log end
(never 0 while its cursor is behind it, once the hub told it), and on the
20 kB/s line a time left. Durability is not under test (no_sync). Run by
ctest as integration.slow_link_down."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402
import slow_link as sl  # noqa: E402

NODE_FIELDS = ("link", "rate_in_bps", "rate_out_bps", "reconnects",
               "apply_rate", "eta_s", "lag_changes", "hub_cursor")
PEER_FIELDS = ("link", "rate_out_bps", "rate_in_bps", "reconnects",
               "bytes_out")


def stream_down(env, tag, profile, n, stalled_s=0.0, want_eta=False):
    kw = sl.PROFILES[profile]
    hub, col, jam, proxy = sl.setup(env, tag, kw)
    col.start()
    jam.start()
    h.wait_until(lambda: rh.must_status(jam)["repl_state"] == "streaming",
                 30, "JAM streaming through the line")
    t0 = time.monotonic()
    # Written at the hub in one transaction (COL's rows; the hub's provider
    # may write every area): every batch JAM gets is built once the hub's
    # log holds them all, so JAM's lag must stay above 0 until it has them.
    # Rows written at COL reach the hub in several commits, and JAM may then
    # rightly sit level with the end it was told while the batch that tells
    # more crosses the line (seconds at 2 kB/s).
    path = env.path("hub-%s.csv" % tag)
    rh.write_rows(path, "COL", n, env.rng)
    h.eq(hub.import_(path).summary["rejected"], 0,
         "the hub imported %d of COL's rows" % n)
    last = rh.hub_log_last(rh.must_status(hub))
    samples = []

    def done():
        st = rh.status(jam)
        if st is not None:
            sl.status_fields(st, NODE_FIELDS, "JAM")
            samples.append((time.monotonic() - t0, st))
        return rh.converged(hub, [col, jam])
    h.wait_until(done, 600, "JAM to receive %d observations over %s" %
                 (n, profile), interval=0.5, max_interval=1.0)
    secs = time.monotonic() - t0
    rh.compare_exports([hub, col, jam])

    h.eq(proxy.connections, 1, "JAM's one connection through the line "
         "(no reconnect)")
    st = rh.must_status(jam)
    h.eq(st["reconnects"], 0, "JAM counts no reconnect")
    row = sl.peer(hub, "JAM")
    sl.status_fields(row, PEER_FIELDS, "the hub's row for JAM")
    h.eq(row["reconnects"], 0, "the hub counts no reconnect of JAM")
    sl.check_rate("%d observations down over %s" % (n, profile), secs,
                  proxy.bytes_down, kw["down_bps"], kw["latency_ms"],
                  stalled_s=stalled_s)
    h.check(proxy.bytes_down <= 1.25 * row["bytes_out"],
            "nothing crossed the line twice (%d bytes crossed, the hub "
            "delivered %d)" % (proxy.bytes_down, row["bytes_out"]))
    h.check(row["rate_out_bps"] > 0.5 * kw["down_bps"] and
            row["rate_out_bps"] < 2 * kw["down_bps"],
            "the hub measured JAM's line at about its rate",
            "%d B/s for a %d B/s line" % (row["rate_out_bps"],
                                           kw["down_bps"]))
    streaming = [s for t, s in samples if s["hub_cursor"] < last and t > 3]
    h.check(streaming, "JAM was sampled while it streamed", "")
    h.check(any(s["link"] == "slow link" and s["rate_in_bps"] > 0
                for s in streaming),
            "JAM's status showed a slow link with its rate while it "
            "streamed", repr([(s["link"], s["rate_in_bps"])
                              for s in streaming][:5]))
    h.check(all(s["lag_changes"] > 0 for s in streaming),
            "JAM's lag was never 0 while it was behind the hub's log end",
            repr([(s["hub_cursor"], s["lag_changes"]) for s in streaming]))
    if want_eta:
        h.check(any(s["eta_s"] > 0 and s["apply_rate"] > 0
                    for s in streaming),
                "JAM's status showed a rate and a time left", "")
    sl.stop_proxies(env)
    for d in (jam, col, hub):
        d.stop()


def test_20kBps_300ms(env):
    stream_down(env, "a", "20kBps-300ms", 1000, want_eta=True)


def test_5kBps_with_stalls(env):
    # 300 observations take ~16 s at 5 kB/s: one 10 s stall falls in it
    stream_down(env, "b", "5kBps-stalls", 300, stalled_s=10.0)


def test_2kBps(env):
    stream_down(env, "c", "2kBps", 100)


if __name__ == "__main__":
    h.main([test_20kBps_300ms, test_5kBps_with_stalls, test_2kBps])
