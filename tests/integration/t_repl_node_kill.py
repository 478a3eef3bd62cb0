#!/usr/bin/env python3
"""t_repl_node_kill.py - a node killed with SIGKILL in the middle of an
import, and another in the middle of a catch-up, restart and converge with
identical exports (DESIGN.md §3.1-3.4).

Hub, node COL (provider COL, the writer) and node MEX (provider MEX, the
receiver); durability is under test, so no no_sync.
1. COL imports ~50,000 generated rows and is killed -9 at a random moment
   of the import (after the daemon logged the import's start). After the
   restart the import is all or nothing at COL; if nothing, it is imported
   again. Everything converges.
2. MEX is stopped (SIGTERM), COL writes ~50,000 new values, MEX is started
   and killed -9 while its cursor is strictly between where it was and the
   hub's log end (mid catch-up); restarted, it resumes from its durable
   cursor and everything converges, exports byte-identical.
Run by ctest as integration.repl_node_kill."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = int(os.environ.get("OBSYNC_REPL_ROWS", "50000"))
CONVERGE_S = 240
REPLY_S = 300
STARTED_RE = r"import \d+ of '[^']*' started"


def test_node_killed_mid_import(env):
    hub = rh.start_hub(rh.hub(env, map_size="256M"))
    col = rh.node(env, "col", hub, map_size="256M")
    mex = rh.node(env, "mex", hub, map_size="256M")
    col.start()
    mex.start()
    p = env.path("col1.csv")
    keys = rh.write_rows(p, "COL", N, env.rng)
    since = col.log_size()
    cli = col.cli_bg("import", p, reply_timeout=REPLY_S)
    col.wait_log(STARTED_RE, 60, since=since)
    t0 = time.monotonic()
    # the rows stream in for a fraction of a second after the start (~0.1 s
    # for 50,000 rows in a release build, longer under the sanitizers):
    # kill somewhere in it, in its commit, or right after
    delay = env.rng.uniform(0.0, 0.2)
    h.wait_until(lambda: time.monotonic() - t0 >= delay or cli.poll()
                 is not None, 30, "the kill moment")
    finished = cli.poll()
    col.kill9()
    h.log("  ..   COL killed -9 %.2f s into its import (CLI %s)" %
          (time.monotonic() - t0, "done: exit %s" % finished
           if finished is not None else "still running"))
    if cli.poll() is None:
        # the CLI waits for a reply up to --timeout: a dead daemon does not
        # close the ipc connection it is waiting on
        cli.kill()
    cli.wait(timeout=30)
    col.start()
    n = rh.must_status(col)["observations"]
    h.check(n in (0, N), "after kill -9 the import is all or nothing at COL",
            "%d of %d" % (n, N))
    if finished == 0:
        h.eq(n, N, "an import acknowledged before the kill survived it")
    if n == 0:
        h.eq(rh.import_ok(col, p, reply_timeout=REPLY_S), N,
             "the import again after the restart")
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    rh.compare_exports([hub, col, mex])
    got = mex.get(h.DF_VIOLENCE, *keys[-1])
    h.check(got is not None, "MEX holds COL's last row")


def test_node_killed_mid_catchup(env):
    hub = rh.start_hub(rh.hub(env, "hub2", map_size="256M"))
    col = rh.node(env, "col2", hub, "COL", map_size="256M")
    mex = rh.node(env, "mex2", hub, "MEX", map_size="256M")
    col.start()
    mex.start()
    p = env.path("col2.csv")
    rh.write_rows(p, "COL", N // 5, env.rng)
    rh.import_ok(col, p)
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    mex.stop()
    before = rh.hub_log_last(rh.must_status(hub))
    p = env.path("col3.csv")
    rh.write_rows(p, "COL", N, env.rng)
    rh.import_ok(col, p, reply_timeout=REPLY_S)
    rh.wait_converged(hub, [col], CONVERGE_S, full=[hub, col],
                      what="the hub has COL's changes")
    last = rh.hub_log_last(rh.must_status(hub))
    h.check(last >= before + N, "the hub log grew by the import",
            "%d -> %d" % (before, last))
    # Kill MEX in the middle of its catch-up. The catch-up of N changes
    # takes well under a second, faster than status polling, so the hub is
    # frozen (SIGSTOP) a random moment after MEX's link comes up: MEX then
    # applies what is in flight (a window of batches) and is killed -9 while
    # doing so or right after, its cursor strictly inside (before, last).
    # The hub stays frozen until MEX has restarted and shown its cursor.
    since = mex.log_size()
    mex.spawn()
    mex.wait_log(r"state hello -> streaming", 60, since=since)
    t0 = time.monotonic()
    delay = env.rng.uniform(0.0, 0.02)  # wait_log is up to 20 ms late
    while time.monotonic() - t0 < delay:
        time.sleep(0.002)
    rh.sigstop(hub)
    try:
        kill_delay = env.rng.uniform(0.0, 0.2)
        t1 = time.monotonic()
        while time.monotonic() - t1 < kill_delay:
            time.sleep(0.002)
        mex.kill9()
        # restart with the hub still frozen: the cursor read is the one
        # that survived the kill
        mex.start()
        mid = rh.must_status(mex)["hub_cursor"]
    finally:
        rh.sigcont(hub)
    h.log("  ..   MEX killed -9 %.3f s after its link came up (hub frozen "
          "after %.3f s); durable cursor %d in %d..%d" %
          (time.monotonic() - t0, delay, mid, before, last))
    h.check(before <= mid <= last, "MEX's durable cursor is a hub_seq it "
            "reached (%d <= %d <= %d)" % (before, mid, last))
    h.check(mid < last, "the kill landed in the middle of the catch-up")
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    rh.compare_exports([hub, col, mex])
    rh.compare_versions([hub, col, mex])


if __name__ == "__main__":
    h.main([test_node_killed_mid_import, test_node_killed_mid_catchup])
