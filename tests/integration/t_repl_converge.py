#!/usr/bin/env python3
"""t_repl_converge.py - a hub and three nodes converge on the union of what
each wrote (DESIGN.md §3).

Nodes COL, MEX and JAM (provider = their own code) each import their own
country's real sample data (deploy/sample-data/*.csv, its rows) at the
same time; then COL revises one of its observations with `put` and MEX
deletes one of its own (a tombstone replicates like any change). Every
daemon must end with the union: same observation and tombstone counts, each
node's outbox drained to 0, each node's hub_cursor equal to the hub's newest
hub_seq, `export --format csv` byte-identical on all four, and every
observation's replicated version (hlc, origin, origin_seq, ...) identical.
The hub's bytes out to each node stay within a tenth of that node's own
published bytes of what the other two published: nothing is echoed.
Durability is not under test here, so the daemons run with no_sync. Run by
ctest as integration.repl_converge."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

AREAS = ("COL", "MEX", "JAM")
CONVERGE_S = 120


def import_all(nodes, files):
    """Imports each node's files at the same time; returns {name: accepted}."""
    res, errs = {}, []

    def one(n):
        try:
            res[n.name] = rh.import_ok(n, *files[n.name])
        except Exception as e:  # noqa: reported below
            errs.append("%s: %s" % (n.name, e))

    ts = [threading.Thread(target=one, args=(n,)) for n in nodes]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=h.CLI_TIMEOUT_S * 3)
    if errs:
        h.fail("imports failed: " + "; ".join(errs))
    return res


def first_row(path):
    _, rows = h.read_sdmx_csv(path)
    return h.row_ident(rows[0])


def test_three_nodes_converge(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    nodes = [rh.node(env, a.lower(), hub, no_sync=True) for a in AREAS]
    for n in nodes:
        n.start()
    files = {n.name: rh.country_samples(env, a) for n, a in zip(nodes, AREAS)}
    accepted = import_all(nodes, files)
    h.log("  ..   accepted per node: %r" % accepted)
    for n in nodes:
        h.check(accepted[n.name] > 0, "%s imported its own rows" % n.name)
    total = sum(accepted.values())

    # a revision at COL and a deletion at MEX
    df, key, period = first_row(files["col"][-1])
    nodes[0].cli("put", df, key, period, "12.345",
                 "UNIT_MEASURE=PER_100000_POP", "OBS_STATUS=E")
    ddf, dkey, dperiod = first_row(files["mex"][-1])
    nodes[1].cli("delete", ddf, dkey, dperiod)

    sts = rh.wait_converged(hub, nodes, CONVERGE_S)
    hs = sts[hub.name]
    h.eq(hs["observations"], total - 1, "the hub holds the union of the "
         "three imports less the deleted observation")
    h.eq(hs["tombstones"], 1, "the hub holds the tombstone")
    last = rh.hub_log_last(hs)
    h.eq(last, total + 2, "hub log: one entry per accepted change (imports, "
         "the put and the delete)")
    for n in nodes:
        st = sts[n.name]
        h.eq(st["outbox_depth"], 0, "%s: outbox drained" % n.name)
        h.eq(st["hub_cursor"], last, "%s: hub_cursor == hub log_last" %
             n.name)
        h.eq(st["observations"], total - 1, "%s: holds the union" % n.name)
        rh.need(st, "repl_state", "lag_changes", who="%s's status" % n.name)
        h.eq(st["repl_state"], "streaming", "%s: repl_state" % n.name)
        h.eq(st["lag_changes"], 0, "%s: lag 0" % n.name)
    peers = {a: rh.need(rh.peer_row(hs, a), "up", "bytes_in", "bytes_out",
                        who="the hub's row for %s" % a) for a in AREAS}
    for a in AREAS:
        h.check(peers[a]["up"], "hub sees node %s up" % a)
    # no echo with three writers at once: what the hub sent a node is
    # what the other two published (plus framing), not its own too
    for a in AREAS:
        own = peers[a]["bytes_in"]
        others = sum(peers[b]["bytes_in"] for b in AREAS if b != a)
        out = peers[a]["bytes_out"]
        h.check(own > 0 and out > 0, "the hub counted bytes from and to %s"
                % a, "in %d, out %d" % (own, out))
        h.check(out <= others + own // 10, "hub sent %s what the others "
                "published, not %s's own changes" % (a, a),
                "out %d, others' in %d, own in %d" % (out, others, own))

    everyone = [hub] + nodes
    rh.compare_exports(everyone)
    rh.compare_versions(everyone)
    for d in everyone:
        got = d.get(df, key, period)
        h.eq(got.get("value") if got else None, "12.345",
             "%s: COL's revision arrived" % d.name)
        gone = d.get(ddf, dkey, dperiod, check=(0, h.EXIT_NOT_FOUND))
        h.check(gone is None or (gone.get("version") or {}).get("tombstone"),
                "%s: MEX's deletion arrived" % d.name, repr(gone))


if __name__ == "__main__":
    h.main([test_three_nodes_converge])
