#!/usr/bin/env python3
"""t_repl_hub_kill.py - the hub is killed with SIGKILL in the middle of a
stream and restarted on the same data dir and port; nothing it acknowledged
is lost, the nodes keep accepting local writes while it is down, and
everything converges after the restart (DESIGN.md §3.1, §3.7).

Hub, node COL (provider COL, the writer) and node MEX (provider MEX, the
receiver). Each round: COL imports ~50,000 generated monthly DF_VIOLENCE rows
of area COL (round 2 rewrites the same keys with new values); once the hub
has accepted a random share of them it is killed -9 while MEX is receiving.
While it is down MEX imports 2,000 rows of its own and COL puts one
observation: both commit locally and wait in the outboxes. The nodes are
then frozen (SIGSTOP) so the restarted hub can be checked alone: it holds at
least every change it had reported before the kill (acked means durable).
After SIGCONT all converge: outboxes empty, cursors at the hub's log end,
exports byte-identical. Durability is under test: no no_sync. Run by ctest as
integration.repl_hub_kill."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N = int(os.environ.get("OBSYNC_REPL_ROWS", "50000"))
N_DOWN = 2000
CONVERGE_S = 240
REPLY_S = 300


def kill_hub_mid_stream(env, hub, mex, cli, base):
    """Waits until the hub has accepted a random share of the import's
    changes (log_last > base + share), then kills it. Returns the hub's
    last reported log_last (everything up to it was acknowledged)."""
    share = int(N * env.rng.uniform(0.05, 0.7))
    seen = {"last": base}

    def reached():
        st = rh.status(hub, timeout=10)
        if st is not None:
            seen["last"] = rh.hub_log_last(st)
        if cli.poll() not in (None, 0):
            h.fail("the import at COL failed (exit %s)" % cli.returncode)
        return seen["last"] >= base + share

    h.wait_until(reached, REPLY_S, "the hub to accept %d changes" % share,
                 interval=0.02, max_interval=0.05)
    ms = rh.status(mex)
    hub.kill9()
    h.log("  ..   hub killed -9 at log_last %d (target %d, stream %d..%d; "
          "MEX cursor %s)%s" %
          (seen["last"], base + share, base + 1, base + N,
           ms and ms["hub_cursor"], "" if seen["last"] < base + N else
           " - after the stream: the hub was faster than the polling"))
    return seen["last"]


def writes_while_down(env, col, mex, round_no):
    """Local writes at both nodes with the hub down: they commit."""
    p = env.path("mex%d.csv" % round_no)
    rh.write_rows(p, "MEX", N_DOWN, env.rng, offset=round_no * N_DOWN)
    h.eq(rh.import_ok(mex, p, reply_timeout=REPLY_S), N_DOWN,
         "MEX imports %d rows while the hub is down" % N_DOWN)
    key, period = rh.ident("COL", N + round_no)
    col.cli("put", h.DF_VIOLENCE, key, period, "1.5",
            "UNIT_MEASURE=PER_100000_POP")
    h.log("  ok   COL accepts a put while the hub is down")
    st = rh.must_status(mex)
    h.check(st["outbox_depth"] >= N_DOWN, "MEX's outbox holds the writes "
            "made while the hub is down", repr(st["outbox_depth"]))
    # liveness: the nodes notice the silence (peer_timeout_ms)
    for n in (col, mex):
        h.wait_until(lambda: rh.need(rh.must_status(n), "repl_state")
                     ["repl_state"] != "streaming",
                     3 * rh.PEER_TIMEOUT_MS / 1000.0 + 5,
                     "%s to notice that the hub is gone" % n.name)
    h.log("  ok   both nodes noticed that the hub is gone")


def restart_hub_alone(hub, nodes, acked):
    """Restarts the hub with the nodes frozen; checks it kept all it had
    reported before the kill; thaws the nodes."""
    for n in nodes:
        rh.sigstop(n)
    try:
        rh.start_hub(hub)
        st = rh.must_status(hub)
        h.check(rh.hub_log_last(st) >= acked, "the restarted hub holds every "
                "change it had accepted before kill -9 (%d >= %d)" %
                (rh.hub_log_last(st), acked))
    finally:
        for n in nodes:
            rh.sigcont(n)


def one_round(env, hub, col, mex, round_no, expected):
    p = env.path("col%d.csv" % round_no)
    rh.write_rows(p, "COL", N, env.rng)
    base = rh.hub_log_last(rh.must_status(hub))
    cli = col.cli_bg("import", p, reply_timeout=REPLY_S)
    acked = kill_hub_mid_stream(env, hub, mex, cli, base)
    rc = cli.wait(timeout=REPLY_S + 30)
    h.eq(rc, 0, "COL's import commits although the hub died")
    writes_while_down(env, col, mex, round_no)
    restart_hub_alone(hub, [col, mex], acked)
    sts = rh.wait_converged(hub, [col, mex], CONVERGE_S,
                            what="convergence after the hub restart")
    h.eq(sts[hub.name]["observations"], expected,
         "the hub holds every observation written (round %d)" % round_no)
    ups = {n: rh.need(rh.peer_row(sts[hub.name], n), "up",
                      who="the hub's row for %s" % n)["up"]
           for n in ("COL", "MEX")}
    h.check(all(ups.values()), "the restarted hub sees both nodes up",
            repr(ups))
    rh.compare_exports([hub, col, mex])


def test_hub_killed_mid_stream(env):
    hub = rh.start_hub(rh.hub(env, map_size="256M"))
    col = rh.node(env, "col", hub, map_size="256M")
    mex = rh.node(env, "mex", hub, map_size="256M")
    col.start()
    mex.start()
    # round 1: new keys; round 2: new values for the same keys
    one_round(env, hub, col, mex, 1, N + N_DOWN + 1)
    one_round(env, hub, col, mex, 2, N + 2 * N_DOWN + 2)
    rh.compare_versions([hub, col, mex])
    key, period = rh.ident("COL", N - 1)
    hist = hub.history(h.DF_VIOLENCE, key, period)
    h.eq(len(hist), 2, "the hub's history of a key written twice has 2 "
         "versions")


if __name__ == "__main__":
    h.main([test_hub_killed_mid_stream])
