#!/usr/bin/env python3
"""t_repl_stalled.py - a stalled node neither grows the hub's memory nor
slows the others, and catches up when it resumes (DESIGN.md §3.5).

Hub, node COL (the writer), node MEX (a receiver) and node JAM (stalled).
The hub's peer_timeout_ms is long (120 s), so the hub keeps JAM's session
open and streaming while JAM is frozen with SIGSTOP: only credit-based flow
control keeps the hub from queueing the whole stream for it. While JAM is
stopped COL makes 100,000 changes (50,000 new observations, then new values
for all of them), each with a 1,000-character COMMENT_OBS so the stream is
~115 MB; MEX and the hub must converge on them.

What is asserted:
* the hub's bytes_out to JAM (its peer row in `status`) grows by less than
  16 MiB during the stall: at most the credit of 8 batches of <= 512 KiB,
  not the stream;
* the hub's memory outside the LMDB map (RssAnon of /proc/PID/status,
  sampled every 100 ms) stays under 64 MiB throughout (the issue's bound).
  Not VmRSS: it also counts the resident file pages of the LMDB map, which
  grow with the data whatever replication does (both are printed). The
  normal working set (a credit of 512 KiB batches per session, a window
  of 16 such publishes queued, the accept and state transactions' dirty
  pages, what malloc keeps below its trim threshold) is ~35-40 MiB here
  (~60 MiB with 1 MiB batches and 8 MiB accept transactions) with or
  without a stalled node, and does not depend on the stream's length; a
  hub that queued the stream for JAM would add ~115 MB.
  Under ASan (slower, and its allocator and shadow memory make RSS say
  little) the comments are 200 characters (~35 MB stream) and the RSS
  bound is only printed, not asserted; the bytes_out bound still holds;
* the hub's bytes_out to COL is under a tenth of MEX's: COL's own changes of
  this session are not echoed back to it (PROTOCOL.md §5.4).
After SIGCONT, JAM catches up and every store is byte-identical. Durability
is not under test (no_sync). Run by ctest as integration.repl_stalled."""

import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = int(os.environ.get("OBSYNC_REPL_ROWS", "50000"))  # x2 changes
COMMENT = 1000
ASAN_COMMENT = 200
ANON_PEAK_MAX_KIB = 64 * 1024
BYTES_OUT_MAX = 16 * 1024 * 1024
CONVERGE_S = 300
REPLY_S = 300


class Sampler(threading.Thread):
    """Samples a daemon's VmRSS and RssAnon every 100 ms until stopped."""

    def __init__(self, d):
        super().__init__(daemon=True)
        self.d = d
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.samples.append((rh.rss_kib(self.d, "VmRSS"),
                                 rh.rss_kib(self.d, "RssAnon")))
            self.halt.wait(0.1)

    def stop(self):
        self.halt.set()
        self.join(timeout=5)


def jam_row(hub):
    return rh.need(rh.peer_row(rh.must_status(hub), "JAM"), "state", "up",
                   "cursor", "bytes_out", who="the hub's row for JAM")


def stream_while_stalled(env, hub, col, mex, comment):
    """COL makes 2N changes; returns (statuses, seconds)."""
    t0 = time.monotonic()
    for i in range(2):
        p = env.path("col%d.csv" % i)
        rh.write_rows(p, "COL", N, env.rng, comment=comment)
        h.eq(rh.import_ok(col, p, reply_timeout=REPLY_S), N,
             "COL's import %d while JAM is stopped" % (i + 1))
        os.unlink(p)
    sts = rh.wait_converged(hub, [col, mex], CONVERGE_S,
                            full=[hub, col, mex],
                            what="hub, COL and MEX converge while JAM is "
                            "stopped")
    return sts, time.monotonic() - t0


def check_memory(sampler, base, took, asan):
    peak_vm = max(s[0] for s in sampler.samples)
    peak_anon = max(s[1] for s in sampler.samples)
    h.log("  ..   %d changes in %.1f s; hub memory over %d samples: VmRSS "
          "%d -> peak %d KiB (+%d), RssAnon %d -> peak %d KiB (+%d)" %
          (2 * N, took, len(sampler.samples), base[0], peak_vm,
           peak_vm - base[0], base[1], peak_anon, peak_anon - base[1]))
    n = len(sampler.samples)
    h.log("  ..   RssAnon at 0/4..4/4 of the run: %s KiB" % ", ".join(
        str(sampler.samples[min(n - 1, i * n // 4)][1]) for i in range(5)))
    h.check(n >= 5, "memory was sampled during the run")
    if asan:
        h.log("  --   (ASan build: the RSS bound is not asserted)")
        return
    h.check(peak_anon < ANON_PEAK_MAX_KIB, "the hub's memory outside the map "
            "stayed under %d MiB while JAM was stalled" %
            (ANON_PEAK_MAX_KIB // 1024), "peak %d KiB" % peak_anon)


def test_stalled_node(env):
    asan = rh.is_asan_build()
    hub = rh.start_hub(rh.hub(env, no_sync=True, map_size="1G",
                              peer_timeout_ms=120000))
    col = rh.node(env, "col", hub, no_sync=True, map_size="1G")
    mex = rh.node(env, "mex", hub, no_sync=True, map_size="1G")
    jam = rh.node(env, "jam", hub, no_sync=True, map_size="1G")
    for n in (col, mex, jam):
        n.start()
    p = env.path("jam.csv")
    rh.write_rows(p, "JAM", 1000, env.rng)
    rh.import_ok(jam, p)
    rh.wait_converged(hub, [col, mex, jam], CONVERGE_S)

    rh.sigstop(jam)
    row0 = jam_row(hub)
    base = (rh.rss_kib(hub, "VmRSS"), rh.rss_kib(hub, "RssAnon"))
    sampler = Sampler(hub)
    sampler.start()
    try:
        sts, took = stream_while_stalled(env, hub, col, mex,
                                         ASAN_COMMENT if asan else COMMENT)
    finally:
        sampler.stop()
    h.eq(sts[hub.name]["observations"], N + 1000, "the hub holds it all")
    check_memory(sampler, base, took, asan)
    row1 = jam_row(hub)
    mex_row = rh.need(rh.peer_row(sts[hub.name], "MEX"), "bytes_out",
                      who="the hub's row for MEX")
    col_row = rh.need(rh.peer_row(sts[hub.name], "COL"), "bytes_out",
                      who="the hub's row for COL")
    h.log("  ..   hub's row for JAM while stopped: state %s, up %s, "
          "cursor %d; bytes_out +%d (MEX got %d bytes in all)" %
          (row1["state"], row1["up"], row1["cursor"],
           row1["bytes_out"] - row0["bytes_out"], mex_row["bytes_out"]))
    h.check(row1["bytes_out"] - row0["bytes_out"] < BYTES_OUT_MAX,
            "the hub sent the stalled JAM less than %d MiB (credit "
            "window), not the stream" % (BYTES_OUT_MAX >> 20))
    # COL made the whole stream in this session: none of it is echoed
    h.log("  ..   hub's bytes_out to COL (the writer) %d, to MEX %d" %
          (col_row["bytes_out"], mex_row["bytes_out"]))
    h.check(mex_row["bytes_out"] > 0, "the hub streamed COL's changes to "
            "MEX", repr(mex_row))
    h.check(col_row["bytes_out"] < mex_row["bytes_out"] // 10,
            "the hub did not echo COL's own changes back to it")

    rh.sigcont(jam)
    rh.wait_converged(hub, [col, mex, jam], CONVERGE_S,
                      what="JAM catches up after SIGCONT")
    rh.compare_exports([hub, col, mex, jam])


if __name__ == "__main__":
    h.main([test_stalled_node])
