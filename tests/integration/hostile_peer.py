"""hostile_peer.py - a hostile peer for obsync's sockets: the replication
port of a hub (ZeroMQ ROUTER over TCP) and the local API of any daemon
(ZeroMQ ROUTER on ipc://, a unix stream socket), attacked in bytes and in
sessions. Used by t_hostile_peers.py.

What it is: attacks written from ZMTP 3.1 (rfc.zeromq.org/spec/23, 37)
and proto/obsync.proto, with no code of obsync's. Two kinds:

* byte-level (module functions taking a Target): random bytes, ZMTP
  frames cut short, a long-frame length prefix followed by a trickle,
  half a greeting then silence (slowloris), a NULL handshake then
  silence, and a whole captured connection replayed byte for byte. They
  act on the greeting or on the first frames after a NULL handshake, so
  they do not care what the server runs: a CURVE server (security =
  curve) drops each one at the greeting's mechanism, which is a result
  too; the caller checks only that the daemon stays up and bounded.
* session-level (functions whose first argument is a ready zmq DEALER):
  a valid frame of another protocol version, a frame with a huge repeated
  field, captured frames replayed on a fresh session. They need a peer
  that got through the handshake: today a plain DEALER (security =
  plaintext); with CURVE, give them a DEALER built by dealer() with
  curve=(server public, client public, client secret) in Z85 (an allowed
  key: a stolen or misbehaving node; a key off the allow-list never gets
  a session, which is what CURVE is for).

Frames are built by hand (varints and length-delimited fields, the few
field numbers below from obsync.proto), so the module needs no protoc;
replies are read with the same minimal decoder (decode_fields). The zmq
module is only needed by dealer() and the session-level functions.

What it is not: a test (t_hostile_peers.py is), a conforming node
(tests/conformance/obsnode.py is), or a fuzzer (tests/fuzz/ are).
"""

import errno
import select
import socket
import struct
import threading
import time

# ---------------------------------------------------------------- ZMTP 3

SIGNATURE = b"\xff" + b"\x00" * 8 + b"\x7f"
FLAG_MORE, FLAG_LONG, FLAG_COMMAND = 0x01, 0x02, 0x04


def greeting(mechanism=b"NULL", as_server=False, minor=1):
    """The 64-byte ZMTP 3.x greeting."""
    return (SIGNATURE + bytes([3, minor]) + mechanism.ljust(20, b"\x00") +
            (b"\x01" if as_server else b"\x00") + b"\x00" * 31)


def zmtp_frame(body, more=False, command=False, long=None):
    """One ZMTP frame: flags, a 1- or 8-byte size (long: forced either
    way, else by the size), then body."""
    n = len(body)
    long = n > 255 if long is None else long
    flags = ((FLAG_MORE if more else 0) | (FLAG_COMMAND if command else 0) |
             (FLAG_LONG if long else 0))
    size = struct.pack(">Q", n) if long else bytes([n])
    return bytes([flags]) + size + body


def ready_command(socket_type=b"DEALER", identity=None):
    """The NULL mechanism's READY command with its metadata."""
    def prop(name, value):
        return (bytes([len(name)]) + name + struct.pack(">I", len(value)) +
                value)
    body = b"\x05READY" + prop(b"Socket-Type", socket_type)
    if identity is not None:
        body += prop(b"Identity", identity)
    return zmtp_frame(body, command=True)


# ---------------------------------------------------------------- protobuf


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_bytes(num, payload):
    """A length-delimited field (string, bytes, message)."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def f_varint(num, v):
    return varint(num << 3) + varint(v)


# obsync.proto field numbers used here
ENV_VERSION, ENV_CORR = 1, 2
BODY = {"error": 10, "put": 11, "write_summary": 12, "get": 13,
        "history": 14, "delete": 15, "query": 16, "obs_reply": 17,
        "import_begin": 18, "import_rows": 19, "import_finish": 20,
        "import_progress": 21, "structure_list": 22, "structure_load": 23,
        "structure_reply": 24, "status": 25, "status_reply": 26,
        "hello": 40, "welcome": 41, "publish": 42, "publish_ack": 43,
        "credit": 44, "log_batch": 45, "snapshot_begin": 46,
        "snapshot_chunk": 47, "snapshot_end": 48, "structure_update": 49,
        "heartbeat": 50, "goodbye": 51}
BODY_NAME = {v: k for k, v in BODY.items()}


def envelope(body_name, body=b"", version=1, corr_id=0):
    """An Envelope frame: version, corr_id (when non-zero), the body."""
    out = f_varint(ENV_VERSION, version)
    if corr_id:
        out += f_varint(ENV_CORR, corr_id)
    return out + f_bytes(BODY[body_name], body)


def decode_fields(buf):
    """A protobuf message as [(field, wire type, value)]: varints as ints,
    length-delimited as bytes; None when the bytes do not parse."""
    out, i, n = [], 0, len(buf)

    def get_varint():
        nonlocal i
        v = shift = 0
        while i < n and shift < 70:
            b = buf[i]
            i += 1
            v |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return v
        raise ValueError("varint")
    try:
        while i < n:
            key = get_varint()
            num, wt = key >> 3, key & 7
            if wt == 0:
                out.append((num, wt, get_varint()))
            elif wt == 2:
                ln = get_varint()
                if i + ln > n:
                    return None
                out.append((num, wt, bytes(buf[i:i + ln])))
                i += ln
            elif wt in (1, 5):
                w = 8 if wt == 1 else 4
                if i + w > n:
                    return None
                out.append((num, wt, bytes(buf[i:i + w])))
                i += w
            else:
                return None
    except ValueError:
        return None
    return out


def zigzag(v):
    return (v >> 1) ^ -(v & 1)


def describe_reply(frame):
    """(body name, code, text) of an Envelope: an ErrorReply's or a
    Goodbye's code and message; (name, None, "") for other bodies;
    ("undecodable", None, "") when it does not parse."""
    fields = decode_fields(frame)
    if not fields:
        return ("undecodable", None, "")
    for num, wt, val in fields:
        if num in BODY_NAME and wt == 2:
            name = BODY_NAME[num]
            if name not in ("error", "goodbye"):
                return (name, None, "")
            sub = decode_fields(val) or []
            code_f, text_f = (1, 2) if name == "error" else (2, 1)
            code = next((zigzag(v) for f, w, v in sub
                         if f == code_f and w == 0), 0)
            text = next((v.decode("utf-8", "replace") for f, w, v in sub
                         if f == text_f and w == 2), "")
            return (name, code, text)
    return ("unknown body", None, "")


def body_of(frame):
    """(body name, body bytes) of an Envelope frame, or (None, None)."""
    for num, wt, val in decode_fields(frame) or []:
        if num in BODY_NAME and wt == 2:
            return BODY_NAME[num], val
    return None, None


def with_version(frame, version):
    """The same Envelope with its version field set to version (the
    first field, as every obsync build writes it)."""
    fields = decode_fields(frame)
    if fields is None:
        raise ValueError("not an Envelope")
    out = f_varint(ENV_VERSION, version)
    for num, wt, val in fields:
        if num == ENV_VERSION:
            continue
        out += f_varint(num, val) if wt == 0 else f_bytes(num, val)
    return out


def hello_body(node_id, provider, epoch="0123456789abcdef" * 2):
    """A Hello: node_id, node_epoch, provider (cursor 0, no hub epoch)."""
    return (f_bytes(1, node_id.encode()) + f_bytes(2, epoch.encode()) +
            f_bytes(7, provider.encode()))


def import_rows_empty(n, import_id=1, cells_per_row=0):
    """An ImportRows body of n rows of cells_per_row empty cells (2 bytes a
    row when empty: the most a frame could expand)."""
    row = b"".join(f_bytes(2, b"") for _ in range(cells_per_row))
    return f_varint(1, import_id) + f_bytes(2, row) * n


def publish_empty(n, first_seq=1):
    """A Publish body of n empty changes (repeated bytes field 3)."""
    return (f_varint(1, first_seq) + f_varint(2, first_seq + n - 1) +
            f_bytes(3, b"") * n)


def put_empty(n):
    """A PutRequest body of n empty Observations."""
    return f_bytes(1, b"") * n


# ---------------------------------------------------------------- targets


class Target:
    """Where to attack: ("tcp", host, port) or ("ipc", path). name is for
    the report; source, for tcp, the local address to connect from (a
    loopback address of its own, e.g. 127.0.0.2, so a server that counts
    abuse by address tells the attacker from honest peers on 127.0.0.1)."""

    def __init__(self, name, kind, *addr, source=None):
        self.name, self.kind, self.addr = name, kind, addr
        self.source = source

    @classmethod
    def of_endpoint(cls, name, endpoint):
        """tcp://HOST:PORT or ipc://PATH."""
        if endpoint.startswith("tcp://"):
            host, port = endpoint[6:].rsplit(":", 1)
            return cls(name, "tcp", host, int(port))
        if endpoint.startswith("ipc://"):
            return cls(name, "ipc", endpoint[6:])
        raise ValueError("endpoint %r" % endpoint)

    def endpoint(self):
        """The ZeroMQ endpoint, with the source address when there is one
        (tcp://SOURCE:0;HOST:PORT)."""
        if self.kind == "tcp":
            src = "%s:0;" % self.source if self.source else ""
            return "tcp://%s%s:%d" % ((src,) + self.addr)
        return "ipc://%s" % self.addr[0]

    def socket(self):
        if self.kind == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if self.source:
                s.bind((self.source, 0))
            return s
        return socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)

    def connect(self, timeout=5.0):
        s = self.socket()
        s.settimeout(timeout)
        s.connect(self.addr if self.kind == "tcp" else self.addr[0])
        return s

    def __str__(self):
        return "%s (%s)" % (self.name, self.endpoint())


def zcert_key(path, which="public-key"):
    """A Z85 key from a ZPL certificate (czmq zcert, `obsync keygen`):
    `which` is public-key or secret-key."""
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            if k.strip() == which:
                return v.strip().strip('"')
    raise ValueError("%s: no %s" % (path, which))


def _send_quietly(s, data):
    """Sends what the peer takes; False once it closed on us."""
    try:
        s.sendall(data)
        return True
    except OSError:
        return False


def peer_closed(s, timeout):
    """Reads and drops whatever comes until the peer closes (True) or
    timeout passes with the connection open (False)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            return False
        try:
            if not s.recv(65536):
                return True
        except OSError:
            return True


def read_greeting(s, timeout=5.0):
    """The server's 64-byte greeting, or what came before it closed."""
    s.settimeout(timeout)
    buf = b""
    try:
        while len(buf) < 64:
            d = s.recv(64 - len(buf))
            if not d:
                break
            buf += d
    except OSError:
        pass
    return buf


def null_handshake(s, timeout=5.0):
    """Greeting and READY as a DEALER under the NULL mechanism; True when
    the server answered with its own READY (a CURVE server does not: its
    greeting says CURVE and it closes)."""
    if not _send_quietly(s, greeting()):
        return False
    g = read_greeting(s, timeout)
    if len(g) < 64 or g[12:32].rstrip(b"\x00") != b"NULL":
        return False
    if not _send_quietly(s, ready_command()):
        return False
    try:
        hdr = s.recv(2)
        if len(hdr) < 2 or not hdr[0] & FLAG_COMMAND:
            return False
        body = b""
        while len(body) < hdr[1]:
            d = s.recv(hdr[1] - len(body))
            if not d:
                return False
            body += d
        return body.startswith(b"\x05READY")
    except OSError:
        return False


# ---------------------------------------------------------------- byte level
# Each returns a dict of what happened, for the test's log.


def random_bytes(target, rng, conns=20, size=4096, wait=2.0):
    """conns connections at once, each writing size random bytes (every
    other one after a valid signature, so the random part lands past the
    greeting's first check); counts those the server closed within wait
    seconds (an old-ZMTP reading of the bytes may wait for more)."""
    socks = []
    for i in range(conns):
        s = target.connect()
        data = bytes(rng.getrandbits(8) for _ in range(size))
        if i % 2:
            data = SIGNATURE + data
        _send_quietly(s, data)
        socks.append(s)
    closed, live = 0, list(socks)
    deadline = time.monotonic() + wait
    while live and time.monotonic() < deadline:
        r, _, _ = select.select(live, [], [], deadline - time.monotonic())
        for s in r:
            try:
                gone = not s.recv(65536)
            except OSError:
                gone = True
            if gone:
                closed += 1
                live.remove(s)
    close_all(socks)
    return {"conns": conns, "closed_by_server": closed}


def truncated_frames(target):
    """ZMTP cut short in every place: mid-signature, mid-greeting, a
    greeting then half a READY, a NULL handshake then a frame header
    promising more bytes than come (short and long form), a long-frame
    flag with 3 of its 8 size bytes, a message frame with MORE set and
    nothing after. Each connection is closed by us after the cut."""
    g = greeting()
    body = envelope("status", corr_id=1)
    cuts = [g[:5], g[:40], g + ready_command()[:6]]
    after_handshake = [
        bytes([0x00, 200]) + body,                  # says 200, sends less
        bytes([FLAG_LONG]) + struct.pack(">Q", 4096) + body[:10],
        bytes([FLAG_LONG, 0, 0, 1]),                # 3 of 8 size bytes
        zmtp_frame(body, more=True),                # MORE, then nothing
        zmtp_frame(body)[:-1],                      # last byte missing
    ]
    handshakes = 0
    for cut in cuts:
        s = target.connect()
        _send_quietly(s, cut)
        s.close()
    for cut in after_handshake:
        s = target.connect()
        if null_handshake(s):
            handshakes += 1
            _send_quietly(s, cut)
            time.sleep(0.05)  # let the server read the cut before we go
        s.close()
    return {"cuts": len(cuts) + len(after_handshake),
            "after_null_handshake": handshakes}


def long_frame_trickle(target, declared=100_000_000, seconds=3.0,
                       interval=0.2, chunk=16):
    """A NULL handshake, a message frame whose long-form size says
    `declared` bytes, then chunk bytes every interval seconds for at most
    seconds. Returns whether the server closed the connection and how long
    that took (libzmq checks the size against ZMQ_MAXMSGSIZE when it reads
    the header: over max_frame it closes at once; under it, it allocates
    the whole message up front and waits for it)."""
    s = target.connect()
    res = {"declared": declared, "handshake": null_handshake(s),
           "closed_by_server": False, "after_s": None, "sent": 0}
    t0 = time.monotonic()
    if res["handshake"] and _send_quietly(
            s, bytes([FLAG_LONG]) + struct.pack(">Q", declared)):
        while time.monotonic() - t0 < seconds:
            if peer_closed(s, interval):
                res["closed_by_server"] = True
                break
            if not _send_quietly(s, b"\x00" * chunk):
                res["closed_by_server"] = True
                break
            res["sent"] += chunk
    else:
        res["closed_by_server"] = peer_closed(s, seconds)
    res["after_s"] = round(time.monotonic() - t0, 2)
    s.close()
    return res


def _connect_many(target, n, timeout=20.0):
    """n connections started at once (non-blocking) and waited for;
    returns the connected sockets (a listen backlog that overflows costs a
    SYN retransmit, not a failure)."""
    socks, pending = [], {}
    for _ in range(n):
        s = target.socket()
        s.setblocking(False)
        err = s.connect_ex(target.addr if target.kind == "tcp"
                           else target.addr[0])
        if err in (0, errno.EINPROGRESS):
            pending[s.fileno()] = s
        else:
            s.close()
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        _, w, _ = select.select([], list(pending.values()), [], 0.5)
        for s in w:
            del pending[s.fileno()]
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                socks.append(s)
            else:
                s.close()
    for s in pending.values():
        s.close()
    return socks


def slowloris_half_greeting(target, n):
    """n connections that each send the first 5 bytes of a greeting and
    then nothing. Returns the open sockets (the caller closes them)."""
    socks = _connect_many(target, n)
    for s in socks:
        s.setblocking(True)
        _send_quietly(s, greeting()[:5])
    return socks


def idle_after_handshake(target, n):
    """n connections that complete the NULL handshake and never send a
    message. Returns (open sockets, handshakes completed): against CURVE,
    0 complete and the server closes them."""
    socks = _connect_many(target, n)
    for s in socks:
        s.setblocking(True)
        _send_quietly(s, greeting())
    done = 0
    for s in socks:
        g = read_greeting(s, 5.0)
        if len(g) == 64 and g[12:32].rstrip(b"\x00") == b"NULL" and \
                _send_quietly(s, ready_command()):
            done += 1
    # the servers' READYs are left unread: a silent peer reads nothing
    return socks, done


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# ---------------------------------------------------------------- capture


class TapProxy:
    """A TCP proxy in front of a server that records, for each connection,
    the first `keep` bytes the client sent (a captured session: greeting,
    handshake, frames). Runs on its own thread; stop() ends it."""

    def __init__(self, upstream_host, upstream_port, keep=1 << 20):
        self.up = (upstream_host, upstream_port)
        self.keep = keep
        self.captures = []  # one bytearray per connection, client -> server
        self.lock = threading.Lock()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.endpoint = "tcp://127.0.0.1:%d" % self.port
        self.stopping = False
        self.pairs = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        for a, b, _ in self.pairs:
            close_all([a, b])
        self.lsock.close()

    def _run(self):
        while not self.stopping:
            socks = [self.lsock] + [x for a, b, _ in self.pairs
                                    for x in (a, b)]
            try:
                r, _, _ = select.select(socks, [], [], 0.1)
            except (OSError, ValueError):
                self.pairs = [p for p in self.pairs
                              if p[0].fileno() >= 0 and p[1].fileno() >= 0]
                continue
            for s in r:
                if s is self.lsock:
                    self._accept()
                else:
                    self._pump(s)

    def _accept(self):
        try:
            c, _ = self.lsock.accept()
            u = socket.create_connection(self.up, timeout=5)
        except OSError:
            return
        buf = bytearray()
        with self.lock:
            self.captures.append(buf)
        self.pairs.append((c, u, buf))

    def _pump(self, s):
        for pair in list(self.pairs):
            c, u, buf = pair
            if s is not c and s is not u:
                continue
            other = u if s is c else c
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                close_all([c, u])
                self.pairs.remove(pair)
                return
            if s is c and len(buf) < self.keep:
                with self.lock:
                    buf.extend(data[:self.keep - len(buf)])
            try:
                other.sendall(data)
            except OSError:
                close_all([c, u])
                self.pairs.remove(pair)
            return

    def sessions(self):
        with self.lock:
            return [bytes(b) for b in self.captures]


def zmtp_messages(stream):
    """The messages of a captured client -> server ZMTP stream under the
    NULL mechanism, as lists of frames, commands left out (None: not a
    NULL session, e.g. CURVE, whose frames are sealed)."""
    if len(stream) < 64 or not stream.startswith(SIGNATURE[:1]) or \
            stream[12:32].rstrip(b"\x00") != b"NULL":
        return None
    i, msgs, cur = 64, [], []
    while i < len(stream):
        flags = stream[i]
        if flags & FLAG_LONG:
            if i + 9 > len(stream):
                break
            n = struct.unpack(">Q", stream[i + 1:i + 9])[0]
            i += 9
        else:
            if i + 2 > len(stream):
                break
            n = stream[i + 1]
            i += 2
        if i + n > len(stream):
            break
        body = stream[i:i + n]
        i += n
        if flags & FLAG_COMMAND:
            continue
        cur.append(body)
        if not flags & FLAG_MORE:
            msgs.append(cur)
            cur = []
    return msgs


def replay_stream(target, stream, wait=2.0):
    """A whole captured connection sent again, byte for byte, on a new
    connection, while what the server sends back is read (until it closes
    or wait seconds after the last byte went). Returns (bytes received,
    closed by the server). Under NULL the server reads the captured
    handshake and frames as a new session; under CURVE the replayed
    handshake fails (the server's cookie and nonces are new)."""
    s = target.connect()
    got = bytearray()
    state = {"closed": False}

    def reader():
        while True:
            try:
                d = s.recv(65536)
            except OSError:
                state["closed"] = True
                return
            if not d:
                state["closed"] = True
                return
            got.extend(d)
    s.settimeout(wait + 30)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    _send_quietly(s, stream)
    t.join(timeout=wait)
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    t.join(timeout=2)
    s.close()
    return bytes(got), state["closed"]


# ---------------------------------------------------------------- sessions
# These take a connected zmq DEALER: plain today, CURVE-configured later
# (dealer(..., curve=...)). They return the replies seen.


def dealer(ctx, endpoint, curve=None, identity=None):
    """A DEALER connected to endpoint, linger 0. curve: (server public
    key, client public key, client secret key), Z85 text, for a CURVE
    server."""
    import zmq
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    if identity is not None:
        s.setsockopt(zmq.IDENTITY, identity)
    if curve is not None:
        server, public, secret = curve
        s.curve_serverkey = server.encode() if isinstance(server, str) \
            else server
        s.curve_publickey = public.encode() if isinstance(public, str) \
            else public
        s.curve_secretkey = secret.encode() if isinstance(secret, str) \
            else secret
    s.connect(endpoint)
    return s


def recv_replies(sock, timeout=3.0, until=None):
    """Frames received within timeout (each message's last frame), or
    until until(frame) is true for one."""
    got = []
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000)):
            return got
        frames = sock.recv_multipart()
        got.append(frames[-1])
        if until is not None and until(frames[-1]):
            return got


def _answered(frame):
    return describe_reply(frame)[0] in ("error", "goodbye")


def send_other_version(sock, frame, version=2, timeout=3.0):
    """A valid frame re-written with another protocol version; returns
    the replies (an obsync server answers with ErrorReply or Goodbye
    {OBS_EVERSION = -4})."""
    sock.send(with_version(frame, version))
    return recv_replies(sock, timeout, until=_answered)


def send_huge_repeated(sock, body_name, body, corr_id=0, timeout=10.0):
    """One Envelope whose body is mostly a huge repeated field (see
    import_rows_empty, publish_empty, put_empty); returns the replies."""
    sock.send(envelope(body_name, body, corr_id=corr_id))
    return recv_replies(sock, timeout, until=_answered)


def replay_frames(sock, messages, timeout=3.0):
    """Captured messages (lists of frames) sent again on this session, in
    order; returns every reply seen within timeout after the last."""
    for frames in messages:
        sock.send_multipart(frames)
    return recv_replies(sock, timeout)


def local_request(sock, body_name, body=b"", corr_id=1, timeout=10.0):
    """A local-API request and its one reply frame (None on timeout)."""
    sock.send(envelope(body_name, body, corr_id=corr_id))
    got = recv_replies(sock, timeout, until=lambda f: True)
    return got[0] if got else None
