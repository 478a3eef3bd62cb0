#!/usr/bin/env python3
"""t_err_hub_side.py - sessions the hub ends for reasons on its side, with the
Goodbye code decision 4 gives, and what the node does next.

1. The log no longer reaches the node's position: a hub with log_keep = 100;
   the Python node streams to cursor C, reconnects withholding its credit
   (the hub's position for it stays at C), the C node MEX writes 600
   changes and the hub trims its log past C. When the node grants credit
   the hub must say Goodbye{-6 OBS_ENOENT}; the node's next Hello (cursor C)
   gets Welcome{snapshot}, and after it its store equals the hub's export.
2. The hub cannot store the node's changes: a hub with map_size = map_max =
   1M; the Python node publishes until the hub's store is full. The hub
   must say Goodbye{-8 OBS_ESTORE} (retry), never acknowledge what it did
   not store, and stay up; restarted with map_max = 64M, the node's retries
   bring every change in, each once (log and history hold each once), and
   MEX holds exactly the node's store.
Run by ctest as conformance.err_hub_side."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, on, rh  # noqa: E402


@cf.case
def test_log_trimmed_past_the_node(env):
    hub = rh.start_hub(rh.hub(env, "hub_trim", no_sync=True, log_keep=100))
    mex = rh.node(env, "mex_trim", hub, node_id="MEX", no_sync=True)
    mex.start()
    gen = env.path("mex1.csv")
    rh.write_rows(gen, "MEX", 50, env.rng)
    rh.import_ok(mex, gen)
    rh.wait_converged(hub, [mex], 30, what="hub and MEX (50)")
    py = cf.node(env, hub, "PYCOL", provider="COL")
    cf.wait(py, lambda: py.caught_up(50), 20, "PYCOL at the log end (50)")
    c = py.cursor
    # a new session without credit: the hub's position stays at C
    py.disconnect(goodbye=True)
    py.call(lambda: setattr(py, "credits", False))
    py.connect()
    sess = py.session
    cf.wait(py, lambda: py.session == sess and py.state == "streaming", 10,
            "PYCOL's second session (no credit)")
    h.check(not py.welcome.snapshot, "the log still reaches cursor %d: no "
            "snapshot" % c)
    gen2 = env.path("mex2.csv")
    rh.write_rows(gen2, "MEX", 600, env.rng, offset=50)
    rh.import_ok(mex, gen2)

    def trimmed():
        st = rh.status(hub)
        return st and st.get("log_first", 0) > c + 1 and st
    st = h.wait_until(trimmed, 20, "the hub to trim its log past %d" % c)
    h.log("  ..   hub log now %d..%d, PYCOL's position %d" %
          (st["log_first"], st["log_last"], c))
    py.grant_credit(8)
    cf.expect_goodbye(env, py, sess, on.OBS_ENOENT, "the log no longer "
                      "reaches the node", timeout=3)
    py.call(lambda: setattr(py, "credits", True))
    if py.state != "idle" and py.session == sess:
        py.reconnect_now()  # the hub did not end it: the spec's next step
    cf.wait(py, lambda: py.session > sess and py.welcome is not None, 10,
            "PYCOL's next session")
    with py.lock:
        w = py.welcomes[-1][1]
    h.check(w.snapshot, "the next Hello (cursor %d) gets a snapshot" % c)
    log_last = rh.hub_log_last(rh.must_status(hub))
    cf.wait(py, lambda: py.caught_up(log_last), 20, "the snapshot")
    cf.compare(cf.store_view(py), cf.export_view(hub), "Python node", "hub")
    cf.serves(hub, mex, py, env.rng, "after the trimmed log")


@cf.case
def test_hub_store_full(env):
    hub = rh.start_hub(rh.hub(env, "hub_full", no_sync=True, map_size="1M",
                              map_max="1M"))
    mex = rh.node(env, "mex_full", hub, node_id="MEX", no_sync=True)
    mex.start()
    py = cf.node(env, hub, "PYCOL", provider="COL", max_batch=100)
    cf.wait(py, lambda: py.state == "streaming", 10, "PYCOL streaming")
    rng = env.rng
    sess = py.session
    made = 0
    full = None
    # 1M holds a few thousand changes (log, state, history): publish in
    # rounds of 500 until the hub stops taking them
    for _ in range(40):
        for _ in range(500):
            cf.put_new(py, "COL", made, rng)
            made += 1
        try:
            py.wait(lambda: py.all_acked() or py.goodbyes or
                    py.session != sess, 10, "round acknowledged")
        except on.WaitTimeout:
            full = "no acks for 10 s"
            break
        if py.goodbyes or py.session != sess:
            full = "session ended"
            break
    h.check(full is not None, "the 1M hub store fills", "%d changes all "
            "acknowledged" % made)
    h.log("  ..   hub stopped taking changes (%s) at ack %d of %d" %
          (full, py.pub_acked, made))
    cf.expect_goodbye(env, py, sess, on.OBS_ESTORE, "the hub's store is "
                      "full", timeout=3)
    h.check(hub.running(), "the hub keeps running")
    acked = py.pub_acked
    st = rh.must_status(hub)
    last = rh.peer_row(st, "PYCOL").get("last_origin_seq")
    h.check(last is not None and last >= acked, "the hub holds every "
            "acknowledged change", "last_origin_seq %r, acked %d" %
            (last, acked))

    # retry: a hub with room takes the rest
    hub.stop()
    hub.write_config(map_max="64M")
    rh.start_hub(hub)
    cf.wait(py, lambda: py.all_acked(), 60,
            "every change acknowledged after the hub got room")
    hs = rh.wait_converged(hub, [mex], 60, full=[hub, mex],
                           what="hub and MEX")[hub.name]
    h.eq(rh.hub_log_last(hs), made, "hub log_last (each change once)")
    h.eq(hs["history_versions"], made, "hub history versions")
    cf.compare(cf.store_view(py), cf.export_view(mex), "Python node", "MEX")


if __name__ == "__main__":
    h.main([test_log_trimmed_past_the_node, test_hub_store_full])
