#!/usr/bin/env python3
"""t_repl_duplicates.py - at-least-once delivery, exactly-once effect, and one
winner everywhere for concurrent writes (DESIGN.md §2, §3.2).

1. Node COL imports M rows (rounds 2 and 3 give the same keys new values)
   and is killed -9 the moment the import returns (its changes committed
   locally, most of them not yet acknowledged by the hub); restarted, it
   resends from its last acknowledged origin_seq. The hub must not double
   count: its log and history grow by exactly M per round, its peer row
   counts M accepted per round, and sampled keys have exactly
   one version per round in `history` at the hub and at COL (COL's own
   changes, echoed back when sent before its restart, are not a second
   version there either). At least one
   round must really have had unacknowledged changes at the kill (COL's
   restart log shows "outbox acked up to A, last local change L" with A < L).
2. Nodes COL (provider COL) and OIDN (provider OID) write the same keys with
   different values concurrently: one key by two simultaneous puts, then
   one key with the hub down (neither node can see the other's write), then
   300 keys by two simultaneous imports. Every daemon (hub, COL, OIDN and an
   observer MEX) must end with the same value and the same version for each
   key (get --json, export, jsonl versions).
Durability is under test in 1 (no no_sync). Run by ctest as
integration.repl_duplicates."""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

M = int(os.environ.get("OBSYNC_REPL_DUP_ROWS", "20000"))
ROUNDS = 3
SAMPLE_KEYS = 12
CONVERGE_S = 240
REPLY_S = 300
RESTART_RE = (r"node: cursor (\d+), outbox acked up to (\d+), last local "
              r"change (\d+)")
KEY = "A.COL.VC_IHR_PSRC._T._T._T.HARM"


def kill_right_after_import(env, col, path):
    """Imports in the background and kills COL -9 as soon as the CLI
    reports the commit (checked: exit 0)."""
    cli = col.cli_bg("import", path, reply_timeout=REPLY_S)
    h.wait_until(lambda: cli.poll() is not None, REPLY_S + 30,
                 "COL's import to return", interval=0.001,
                 max_interval=0.01)
    delay = env.rng.uniform(0.0, 0.05)
    time.sleep(delay)  # a random moment after the commit; not a wait
    col.kill9()
    h.eq(cli.returncode, 0, "COL's import committed before the kill")


def restart_line(col, since):
    with open(col.log_path, "rb") as f:
        f.seek(since)
        m = re.search(RESTART_RE, f.read().decode("utf-8", "replace"))
    return tuple(int(x) for x in m.groups()) if m else None


def check_hub_counts(hub, col, r):
    hs = rh.must_status(hub)
    cs = rh.must_status(col)
    h.eq(rh.hub_log_last(hs), r * M, "hub log_last after round %d" % r)
    h.eq(hs["history_versions"], r * M, "hub history versions after round "
         "%d (no change counted twice)" % r)
    h.eq(hs["observations"], M, "hub observations")
    h.eq(cs["history_versions"], r * M, "COL history versions (its own "
         "changes echoed back are not new versions)")
    row = rh.need(rh.peer_row(hs, "COL"), "accepted", "duplicates",
                  "rejected", who="the hub's row for COL")
    h.eq(row["accepted"], r * M, "the hub's peer row counts %d accepted "
         "from COL" % (r * M))
    h.eq(row["rejected"], 0, "the hub's peer row counts no rejected change "
         "from COL")
    h.log("  ..   hub peer row COL: duplicates %d, rejected %d" %
          (row["duplicates"], row["rejected"]))


def check_histories(env, hub, col, keys, r):
    for key, period in env.rng.sample(keys, SAMPLE_KEYS):
        for d in (hub, col):
            hist = d.history(h.DF_VIOLENCE, key, period)
            seqs = [v["version"]["origin_seq"] for v in hist]
            if len(hist) != r or len(set(seqs)) != r:
                h.fail("%s: history of %s %s has %d versions (origin_seq "
                       "%r), want %d" % (d.name, key, period, len(hist),
                                         seqs, r))
    h.log("  ok   %d sampled keys have exactly %d version(s) at the hub and "
          "at COL" % (SAMPLE_KEYS, r))


def test_kill_after_commit_no_double_count(env):
    hub = rh.start_hub(rh.hub(env, "hub1", map_size="256M"))
    col = rh.node(env, "col1", hub, "COL", map_size="256M")
    col.start()
    unacked_rounds = 0
    keys = None
    for r in range(1, ROUNDS + 1):
        p = env.path("col%d.csv" % r)
        keys = rh.write_rows(p, "COL", M, env.rng)
        kill_right_after_import(env, col, p)
        since = col.log_size()
        col.start()
        line = restart_line(col, since)
        h.check(line is not None, "COL logs its replication state at start")
        _, acked, last = line
        h.log("  ..   round %d: COL restarted with outbox acked up to %d, "
              "last local change %d" % (r, acked, last))
        unacked_rounds += acked < last
        rh.wait_converged(hub, [col], CONVERGE_S)
        check_hub_counts(hub, col, r)
        check_histories(env, hub, col, keys, r)
    h.check(unacked_rounds > 0, "in at least one round the kill landed "
            "before the hub's acknowledgement (%d of %d rounds)" %
            (unacked_rounds, ROUNDS))
    rh.compare_exports([hub, col])
    rh.compare_versions([hub, col])


def same_everywhere(daemons, key, period):
    """get --json of one observation on every daemon: same value, attributes
    and version (hub_seq aside). Returns the winner's (value, origin)."""
    seen = {}
    for d in daemons:
        o = d.get(h.DF_VIOLENCE, key, period)
        v = dict(o["version"])
        v.pop("hub_seq", None)
        seen[d.name] = (o["value"], tuple(sorted(o["attrs"].items())),
                        tuple(sorted(v.items())))
    if len(set(seen.values())) != 1:
        h.fail("%s %s differs between daemons: %r" % (key, period, seen))
    val, _, ver = next(iter(seen.values()))
    origin = dict(ver).get("origin")
    h.log("  ok   %s %s: the same winner everywhere (value %s from %s)" %
          (key, period, val, origin))
    return val, origin


def put(d, period, value):
    return d.cli_bg("put", h.DF_VIOLENCE, KEY, period, value,
                    "UNIT_MEASURE=PER_100000_POP")


def wait_bg(*procs):
    for p in procs:
        p.wait(timeout=REPLY_S)
        if p.returncode != 0:
            h.fail("`%s` exited %d" % (" ".join(p.args), p.returncode))


def test_concurrent_writes_same_winner(env):
    hub = rh.start_hub(rh.hub(env, "hub2", no_sync=True))
    col = rh.node(env, "col2", hub, "COL", no_sync=True)
    oid = rh.node(env, "oidn2", hub, "OIDN", provider="OID", no_sync=True)
    mex = rh.node(env, "mex2", hub, "MEX", no_sync=True)
    everyone = [hub, col, oid, mex]
    for n in everyone[1:]:
        n.start()

    # two simultaneous puts
    wait_bg(put(col, "2021", "11.1"), put(oid, "2021", "22.2"))
    rh.wait_converged(hub, everyone[1:], CONVERGE_S)
    same_everywhere(everyone, KEY, "2021")

    # the hub down: neither node can see the other's write
    hub.stop()
    first, second = (col, oid) if env.rng.random() < 0.5 else (oid, col)
    wait_bg(put(first, "2022", "33.3"))
    wait_bg(put(second, "2022", "44.4"))
    rh.start_hub(hub)
    rh.wait_converged(hub, everyone[1:], CONVERGE_S)
    same_everywhere(everyone, KEY, "2022")

    # 300 keys written by both at once
    pc, po = env.path("c.csv"), env.path("o.csv")
    rh.write_rows(pc, "COL", 300, env.rng, offset=1000)
    rh.write_rows(po, "COL", 300, env.rng, offset=1000)
    a = col.cli_bg("import", pc, reply_timeout=REPLY_S)
    b = oid.cli_bg("import", po, reply_timeout=REPLY_S)
    wait_bg(a, b)
    rh.wait_converged(hub, everyone[1:], CONVERGE_S)
    rh.compare_exports(everyone)
    rh.compare_versions(everyone)
    hs = rh.must_status(hub)
    conflicts = {n: rh.need(rh.peer_row(hs, n), "conflicts",
                            who="the hub's row for %s" % n)["conflicts"]
                 for n in ("COL", "OIDN")}
    h.log("  ..   hub conflicts counted: COL %d, OIDN %d" %
          (conflicts["COL"], conflicts["OIDN"]))


if __name__ == "__main__":
    h.main([test_kill_after_commit_no_double_count,
            test_concurrent_writes_same_winner])
