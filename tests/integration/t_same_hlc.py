#!/usr/bin/env python3
"""t_same_hlc.py - two versions of one observation with the same HLC from
different origins are both kept, and everyone picks the same winner: the
one from the greater origin id in byte order.

Nodes COL and MEX (both provider COL, so both may write REF_AREA COL: no
area of the starter structure is shared by two providers) run under
libfaketime with their clocks FROZEN at the same instant, about 60 s ahead
of the true time (within the hub's 5-minute bound), monotonic clock untouched
so timers still run; the hub keeps the true clock. With the hub down, both
put the same key with different values: both are accepted offline and
stamped with the same HLC (checked at the nodes, else the test would not
test what it claims). After the hub starts and everything converges, at the
hub, COL and MEX: `history` of the key holds exactly 2 versions, with equal
hlc and origins COL and MEX; the current value is MEX's (MEX > COL); exports
are byte-identical. Durability is not under test (no_sync). Run by ctest as
integration.same_hlc."""

import datetime
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

CONVERGE_S = 30
AHEAD_S = 60
KEY, PERIOD = rh.ident("COL", 0)
VALUES = {"COL": "11.5", "MEX": "22.75"}


def frozen(d, when):
    """The next start of d runs with its clock frozen at `when` (UTC)."""
    d.extra_env = {"LD_PRELOAD": h.faketime_lib(),
                   "FAKETIME": when.strftime("%Y-%m-%d %H:%M:%S"),
                   "FAKETIME_DONT_FAKE_MONOTONIC": "1", "TZ": "UTC"}


def streaming(d):
    st = rh.status(d)
    if st is None:
        return None
    if "repl_state" not in st:
        h.fail("%s's status --json has no repl_state: %r" % (d.name, st))
    return st["repl_state"] == "streaming"


def versions_of(d):
    hist = d.history(h.DF_VIOLENCE, KEY, PERIOD, check=None)
    for v in hist:
        if "version" not in v or "hlc" not in v["version"] or \
                "origin" not in v["version"]:
            h.fail("%s: history --json line without version.hlc/origin: %r"
                   % (d.name, v))
    return hist


def test_same_hlc_both_kept(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    col = rh.node(env, "col", hub, "COL", no_sync=True)
    mex = rh.node(env, "mex", hub, "MEX", provider="COL", no_sync=True)
    when = (datetime.datetime.now(datetime.timezone.utc) +
            datetime.timedelta(seconds=AHEAD_S)).replace(microsecond=0)
    want_ms = int(when.timestamp() * 1000)
    for n in (col, mex):
        frozen(n, when)
        n.start()
    for n in (col, mex):
        h.wait_until(lambda: streaming(n), 20, "%s to stream" % n.name)
    h.log("  ok   COL and MEX (clocks frozen at %s UTC) stream" %
          when.strftime("%Y-%m-%d %H:%M:%S"))
    hub.stop()
    nodes = {"COL": col, "MEX": mex}
    for nid, n in sorted(nodes.items()):
        n.cli("put", h.DF_VIOLENCE, KEY, PERIOD, VALUES[nid],
              "UNIT_MEASURE=PER_100000_POP")
    h.log("  ok   COL and MEX put %s %s while the hub is down" %
          (KEY, PERIOD))
    hlcs = {}
    for nid, n in sorted(nodes.items()):
        hist = versions_of(n)
        h.eq([(v["version"]["origin"], v.get("value")) for v in hist],
             [(nid, VALUES[nid])], "%s holds its own version" % nid)
        hlcs[nid] = hist[0]["version"]["hlc"]
    if hlcs["COL"] != hlcs["MEX"]:
        h.fail("the test's premise failed: COL and MEX stamped their puts "
               "with different HLCs (%r, frozen clock %d ms): the frozen "
               "clocks did not give equal stamps" % (hlcs, want_ms))
    h.log("  ok   both puts carry hlc %d (ms %d, logical %d; frozen at %d)" %
          (hlcs["COL"], hlcs["COL"] >> 16, hlcs["COL"] & 0xffff, want_ms))
    rh.start_hub(hub)
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence after the hub restart")
    for d in (hub, col, mex):
        hist = versions_of(d)
        got = sorted((v["version"]["origin"], v["version"]["hlc"],
                      v.get("value")) for v in hist)
        h.eq(got, [("COL", hlcs["COL"], VALUES["COL"]),
                   ("MEX", hlcs["MEX"], VALUES["MEX"])],
             "%s: history holds both versions with the same hlc" % d.name)
        o = d.get(h.DF_VIOLENCE, KEY, PERIOD, check=None)
        h.eq(o and o.get("value"), VALUES["MEX"], "%s: the current value is "
             "MEX's (the greater origin)" % d.name)
    rh.compare_exports([hub, col, mex])


if __name__ == "__main__":
    h.faketime_lib()  # skipped under the sanitizers
    h.main([test_same_hlc_both_kept])
