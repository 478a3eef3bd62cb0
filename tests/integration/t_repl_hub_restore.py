#!/usr/bin/env python3
"""t_repl_hub_restore.py - a hub restored from an old backup, or wiped, is
re-baselined, never silently divergent (DESIGN.md §3.4: "a node or hub
restored from an old backup, or wiped, is recognised by its epoch and
re-baselined, never silently merged on stale cursors"; §3.8: silent
divergence is the failure users fear most).

1. Backup: the hub is stopped and its data dir copied after node COL's
   first 1,000 changes; COL then makes 1,000 more, which the hub
   acknowledges (COL trims its outbox) and sends to node MEX. The hub is
   stopped, its data dir replaced by the backup, and started. The backup
   has the same epoch, a log ending at 1,000 and COL's last origin_seq
   1,000. Whatever the hub does, the system must end converged on the
   union (2,000 observations everywhere, byte-identical exports): the
   changes 1,001..2,000 are still held by COL (their origin) and MEX.
2. Wipe: the same with the hub's data dir deleted (a new, empty store with
   a new epoch).
3. A node restored from a backup: COL's data dir is copied after its first
   1,000 changes; COL makes 1,000 more (acknowledged, sent to MEX), then is
   stopped and its data dir replaced by the backup. Restarted, COL must
   get its own lost changes back from the hub's log (the hub does not echo
   a node's changes made in the current session, but these were made in
   an earlier one), and its next 1,000 changes must be numbered after
   them: 3,000 observations everywhere, byte-identical exports.
Durability is not under test (no_sync). Run by ctest as
integration.repl_hub_restore."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = 1000
CONVERGE_S = 60
UNION_S = 20  # convergence takes ~1 s; waiting longer only slows a failure


def two_writes(env, hub, col, mex, tag, between):
    """COL writes N, converge, between() with the hub stopped, COL writes N
    more, converge."""
    p = env.path("%s1.csv" % tag)
    rh.write_rows(p, "COL", N, env.rng)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    hub.stop()
    between()
    rh.start_hub(hub)
    p = env.path("%s2.csv" % tag)
    rh.write_rows(p, "COL", N, env.rng, offset=N)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    h.eq(rh.must_status(col)["outbox_depth"], 0, "the hub acknowledged "
         "all of COL's changes (COL's outbox is empty)")


def check_union(hub, col, mex):
    h.log("  ..   after the restart:\n" + rh.describe([hub, col, mex]))
    try:
        rh.wait_until_union(hub, [col, mex], 2 * N, UNION_S)
    finally:
        h.log("  ..   at the end:\n" + rh.describe([hub, col, mex]))
    rh.compare_exports([hub, col, mex])


def test_hub_restored_from_backup(env):
    hub = rh.start_hub(rh.hub(env, "hub1", no_sync=True))
    col = rh.node(env, "col1", hub, "COL", no_sync=True)
    mex = rh.node(env, "mex1", hub, "MEX", no_sync=True)
    col.start()
    mex.start()
    backup = env.path("backup1")
    two_writes(env, hub, col, mex, "b",
               lambda: shutil.copytree(hub.data_dir, backup))
    hub.stop()
    shutil.rmtree(hub.data_dir)
    shutil.copytree(backup, hub.data_dir)
    rh.start_hub(hub)
    check_union(hub, col, mex)


def test_hub_wiped(env):
    hub = rh.start_hub(rh.hub(env, "hub2", no_sync=True))
    col = rh.node(env, "col2", hub, "COL", no_sync=True)
    mex = rh.node(env, "mex2", hub, "MEX", no_sync=True)
    col.start()
    mex.start()
    two_writes(env, hub, col, mex, "w", lambda: None)
    hub.stop()
    shutil.rmtree(hub.data_dir)
    rh.start_hub(hub)
    check_union(hub, col, mex)


def test_node_restored_from_backup(env):
    hub = rh.start_hub(rh.hub(env, "hub3", no_sync=True))
    col = rh.node(env, "col3", hub, "COL", no_sync=True)
    mex = rh.node(env, "mex3", hub, "MEX", no_sync=True)
    col.start()
    mex.start()
    p = env.path("n1.csv")
    rh.write_rows(p, "COL", N, env.rng)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    col.stop()
    backup = env.path("backup3")
    shutil.copytree(col.data_dir, backup)
    col.start()
    p = env.path("n2.csv")
    rh.write_rows(p, "COL", N, env.rng, offset=N)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    col.stop()
    shutil.rmtree(col.data_dir)
    shutil.copytree(backup, col.data_dir)
    col.start()
    h.log("  ..   COL restored:\n" + rh.describe([hub, col, mex]))
    rh.wait_until_union(hub, [col, mex], 2 * N, UNION_S)
    h.eq(rh.must_status(col)["observations"], 2 * N, "COL got its own lost "
         "changes back from the hub's log")
    p = env.path("n3.csv")
    rh.write_rows(p, "COL", N, env.rng, offset=2 * N)
    rh.import_ok(col, p)
    rh.wait_until_union(hub, [col, mex], 3 * N, UNION_S)
    rh.compare_exports([hub, col, mex])


if __name__ == "__main__":
    h.main([test_hub_restored_from_backup, test_hub_wiped,
            test_node_restored_from_backup])
