#!/usr/bin/env python3
"""t_snapshot_join.py - a node written from the spec (obsnode.py) joins a hub
that already holds data, by snapshot, and then follows the log.

A C node COL imports the real sample rows of COL plus 3,000 generated rows,
deletes one observation (a tombstone) and merges into another; hub and COL
converge. The Python node (cursor 0) must get Welcome{snapshot}, SnapshotBegin,
chunks whose `sent` counts what came, SnapshotEnd{fence, total}, then stream
the log from the fence. Its store must equal, observation by observation
(value, attributes, hlc, origin, origin_seq, provider, action, tombstone,
batch_id), what `obsync export --format jsonl --include-deleted` prints at
the hub and at COL. COL then imports 500 more rows: they arrive as LogBatches
and the stores still agree. Every frame and every change received is checked
(canonical bytes, content hash recomputed; obsnode.py).

Structure (decision 9): the joining node sends an empty structure_hash and
gets a StructureUpdate whose hash is the SHA-256 of its text; a second node
that sends that hash gets no StructureUpdate.

Run by ctest as conformance.snapshot_join."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, rh  # noqa: E402


@cf.case
def test_join_by_snapshot(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    col = rh.node(env, "col", hub, no_sync=True)
    col.start()
    n = rh.import_ok(col, *rh.country_samples(env, "COL"))
    gen = env.path("col_gen.csv")
    keys = rh.write_rows(gen, "COL", 3000, env.rng)
    n += rh.import_ok(col, gen)
    key, period = keys[7]
    col.cli("delete", cf.DF, key, period)
    key2, period2 = keys[8]
    col.cli("put", cf.DF, key2, period2, "1.5", "OBS_STATUS=E")  # a merge
    rh.wait_converged(hub, [col], 60, what="hub and COL")
    log_last = rh.hub_log_last(rh.must_status(hub))
    h.log("  ..   hub holds %d changes (%d rows imported)" % (log_last, n))

    py = cf.node(env, hub, "PYMEX", provider="MEX")
    cf.wait(py, lambda: py.caught_up(log_last), 60,
            "the Python node to take the snapshot and reach the log end")
    with py.lock:
        h.check(py.welcomes and py.welcomes[0][1].snapshot,
                "the hub announced a snapshot to a node with cursor 0")
        h.eq(py.counts["snapshots"], 1, "snapshots completed")
        h.check(py.counts["snapshot_changes"] >= log_last - 2,
                "the snapshot carried the hub's state",
                "%d changes" % py.counts["snapshot_changes"])
        h.eq(py.cursor, log_last, "cursor after the snapshot = the fence")
        tomb = [o for o in py.store.values() if o.version.tombstone]
    h.eq(len(tomb), 1, "the snapshot carries the tombstone")

    mine = cf.store_view(py)
    cf.compare(mine, cf.export_view(hub), "Python node", "hub")
    cf.compare(mine, cf.export_view(col), "Python node", "COL")

    # then the log: COL imports more
    more = env.path("col_more.csv")
    rh.write_rows(more, "COL", 500, env.rng, offset=3000)
    rh.import_ok(col, more)
    rh.wait_converged(hub, [col], 60, what="hub and COL after 500 more")
    log_last2 = rh.hub_log_last(rh.must_status(hub))
    cf.wait(py, lambda: py.caught_up(log_last2), 30,
            "the Python node to stream the 500 new changes")
    with py.lock:
        h.check(py.counts["log_changes"] >= 500, "the new changes came as "
                "LogBatches", "%d" % py.counts["log_changes"])
    cf.compare(cf.store_view(py), cf.export_view(hub), "Python node", "hub")

    # a clean Goodbye ends the session at the hub
    sess = py.session
    py.close()
    h.check(not [g for g in py.goodbyes if g[0] == sess],
            "the hub did not end the session itself")

    def down():
        st = rh.status(hub)
        return st and not rh.peer_row(st, "PYMEX").get("up", True)
    # well within the hub's peer timeout: the Goodbye did it
    h.wait_until(down, rh.PEER_TIMEOUT_MS / 2000.0,
                 "the hub to mark PYMEX down after its Goodbye")
    h.log("  ok   the hub marks the node down at once after its Goodbye")


@cf.case
def test_structure_hash(env):
    hub = rh.start_hub(rh.hub(env, "hub2", no_sync=True))
    a = cf.node(env, hub, "PYA", provider="COL", structure_hash="")
    cf.wait(a, lambda: a.state == "streaming" and a.structure_updates, 20,
            "a StructureUpdate after the Welcome (empty structure_hash)")
    with a.lock:
        su = a.structure_updates[0][1]
    h.check(on_hex64(su.hash), "StructureUpdate.hash is 64 lowercase hex",
            repr(su.hash))
    h.eq(su.hash, cf.on.hashlib.sha256(su.text.encode()).hexdigest(),
         "StructureUpdate.hash = sha256(text)")
    b = cf.node(env, hub, "PYB", provider="COL", structure_hash=su.hash)
    cf.wait(b, lambda: b.state == "streaming", 20, "PYB streaming")
    # the hub sends a StructureUpdate right after its Welcome: by the time
    # a heartbeat round trip has come back, it would be there
    hb = b.heartbeats_in
    cf.wait(b, lambda: b.heartbeats_in >= hb + 2, 10, "two heartbeats")
    h.eq(len(b.structure_updates), 0, "no StructureUpdate for a node whose "
         "structure_hash equals the hub's")
    # and a node that adopted the update does not get it again
    s = a.session
    a.reconnect_now()
    cf.wait(a, lambda: a.session > s and a.state == "streaming" and
            a.welcomes[-1][0] == a.session, 20, "PYA's second session")
    hb = a.heartbeats_in
    cf.wait(a, lambda: a.heartbeats_in >= hb + 2, 10, "two heartbeats")
    h.eq([x for x in a.structure_updates if x[0] == a.session], [],
         "no StructureUpdate after reconnecting with the adopted hash")


def on_hex64(s):
    return bool(cf.on.HEX64.match(s))


if __name__ == "__main__":
    h.main([test_join_by_snapshot, test_structure_hash])
