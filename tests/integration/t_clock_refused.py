#!/usr/bin/env python3
"""t_clock_refused.py - a change the hub refuses for its clock is kept by the
node until it can be accepted: nothing acknowledged is lost (PROTOCOL.md
§5.4 "Clocks").

The hub runs under libfaketime with its offset read from a file
(FAKETIME_TIMESTAMP_FILE, no cache), so the test can step the hub's clock
back by an hour while node COL, which sampled the hub's clock a moment
before, still believes the clocks agree. COL's next put is accepted
locally (exit 0) and published stamped an hour ahead of the hub's clock:
the hub refuses it (R-clock), does not consume its number, acknowledges
what came before and ends the session. COL keeps the change, reconnects,
learns the hub's clock from the Welcome, re-stamps the change and sends it
again. Here it cannot: a new stamp must stay above COL's change the hub
already holds, which is itself an hour ahead of the hub's clock now; so the
change waits in COL's outbox (pending_rejects), unpublished, while COL
refuses new local writes (exit 6, "clock"). Checked: the hub's row for COL
counts clock_refused >= 1 and its last origin_seq did not move; COL shows
the skew (about +1 h), pending_rejects >= 1 and the change in its outbox.
Then the hub's clock is put right, and the held change goes through: its
value reaches the hub and MEX, exports agree, COL's outbox ends empty and
COL accepts writes again.
Heartbeats are slowed (5 s) so that no hub heartbeat corrects COL's
estimate between the step and the put; if one does anyway, the put is
refused at once and the case is retried, up to 3 times. Durability is not
under test (no_sync). Run by ctest as integration.clock_refused."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

CONVERGE_S = 60
HOUR_MS = 3600 * 1000


def set_offset(path, spec):
    with open(path + ".tmp", "w") as f:
        f.write(spec + "\n")
    os.replace(path + ".tmp", path)


def peer(st, node_id):
    rows = rh.peer_rows(st)
    h.check(node_id in rows, "the hub has a row for %s" % node_id, repr(rows))
    return rows[node_id]


def test_refused_change_is_restamped_and_accepted(env):
    offset = env.path("hub.faketime")
    set_offset(offset, "+0")
    hub = rh.hub(env, "hub", no_sync=True, heartbeat_ms=5000,
                 peer_timeout_ms=20000)
    hub.extra_env = {"LD_PRELOAD": h.faketime_lib(),
                     "FAKETIME_TIMESTAMP_FILE": offset,
                     "FAKETIME_NO_CACHE": "1",
                     "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    rh.start_hub(hub)
    col = rh.node(env, "col", hub, "COL", no_sync=True, heartbeat_ms=5000,
                  peer_timeout_ms=20000)
    mex = rh.node(env, "mex", hub, "MEX", no_sync=True, heartbeat_ms=5000,
                  peer_timeout_ms=20000)
    col.start()
    mex.start()
    key, period = rh.ident("COL", 0)
    col.cli("put", h.DF_VIOLENCE, key, period, "1.5",
            "UNIT_MEASURE=PER_100000_POP")
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    st = rh.must_status(col)
    h.check("clock_known" in st and "clock_skew_ms" in st and
            "restamped" in st, "COL's status has the clock fields", repr(st))
    h.check(st["clock_known"], "COL has sampled the hub's clock")
    h.check(abs(st["clock_skew_ms"]) < 60000, "COL's clock agrees with "
            "the hub's", repr(st["clock_skew_ms"]))

    for attempt in range(3):
        value = "%d.25" % (attempt + 2)
        set_offset(offset, "-1h")
        r = col.cli("put", h.DF_VIOLENCE, key, period, value,
                    "UNIT_MEASURE=PER_100000_POP", check=None)
        if r.rc == 0:
            break
        # A hub heartbeat corrected COL's estimate first: refused at once.
        h.eq(r.rc, h.EXIT_REFUSED, "a put refused for the clock exits 6")
        h.check("clock" in r.err, "the refusal names the clock", r.err)
        h.log("  ..   attempt %d: COL learned the hub's clock before the "
              "put; again" % (attempt + 1))
        set_offset(offset, "+0")
        h.wait_until(lambda: abs(rh.must_status(col)["clock_skew_ms"]) <
                     60000, 30, "COL to see the clocks agree again")
    else:
        h.fail("COL learned the hub's clock before every put: the refusal "
               "at the hub was not exercised")

    def refused_and_held():
        hs = rh.status(hub)
        cs = rh.status(col)
        if hs is None or cs is None:
            return None
        row = peer(hs, "COL")
        h.check("clock_refused" in row and "pending_rejects" in cs,
                "the hub's row has clock_refused, COL's status "
                "pending_rejects", repr((row, cs)))
        return (row["clock_refused"] >= 1 and cs["pending_rejects"] >= 1 and
                cs["repl_state"] == "streaming")
    h.wait_until(refused_and_held, CONVERGE_S,
                 "the hub to refuse COL's change and COL to hold it")
    h.check(col.wait_log(r"wait for the hub's clock|R-clock", 5,
                         "COL's log of the refusal"), "")
    cs = rh.must_status(col)
    h.check(abs(cs["clock_skew_ms"] - HOUR_MS) < 60000,
            "COL now sees its clock an hour ahead of the hub's",
            repr(cs["clock_skew_ms"]))
    h.eq(cs["outbox_depth"], 1, "the refused change waits in COL's outbox")
    hs = rh.must_status(hub)
    h.eq(peer(hs, "COL")["last_origin_seq"], 1,
         "the refused change's number is not consumed at the hub")
    o = hub.get(h.DF_VIOLENCE, key, period)
    h.eq(o["value"], "1.5", "the hub still holds the first value")
    r = col.cli("put", h.DF_VIOLENCE, key, period, "9.5",
                "UNIT_MEASURE=PER_100000_POP", check=None)
    h.eq(r.rc, h.EXIT_REFUSED, "COL refuses local writes meanwhile")
    h.check("clock" in r.err and "ahead" in r.err,
            "the refusal says the clock is ahead", r.err)

    # The hub's clock is put right: the held change goes through.
    set_offset(offset, "+0")

    def value_everywhere():
        for d in (hub, col, mex):
            o = d.get(h.DF_VIOLENCE, key, period, check=None)
            if o is None or o.get("value") != value:
                return None
        return True
    h.wait_until(value_everywhere, CONVERGE_S,
                 "the held put's value %s at hub, COL and MEX" % value)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    rh.compare_exports([hub, col, mex])
    cs = rh.must_status(col)
    h.eq(cs["outbox_depth"], 0, "COL's outbox ends empty")
    h.eq(cs["pending_rejects"], 0, "nothing waits any more")
    col.cli("put", h.DF_VIOLENCE, key, period, "10.5",
            "UNIT_MEASURE=PER_100000_POP")


if __name__ == "__main__":
    h.faketime_lib()  # skipped under the sanitizers
    h.main([test_refused_change_is_restamped_and_accepted])
