#!/usr/bin/env python3
"""t_repl_hub_state.py - the hub acks a change once it is in its log and
applies its keyed state behind the log (PROTOCOL.md §5.2, §5.4); this test
proves the three things that must then hold.

Hub, node COL (the writer) and node MEX (a receiver). The hub first runs
with OBSYNC_TEST_HOLD_STATE (repl_hub.c's test hook: it applies its state
only when it must, before a snapshot, a local write or a clean stop), so
its state stays behind its log deterministically, as it does for a moment
after every burst in normal running:

1. A local write at the hub while its state lags reads the current state:
   the hub first applies its whole log. A `put` at the hub of a key COL
   just wrote gets COL's version as its base, so the hub's history of that
   key has both versions (had the put been based on the stale state, COL's
   older version would later lose to it and never enter the history).
2. The state is rebuilt from the durable log after a crash: the hub is
   killed -9 while its state lags, restarted without the hook and with both
   nodes frozen, and on its own applies the log up to its end
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


def wait_accepted(hub, cli, least):
    """Polls the hub until its log holds at least `least` entries; returns
    that status. Its state must still lag (the hook holds it)."""
    seen = {}

    def accepted():
        if cli.poll() not in (None, 0):
            h.fail("the import at COL failed (exit %s)" % cli.returncode)
        st = rh.status(hub, timeout=10)
        if st and st["log_last"] >= least:
            seen["st"] = st
        return "st" in seen

    h.wait_until(accepted, REPLY_S, "the hub to log %d changes" % least,
                 interval=0.01)
    st = seen["st"]
    h.check(st["state_applied"] < st["log_last"], "the hub's state lags "
            "behind its log (state_applied %d, log_last %d)" %
            (st["state_applied"], st["log_last"]))
    return st


def test_local_write_reads_current_state(env, hub, col, mex):
    key, period = shuffled_rows(env, "col1.csv", "COL", N)
    cli = col.cli_bg("import", env.path("col1.csv"), reply_timeout=REPLY_S)
    # every change logged, the last one (key) not in the state
    st = wait_accepted(hub, cli, N)
    hub.cli("put", h.DF_VIOLENCE, key, period, "7.25",
            "UNIT_MEASURE=PER_100000_POP")
    h.log("  ..   put at the hub with log_last %d, state_applied %d" %
          (st["log_last"], st["state_applied"]))
    after = rh.must_status(hub)
    h.eq(after["state_applied"], after["log_last"], "the hub's state after "
         "a local write holds the whole log")
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
    st = wait_accepted(hub, cli, base + N // 4)
    hub.kill9()
    h.log("  ..   hub killed -9 at log_last %d, state_applied %d" %
          (st["log_last"], st["state_applied"]))
    h.eq(cli.wait(timeout=REPLY_S + 30), 0, "COL's import commits although "
         "the hub died")
    for n in (col, mex):
        rh.sigstop(n)
    try:
        since = hub.log_size()
        hub.extra_env = {}  # from now on the hub applies its state itself
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
    hub = rh.hub(env, map_size="256M")
    hub.extra_env = {"OBSYNC_TEST_HOLD_STATE": "1"}
    rh.start_hub(hub)
    col = rh.node(env, "col", hub, map_size="256M")
    mex = rh.node(env, "mex", hub, map_size="256M")
    col.start()
    mex.start()
    test_local_write_reads_current_state(env, hub, col, mex)
    test_state_rebuilt_after_kill(env, hub, col, mex)


if __name__ == "__main__":
    h.main([test_hub_state_behind_log])
