#!/usr/bin/env python3
"""t_repl_hub_state.py - the hub acks a change once it is in its log and
applies its keyed state behind the log (PROTOCOL.md §5.2, §5.4); this test
proves the three things that must then hold.

Hub, node COL (the writer) and node MEX (a receiver). COL imports N
generated rows in random key order, so the hub's state (random B-tree
writes) falls behind its log (sequential appends) and `status` shows
`state_applied < log_last`:

1. A local write at the hub while its state lags reads the current state:
   the hub first applies its whole log. A `put` at the hub of a key COL
   just wrote gets COL's version as its base, so the hub's history of that
   key has both versions (had the put been based on the stale state, COL's
   older version would later lose to it and never enter the history).
2. The state is rebuilt from the durable log after a crash: the hub is
   killed -9 while the state lags (as `status` last reported it), restarted
   with both nodes frozen, and on its own applies the log up to its end
   (`state_applied == log_last`, the observation count of everything).
3. Everything converges: exports and versions byte-identical on all three.

Run by ctest as integration.repl_hub_state."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = int(os.environ.get("OBSYNC_REPL_ROWS", "50000"))
CONVERGE_S = 240
REPLY_S = 300


def shuffled_rows(env, name, area, n, offset=0):
    """write_rows, then the data lines in random order: random keys are
    what makes the state slower than the log. Returns the (series key,
    period) of the last line, the change the hub logs last."""
    p = env.path(name)
    rh.write_rows(p, area, n, env.rng, offset=offset)
    with open(p) as f:
        header, *lines = f.readlines()
    env.rng.shuffle(lines)
    with open(p, "w") as f:
        f.write(header)
        f.writelines(lines)
    cells = lines[-1].split(",")
    return ".".join(cells[3:10]), cells[10]


def wait_lagging(hub, cli, least):
    """Polls the hub until its log holds at least `least` entries while its
    state is behind; returns that status."""
    seen = {}

    def lagging():
        if cli.poll() not in (None, 0):
            h.fail("the import at COL failed (exit %s)" % cli.returncode)
        st = rh.status(hub, timeout=10)
        if st and st["log_last"] >= least and \
                st["state_applied"] < st["log_last"]:
            seen["st"] = st
        return "st" in seen

    h.wait_until(lagging, REPLY_S, "the hub's state to lag behind its log "
                 "(log_last >= %d)" % least, interval=0.01)
    return seen["st"]


def test_local_write_reads_current_state(env, hub, col, mex):
    key, period = shuffled_rows(env, "col1.csv", "COL", N)
    cli = col.cli_bg("import", env.path("col1.csv"), reply_timeout=REPLY_S)
    # every change logged, the last one (key) not yet in the state
    st = wait_lagging(hub, cli, N)
    hub.cli("put", h.DF_VIOLENCE, key, period, "7.25",
            "UNIT_MEASURE=PER_100000_POP")
    h.log("  ..   put at the hub with log_last %d, state_applied %d" %
          (st["log_last"], st["state_applied"]))
    hist = hub.history(h.DF_VIOLENCE, key, period)
    origins = [v["version"]["origin"] for v in hist]
    h.eq(sorted(origins), ["COL", "HUB"], "the hub's history of a key COL "
         "wrote and the hub then rewrote (origins)")
    h.eq(cli.wait(timeout=REPLY_S + 30), 0, "COL's import commits")
    rh.wait_converged(hub, [col, mex], CONVERGE_S)
    rh.compare_exports([hub, col, mex])


def test_state_rebuilt_after_kill(env, hub, col, mex):
    shuffled_rows(env, "col2.csv", "COL", N, offset=N)
    cli = col.cli_bg("import", env.path("col2.csv"), reply_timeout=REPLY_S)
    base = rh.must_status(hub)["log_last"]
    st = wait_lagging(hub, cli, base + N // 4)
    hub.kill9()
    h.log("  ..   hub killed -9 at log_last %d, state_applied %d" %
          (st["log_last"], st["state_applied"]))
    h.eq(cli.wait(timeout=REPLY_S + 30), 0, "COL's import commits although "
         "the hub died")
    for n in (col, mex):
        rh.sigstop(n)
    try:
        since = hub.log_size()
        rh.start_hub(hub)
        h.check(hub.wait_log(r"applying the rest", 60, since=since),
                "the restarted hub finds its state behind its log")

        def applied():
            s = rh.must_status(hub)
            return s if s["state_applied"] == s["log_last"] else None

        s = h.wait_until(applied, CONVERGE_S, "the restarted hub (nodes "
                         "frozen) to apply its whole log to its state")
        h.check(s["log_last"] >= st["log_last"], "the restarted hub holds "
                "every change it had accepted before kill -9")
        h.eq(s["observations"], s["log_last"] - 1, "the hub's state holds "
             "every logged change (one per key, and the hub's own put)")
    finally:
        for n in (col, mex):
            rh.sigcont(n)
    sts = rh.wait_converged(hub, [col, mex], CONVERGE_S)
    h.eq(sts[hub.name]["observations"], 2 * N, "observations everywhere")
    rh.compare_exports([hub, col, mex])
    rh.compare_versions([hub, col, mex])


def test_hub_state_behind_log(env):
    hub = rh.start_hub(rh.hub(env, map_size="256M"))
    col = rh.node(env, "col", hub, map_size="256M")
    mex = rh.node(env, "mex", hub, map_size="256M")
    col.start()
    mex.start()
    test_local_write_reads_current_state(env, hub, col, mex)
    test_state_rebuilt_after_kill(env, hub, col, mex)


if __name__ == "__main__":
    h.main([test_hub_state_behind_log])
