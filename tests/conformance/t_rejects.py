#!/usr/bin/env python3
"""t_rejects.py - changes the hub rejects one by one: consumed, reported in
PublishAck (rejected count, rejects with rule and line = origin_seq), and the
stream goes on in the same session (decisions 10, 11, 12).

The Python node PYCOL (provider COL) publishes, in one session, triples
good / bad / good where the bad change is:
* R-hash: its content_hash has one byte flipped (decision 10: the hub
  recomputes every change's hash);
* R-partial: a MERGE on a key whose current version (held by the hub, made
  by PYCOL) has OBS_STATUS and COMMENT_OBS, carrying only UNIT_MEASURE and
  OBS_STATUS (decision 11: a MERGE carries every attribute of its base);
* R-origin: origin another node's id; provider another provider
  (decision 12);
* R12-authority: REF_AREA MEX, which provider COL may not write;
* R4-decimal (form): a value the hub's normalisation would rewrite
  ("+24.5", " 24.5", "nan"), hashed as sent (RULES.md 6, 7);
* R-hash: a hash computed without the tombstone byte.
Also accepted, to show the rules are not broader than stated: a MERGE that
carries every attribute of its base plus a new one, and a REPLACE that drops
attributes. At the end every change is acknowledged, no Goodbye came, the
rejects are exactly the bad changes with their rules, the running counts
say 7 rejected, and the C node MEX holds exactly the Python node's store
(which never applied the bad changes): the good changes around each bad
one arrived. Run by ctest as conformance.rejects."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, on, rh  # noqa: E402


@cf.case
def test_rejected_changes_are_consumed(env):
    hub, mex = cf.hub_with_mex(env)
    py = cf.streaming(env, hub, "PYCOL", provider="COL")
    rng = env.rng
    idx = [0]

    def new_key(area="COL"):
        idx[0] += 1
        return cf.ident(area, idx[0])

    def good():
        dims, period = new_key()
        return py.put(cf.DF, dims, period, cf.value(rng), dict(cf.ATTRS))

    expected = []  # (rule, origin_seq, column) per RULES.md

    def bad(rule, make, column=""):
        """good, then the change make() builds (rejected), then good."""
        good()
        seq = py.add(make(), apply=False)
        expected.append((rule, seq, column))
        good()

    def change(area="COL", **kw):
        dims, period = new_key(area)
        return py.make_change(cf.DF, dims, period, cf.value(rng),
                              dict(cf.ATTRS), **kw)

    def flipped_hash():
        o = change()
        hb = bytearray(o.version.content_hash)
        hb[5] ^= 0x40
        o.version.content_hash = bytes(hb)
        return o

    def other_origin():
        o = change()
        o.version.origin = "MEX"
        return o

    def other_provider():
        o = change()
        o.version.provider = "MEX"
        return o

    bad("R-hash", flipped_hash)
    bad("R-origin", other_origin)
    bad("R-origin", other_provider)
    bad("R12-authority", lambda: change("MEX"),  # provider COL writes MEX
        column="REF_AREA")

    def value_form(text):
        """A value the hub's normalisation would rewrite, hashed as sent:
        R4-decimal (form), whatever the hash (RULES.md 6, 7)."""
        def make():
            dims, period = new_key()
            return py.make_change(cf.DF, dims, period, text, dict(cf.ATTRS))
        return make
    bad("R4-decimal", value_form("+24.5"))
    bad("R4-decimal", value_form(" 24.5"))
    bad("R4-decimal", value_form("nan"))

    def hash_without_tombstone_byte():
        o = change()
        o.version.content_hash = on.hashlib.sha256(
            on.obs_hash_input(o)[:-1]).digest()
        return o
    bad("R-hash", hash_without_tombstone_byte)
    cf.wait(py, py.all_acked, 20, "the first changes acknowledged")

    # R-partial: the base has OBS_STATUS and COMMENT_OBS
    dims, period = new_key()
    py.put(cf.DF, dims, period, "3.25", {"UNIT_MEASURE": "PER_100000_POP",
                                        "OBS_STATUS": "A",
                                        "COMMENT_OBS": "base version"})
    cf.wait(py, py.all_acked, 10, "the base version acknowledged")
    st = h.wait_until(lambda: (lambda s: s and s["state_applied"] ==
                               rh.hub_log_last(s) and s)(rh.status(hub)),
                      10, "the hub's state to hold its log")
    h.log("  ..   hub state applied up to %d" % st["state_applied"])

    def partial_merge():
        o = py.make_change(cf.DF, dims, period, "3.5", {"OBS_STATUS": "E"},
                           action="merge")
        h.eq(sorted(a.id for a in o.attrs), ["COMMENT_OBS", "OBS_STATUS",
                                            "UNIT_MEASURE"],
             "a MERGE made by the node carries its base's attributes")
        del o.attrs[0]  # drop COMMENT_OBS
        o.version.content_hash = on.content_hash(o)
        return o
    # no good change before it: the base must stay the current version
    seq = py.add(partial_merge(), apply=False)
    expected.append(("R-partial", seq, "COMMENT_OBS"))
    # accepted: a full MERGE adding an attribute, a REPLACE dropping some
    py.put(cf.DF, dims, period, "3.75", {"CONF_STATUS": "F"},
           action="merge")
    py.put(cf.DF, dims, period, "4.0", {"UNIT_MEASURE": "PER_100000_POP"},
           action="replace")

    cf.wait(py, py.all_acked, 20, "every change acknowledged")
    with py.lock:
        got = [(r.rule, r.line, r.column) for s, r in py.rejects]
        warnings = [r.line for s, r in py.rejects if r.warning]
        issues = [(r.rule, r.line, r.column, r.message)
                  for s, r in py.rejects]
        ack = py.acks[-1][1]
        goodbyes = list(py.goodbyes)
        sessions = py.session
    h.eq((goodbyes, sessions), ([], 1), "no Goodbye, one session")
    for i in issues:
        h.log("  ..   reject %r" % (i,))
    cf.soft_eq(env, got, expected, "PublishAck.rejects (rule, line, column)")
    cf.soft_eq(env, warnings, [], "no reject is a warning")
    cf.soft_eq(env, ack.rejected, len(expected),
               "PublishAck.rejected (running count)")
    cf.soft_eq(env, ack.accepted, py.origin_seq - len(expected),
               "PublishAck.accepted (running count)")
    h.eq(ack.acked_seq, py.origin_seq, "every change acknowledged "
         "(rejected ones consumed)")

    hs = rh.wait_converged(hub, [mex], 30, full=[hub, mex],
                           what="hub and MEX")[hub.name]
    row = rh.peer_row(hs, "PYCOL")
    cf.soft_eq(env, (row.get("rejected"), row.get("last_origin_seq")),
               (len(expected), py.origin_seq),
               "hub's peer row (rejected, last_origin_seq)")
    mine = cf.store_view(py)
    cf.compare(mine, cf.export_view(mex), "Python node", "MEX", env=env)
    cf.serves(hub, mex, py, rng, "after the rejected changes")

    # a content_hash that is not 32 bytes: the canonical encoding always
    # carries 32 (PROTOCOL.md 1, RULES.md 1): a protocol error, not R-hash
    for i, (what, hb) in enumerate([("no content_hash", b""),
                                    ("a 16-byte content_hash",
                                     b"\x11" * 16)]):
        t = cf.node(env, hub, "PYTAIL%d" % i, provider="COL",
                    auto_reconnect=False)
        cf.wait(t, lambda: t.state == "streaming", 10, "PYTAIL streaming")
        dims, period = new_key()
        o = t.make_change(cf.DF, dims, period, cf.value(rng), dict(cf.ATTRS))
        o.version.content_hash = hb
        t.add(o, apply=False)
        cf.expect_goodbye(env, t, 1, on.OBS_EPROTO, "a change with " + what,
                          timeout=3)
        with t.lock:
            cf.soft_eq(env, [(r.rule, r.line) for s, r in t.rejects], [],
                       "a change with %s: no RowIssue" % what)
        t.close()
    cf.serves(hub, mex, py, rng, "after the content_hash cases")

if __name__ == "__main__":
    h.main([test_rejected_changes_are_consumed])
