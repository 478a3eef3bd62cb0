#!/usr/bin/env python3
"""t_restore_backup.py - a node restored from an older copy of its store
loses nothing (PROTOCOL.md: "When it is above everything the node has made
(the node was restored from an older backup) ...").

Hub, node COL (provider COL, the writer) and node MEX (the receiver). COL
puts 5 observations and everything converges; COL is stopped (SIGTERM) and
its whole data dir copied as the backup. Restarted, COL makes 20 puts (10
new keys, two new values for each of the first 5 keys: the "newer copy"),
which converge. COL's data dir is then replaced by the backup, so the
restored COL has forgotten the 20 changes the hub holds (and its origin_seq
is 20 behind the hub's), and COL makes puts again, some on keys the newer
copy wrote (other values), some on new keys:

1. hub down at restore: the hub is stopped with COL; COL restarts alone and
   makes 10 puts offline (outbox_depth >= 10), then the hub starts;
2. hub up at restore: only COL is stopped and restored, it restarts with the
   hub up and makes 10 puts;
3. more writes than the gap: like 1 with 30 offline puts, so the restored
   COL's change numbers pass the hub's.

After convergence in each case: exports byte-identical on hub, COL and MEX;
each post-restore put is the current value everywhere (made later in real
time, it wins); every value of the newer copy is current or in the key's
history everywhere; COL's outbox is empty; COL's log says it was "restored
from a backup". Durability is not under test (no_sync). Run by ctest as
integration.restore_backup."""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

N_FIRST = 5      # keys put before the backup
N_NEWER = 20     # puts of the newer copy (lost by the restore)
CONVERGE_S = 30
# "restored from a backup" (or "... from an older backup", today's wording)
RESTORED_RE = r"restored from (?:a|an older) backup"


def put(d, i, value):
    """One put of COL's i-th identity; must exit 0."""
    key, period = rh.ident("COL", i)
    r = d.cli("put", h.DF_VIOLENCE, key, period, value,
              "UNIT_MEASURE=PER_100000_POP", check=None)
    if r.rc != 0:
        h.fail("put %d (%s %s = %s) at %s: %s" %
               (i, key, period, value, d.name, r.describe()))
    return i, value


def newer_puts(col):
    """The newer copy's 20 puts: 10 new keys (N_FIRST..N_FIRST+9) and two
    new values for each of the first 5 keys. Returns [(i, value)]."""
    done = []
    for j in range(N_NEWER):
        i = N_FIRST + j // 2 if j % 2 == 0 else j // 2 % N_FIRST
        done.append(put(col, i, "%d.25" % (200 + j)))
    h.log("  ok   COL made %d puts (the newer copy)" % len(done))
    return done


def restored_puts(col, n, newer):
    """n puts by the restored COL: 5 of the keys the newer copy wrote (other
    values), the rest new keys. Returns [(i, value)]."""
    touched = sorted({i for i, _ in newer})
    conflict = [touched[0], touched[1], touched[-1], touched[-2],
                touched[len(touched) // 2]]
    fresh = list(range(N_FIRST + N_NEWER, N_FIRST + N_NEWER + n - 5))
    done = [put(col, i, "%d.75" % (500 + k))
            for k, i in enumerate(conflict + fresh)]
    h.log("  ok   the restored COL accepted %d puts (%d on keys of the "
          "newer copy)" % (n, len(conflict)))
    return done


def value_of(d, i):
    key, period = rh.ident("COL", i)
    o = d.get(h.DF_VIOLENCE, key, period, check=None)
    return o and o.get("value")


def history_values(d, i):
    key, period = rh.ident("COL", i)
    return {v.get("value") for v in d.history(h.DF_VIOLENCE, key, period,
                                              check=None)}


def check_nothing_lost(hub, col, mex, newer, restored):
    daemons = [hub, col, mex]
    rh.compare_exports(daemons)
    after = dict(restored)
    for d in daemons:
        lost = [(i, v, value_of(d, i)) for i, v in restored
                if value_of(d, i) != v]
        h.check(not lost, "%s: each of the %d puts made after the restore "
                "is the current value" % (d.name, len(restored)),
                "(identity, put, current): %r" % lost[:10])
        missing = [(i, v) for i, v in newer if v not in history_values(d, i)]
        h.check(not missing, "%s: every value of the newer copy's %d puts "
                "is in its key's history" % (d.name, len(newer)),
                "(identity, value) missing: %r" % missing[:10])
        last = {}
        for i, v in newer:
            last[i] = v
        stale = [(i, v, value_of(d, i)) for i, v in last.items()
                 if i not in after and value_of(d, i) != v]
        h.check(not stale, "%s: keys only the newer copy wrote keep its "
                "last value" % d.name,
                "(identity, want, current): %r" % stale[:10])
    st = rh.must_status(col)
    h.check("outbox_depth" in st, "COL's status has outbox_depth")
    h.eq(st["outbox_depth"], 0, "COL's outbox ends empty")
    h.check(rh.log_has(col, RESTORED_RE, whole=False),
            "COL's log says it was restored from a backup",
            "no line matching /%s/ in this run's log:\n%s" %
            (RESTORED_RE, col.log_tail(30)))


def setup(env, tag):
    """Hub, COL and MEX converged on COL's first 5 puts, then COL stopped,
    backed up, restarted and its 20 newer puts converged. Returns (hub, col,
    mex, backup dir, newer puts)."""
    hub = rh.start_hub(rh.hub(env, "hub" + tag, no_sync=True))
    col = rh.node(env, "col" + tag, hub, "COL", no_sync=True)
    mex = rh.node(env, "mex" + tag, hub, "MEX", no_sync=True)
    col.start()
    mex.start()
    for i in range(N_FIRST):
        put(col, i, "%d.5" % (100 + i))
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence on COL's first %d puts" % N_FIRST)
    col.stop()
    backup = env.path("backup" + tag)
    shutil.copytree(col.data_dir, backup)
    h.log("  ..   COL's data dir copied to %s" % backup)
    col.start()
    newer = newer_puts(col)
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence on the newer copy")
    return hub, col, mex, backup, newer


def restore(col, backup):
    shutil.rmtree(col.data_dir)
    shutil.copytree(backup, col.data_dir)
    h.log("  ..   COL's data dir replaced by the backup")


def restored_offline(env, tag, n):
    """Cases 1 and 3: COL restored and writing while the hub is down."""
    hub, col, mex, backup, newer = setup(env, tag)
    col.stop()
    hub.stop()
    restore(col, backup)
    col.start()
    restored = restored_puts(col, n, newer)
    st = rh.must_status(col)
    h.check("outbox_depth" in st, "COL's status has outbox_depth")
    h.check(st["outbox_depth"] >= n, "COL's outbox holds the %d puts made "
            "while the hub is down" % n, repr(st["outbox_depth"]))
    rh.start_hub(hub)
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence after the hub restart")
    check_nothing_lost(hub, col, mex, newer, restored)


def test_restore_hub_down(env):
    restored_offline(env, "a", 10)


def test_restore_hub_up(env):
    hub, col, mex, backup, newer = setup(env, "b")
    col.stop()
    restore(col, backup)
    col.start()
    restored = restored_puts(col, 10, newer)
    rh.wait_converged(hub, [col, mex], CONVERGE_S,
                      what="convergence after COL's restore")
    check_nothing_lost(hub, col, mex, newer, restored)


def test_restore_more_than_gap(env):
    restored_offline(env, "c", 30)


if __name__ == "__main__":
    h.main([test_restore_hub_down, test_restore_hub_up,
            test_restore_more_than_gap])
