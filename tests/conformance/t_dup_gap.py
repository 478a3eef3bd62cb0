#!/usr/bin/env python3
"""t_dup_gap.py - duplicates and gaps in a node's Publish stream, answered as
PROTOCOL.md 5.4 says ("At-least-once delivery, exactly-once effect").

The Python node PYCOL publishes changes 1..10 (acked_seq 10). Then:
* duplicates: it sends Publish{1..5} again: the next PublishAck keeps
  acked_seq 10, its running `duplicates` count grows by 5, `accepted` does
  not grow, no resend_from;
* a Publish{8..12} that is half duplicate, half new: duplicates + 3,
  accepted + 2, acked_seq 12;
* a gap: with changes 13..15 made, it sends only Publish{14..15}: the ack
  asks resend_from = 13 and keeps acked_seq 12; the node then resends from
  13 by itself (window logic) and gets acked_seq 15.
The hub logs exactly 15 entries (history 15), and the C node MEX holds the
15 changes' result exactly as the Python node.

And the other direction, a gap in the hub's LogBatch stream: the Python node
loses one LogBatch (as a frame dropped at a high-water mark would be); the
next batch does not start at its cursor, so it drops it and sends one
Credit{resync, cursor}; the hub must restart the stream right after the
cursor (batches starting there, never past it without credit), and the node
ends with exactly the hub's store. Run by ctest as conformance.dup_gap."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, rh  # noqa: E402


def next_ack(py, n_before, what):
    """The first PublishAck after the n_before-th."""
    cf.wait(py, lambda: len(py.acks) > n_before, 10, what)
    with py.lock:
        return py.acks[n_before][1]


@cf.case
def test_duplicates_and_gaps(env):
    hub, mex = cf.hub_with_mex(env)
    py = cf.streaming(env, hub, "PYCOL", provider="COL")
    rng = env.rng
    py.pause_publishing(True)
    for i in range(10):
        cf.put_new(py, "COL", i, rng)
    py.pause_publishing(False)
    cf.wait(py, py.all_acked, 20, "changes 1..10 acknowledged")
    base = py.last_ack()
    h.eq(base.acked_seq, 10, "acked_seq after 1..10")
    h.eq(base.accepted, 10, "accepted after 1..10")
    py.pause_publishing(True)  # from now on only what the test sends

    # duplicates
    n = len(py.acks)
    py.send_publish(1, [py.own[s] for s in range(1, 6)])
    a = next_ack(py, n, "the ack of the duplicate Publish{1..5}")
    h.eq(a.acked_seq, 10, "acked_seq unchanged by duplicates")
    h.eq(a.duplicates, base.duplicates + 5, "duplicates grew by 5")
    h.eq(a.accepted, base.accepted, "accepted unchanged")
    h.eq(a.resend_from, 0, "no resend_from")

    # half duplicate, half new
    for i in range(10, 12):
        cf.put_new(py, "COL", i, rng)
    n = len(py.acks)
    py.send_publish(8, [py.own[s] for s in range(8, 13)])
    a2 = next_ack(py, n, "the ack of Publish{8..12}")
    h.eq(a2.acked_seq, 12, "acked_seq after Publish{8..12}")
    h.eq(a2.duplicates, a.duplicates + 3, "duplicates grew by 3")
    h.eq(a2.accepted, a.accepted + 2, "accepted grew by 2")

    # a gap: 13 is skipped
    for i in range(12, 15):
        cf.put_new(py, "COL", i, rng)
    n = len(py.acks)
    py.send_publish(14, [py.own[14], py.own[15]])
    a3 = next_ack(py, n, "the ack of Publish{14..15} (13 missing)")
    h.eq(a3.resend_from, 13, "resend_from names the missing change")
    h.eq(a3.acked_seq, 12, "acked_seq stays before the gap")
    h.eq(a3.accepted, a2.accepted, "nothing after the gap accepted")
    py.pause_publishing(False)  # the node resends from 13 by itself
    cf.wait(py, py.all_acked, 10, "changes 13..15 after the resend")
    a4 = py.last_ack()
    h.eq((a4.acked_seq, a4.accepted), (15, 15),
         "after the resend (acked_seq, accepted)")
    h.eq(a4.rejected, 0, "nothing rejected")

    hs = rh.wait_converged(hub, [mex], 30, full=[hub, mex],
                           what="hub and MEX")[hub.name]
    h.eq(rh.hub_log_last(hs), 15, "hub log_last (duplicates not logged)")
    h.eq(hs["history_versions"], 15, "hub history versions")
    cf.compare(cf.store_view(py), cf.export_view(mex), "Python node", "MEX")
    h.eq(rh.must_status(mex)["history_versions"], 15,
         "MEX history versions")


@cf.case
def test_stream_gap_resync(env):
    hub = rh.start_hub(rh.hub(env, "hub2", no_sync=True))
    mex = rh.node(env, "mex2", hub, node_id="MEX", no_sync=True)
    mex.start()
    py = cf.node(env, hub, "PYCOL", provider="COL")
    cf.wait(py, lambda: py.state == "streaming", 20, "PYCOL streaming")
    py.call(lambda: setattr(py, "drop_batches", 1))
    gen = env.path("mex.csv")
    rh.write_rows(gen, "MEX", 3000, env.rng)
    rh.import_ok(mex, gen)
    rh.wait_converged(hub, [mex], 30, what="hub and MEX")
    log_last = rh.hub_log_last(rh.must_status(hub))
    cf.wait(py, lambda: py.caught_up(log_last), 30,
            "PYCOL to reach the log end after the lost batch")
    with py.lock:
        dropped = py.counts["dropped"]
        resyncs = [e for e in py.events if e[1] == "resync"]
        batches = py.counts["batches"]
    h.eq(dropped, 1, "one LogBatch lost")
    h.check(resyncs, "the next batch was a gap: Credit{resync} sent",
            "events %r" % py.events[-5:])
    h.log("  ..   %d batches; resync: %s" % (batches, resyncs[0][2]))
    cf.compare(cf.store_view(py), cf.export_view(hub), "Python node", "hub")


if __name__ == "__main__":
    h.main([test_duplicates_and_gaps, test_stream_gap_resync])
