#!/usr/bin/env python3
"""t_err_session.py - session-level protocol errors: the hub answers each
with Goodbye{code} and closes the session (decisions 4, 5, 8), and keeps
serving its other nodes.

Each case uses a fresh Python node (obsnode.py) and expects exactly one
Goodbye with the stated OBS_E* code, never an ErrorReply (the node flags
any other body as a violation):
* a stranger (no Hello yet) sending an undecodable frame or a two-frame
  message -> -3 (OBS_EPROTO); a valid non-Hello message (Credit) -> -6
  (OBS_ENOENT: no session, say Hello; what a node whose hub restarted
  under its socket gets); a Hello in an Envelope of version 2 -> -4
  (OBS_EVERSION);
* in a session: an unknown Envelope body (field 79), bodies a node never
  sends (Welcome, LogBatch, a local-API StatusRequest), a second Hello, an
  undecodable frame -> -3; a Heartbeat in an Envelope of version 2 -> -4;
* Hello fields out of format -> -3: node_id empty, 64 characters, with a
  blank, non-ASCII, or the hub's own id; provider with a blank;
  node_epoch not 32 lowercase hex (uppercase, 31, 33, empty);
  structure_hash not empty nor 64 lowercase hex; hub_epoch not empty nor
  32 lowercase hex. The limits themselves are accepted (node_id of 63,
  empty provider, structure_hash and hub_epoch);
* a second connection of the same node_id -> the first gets -15
  (OBS_EEXIST) and the second streams;
* a node silent for peer_timeout_ms (no Heartbeat) -> -11 (OBS_ETIMEOUT).
After every case a put at the C node MEX reaches a healthy Python node
through the hub. Run by ctest as conformance.err_session."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, on, rh  # noqa: E402

EPOCH = "0123456789abcdef0123456789abcdef"
HASH = "0123456789abcdef" * 4


class World:
    def __init__(self, env, tag):
        self.env = env
        self.hub, self.mex = cf.hub_with_mex(env, tag)
        self.watch = cf.streaming(env, self.hub, "PYWATCH", provider="OID")
        self.n = 0

    def fresh(self, **kw):
        self.n += 1
        kw.setdefault("provider", "COL")
        node_id = kw.pop("node_id", "PYBAD%d" % self.n)
        return cf.node(self.env, self.hub, node_id, auto_reconnect=False,
                       **kw)

    def serves(self, what):
        cf.serves(self.hub, self.mex, self.watch, self.env.rng, what)


def frame(pb, **body):
    """An Envelope{version 1, body} as bytes."""
    env = pb.Envelope()
    env.version = 1
    for k, v in body.items():
        getattr(env, k).CopyFrom(v)
    return env.SerializeToString(deterministic=True)


@cf.case
def test_strangers(env):
    w = World(env, 'strang')
    pb = cf.pb(env)
    hello = pb.Hello(node_id="PYX", node_epoch=EPOCH, provider="COL")
    cases = [
        ("an undecodable first frame", [b"\xff\xff\xff\xff"], on.OBS_EPROTO),
        ("a Credit before any Hello",
         [frame(pb, credit=pb.Credit(batches=8))], on.OBS_ENOENT),
        ("a Hello in two frames", [frame(pb, hello=hello), b""],
         on.OBS_EPROTO),
    ]
    for what, frames, code in cases:
        n = w.fresh(send_hello=False)
        cf.wait(n, lambda: n.state == "hello", 5, "connected")
        n.send_raw(frames)
        cf.expect_goodbye(env, n, 1, code, what, timeout=2)
        if n.goodbyes:
            cf.soft_eq(env, len(n.goodbyes), 1, "%s: one Goodbye" % what)
        n.close(goodbye=False)
        w.serves(what)
    n = w.fresh(hello_version=2)
    cf.expect_goodbye(env, n, 1, on.OBS_EVERSION,
                      "a Hello in an Envelope of version 2", timeout=5,
                      grace=1.0)
    cf.soft_eq(env, len(n.welcomes), 0, "no Welcome for version 2")
    w.serves("Hello of version 2")


@cf.case
def test_in_session(env):
    w = World(env, 'in_ses')
    pb = cf.pb(env)
    unknown_body = frame(pb) + bytes([0xfa, 0x04, 0x00])  # field 79, len 0
    hb2 = pb.Envelope(version=2)
    hb2.heartbeat.now_ms = on.wall_ms()
    cases = [
        ("an unknown Envelope body", [unknown_body], on.OBS_EPROTO),
        ("a Welcome from a node",
         [frame(pb, welcome=pb.Welcome(hub_id="X"))], on.OBS_EPROTO),
        ("a LogBatch from a node",
         [frame(pb, log_batch=pb.LogBatch(from_seq=0, to_seq=1))],
         on.OBS_EPROTO),
        ("a local-API StatusRequest on the replication socket",
         [frame(pb, status=pb.StatusRequest())], on.OBS_EPROTO),
        ("a second Hello", None, on.OBS_EPROTO),
        ("an undecodable frame", [b"\x0a\xff"], on.OBS_EPROTO),
        ("a Heartbeat in an Envelope of version 2",
         [hb2.SerializeToString()], on.OBS_EVERSION),
    ]
    for what, frames, code in cases:
        n = w.fresh()
        cf.wait(n, lambda: n.state == "streaming", 10, "streaming")
        if frames is None:
            hl = pb.Hello(node_id=n.node_id, node_epoch=n.node_epoch,
                          provider="COL", cursor=n.cursor,
                          hub_epoch=n.hub_epoch)
            hl.subscription.SetInParent()
            frames = [frame(pb, hello=hl)]
        n.send_raw(frames)
        cf.expect_goodbye(env, n, 1, code, what, timeout=2)
        if n.goodbyes:
            cf.soft_eq(env, len(n.goodbyes), 1, "%s: one Goodbye" % what)
        node_id = n.node_id

        def down():
            st = rh.status(w.hub)
            return st and not rh.peer_row(st, node_id).get("up", True)
        try:
            h.wait_until(down, 5, "the hub to close %s's session" % node_id)
            h.log("  ok   %s: the hub closed the session" % what)
        except h.TestFailure as e:
            cf.soft_check(env, False, "%s: the hub closed the session" %
                          what, str(e))
        n.close(goodbye=False)
        w.serves(what)


@cf.case
def test_hello_formats(env):
    w = World(env, 'hello_')
    bad = [
        ("node_id empty", {"node_id": ""}),
        ("node_id of 64 characters", {"node_id": "N" * 64}),
        ("node_id with a blank", {"node_id": "PY X"}),
        ("node_id not ASCII", {"node_id": "PY\u00c9"}),
        ("node_id with a dot", {"node_id": "PY.X"}),
        ("node_id = the hub's id", {"node_id": "HUB"}),
        ("provider with a blank", {"provider": "C OL"}),
        ("provider of 64 characters", {"provider": "P" * 64}),
        ("node_epoch uppercase", {"node_epoch": EPOCH.upper()}),
        ("node_epoch of 31", {"node_epoch": EPOCH[:31]}),
        ("node_epoch of 33", {"node_epoch": EPOCH + "0"}),
        ("node_epoch empty", {"node_epoch": ""}),
        ("node_epoch not hex", {"node_epoch": "g" * 32}),
        ("structure_hash uppercase", {"structure_hash": HASH.upper()}),
        ("structure_hash of 63", {"structure_hash": HASH[:63]}),
        ("structure_hash not hex", {"structure_hash": "z" * 64}),
        ("hub_epoch uppercase", {"hub_epoch": EPOCH.upper()}),
        ("hub_epoch of 31", {"hub_epoch": EPOCH[:31]}),
    ]
    for what, fields in bad:
        n = w.fresh(hello_overrides=fields)
        cf.expect_goodbye(env, n, 1, on.OBS_EPROTO, "Hello with " + what,
                          timeout=5, grace=1.0)
        cf.soft_eq(env, len(n.welcomes), 0, "Hello with %s: no Welcome" %
                   what)
        n.close(goodbye=False)
    w.serves("after the malformed Hellos")
    good = [
        ("node_id of 63 characters", {"node_id": "N" * 63}),
        ("node_id of one character", {"node_id": "Q"}),
        ("node_id with - and _", {"node_id": "py-node_9"}),
        ("empty provider", {"provider": ""}),
        ("empty structure_hash and hub_epoch", {"structure_hash": "",
                                                "hub_epoch": ""}),
        ("a 64 lowercase hex structure_hash", {"structure_hash": HASH}),
    ]
    for what, fields in good:
        # with CURVE the key names the node: one made for that node id
        ids = {"node_id": fields["node_id"]} if "node_id" in fields else {}
        n = w.fresh(hello_overrides=fields, **ids)
        cf.wait(n, lambda: n.welcomes or n.goodbyes, 5,
                "an answer to a Hello with %s" % what)
        cf.soft_check(env, bool(n.welcomes), "Hello with %s is welcomed" %
                      what, "goodbyes %r" % n.goodbyes)
        n.close()


@cf.case
def test_replaced_and_silent(env):
    w = World(env, 'replac')
    a = w.fresh(node_id="PYTWIN")
    cf.wait(a, lambda: a.state == "streaming", 10, "first PYTWIN streaming")
    b = cf.node(env, w.hub, "PYTWIN", provider="COL", auto_reconnect=False,
                name="PYTWIN-2")
    cf.wait(b, lambda: b.state == "streaming", 10, "second PYTWIN "
            "streaming")
    cf.expect_goodbye(env, a, 1, on.OBS_EEXIST, "the older session of a "
                      "node that connected again", timeout=5)
    h.check(b.state == "streaming" and not b.goodbyes,
            "the newer session goes on")
    b.close()
    w.serves("after the replaced session")

    s = w.fresh(node_id="PYQUIET")
    cf.wait(s, lambda: s.state == "streaming", 10, "PYQUIET streaming")
    s.call(lambda: setattr(s, "heartbeats", False))
    timeout_s = rh.PEER_TIMEOUT_MS / 1000.0
    cf.expect_goodbye(env, s, 1, on.OBS_ETIMEOUT,
                      "a node silent for peer_timeout_ms",
                      timeout=timeout_s + 3)
    s.close(goodbye=False)
    w.serves("after the silent node")


if __name__ == "__main__":
    h.main([test_strangers, test_in_session, test_hello_formats,
            test_replaced_and_silent])
