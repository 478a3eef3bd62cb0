#!/usr/bin/env python3
"""t_repl_filter.py - filtered replication (DESIGN.md §3.6).

Hub; node OIDW (provider OID, unfiltered) imports the real sample data of
COL, MEX and JAM (both dataflows: violence and drug use); node COL
(provider COL) subscribes to subscribe_dataflows = OID:DF_VIOLENCE(1.0) and
subscribe_areas = COL, and writes 2,000 generated COL violence rows and one
COL drug-use row of its own. COL must then hold exactly the hub's
OID:DF_VIOLENCE(1.0) observations of REF_AREA COL (export byte-identical to
the hub's export filtered the same way) plus its own drug-use row, nothing
of MEX or JAM; its cursor still reaches the hub's log end (filtered entries
are skipped, not waited for). Its own changes come back from the hub but are
not duplicated: each key it wrote has exactly one version in its history.
A third node MEX (subscribe_areas = MEX, all dataflows) holds exactly the
hub's MEX observations. Then the hub trims its log (log_keep) and a new
node JAM subscribed to JAM violence only bootstraps through a filtered
snapshot, and MEX, its subscription widened to MEX,JAM, takes a fresh
snapshot by itself. Durability is not under test (no_sync). Run by ctest as
integration.repl_filter."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N_OWN = 2000
CONVERGE_S = 120
LOG_KEEP = 100
VIOLENCE_KEY_COL = ".COL....."  # 7 violence dimensions, REF_AREA second


def areas_of(d):
    """{(dataflow, REF_AREA)} of everything the daemon holds."""
    out = set()
    for o in d.query():
        out.add((o["dataflow"], o["dims"].get("REF_AREA")))
    return out


def test_filtered_node(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    oidw = rh.node(env, "oidw", hub, "OIDW", provider="OID", no_sync=True)
    col = rh.node(env, "col", hub, "COL", no_sync=True,
                  subscribe_dataflows=h.DF_VIOLENCE, subscribe_areas="COL")
    mex = rh.node(env, "mex", hub, "MEX", no_sync=True,
                  subscribe_areas="MEX")
    for n in (oidw, col, mex):
        n.start()
    files = []
    for a in ("COL", "MEX", "JAM"):
        files += rh.country_samples(env, a)
    total = rh.import_ok(oidw, *files)
    p = env.path("own.csv")
    own = rh.write_rows(p, "COL", N_OWN, env.rng)
    h.eq(rh.import_ok(col, p), N_OWN, "COL imports its own rows")
    dkey = "A.COL.GENPOP.PREV_PY.CANNABIS._T.Y12T65"
    col.cli("put", "OID:DF_DRUG_USE(1.0)", dkey, "2024", "1.25",
            "UNIT_MEASURE=PT")
    own_drug = 1
    sts = rh.wait_converged(hub, [oidw, col, mex], CONVERGE_S,
                            full=[hub, oidw])
    h.eq(sts[hub.name]["observations"], total + N_OWN + own_drug,
         "the hub holds everything")

    # COL: violence of COL only (plus its own drug-use row)
    got = areas_of(col)
    h.eq(got, {(h.DF_VIOLENCE, "COL"), ("OID:DF_DRUG_USE(1.0)", "COL")},
         "COL holds only COL data (its drug-use row is its own write)")
    want = rh.export(hub, "csv", h.DF_VIOLENCE, "--key", VIOLENCE_KEY_COL)
    have = rh.export(col, "csv", h.DF_VIOLENCE)
    if want != have:
        h.fail("COL's violence export differs from the hub's COL violence "
               "export: %d vs %d lines" % (len(have.splitlines()),
                                           len(want.splitlines())))
    h.log("  ok   COL's violence export == the hub's, filtered to COL "
          "(%d rows)" % (len(want.splitlines()) - 1))
    hub_col_drug = len(hub.query("OID:DF_DRUG_USE(1.0)", "--key",
                                 ".COL....."))
    h.check(hub_col_drug > own_drug, "the hub holds COL drug-use rows COL "
            "did not subscribe to (%d)" % hub_col_drug)
    h.eq(len(col.query("OID:DF_DRUG_USE(1.0)")), own_drug,
         "COL holds no drug-use row but its own")

    # its own changes are not duplicated back
    h.eq(rh.must_status(col)["history_versions"],
         rh.must_status(col)["observations"],
         "COL's history has one version per observation")
    for key, period in env.rng.sample(own, 10):
        hist = col.history(h.DF_VIOLENCE, key, period)
        h.check(len(hist) == 1, "COL's history of its own %s %s has one "
                "version" % (key, period), repr(len(hist)))

    # MEX: every dataflow, area MEX only
    got = areas_of(mex)
    h.check(got and all(a == "MEX" for _, a in got), "MEX holds only MEX "
            "data", repr(sorted(got)))
    for df in (h.DF_VIOLENCE, "OID:DF_DRUG_USE(1.0)"):
        want = rh.export(hub, "csv", df, "--key", ".MEX.....")
        have = rh.export(mex, "csv", df)
        h.check(want == have, "MEX's %s export == the hub's filtered to MEX"
                % df, "%d vs %d lines" % (len(have.splitlines()),
                                          len(want.splitlines())))

    # a filtered snapshot for a new node
    since = hub.log_size()
    hub.restart(log_keep=LOG_KEEP)
    hub.wait_log(r"log trimmed", 30, since=since)
    jam = rh.node(env, "jam", hub, "JAM", no_sync=True,
                  subscribe_dataflows=h.DF_VIOLENCE, subscribe_areas="JAM")
    jam.start()
    jam.wait_log(r"snapshot complete", 60)
    rh.wait_converged(hub, [oidw, col, mex, jam], CONVERGE_S,
                      full=[hub, oidw])
    want = rh.export(hub, "csv", h.DF_VIOLENCE, "--key", ".JAM.....")
    have = rh.export(jam, "csv", h.DF_VIOLENCE)
    h.eq(areas_of(jam), {(h.DF_VIOLENCE, "JAM")}, "JAM holds only JAM "
         "violence data")
    h.check(want == have and len(want.splitlines()) > 1,
            "JAM's snapshot holds exactly the hub's JAM violence rows",
            "%d vs %d lines" % (len(have.splitlines()),
                                len(want.splitlines())))

    # Widening a subscription: the history the old filter skipped is behind
    # the node's cursor, so the node must take a fresh snapshot by itself.
    mex.stop()
    since = mex.log_size()
    mex.write_config(subscribe_areas="MEX,JAM")
    mex.start()
    mex.wait_log(r"subscription changed", 30, since=since)
    mex.wait_log(r"snapshot complete", 60, since=since)
    rh.wait_converged(hub, [oidw, col, mex, jam], CONVERGE_S,
                      full=[hub, oidw])
    for df in (h.DF_VIOLENCE, "OID:DF_DRUG_USE(1.0)"):
        want = rh.export(hub, "csv", df, "--key", ".JAM.....")
        have = rh.export(mex, "csv", df, "--key", ".JAM.....")
        h.check(want == have and len(want.splitlines()) > 1,
                "after widening, MEX holds the hub's JAM %s rows" % df,
                "%d vs %d lines" % (len(have.splitlines()),
                                    len(want.splitlines())))


if __name__ == "__main__":
    h.main([test_filtered_node])
