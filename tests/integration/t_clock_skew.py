#!/usr/bin/env python3
"""t_clock_skew.py - a node with a wrong clock never acknowledges a write it
then loses (PROTOCOL.md: the hub rejects a change stamped more than 5
minutes ahead of its clock, R-clock).

Node MEX runs under libfaketime (Debian's faketime package) with its clock
off by +10 min, +1 h or -1 day (one case each, fresh hub, COL and MEX); the
hub and node COL keep the true clock. A node's `status --json` says whether
it has sampled the hub's clock this run (clock_known), its skew against it
(clock_skew_ms) and how many local changes it re-stamped since its start
because they were stamped too far ahead of the hub (restamped); each of the
hub's peers rows counts clock_refused.

1. Offline writes with a fast clock (+10 min, +1 h): MEX starts under
   faketime while the hub is down (skew unknown: writes are accepted) and
   makes 30 puts; when the hub starts they all reach hub and COL (MEX
   re-stamps them: restamped >= 30), exports byte-identical.
2. Known skew: once MEX has sampled the hub's clock (clock_skew_ms within a
   minute of the offset), a put on MEX is refused at once (exit 6, "clock"
   on stderr), nothing of it reaches hub or COL, MEX's outbox stays empty.
3. True clock again: MEX restarted without faketime measures a skew under a
   minute; a put (a new value for one of the keys of 1, whose versions were
   stamped ahead) exits 0 and is the current value everywhere.
Durability is not under test (no_sync). Run by ctest as
integration.clock_skew."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N_OFFLINE = 30
CONVERGE_S = 30
SKEW_S = 20          # to sample the hub's clock after a (re)connect
SKEW_TOL_MS = 60000
NODE_FIELDS = ("clock_known", "clock_skew_ms", "restamped", "outbox_depth")


def skewed(d, offset):
    """The next start of d runs under libfaketime, offset like "+1h"."""
    d.extra_env = {"LD_PRELOAD": h.faketime_lib(), "FAKETIME": offset,
                   "FAKETIME_DONT_FAKE_MONOTONIC": "1"}


def node_status(d):
    st = rh.must_status(d)
    for f in NODE_FIELDS:
        if f not in st:
            h.fail("%s's status --json has no %r: %r" % (d.name, f, st))
    return st


def wait_skew(d, want_ms):
    """Waits until d has sampled the hub's clock and measures a skew within
    SKEW_TOL_MS of want_ms; returns its status."""
    node_status(d)
    last = {}

    def known():
        st = rh.status(d)
        if st is None:
            return None
        last["st"] = st
        if st["clock_known"] is True and \
                abs(st["clock_skew_ms"] - want_ms) < SKEW_TOL_MS:
            return st
        return None
    try:
        st = h.wait_until(known, SKEW_S, "%s to measure a clock skew of about "
                          "%d ms" % (d.name, want_ms))
    except h.TestFailure as e:
        st = last.get("st") or {}
        h.fail("%s (last: clock_known %r, clock_skew_ms %r)" %
               (e, st.get("clock_known"), st.get("clock_skew_ms")))
    h.log("  ok   %s measures clock_skew_ms %d (want about %d)" %
          (d.name, st["clock_skew_ms"], want_ms))
    return st


def put(d, area, i, value, check=0):
    key, period = rh.ident(area, i)
    return d.cli("put", h.DF_VIOLENCE, key, period, value,
                 "UNIT_MEASURE=PER_100000_POP", check=check)


def value_of(d, area, i):
    key, period = rh.ident(area, i)
    o = d.get(h.DF_VIOLENCE, key, period, check=None)
    return o and o.get("value")


def start_hub_col(env, tag):
    hub = rh.start_hub(rh.hub(env, "hub" + tag, no_sync=True))
    col = rh.node(env, "col" + tag, hub, "COL", no_sync=True)
    mex = rh.node(env, "mex" + tag, hub, "MEX", no_sync=True)
    col.start()
    put(col, "COL", 0, "1.5")
    rh.wait_converged(hub, [col], CONVERGE_S,
                      what="COL's first put at the hub")
    return hub, col, mex


def offline_writes(hub, col, mex, offset):
    """Case 1: MEX under a fast clock writes while the hub is down; all its
    writes reach hub and COL. Returns {i: value} of MEX's puts."""
    hub.stop()
    skewed(mex, offset)
    mex.start()
    st0 = rh.must_status(mex)
    wrote = {}
    for i in range(N_OFFLINE):
        v = "%d.25" % (100 + i)
        r = put(mex, "MEX", i, v, check=None)
        if r.rc != 0:
            h.fail("MEX (clock %s, hub down) refused put %d: %s" %
                   (offset, i, r.describe()))
        wrote[i] = v
    h.log("  ok   MEX (clock %s) accepted %d puts while the hub is down" %
          (offset, N_OFFLINE))
    rh.start_hub(hub)
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence of MEX's offline writes")
    for d in (hub, col):
        lost = [(i, v, value_of(d, "MEX", i)) for i, v in sorted(wrote.items())
                if value_of(d, "MEX", i) != v]
        h.check(not lost, "%s holds all %d puts MEX made offline with its "
                "clock %s" % (d.name, N_OFFLINE, offset),
                "%d lost, e.g. (identity, put, current): %r" %
                (len(lost), lost[:5]))
    rh.compare_exports([hub, col, mex])
    for f in NODE_FIELDS:
        if f not in st0:
            h.fail("MEX's status --json has no %r: %r" % (f, st0))
    h.eq(st0["clock_known"], False, "MEX started with the hub down has not "
         "sampled its clock (clock_known)")
    st = node_status(mex)
    h.check(st["restamped"] >= N_OFFLINE, "MEX re-stamped its %d offline "
            "changes (restamped >= %d)" % (N_OFFLINE, N_OFFLINE),
            repr(st["restamped"]))
    h.eq(st["outbox_depth"], 0, "MEX's outbox is empty")
    return wrote


def known_skew_refused(hub, col, mex, offset, want_ms):
    """Case 2: with its skew known, MEX refuses a put at once."""
    wait_skew(mex, want_ms)
    r = put(mex, "MEX", 1000, "9.75", check=None)
    h.eq(r.rc, h.EXIT_REFUSED, "a put on MEX (clock %s, skew known) is "
         "refused" % offset)
    h.check("clock" in r.err.lower(), "the refusal names the clock",
            r.err.strip())
    # anything MEX had sent would be at the hub before COL's next put
    put(col, "COL", 1, "2.5")
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence after the refused put")
    for d in (hub, col, mex):
        h.eq(value_of(d, "MEX", 1000), None, "%s does not hold the refused "
             "put" % d.name)
    h.eq(node_status(mex)["outbox_depth"], 0, "MEX's outbox is empty after "
         "the refused put")
    peers = rh.peer_rows(rh.must_status(hub))
    h.check(set(peers) >= {"COL", "MEX"}, "the hub lists COL and MEX as "
            "peers", repr(sorted(peers)))
    for nid, p in sorted(peers.items()):
        if "clock_refused" not in p:
            h.fail("the hub's peers row of %s has no clock_refused: %r" %
                   (nid, p))
    h.log("  ..   hub clock_refused: %s" % ", ".join(
        "%s=%s" % (n, p["clock_refused"]) for n, p in sorted(peers.items())))


def true_clock_again(hub, col, mex, i, value):
    """Case 3: MEX with the true clock writes again and wins."""
    mex.stop()
    mex.extra_env = {}
    mex.start()
    wait_skew(mex, 0)
    r = put(mex, "MEX", i, value, check=None)
    h.eq(r.rc, 0, "a put on MEX with the true clock is accepted" +
         ("" if r.rc == 0 else " (stderr: %s)" % r.err.strip()))
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence after MEX's true-clock put")
    for d in (hub, col, mex):
        h.eq(value_of(d, "MEX", i), value, "%s: MEX's true-clock put is the "
             "current value" % d.name)
    rh.compare_exports([hub, col, mex])


def fast_clock(env, tag, offset, want_ms):
    hub, col, mex = start_hub_col(env, tag)
    wrote = offline_writes(hub, col, mex, offset)
    known_skew_refused(hub, col, mex, offset, want_ms)
    i = N_OFFLINE // 2
    true_clock_again(hub, col, mex, i, "7%s" % wrote[i])


def test_skew_plus_10m(env):
    fast_clock(env, "m", "+10m", 10 * 60 * 1000)


def test_skew_plus_1h(env):
    fast_clock(env, "h", "+1h", 3600 * 1000)


def test_skew_minus_1d(env):
    hub, col, mex = start_hub_col(env, "d")
    skewed(mex, "-1d")
    mex.start()
    known_skew_refused(hub, col, mex, "-1d", -86400 * 1000)
    true_clock_again(hub, col, mex, 2000, "4.125")


if __name__ == "__main__":
    h.faketime_lib()  # skipped under the sanitizers
    h.main([test_skew_plus_10m, test_skew_plus_1h, test_skew_minus_1d])
