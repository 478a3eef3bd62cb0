#!/usr/bin/env python3
"""t_repl_deferred.py - what a node stores lazily is stored within a second
(PROTOCOL.md §5.2, the durability table).

A node does not commit a cursor that only LogBatches with nothing for it
moved (entries its subscription filters out, its own changes): it stores it
within a second. It does not trim its outbox at every ack either: acked
entries go within a second. A crash before that only costs entries sent
again, both ways, and the other tests kill nodes at random moments for that.
This test checks the second itself: once that much has passed after the
last ack and the last batch, a node killed -9 restarts from the cursor and
the outbox it had in memory.

Hub; node COL (the writer) imports 2,000 COL rows and puts one more right
after (its ack comes within a second of the import's, so it is trimmed
later, by the node's cron); node MEX subscribes to REF_AREA MEX only, so
every LogBatch it gets is empty. Once the hub holds
the rows, MEX's cursor is at the hub's log end and COL's outbox is acked,
3 s later (the promise is 1 s; the daemons' cron runs at 10 Hz) the hub
is stopped and both nodes are killed -9. Restarted without a hub to talk
to, MEX reports the hub's log end as its cursor and COL an empty outbox,
acked up to its last change. With the hub back, everything converges.
Durability (fsync) is not under test (no_sync): kill -9 leaves the page
cache. Run by ctest as integration.repl_deferred."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = 2000
CONVERGE_S = 120
STORED_WITHIN_S = 3.0


def test_lazy_cursor_and_trim_stored_within_a_second(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    col = rh.node(env, "col", hub, "COL", no_sync=True)
    mex = rh.node(env, "mex", hub, "MEX", no_sync=True,
                  subscribe_areas="MEX")
    col.start()
    mex.start()
    p = env.path("col.csv")
    rh.write_rows(p, "COL", N, env.rng)
    h.eq(rh.import_ok(col, p), N, "COL imports %d rows" % N)
    # acked right after the import's ack: its trim waits for the next second
    key, period = rh.ident("COL", N)
    col.cli("put", h.DF_VIOLENCE, key, period, "3.25",
            "UNIT_MEASURE=PER_100000_POP")

    def settled():
        hs, cs, ms = rh.status(hub), rh.status(col), rh.status(mex)
        if None in (hs, cs, ms) or hs["observations"] != N + 1:
            return None
        last = rh.hub_log_last(hs)
        if ms["hub_cursor"] != last or cs["outbox_depth"] != 0:
            return None
        return last, cs
    got = h.wait_until(settled, CONVERGE_S,
                       "the hub to hold COL's rows, MEX's cursor at its log "
                       "end and COL's outbox acked")
    last, col_st = got
    h.eq(rh.status(mex)["observations"], 0, "MEX holds none of COL's rows")
    rh.need(col_st, "outbox_acked", "last_origin_seq", who="COL's status")
    acked = col_st["outbox_acked"]
    h.log("  ..   hub log end %d; COL acked up to %d" % (last, acked))
    h.eq(acked, col_st["last_origin_seq"], "COL's outbox is acked up to its "
         "last change")
    time.sleep(STORED_WITHIN_S)  # the property under test is a delay

    hub.stop()
    mex.kill9()
    col.kill9()
    mex.start()
    col.start()
    ms, cs = rh.must_status(mex), rh.must_status(col)
    h.eq(ms["hub_cursor"], last,
         "MEX restarted from the cursor that empty LogBatches moved "
         "(stored within %g s)" % STORED_WITHIN_S)
    h.eq(cs["outbox_depth"], 0,
         "COL restarted with nothing left to publish (trimmed within "
         "%g s of the ack)" % STORED_WITHIN_S)
    h.eq(rh.need(cs, "outbox_acked", who="COL's status")["outbox_acked"],
         acked, "COL remembers its last ack")

    hub.start()
    rh.wait_converged(hub, [col, mex], CONVERGE_S, full=[hub, col])
    h.eq(rh.must_status(mex)["observations"], 0, "MEX still holds no COL row")
    rh.compare_exports([hub, col])


if __name__ == "__main__":
    h.main([test_lazy_cursor_and_trim_stored_within_a_second])
