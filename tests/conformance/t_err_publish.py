#!/usr/bin/env python3
"""t_err_publish.py - Publish messages that break the protocol: the hub
answers each with Goodbye{code} and closes the session (decisions 3, 4), and
keeps serving its other nodes.

Each case uses a fresh Python node (obsnode.py) with provider COL:
* shape: last_seq != first_seq + n - 1; changes whose origin_seq are not
  first_seq, first_seq+1, ...; an empty Publish -> -3 (OBS_EPROTO); 1,001
  changes -> -12 (OBS_ETOOBIG); more than 32 Publish queued (sent while the
  hub is frozen with SIGSTOP) -> -3;
* clock: a change stamped 10 minutes ahead of the hub's clock: the changes
  before it are acknowledged, it is listed in PublishAck.rejects (rule
  R-clock, line = its origin_seq) and the session ends with -19
  (OBS_ECLOCK); its origin_seq is not consumed (the next Welcome's
  last_origin_seq is the one before);
* a change that is not canonical or does not decode (PROTOCOL.md 1,
  RULES.md 1), between two good ones in one Publish: version encoded twice,
  attrs not sorted, an attr id twice, an empty attr value, a proto3 default
  encoded (tombstone = false), fields out of number order, an unknown field,
  a string that is not UTF-8, a known field with another wire type, a
  tombstone whose action is not DELETE, a DELETE that is no tombstone, a
  tombstone with a value, a Version id (batch_id) over 63 bytes, a NUL in
  a string -> -3; the bad change and the one after it are not at the hub
  (`get` exits 4) and the hub's last_origin_seq for the node is at most the
  good one before. Also a Publish with first_seq 0 -> -3.
After every case a put at the C node MEX reaches a healthy Python node
through the hub. Run by ctest as conformance.err_publish."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, on, rh  # noqa: E402

# ---------------------------------------------------------------- wire


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wt):
    return varint(field << 3 | wt)


def ld(field, data):
    """A length-delimited field."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return key(field, 2) + varint(len(data)) + data


def chunks(obs):
    """The canonical encoding of obs as a list of (field, bytes) chunks,
    one per top-level field occurrence."""
    out = [(1, ld(1, obs.dataflow))]
    out += [(2, ld(2, d)) for d in obs.dims]
    out.append((3, ld(3, obs.time_period)))
    if obs.value:
        out.append((4, ld(4, obs.value)))
    out += [(5, ld(5, a.SerializeToString(deterministic=True)))
            for a in obs.attrs]
    out.append((6, ld(6, obs.version.SerializeToString(deterministic=True))))
    return out


def join(ch):
    return b"".join(c for _, c in ch)


def attr(aid, val):
    return ld(5, ld(1, aid) + (ld(2, val) if val else b""))


def mutations(pb):
    """name -> function(obs) -> bytes: the same observation (same content,
    its content_hash right) encoded non-canonically."""
    def version_twice(o):
        ch = chunks(o)
        v = pb.Version(hlc=o.version.hlc)
        return join(ch) + ld(6, v.SerializeToString())

    def unsorted(o):
        ch = chunks(o)
        a = [c for c in ch if c[0] == 5]
        rest = [c for c in ch if c[0] != 5]
        i = rest.index([c for c in rest if c[0] == 6][0])
        return join(rest[:i] + list(reversed(a)) + rest[i:])

    def dup_attr(o):
        ch = chunks(o)
        a = [c for c in ch if c[0] == 5]
        i = ch.index(a[-1]) + 1
        return join(ch[:i] + [a[-1]] + ch[i:])

    def empty_attr(o):
        ch = chunks(o)
        i = ch.index([c for c in ch if c[0] == 6][0])
        return join(ch[:i] + [(5, attr("ZZ_EMPTY", ""))] + ch[i:])

    def explicit_default(o):
        ch = chunks(o)
        vb = o.version.SerializeToString(deterministic=True) + \
            key(11, 0) + b"\x00"  # tombstone = false, encoded
        return join([c for c in ch if c[0] != 6]) + ld(6, vb)

    def out_of_order(o):
        ch = chunks(o)
        return join(ch[1:2] + ch[0:1] + ch[2:])  # a dim before dataflow

    def unknown_field(o):
        return join(chunks(o)) + ld(15, b"surprise")

    def not_utf8(o):
        ch = chunks(o)
        ch = [(3, key(3, 2) + varint(2) + b"\xff\xfe") if f == 3 else (f, c)
              for f, c in ch]
        return join(ch)

    def wrong_wire_type(o):
        ch = chunks(o)
        ch = [(3, key(3, 0) + varint(2023)) if f == 3 else (f, c)
              for f, c in ch]
        return join(ch)

    def tombstone_replace(o):
        o2 = type(o)()
        o2.CopyFrom(o)
        o2.ClearField("value")
        del o2.attrs[:]
        o2.version.tombstone = True
        o2.version.content_hash = on.content_hash(o2)
        return o2.SerializeToString(deterministic=True)  # action REPLACE

    def delete_not_tombstone(o):
        o2 = type(o)()
        o2.CopyFrom(o)
        o2.version.action = pb.ACTION_DELETE
        return o2.SerializeToString(deterministic=True)

    def tombstone_with_value(o):
        o2 = type(o)()
        o2.CopyFrom(o)
        del o2.attrs[:]
        o2.version.action = pb.ACTION_DELETE
        o2.version.tombstone = True
        o2.version.content_hash = on.content_hash(o2)
        return o2.SerializeToString(deterministic=True)

    def long_origin(o):
        o2 = type(o)()
        o2.CopyFrom(o)
        o2.version.batch_id = "b" * 64  # a Version id over 63 bytes
        return o2.SerializeToString(deterministic=True)

    def nul_in_string(o):
        o2 = type(o)()
        o2.CopyFrom(o)
        o2.version.batch_id = "put\0x"
        return o2.SerializeToString(deterministic=True)

    return [("version encoded twice", version_twice),
            ("attrs not sorted by id", unsorted),
            ("an attr id twice", dup_attr),
            ("an empty attr value", empty_attr),
            ("a proto3 default encoded (tombstone = false)",
             explicit_default),
            ("fields out of number order", out_of_order),
            ("an unknown field (15)", unknown_field),
            ("time_period not UTF-8", not_utf8),
            ("time_period as a varint (wrong wire type)", wrong_wire_type),
            ("tombstone with action REPLACE", tombstone_replace),
            ("action DELETE but no tombstone", delete_not_tombstone),
            ("a tombstone with a value", tombstone_with_value),
            ("batch_id of 64 bytes", long_origin),
            ("a NUL byte in batch_id", nul_in_string)]


# ---------------------------------------------------------------- world


class World:
    def __init__(self, env, tag):
        self.env = env
        self.hub, self.mex = cf.hub_with_mex(env, tag)
        self.watch = cf.streaming(env, self.hub, "PYWATCH", provider="OID")
        self.n = 0
        self.key_i = 0

    def fresh(self, **kw):
        self.n += 1
        n = cf.node(self.env, self.hub, "PYBAD%d" % self.n, provider="COL",
                    auto_reconnect=False, **kw)
        cf.wait(n, lambda: n.state == "streaming", 10, "%s streaming" %
                n.name)
        n.pause_publishing(True)
        return n

    def change(self, n, register=True, **kw):
        """A valid change of a new key, registered as n's next change."""
        self.key_i += 1
        dims, period = cf.ident("COL", self.key_i)
        o = n.make_change(cf.DF, dims, period, cf.value(self.env.rng),
                          dict(cf.ATTRS), **kw)
        if register:
            n.add(o)
        return o

    def serves(self, what):
        cf.serves(self.hub, self.mex, self.watch, self.env.rng, what)

    def absent(self, o, what):
        """The hub does not hold o's key."""
        r = self.hub.cli("get", o.dataflow, ".".join(o.dims), o.time_period,
                         check=None)
        cf.soft_eq(self.env, r.rc, h.EXIT_NOT_FOUND,
                   "%s: `get` %s %s at the hub exits 4" %
                   (what, ".".join(o.dims), o.time_period))

    def last_seq(self, node_id):
        st = rh.must_status(self.hub)
        rows = rh.peer_rows(st)
        return rows[node_id].get("last_origin_seq", 0) if node_id in rows \
            else 0


def expect(env, n, code, what, timeout=2):
    """The hub answers at once (a frame it checks on arrival, or the
    group commit of the Publish): 2 s is plenty."""
    cf.expect_goodbye(env, n, n.session, code, what, timeout=timeout)
    if n.goodbyes:
        cf.soft_eq(env, len(n.goodbyes), 1, "%s: one Goodbye" % what)


@cf.case
def test_publish_shape(env):
    w = World(env, "shape")
    # last_seq does not match the changes
    n = w.fresh()
    a, b = w.change(n), w.change(n)
    n.send_publish(1, [n.own[1], n.own[2]], last_seq=3)
    expect(env, n, on.OBS_EPROTO, "Publish{1..3} with 2 changes")
    n.close(goodbye=False)
    # a Publish that fails its own checks gives no change (RULES.md 1)
    w.absent(a, "change 1 of the refused Publish")
    w.absent(b, "change 2 of the refused Publish")
    w.serves("last_seq mismatch")

    # origin_seq not consecutive from first_seq (change 1 may be taken)
    n = w.fresh()
    w.change(n)
    w.change(n)
    c = w.change(n)
    n.send_publish(1, [n.own[1], n.own[3]], last_seq=2)
    expect(env, n, on.OBS_EPROTO, "Publish{1..2} holding changes 1 and 3")
    n.close(goodbye=False)
    w.absent(c, "change 3 sent as 2")
    w.serves("origin_seq not consecutive")

    n = w.fresh()
    w.change(n)
    w.change(n)
    n.send_publish(1, [n.own[2]], last_seq=1)
    expect(env, n, on.OBS_EPROTO, "Publish{1..1} holding change 2")
    n.close(goodbye=False)
    w.serves("first change is not first_seq")

    # first_seq 0 (a change numbered 0)
    n = w.fresh()
    o = w.change(n, register=False, seq=0)
    n.send_publish(0, [o.SerializeToString(deterministic=True)])
    expect(env, n, on.OBS_EPROTO, "Publish{0..0} (first_seq 0)")
    n.close(goodbye=False)
    w.serves("first_seq 0")

    # empty
    n = w.fresh()
    n.send_publish(1, [], last_seq=0)
    expect(env, n, on.OBS_EPROTO, "an empty Publish")
    n.close(goodbye=False)
    w.serves("empty Publish")

    # 1,001 changes
    n = w.fresh()
    for _ in range(1001):
        w.change(n)
    n.send_publish(1, [n.own[s] for s in range(1, 1002)])
    expect(env, n, on.OBS_ETOOBIG, "a Publish of 1,001 changes")
    n.close(goodbye=False)
    h.check(w.last_seq(n.node_id) == 0, "none of the 1,001 accepted")
    w.serves("1,001 changes")

    # more than 32 Publish queued
    n = w.fresh()
    for _ in range(40):
        w.change(n)
    rh.sigstop(w.hub)
    try:
        for s in range(1, 41):
            n.send_publish(s, [n.own[s]])
    finally:
        rh.sigcont(w.hub)
    expect(env, n, on.OBS_EPROTO, "40 Publish queued at once")
    n.close(goodbye=False)
    w.serves("40 Publish queued")


@cf.case
def test_clock_ahead(env):
    w = World(env, "clock")
    n = w.fresh()
    w.change(n)
    ahead = (on.wall_ms() + 10 * 60 * 1000) << 16
    future = w.change(n, hlc=ahead)
    w.change(n)
    sess = n.session
    n.pause_publishing(False)
    expect(env, n, on.OBS_ECLOCK, "a change stamped 10 min ahead")
    with n.lock:
        acks = [a for s, a in n.acks if s == sess]
        rejects = [r for s, r in n.rejects if s == sess]
    cf.soft_check(env, acks and acks[-1].acked_seq == 1, "the change before "
                  "it is acknowledged", "acks %r" %
                  [(a.acked_seq, a.resend_from) for a in acks])
    cf.soft_eq(env, [(r.rule, r.line) for r in rejects], [("R-clock", 2)],
               "PublishAck.rejects names it (R-clock, line 2)")
    w.absent(future, "the change stamped ahead")
    # not consumed: a new session is told 1, and the change can be remade
    n.connect()
    cf.wait(n, lambda: n.session > sess and n.welcome is not None, 10,
            "a new session")
    cf.soft_eq(env, n.welcome.last_origin_seq, 1,
               "Welcome.last_origin_seq after the refusal (2 not consumed)")
    n.close()
    w.serves("clock ahead")


@cf.case
def test_non_canonical(env):
    w = World(env, "canon")
    pb = cf.pb(env)
    for what, mutate in mutations(pb):
        n = w.fresh()
        w.change(n)
        bad = w.change(n, register=False)
        data = mutate(bad)
        if data == bad.SerializeToString(deterministic=True):
            h.fail("mutation %r left the bytes as they were" % what)
        n.add(bad, data=data)
        after = w.change(n)
        n.pause_publishing(False)
        expect(env, n, on.OBS_EPROTO, "a change with " + what)
        n.close(goodbye=False)
        w.absent(bad, "the change with " + what)
        w.absent(after, "the change after it")
        last = w.last_seq(n.node_id)
        cf.soft_check(env, last <= 1, "%s: the hub holds at most change 1 "
                      "of the node" % what, "last_origin_seq %d" % last)
        w.serves(what)


if __name__ == "__main__":
    h.main([test_publish_shape, test_clock_ahead, test_non_canonical])
