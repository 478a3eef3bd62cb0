#!/usr/bin/env python3
"""t_publish_bulk.py - a node written from the spec publishes 5,000 valid
changes and a C node receives every one, as published.

The Python node PYCOL (provider COL: the starter structure's agreement lets
it write REF_AREA COL) makes 5,000 changes of OID:DF_VIOLENCE(1.0): 4,400 new
observations (REPLACE), 300 MERGEs on them (each carries the whole resulting
observation: every attribute of its base), 250 REPLACEs of new values and 50
deletes (tombstones). It publishes them 250 at a time with at most 16
Publish unacknowledged (it must use more than one slot, never more than 16).
The hub must acknowledge all 5,000 (accepted 5,000, nothing rejected,
duplicated or refused), log exactly 5,000 entries, and the C node MEX must
end with exactly the Python node's versions (value, attributes, hlc, origin,
origin_seq, provider, action, tombstone, batch_id), per
`obsync export --format jsonl --include-deleted` at MEX and at the hub. The
hub must not echo PYCOL's own changes back to it (obsnode.py checks).

Run by ctest as conformance.publish_bulk."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, rh  # noqa: E402

N_NEW, N_MERGE, N_REPLACE, N_DELETE = 4400, 300, 250, 50
N = N_NEW + N_MERGE + N_REPLACE + N_DELETE


@cf.case
def test_publish_5000(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    mex = rh.node(env, "mex", hub, no_sync=True)
    mex.start()
    py = cf.node(env, hub, "PYCOL", provider="COL", max_batch=250)
    cf.wait(py, lambda: py.state == "streaming", 20, "PYCOL streaming")
    py.pause_publishing(True)  # queue them all: the window fills up
    rng = env.rng
    for i in range(N_NEW):
        cf.put_new(py, "COL", i, rng)
    for i in rng.sample(range(N_NEW), N_MERGE):
        dims, period = cf.ident("COL", i)
        py.put(cf.DF, dims, period, cf.value(rng), {"OBS_STATUS": "E"},
               action="merge")
    for i in rng.sample(range(N_NEW), N_REPLACE):
        dims, period = cf.ident("COL", i)
        py.put(cf.DF, dims, period, cf.value(rng),
               {"UNIT_MEASURE": "PER_100000_POP", "CONF_STATUS": "F"},
               action="replace")
    for i in rng.sample(range(N_NEW), N_DELETE):
        dims, period = cf.ident("COL", i)
        py.delete(cf.DF, dims, period)
    h.eq(py.origin_seq, N, "changes made")
    py.pause_publishing(False)
    cf.wait(py, py.all_acked, 60, "the hub to acknowledge %d changes" % N)
    with py.lock:
        ack = py.acks[-1][1]
        rejects = list(py.rejects)
        max_in_flight = py.max_in_flight
        sessions = py.session
    h.eq(sessions, 1, "one session")
    h.eq(ack.acked_seq, N, "PublishAck.acked_seq")
    h.eq((ack.accepted, ack.rejected, ack.duplicates),
         (N, 0, 0), "PublishAck (accepted, rejected, duplicates)")
    h.eq(rejects, [], "no change rejected")
    h.check(2 <= max_in_flight <= 16, "Publish in flight used the window "
            "and stayed within 16", "max %d" % max_in_flight)

    hs = rh.wait_converged(hub, [mex], 60, full=[hub, mex],
                           what="hub and MEX")[hub.name]
    h.eq(rh.hub_log_last(hs), N, "hub log_last (each change logged once)")
    h.eq(hs["history_versions"], N, "hub history versions")
    row = rh.need(rh.peer_row(hs, "PYCOL"), "accepted", "rejected",
                  "duplicates", "last_origin_seq", who="the hub's row")
    h.eq((row["accepted"], row["rejected"], row["duplicates"],
          row["last_origin_seq"]), (N, 0, 0, N),
         "hub's peer row (accepted, rejected, duplicates, last_origin_seq)")

    mine = cf.store_view(py)
    h.eq(len(mine), N_NEW, "observations in the Python store")
    h.eq(sum(1 for v in mine.values() if v[2][5]), N_DELETE,
         "tombstones in the Python store")
    cf.compare(mine, cf.export_view(mex), "Python node", "MEX")
    cf.compare(mine, cf.export_view(hub), "Python node", "hub")
    ms = rh.must_status(mex)
    h.eq(ms["history_versions"], N, "MEX history versions (each change "
         "applied once)")


if __name__ == "__main__":
    h.main([test_publish_5000])
