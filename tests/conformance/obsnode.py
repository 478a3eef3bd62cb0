"""obsnode.py - a replication node written from proto/PROTOCOL.md (section 5)
and the schema proto/obsync.proto alone, to check the C hub against the spec.

What it is: an in-memory obsync node in Python. It shares no code with the C
side: the protobuf classes are generated from proto/obsync.proto at test time
(load_pb), the content hash, the canonical-encoding checks, the winner rule,
the flow control and the session state machine are written here from the
spec. It speaks to a real hub over ZeroMQ (a DEALER with routing id
`NODEID-xxxxxxxx`, new for every connection):

* Hello / Welcome (with the fields the spec requires of a Welcome checked),
  StructureUpdate (hash = SHA-256 of the text), Heartbeat both ways,
  peer_timeout_ms of silence ends the session, Goodbye both ways (the code
  and reason recorded), reconnect with a backoff doubling from 100 ms to 5 s;
* snapshot: SnapshotBegin, SnapshotChunk (sent = changes so far, one Credit
  per chunk), SnapshotEnd (fence and total checked; cursor = fence);
* the log stream: LogBatch accepted only when from_seq is the cursor, a gap
  answered with one Credit{resync}, one Credit per batch applied;
* publishing: local changes numbered 1, 2, 3, ... kept in memory, Publish of
  consecutive changes, at most `window` (16) Publish unacknowledged,
  PublishAck handled as the spec says (acked_seq frees the window,
  resend_from restarts from there), Welcome.last_origin_seq resumes;
* a store of current versions with the winner rule (greater hlc, then the
  greater origin in byte order).

Every frame received is checked: one frame, an Envelope that parses,
version 1, corr_id 0, canonical (re-serialised with deterministic=True to the
same bytes, no unknown fields), a body the hub may send in the session's
state; every change in it (LogBatch, SnapshotChunk) is a canonical
Observation (same bytes again, no unknown fields, one version, attrs sorted
by id bytewise, unique, non-empty values) whose content_hash is recomputed
here. Every deviation is appended to `violations`; tests assert it is empty.

What it is not: durable (no disk), a validator of SDMX (the hub is), or a
test by itself. Tests drive it from their thread; it runs its own thread
(ZeroMQ sockets stay on it: requests from tests go through `call`).
"""

import collections
import hashlib
import importlib
import os
import re
import struct
import subprocess
import sys
import threading
import time

import zmq

PROTOCOL_VERSION = 1
WINDOW = 16                  # Publish messages in flight (PROTOCOL.md 5.4)
MAX_CHANGES = 1000           # changes per Publish
MAX_PUBLISH_BYTES = 512 * 1024
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 5.0
DEFAULT_PEER_TIMEOUT_MS = 30000
DEFAULT_HEARTBEAT_MS = 1000

# OBS_E* codes of proto/obs_err.h that travel in Goodbye.code
OBS_OK = 0
OBS_EPROTO = -3
OBS_EVERSION = -4
OBS_ENOENT = -6
OBS_ESTORE = -8
OBS_ETIMEOUT = -11
OBS_ETOOBIG = -12
OBS_EEXIST = -15
OBS_ECLOCK = -19

# a decimal in normal form (PROTOCOL.md 3, RULES.md 7), or NaN, or missing
NORMAL_DECIMAL = re.compile(r"^(-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
                            r"|NaN|)$")
HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")

# bodies a hub may send on the replication socket
HUB_BODIES = {"welcome", "publish_ack", "log_batch", "snapshot_begin",
              "snapshot_chunk", "snapshot_end", "structure_update",
              "heartbeat", "goodbye"}


# ---------------------------------------------------------------- schema


def load_pb(out_dir, source_dir=None):
    """Generates the Python classes of proto/obsync.proto into out_dir with
    protoc and imports them (module obsync_pb2)."""
    source_dir = source_dir or os.environ.get("OBSYNC_SOURCE_DIR") or \
        os.path.abspath(os.path.join(os.path.dirname(
            os.path.abspath(__file__)), "..", ".."))
    proto_dir = os.path.join(source_dir, "proto")
    subprocess.run(["protoc", "--python_out=" + out_dir, "-I", proto_dir,
                    os.path.join(proto_dir, "obsync.proto")], check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    return importlib.import_module("obsync_pb2")


def has_field(msg_or_cls, name):
    """Does the schema give this message a field of that name? (fields the
    spec adds may not be in an older obsync.proto)."""
    return name in msg_or_cls.DESCRIPTOR.fields_by_name


# ---------------------------------------------------------------- content hash


def _field(s):
    """field(s): the 8-byte big-endian length of s's UTF-8 bytes, then them."""
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    return struct.pack(">Q", len(b)) + b


def hash_input(value, attrs, tombstone):
    """The bytes SHA-256 runs over (decision 1 / PROTOCOL.md section 3):
    field("obs-content-v1"), field(value), a 4-byte big-endian attribute
    count, field(id) field(value) for each attribute in the order given
    (sorted by id), one byte 1/0 for the tombstone flag. Identity and the
    other version fields are not in it; a missing value is ""."""
    out = [_field("obs-content-v1"), _field(value or ""),
           struct.pack(">I", len(attrs))]
    for aid, aval in attrs:
        out.append(_field(aid))
        out.append(_field(aval))
    out.append(b"\x01" if tombstone else b"\x00")
    return b"".join(out)


def obs_hash_input(obs):
    return hash_input(obs.value, [(a.id, a.value) for a in obs.attrs],
                      obs.version.tombstone)


def content_hash(obs):
    return hashlib.sha256(obs_hash_input(obs)).digest()


# ---------------------------------------------------------------- canonical


def _unknown_fields_free(msg):
    """True when msg (recursively) holds no field unknown to the schema:
    serialising a copy without them gives the same bytes."""
    c = type(msg)()
    c.CopyFrom(msg)
    c.DiscardUnknownFields()
    return c.SerializeToString(deterministic=True) == \
        msg.SerializeToString(deterministic=True)


def check_observation(pb, data, where):
    """Parses one encoded change and checks it is canonical and its
    content_hash is right. Returns (Observation or None, [problems])."""
    probs = []
    obs = pb.Observation()
    try:
        obs.ParseFromString(bytes(data))
    except Exception as e:  # DecodeError, invalid UTF-8
        return None, ["%s: change does not parse: %s" % (where, e)]
    again = obs.SerializeToString(deterministic=True)
    if again != bytes(data):
        probs.append("%s: change not canonical (%d bytes, re-encoded %d): "
                     "%s" % (where, len(data), len(again),
                             bytes(data).hex()[:400]))
    if not _unknown_fields_free(obs):
        probs.append("%s: change has unknown fields" % where)
    if not obs.HasField("version"):
        probs.append("%s: change has no version" % where)
    ids = [a.id.encode("utf-8") for a in obs.attrs]
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        probs.append("%s: attrs not sorted by id / not unique: %r" %
                     (where, [a.id for a in obs.attrs]))
    empty = [a.id for a in obs.attrs if a.value == ""]
    if empty:
        probs.append("%s: attrs with empty values: %r" % (where, empty))
    strings = [obs.dataflow, obs.time_period, obs.value] + list(obs.dims) + \
        [x for a in obs.attrs for x in (a.id, a.value)] + \
        [obs.version.origin, obs.version.provider, obs.version.base_origin,
         obs.version.batch_id]
    if any("\0" in x for x in strings):
        probs.append("%s: a string with a NUL byte" % where)
    v = obs.version
    if v.tombstone != (v.action == 2):  # ACTION_DELETE
        probs.append("%s: tombstone %s with action %d (a tombstone is "
                     "exactly a DELETE)" % (where, v.tombstone, v.action))
    if v.tombstone and (obs.value or len(obs.attrs)):
        probs.append("%s: a tombstone with a value or attributes" % where)
    if not NORMAL_DECIMAL.fullmatch(obs.value):
        probs.append("%s: value %r not a decimal in normal form" %
                     (where, obs.value))
    if not obs.dataflow or not obs.dims or not obs.time_period:
        probs.append("%s: change without identity: %r" %
                     (where, (obs.dataflow, list(obs.dims),
                              obs.time_period)))
    if len(obs.version.content_hash) != 32:
        probs.append("%s: content_hash of %d bytes" %
                     (where, len(obs.version.content_hash)))
    else:
        want = content_hash(obs)
        if want != obs.version.content_hash:
            probs.append("%s: content_hash %s, recomputed %s (key %s)" %
                         (where, obs.version.content_hash.hex(), want.hex(),
                          obs_key_text(obs)))
    return obs, probs


def check_envelope(pb, data):
    """Parses a frame; returns (Envelope or None, [problems])."""
    env = pb.Envelope()
    try:
        env.ParseFromString(bytes(data))
    except Exception as e:
        return None, ["frame does not parse as an Envelope (%s): %s" %
                      (e, bytes(data).hex()[:200])]
    probs = []
    if env.SerializeToString(deterministic=True) != bytes(data):
        probs.append("%s frame not canonical: %s" %
                     (env.WhichOneof("body"), bytes(data).hex()[:400]))
    if not _unknown_fields_free(env):
        probs.append("%s frame has fields unknown to obsync.proto" %
                     env.WhichOneof("body"))
    if env.version != PROTOCOL_VERSION:
        probs.append("Envelope.version %d" % env.version)
    if env.corr_id != 0:
        probs.append("%s with corr_id %d on the replication socket (senders "
                     "set 0)" % (env.WhichOneof("body"), env.corr_id))
    if env.WhichOneof("body") is None:
        probs.append("Envelope without a body")
    return env, probs


def obs_key(obs):
    return (obs.dataflow, tuple(obs.dims), obs.time_period)


def obs_key_text(obs):
    return "%s %s %s" % (obs.dataflow, ".".join(obs.dims), obs.time_period)


def beats(a, b):
    """Does version a beat version b? Greater hlc; equal hlc: greater origin
    in byte order (PROTOCOL.md 5.4 "Deterministic winner")."""
    return (a.hlc, a.origin.encode("utf-8")) > (b.hlc,
                                                b.origin.encode("utf-8"))


def wall_ms():
    return int(time.time() * 1000)


def new_epoch():
    return os.urandom(16).hex()  # 32 lowercase hex characters


class WaitTimeout(Exception):
    pass


# ---------------------------------------------------------------- the node


class Node:
    """One replication node. Create, start(); tests read its state under
    `with node.lock` (or through the helpers) and close() it at the end."""

    def __init__(self, pb, endpoint, node_id, provider=None, name=None,
                 subscription=None, structure_hash="", adopt_structure=True,
                 max_batch=200, window=WINDOW, auto_reconnect=True,
                 send_hello=True, peer_timeout_ms=DEFAULT_PEER_TIMEOUT_MS,
                 hello_overrides=None, hello_version=PROTOCOL_VERSION,
                 curve=None, log=None):
        self.pb = pb
        # CURVE (PROTOCOL.md §5.2): (the hub's public certificate file, our
        # secret certificate file), in ZeroMQ's certificate format; None:
        # plaintext
        self.curve = None
        if curve is not None:
            import zmq.auth
            server_public, _ = zmq.auth.load_certificate(curve[0])
            public, secret = zmq.auth.load_certificate(curve[1])
            if secret is None:
                raise ValueError("%s holds no secret key" % curve[1])
            self.curve = (server_public, public, secret)
        self.endpoint = endpoint
        self.node_id = node_id
        self.provider = provider if provider is not None else node_id
        self.name = name or node_id
        self.subscription = subscription or {}
        self.structure_hash = structure_hash
        self.adopt_structure = adopt_structure
        self.max_batch = max_batch
        self.window = window
        self.auto_reconnect = auto_reconnect
        self.send_hello = send_hello  # False: connect silent (stranger tests)
        # our own setting, until a Welcome gives the hub's
        self.own_peer_timeout_ms = peer_timeout_ms
        self._log = log or (lambda s: None)

        self.lock = threading.RLock()
        self.ctx = zmq.Context.instance()
        self.sock = None
        self.thread = None
        self.stopping = False
        self._cmds = collections.deque()

        self.node_epoch = new_epoch()
        self.cursor = 0
        self.hub_epoch = ""
        # fields of the Hello replaced (tests of malformed Hellos)
        self.hello_overrides = dict(hello_overrides or {})
        self.hello_version = hello_version

        self.store = {}              # key -> Observation (current version)
        self.hlc = 0
        self.origin_seq = 0          # last local change made
        self.own = {}                # origin_seq -> encoded change
        self.pub_acked = 0
        self.pub_sent = 0
        self.in_flight = []          # end seq of each unacked Publish
        self.max_in_flight = 0
        self.publish_paused = False
        self.heartbeats = True       # send Heartbeats (tests silence it)
        self.credits = True          # grant Credit (tests withhold it)
        self.credit_balance = 0      # LogBatch/SnapshotChunk the hub may send
        self.drop_batches = 0        # tests: LogBatches to lose on arrival

        self.state = "idle"          # idle|hello|snapshot|streaming
        self.session = 0
        self.routing_id = b""
        self.backoff = 0.0
        self.reconnect_at = 0.0
        self.last_recv = 0.0
        self.last_send = 0.0
        self.welcome = None
        self.welcome_at = 0.0
        self.welcome_last_seq = 0    # Welcome.last_origin_seq of the session
        self.heartbeat_ms = DEFAULT_HEARTBEAT_MS
        self.peer_timeout_ms = peer_timeout_ms
        self.session_acked = 0
        self.expected = 0
        self.resyncing = False
        self.snap = None             # {"fence", "count", "keys"}

        # what happened, for the tests
        self.violations = []
        self.events = []             # (session, kind, detail)
        self.welcomes = []           # (session, Welcome)
        self.goodbyes = []           # (session, code or None, reason)
        self.acks = []               # (session, PublishAck)
        self.rejects = []            # (session, RowIssue)
        self.structure_updates = []  # (session, StructureUpdate)
        self.heartbeats_in = 0
        self.hub_log_last = 0
        self.closed_sessions = []    # (session, why)
        self.counts = collections.Counter()

    # ------------------------------------------------------------ control

    def start(self):
        self.thread = threading.Thread(target=self._run, name=self.name,
                                       daemon=True)
        self.thread.start()
        return self

    def close(self, goodbye=True, reason="node stopping"):
        """Ends the session (Goodbye{code 0} unless goodbye=False) and the
        thread."""
        if self.thread is None:
            return
        if goodbye and self.thread.is_alive():
            try:
                self.call(lambda: self._goodbye_and_close(reason), timeout=5)
            except WaitTimeout:
                pass
        self.stopping = True
        self.thread.join(10)
        self.thread = None
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def call(self, fn, timeout=10):
        """Runs fn() on the node's thread (where the socket lives); returns
        its result."""
        done = threading.Event()
        box = {}

        def job():
            try:
                box["r"] = fn()
            except Exception as e:  # handed to the caller
                box["e"] = e
            done.set()
        self._cmds.append(job)
        if not done.wait(timeout):
            raise WaitTimeout("%s: call not run within %s s" %
                              (self.name, timeout))
        if "e" in box:
            raise box["e"]
        return box.get("r")

    def wait(self, pred, timeout, what):
        """Polls pred() (under the lock) until truthy; returns its value."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            with self.lock:
                v = pred()
            if v:
                return v
            if time.monotonic() >= deadline:
                raise WaitTimeout("%s: timed out after %.1f s waiting for %s "
                                  "(state %s, session %d, cursor %d, acked "
                                  "%d/%d, goodbyes %r)" %
                                  (self.name, timeout, what, self.state,
                                   self.session, self.cursor, self.pub_acked,
                                   self.origin_seq, self.goodbyes[-3:]))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.05)

    def reconnect_now(self):
        """Closes the session at once (no Goodbye) and opens a new one."""
        def go():
            self._disconnect("test asked for a reconnect", backoff=False)
            self._connect()
        self.call(go)

    def disconnect(self, goodbye=False, reason="node stopping", code=0):
        """Ends the session and stays idle (auto_reconnect off)."""
        def go():
            self.auto_reconnect = False
            if goodbye:
                self._send_goodbye(reason, code)
            self._disconnect("test disconnected", backoff=False,
                             linger_ms=500 if goodbye else 0)
        self.call(go)

    def connect(self):
        """Reconnects now and keeps reconnecting after failures."""
        def go():
            self.auto_reconnect = True
            self.reconnect_at = 0.0
            if self.state == "idle":
                self._connect()
        self.call(go)

    # ------------------------------------------------------------ loop

    def _run(self):
        with self.lock:
            self._connect()  # the first session, whatever auto_reconnect
        while not self.stopping:
            while self._cmds:
                job = self._cmds.popleft()
                with self.lock:
                    job()
            now = time.monotonic()
            with self.lock:
                if self.sock is None:
                    if self.auto_reconnect and now >= self.reconnect_at:
                        self._connect()
                    else:
                        time.sleep(0.005)
                        continue
            try:
                ready = self.sock.poll(5, zmq.POLLIN)
            except zmq.ZMQError:
                ready = 0
            with self.lock:
                n = 0
                while ready and self.sock is not None and n < 64:
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    n += 1
                    self._on_frames(frames)
                if self.sock is not None:
                    self._tick()
        with self.lock:
            if self.sock is not None:
                self.sock.close(0)
                self.sock = None
                self.state = "idle"

    def _violation(self, what):
        msg = "session %d: %s" % (self.session, what)
        self.violations.append(msg)
        self._log("  !!   %s: violation: %s" % (self.name, msg))

    def _event(self, kind, detail=""):
        self.events.append((self.session, kind, detail))

    # ------------------------------------------------------------ sending

    def _send(self, env):
        if self.sock is None:
            return False
        data = env.SerializeToString(deterministic=True)
        return self._send_frames([data])

    def _send_frames(self, frames):
        if self.sock is None:
            return False
        try:
            self.sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.ZMQError as e:
            self._event("send-failed", str(e))
            return False
        self.last_send = time.monotonic()
        self.counts["frames_out"] += 1
        return True

    def envelope(self, version=PROTOCOL_VERSION):
        env = self.pb.Envelope()
        env.version = version
        return env

    def send_raw(self, frames):
        """Sends frames (a list of bytes) as one message, from the thread."""
        return self.call(lambda: self._send_frames(list(frames)))

    def send_env(self, env):
        return self.call(lambda: self._send(env))

    def _send_goodbye(self, reason, code=0):
        env = self.envelope()
        env.goodbye.reason = reason
        if has_field(self.pb.Goodbye, "code"):
            env.goodbye.code = code
        return self._send(env)

    def _goodbye_and_close(self, reason):
        said = False
        if self.sock is not None and self.state != "idle":
            said = self._send_goodbye(reason, 0)
        self.auto_reconnect = False
        self._disconnect("closed: " + reason, backoff=False,
                         linger_ms=500 if said else 0)

    def _credit(self, batches, resync=False):
        if not self.credits:
            return
        env = self.envelope()
        env.credit.cursor = self.cursor
        env.credit.batches = batches
        if resync:
            env.credit.resync = True
        if self._send(env):
            # resync sets the credit, else it adds (at most 32 held)
            self.credit_balance = batches if resync else \
                min(32, self.credit_balance + batches)

    def _check_size(self, what, changes):
        """At most 1,000 changes and 512 KiB of them (one bigger change
        goes alone): PROTOCOL.md 5.3."""
        size = sum(len(c) for c in changes)
        if len(changes) > MAX_CHANGES or (len(changes) > 1 and
                                          size > MAX_PUBLISH_BYTES):
            self._violation("%s of %d changes, %d bytes" %
                            (what, len(changes), size))

    def _spend_credit(self, what):
        if self.credit_balance <= 0:
            self._violation("%s sent without credit" % what)
        self.credit_balance -= 1

    def grant_credit(self, batches=8, resync=False):
        """Sends a Credit now (tests that withheld it)."""
        def go():
            was = self.credits
            self.credits = True
            self._credit(batches, resync)
            self.credits = was
        self.call(go)

    # ------------------------------------------------------------ session

    def _connect(self):
        self.sock = self.ctx.socket(zmq.DEALER)
        self.routing_id = ("%s-%s" % (self.node_id, os.urandom(4).hex())
                           ).encode("utf-8")
        self.sock.setsockopt(zmq.ROUTING_ID, self.routing_id)
        self.sock.setsockopt(zmq.LINGER, 0)
        if self.curve is not None:
            self.sock.curve_serverkey = self.curve[0]
            self.sock.curve_publickey = self.curve[1]
            self.sock.curve_secretkey = self.curve[2]
        self.sock.connect(self.endpoint)
        self.session += 1
        self.state = "hello"
        now = time.monotonic()
        self.last_recv = now
        self.welcome = None
        self.session_acked = 0
        self.in_flight = []
        self.resyncing = False
        self.snap = None
        self.credit_balance = 0
        self.heartbeat_ms = DEFAULT_HEARTBEAT_MS
        self.peer_timeout_ms = self.own_peer_timeout_ms
        env = self.envelope(self.hello_version)
        hl = env.hello
        hl.node_id = self.node_id
        hl.node_epoch = self.node_epoch
        hl.cursor = self.cursor
        hl.hub_epoch = self.hub_epoch
        hl.subscription.SetInParent()
        hl.subscription.dataflows.extend(self.subscription.get("dataflows",
                                                               []))
        hl.subscription.areas.extend(self.subscription.get("areas", []))
        hl.structure_hash = self.structure_hash
        hl.provider = self.provider
        for k, v in self.hello_overrides.items():
            setattr(hl, k, v)
        self._event("connect", self.routing_id.decode("utf-8", "replace"))
        if self.send_hello:
            self._send(env)

    def _disconnect(self, why, backoff=True, linger_ms=0):
        """Closes the socket; linger_ms > 0 lets a Goodbye just queued
        leave first."""
        if self.sock is not None:
            self.sock.close(linger_ms)
            self.sock = None
        if self.state != "idle" or why:
            self.closed_sessions.append((self.session, why))
            self._event("closed", why)
        self.state = "idle"
        self.in_flight = []
        self.snap = None
        if backoff:
            self.backoff = (BACKOFF_MIN_S if self.backoff == 0 else
                            min(2 * self.backoff, BACKOFF_MAX_S))
            self.reconnect_at = time.monotonic() + self.backoff
        else:
            self.reconnect_at = time.monotonic()

    def _tick(self):
        now = time.monotonic()
        if self.state == "idle":
            return
        if (now - self.last_recv) * 1000 >= self.peer_timeout_ms:
            self._disconnect("hub silent for %d ms (peer_timeout_ms)" %
                             self.peer_timeout_ms)
            return
        # a stranger (send_hello False) stays silent: what the hub answers
        # is then to what the test sends, not to a Heartbeat
        if self.heartbeats and self.send_hello and \
                (now - self.last_send) * 1000 >= self.heartbeat_ms:
            env = self.envelope()
            env.heartbeat.now_ms = wall_ms()
            env.heartbeat.cursor = self.cursor
            self._send(env)
        self._pump()

    # ------------------------------------------------------------ receiving

    def _on_frames(self, frames):
        self.last_recv = time.monotonic()
        self.counts["frames_in"] += 1
        if len(frames) != 1:
            self._violation("a message of %d frames (one frame per message)"
                            % len(frames))
        env, probs = check_envelope(self.pb, frames[-1])
        for p in probs:
            self._violation(p)
        if env is None:
            return
        body = env.WhichOneof("body")
        self.counts[body] += 1
        if body not in HUB_BODIES:
            self._violation("the hub sent %s on the replication socket" %
                            body)
            return
        if self.state == "idle":
            return  # stale
        getattr(self, "_on_" + body)(getattr(env, body))

    def _on_goodbye(self, m):
        code = m.code if has_field(m, "code") else None
        self.goodbyes.append((self.session, code, m.reason))
        self._log("  ..   %s: Goodbye code %s: %s" % (self.name, code,
                                                       m.reason))
        self._disconnect("hub said Goodbye (code %s): %s" % (code, m.reason))

    def _on_welcome(self, w):
        if self.state != "hello":
            self._violation("Welcome in state %s" % self.state)
            return
        self.welcome = w
        self.welcome_at = time.monotonic()
        self.welcomes.append((self.session, w))
        self.backoff = 0.0
        if not w.hub_id:
            self._violation("Welcome without hub_id")
        if not HEX32.match(w.hub_epoch):
            self._violation("Welcome.hub_epoch %r is not 32 lowercase hex" %
                            w.hub_epoch)
        if w.heartbeat_ms == 0:
            self._violation("Welcome.heartbeat_ms is 0")
        else:
            self.heartbeat_ms = w.heartbeat_ms
        if not has_field(w, "peer_timeout_ms"):
            self._violation("Welcome has no peer_timeout_ms field "
                            "(obsync.proto lacks it)")
        elif w.peer_timeout_ms == 0:
            self._violation("Welcome.peer_timeout_ms missing (0)")
        else:
            self.peer_timeout_ms = w.peer_timeout_ms
        if w.now_ms == 0:
            self._violation("Welcome.now_ms missing")
        if w.log_first > w.log_last + 1:
            self._violation("Welcome log_first %d > log_last %d + 1" %
                            (w.log_first, w.log_last))
        # must the hub send a snapshot? (5.4 "Catch-up")
        need = (self.cursor == 0 and w.log_last > 0) or \
            (self.cursor > 0 and (self.cursor + 1 < w.log_first or
                                  self.cursor > w.log_last or
                                  (self.hub_epoch and
                                   self.hub_epoch != w.hub_epoch)))
        if need and not w.snapshot:
            self._violation("no snapshot for cursor %d (epoch %r) against "
                            "log %d..%d (epoch %r)" %
                            (self.cursor, self.hub_epoch, w.log_first,
                             w.log_last, w.hub_epoch))
        if w.last_origin_seq > self.origin_seq:
            self._violation("Welcome.last_origin_seq %d above our last "
                            "change %d (same node_epoch)" %
                            (w.last_origin_seq, self.origin_seq))
        self.welcome_last_seq = w.last_origin_seq
        # resume publishing after what the hub holds (drop or restore)
        self.pub_acked = min(w.last_origin_seq, self.origin_seq)
        self.pub_sent = self.pub_acked
        self.in_flight = []
        self.session_acked = self.pub_acked
        if w.snapshot:
            self.state = "snapshot"
            self.snap = None
        else:
            self.state = "streaming"
            self.hub_epoch = w.hub_epoch
            self.expected = self.cursor
        self.hub_log_last = max(self.hub_log_last, w.log_last)
        self._credit(8)
        self._pump()

    def _on_structure_update(self, m):
        if self.state == "hello":
            self._violation("StructureUpdate before Welcome")
        want = hashlib.sha256(m.text.encode("utf-8")).hexdigest()
        if m.hash != want:
            self._violation("StructureUpdate.hash %r != sha256(text) %s" %
                            (m.hash, want))
        self.structure_updates.append((self.session, m))
        if self.adopt_structure:
            self.structure_hash = m.hash

    def _on_heartbeat(self, m):
        self.heartbeats_in += 1
        if m.now_ms == 0:
            self._violation("Heartbeat without now_ms")
        if self.state != "hello":
            self.hub_log_last = max(self.hub_log_last, m.cursor)

    def _on_snapshot_begin(self, m):
        if self.state != "snapshot" or self.snap is not None:
            self._violation("SnapshotBegin in state %s" % self.state)
            return
        if m.estimated != 0:
            self._violation("SnapshotBegin.estimated %d (reserved: 0)" %
                            m.estimated)
        self.snap = {"fence": m.fence_seq, "count": 0, "keys": set()}
        self._event("snapshot-begin", m.fence_seq)

    def _on_snapshot_chunk(self, m):
        if self.state != "snapshot" or self.snap is None:
            self._violation("SnapshotChunk in state %s" % self.state)
            return
        self._spend_credit("SnapshotChunk")
        self._check_size("SnapshotChunk", m.changes)
        snap = self.snap
        for i, data in enumerate(m.changes):
            obs, probs = check_observation(
                self.pb, data, "SnapshotChunk change %d" % (snap["count"] + i))
            for p in probs:
                self._violation(p)
            if obs is None:
                continue
            k = obs_key(obs)
            if k in snap["keys"]:
                self._violation("snapshot holds %s twice" % obs_key_text(obs))
            snap["keys"].add(k)
            if obs.version.hub_seq == 0:
                self._violation("snapshot change %s without hub_seq" %
                                obs_key_text(obs))
            self._apply(obs)
        snap["count"] += len(m.changes)
        self.counts["snapshot_changes"] += len(m.changes)
        if m.sent != snap["count"]:
            self._violation("SnapshotChunk.sent %d, %d changes received" %
                            (m.sent, snap["count"]))
            self._disconnect("snapshot count mismatch")
            return
        self._credit(1)

    def _on_snapshot_end(self, m):
        if self.state != "snapshot" or self.snap is None:
            self._violation("SnapshotEnd in state %s" % self.state)
            return
        if m.fence_seq != self.snap["fence"] or \
                m.total != self.snap["count"]:
            self._violation("SnapshotEnd fence %d total %d; begun at %d, %d "
                            "received" % (m.fence_seq, m.total,
                                          self.snap["fence"],
                                          self.snap["count"]))
            self._disconnect("snapshot end mismatch")
            return
        self.cursor = m.fence_seq
        self.hub_epoch = self.welcome.hub_epoch
        self.expected = self.cursor
        self.state = "streaming"
        self.counts["snapshots"] += 1
        self._event("snapshot-end", "%d changes fenced at %d" %
                    (m.total, m.fence_seq))
        self.snap = None

    def _on_log_batch(self, m):
        if self.state != "streaming":
            self._violation("LogBatch in state %s" % self.state)
            return
        if self.drop_batches > 0 and m.from_seq == self.expected:
            # lost on the way (tests): as if dropped at a high-water mark
            self.drop_batches -= 1
            self.credit_balance -= 1
            self.counts["dropped"] += 1
            self._event("dropped", "%d..%d" % (m.from_seq, m.to_seq))
            return
        if m.from_seq != self.expected:
            self.counts["gaps"] += 1
            if not self.resyncing:
                self.resyncing = True
                self.expected = self.cursor
                self._event("resync", "batch from %d, cursor %d" %
                            (m.from_seq, self.cursor))
                self._credit(8, resync=True)
            return
        self._spend_credit("LogBatch %d..%d" % (m.from_seq, m.to_seq))
        self._check_size("LogBatch %d..%d" % (m.from_seq, m.to_seq),
                         m.changes)
        if m.log_last_ms != 0:
            self._violation("LogBatch.log_last_ms %d (reserved: 0)" %
                            m.log_last_ms)
        if m.to_seq <= m.from_seq:
            self._violation("LogBatch from %d to %d" % (m.from_seq,
                                                         m.to_seq))
        if m.log_last < m.to_seq:
            self._violation("LogBatch to %d past its log_last %d" %
                            (m.to_seq, m.log_last))
        prev = m.from_seq
        for i, data in enumerate(m.changes):
            obs, probs = check_observation(
                self.pb, data, "LogBatch %d..%d change %d" %
                (m.from_seq, m.to_seq, i))
            for p in probs:
                self._violation(p)
            if obs is None:
                continue
            hs = obs.version.hub_seq
            if not prev < hs <= m.to_seq:
                self._violation("LogBatch %d..%d: change with hub_seq %d "
                                "(after %d)" % (m.from_seq, m.to_seq, hs,
                                                prev))
            prev = max(prev, hs)
            if obs.version.origin == self.node_id and \
                    obs.version.origin_seq > self.welcome_last_seq:
                self._violation("own change %d of this session echoed "
                                "(hub_seq %d)" % (obs.version.origin_seq, hs))
            self._apply(obs)
        self.counts["log_changes"] += len(m.changes)
        self.counts["batches"] += 1
        self.cursor = m.to_seq
        self.expected = m.to_seq
        self.hub_log_last = max(self.hub_log_last, m.log_last)
        self.resyncing = False
        self._credit(1)

    def _on_publish_ack(self, m):
        if self.state == "hello":
            self._violation("PublishAck before Welcome")
            return
        self.acks.append((self.session, m))
        for r in m.rejects:
            self.rejects.append((self.session, r))
        if m.acked_seq < self.session_acked:
            self._violation("PublishAck.acked_seq went back from %d to %d" %
                            (self.session_acked, m.acked_seq))
        if m.acked_seq > self.origin_seq:
            self._violation("PublishAck.acked_seq %d beyond our last change "
                            "%d" % (m.acked_seq, self.origin_seq))
        self.session_acked = max(self.session_acked, m.acked_seq)
        if m.acked_seq > self.pub_acked:
            self.pub_acked = min(m.acked_seq, self.origin_seq)
        self.in_flight = [e for e in self.in_flight if e > m.acked_seq]
        if m.resend_from:
            self._event("resend-from", m.resend_from)
            self.pub_sent = max(self.pub_acked, m.resend_from - 1)
            self.in_flight = []
        self._pump()

    # ------------------------------------------------------------ store

    def _apply(self, obs):
        """A received version: kept when it beats the current one."""
        self.hlc = max(self.hlc, obs.version.hlc)
        k = obs_key(obs)
        cur = self.store.get(k)
        if cur is None or beats(obs.version, cur.version):
            self.store[k] = obs
            self.counts["applied"] += 1
        else:
            self.counts["not_newer"] += 1

    # ------------------------------------------------------------ publishing

    def _pump(self):
        if self.publish_paused or self.state not in ("snapshot",
                                                     "streaming"):
            return
        while len(self.in_flight) < self.window and \
                self.pub_sent < self.origin_seq:
            first = self.pub_sent + 1
            changes, size, seq = [], 0, first
            while seq <= self.origin_seq and len(changes) < self.max_batch:
                data = self.own[seq]
                if changes and size + len(data) > MAX_PUBLISH_BYTES:
                    break
                changes.append(data)
                size += len(data)
                seq += 1
            env = self.envelope()
            env.publish.first_seq = first
            env.publish.last_seq = first + len(changes) - 1
            env.publish.changes.extend(changes)
            if not self._send(env):
                return
            self.pub_sent = first + len(changes) - 1
            self.in_flight.append(self.pub_sent)
            self.max_in_flight = max(self.max_in_flight, len(self.in_flight))
            self.counts["publishes"] += 1

    def _next_hlc(self, cur):
        h = max(wall_ms() << 16, self.hlc + 1)
        if cur is not None:
            h = max(h, cur.version.hlc + 1)
        self.hlc = h
        return h

    def make_change(self, dataflow, dims, period, value="", attrs=None,
                    action="replace", batch_id=None, hlc=None,
                    tombstone=False, seq=None):
        """Builds the next local change (not yet registered): the whole
        resulting observation with its version. action merge keeps the
        attributes of the current version that attrs does not give; delete
        makes a tombstone (identity only)."""
        pb = self.pb
        key = (dataflow, tuple(dims), period)
        with self.lock:
            cur = self.store.get(key)
            live = cur if cur is not None and not cur.version.tombstone \
                else None
            a = {}
            if action == "merge" and live is not None:
                a = {x.id: x.value for x in live.attrs}
            a.update({k: v for k, v in (attrs or {}).items() if v != ""})
            obs = pb.Observation()
            obs.dataflow = dataflow
            obs.dims.extend(dims)
            obs.time_period = period
            if action == "delete":
                tombstone = True
                a = {}
            elif action == "merge" and value is None and live is not None:
                value = live.value
            if not tombstone:
                obs.value = value or ""
            for k in sorted(a, key=lambda s: s.encode("utf-8")):
                at = obs.attrs.add()
                at.id = k
                at.value = a[k]
            v = obs.version
            v.hlc = hlc if hlc is not None else self._next_hlc(cur)
            v.origin = self.node_id
            v.origin_seq = seq if seq is not None else self.origin_seq + 1
            v.provider = self.provider
            if cur is not None:
                v.base_hlc = cur.version.hlc
                v.base_origin = cur.version.origin
                v.base_origin_seq = cur.version.origin_seq
            v.action = {"merge": pb.ACTION_MERGE,
                        "replace": pb.ACTION_REPLACE,
                        "delete": pb.ACTION_DELETE}[action]
            v.batch_id = batch_id or "put-%s-%d" % (self.node_id.lower(),
                                                    v.origin_seq)
            v.tombstone = tombstone
            v.content_hash = content_hash(obs)
            return obs

    def add(self, obs, data=None, apply=True):
        """Registers a change made by make_change (its origin_seq must be
        the next one) as a local change; data: its encoding (default the
        canonical one; tests pass broken bytes). Returns the origin_seq."""
        with self.lock:
            seq = obs.version.origin_seq
            if seq != self.origin_seq + 1:
                raise ValueError("change %d is not the next (%d)" %
                                 (seq, self.origin_seq + 1))
            self.own[seq] = data if data is not None else \
                obs.SerializeToString(deterministic=True)
            self.origin_seq = seq
            if apply:
                k = obs_key(obs)
                cur = self.store.get(k)
                if cur is None or beats(obs.version, cur.version):
                    self.store[k] = obs
        self._cmds.append(lambda: self._pump())
        return seq

    def put(self, dataflow, dims, period, value, attrs=None,
            action="replace", **kw):
        return self.add(self.make_change(dataflow, dims, period, value,
                                         attrs, action, **kw))

    def delete(self, dataflow, dims, period, **kw):
        return self.add(self.make_change(dataflow, dims, period,
                                         action="delete", **kw))

    def pause_publishing(self, paused=True):
        def go():
            self.publish_paused = paused
            self._pump()
        self.call(go)

    def send_publish(self, first_seq, changes, last_seq=None):
        """Sends one Publish as given, outside the window (tests)."""
        env = self.envelope()
        env.publish.first_seq = first_seq
        env.publish.last_seq = (last_seq if last_seq is not None else
                                first_seq + len(changes) - 1)
        env.publish.changes.extend(changes)
        return self.send_env(env)

    # ------------------------------------------------------------ views

    def all_acked(self):
        return self.pub_acked >= self.origin_seq

    def caught_up(self, log_last):
        return self.state == "streaming" and self.cursor >= log_last

    def snapshot_store(self):
        """{key: Observation} copy of the current versions."""
        with self.lock:
            return dict(self.store)

    def last_goodbye(self):
        with self.lock:
            return self.goodbyes[-1] if self.goodbyes else None

    def goodbyes_since(self, session):
        with self.lock:
            return [g for g in self.goodbyes if g[0] >= session]

    def last_ack(self):
        with self.lock:
            return self.acks[-1][1] if self.acks else None
