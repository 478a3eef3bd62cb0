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
    t0 = time.monotonic()
    cli = col.cli_bg("import", p, reply_timeout=REPLY_S)
    col.wait_log(STARTED_RE, 60, since=since)
    # the import streams for a few seconds: kill somewhere in it
    delay = env.rng.uniform(0.0, 2.0)
    h.wait_until(lambda: time.monotonic() - t0 >= delay or cli.poll()
                 is not None, 30, "the kill moment")
    finished = cli.poll()
    col.kill9()
    h.log("  ..   COL killed -9 %.2f s into its import (CLI %s)" %
          (time.monotonic() - t0, "done: exit %s" % finished
           if finished is not None else "still running"))
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
    hub = rh.start_hub(rh.hub(env, map_size="256M"))
    col = rh.node(env, "col", hub, map_size="256M")
    mex = rh.node(env, "mex", hub, map_size="256M")
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
    # kill MEX once its cursor is somewhere in (before, last)
    target = before + int((last - before) * env.rng.uniform(0.1, 0.8))
    mex.start()
    seen = {}

    def mid():
        st = rh.status(mex, timeout=10)
        if st is not None:
            seen["cur"] = st["hub_cursor"]
        return seen.get("cur", 0) >= target

    h.wait_until(mid, CONVERGE_S, "MEX's cursor to pass %d" % target,
                 interval=0.02)
    mex.kill9()
    h.log("  ..   MEX killed -9 at cursor %d during its catch-up (%d..%d)" %
          (seen["cur"], before, last))
    if seen["cur"] >= last:
        h.log("  --   (the catch-up had already finished: it was faster "
              "than the polling)")
    mex.start()
    cur = rh.must_status(mex)["hub_cursor"]
    h.check(cur >= seen["cur"], "MEX's durable cursor did not go back "
            "(%d >= %d)" % (cur, seen["cur"]))
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    rh.compare_exports([hub, col, mex])
    rh.compare_versions([hub, col, mex])


if __name__ == "__main__":
    h.main([test_node_killed_mid_import, test_node_killed_mid_catchup])
