"""link_proxy.py - a TCP proxy on 127.0.0.1 that behaves like a slow,
unreliable line, for the slow-link tests and benchmark (stdlib only).

What it is: one listening socket (kernel-chosen port) that forwards every
connection to a target address, each direction through a pump thread that
caps the bandwidth (a token bucket, bytes/s), adds latency (each chunk is
held until its arrival time plus latency), and honours stalls (periodic
windows in which nothing moves, connections kept open) and a blackhole
switch (nothing moves until healed; new connections are accepted and held).
Bytes wait in the pump's buffer (at most BUFFER bytes, then reading stops,
so TCP's back-pressure reaches the sender as on a real line) and are
delivered when the line moves again, as TCP would after retransmitting.
What it is not: a packet-level emulator (no loss, no reordering: TCP hides
those from ZeroMQ anyway).

It counts the bytes it delivered each way and the connections it accepted,
so a test can compare obsync's rate with the line's and count reconnects.

    p = LinkProxy(("127.0.0.1", hub_port), down_bps=20000, up_bps=20000,
                  latency_ms=300)
    p.start()            # p.port: where the node connects
    ...
    p.blackhole(True)    # until p.blackhole(False)
    p.stop()
"""

import collections
import select
import socket
import threading
import time

BUFFER = 64 * 1024  # bytes a pump holds before it stops reading
TICK_S = 0.01


class _Pump(threading.Thread):
    """One direction of one connection."""

    def __init__(self, proxy, src, dst, down):
        super().__init__(daemon=True)
        self.proxy, self.src, self.dst, self.down = proxy, src, dst, down
        self.queue = collections.deque()  # (due time, bytes)
        self.held = 0
        self.eof = False

    def rate(self):
        return self.proxy.down_bps if self.down else self.proxy.up_bps

    def run(self):
        tokens, last = 0.0, time.monotonic()
        try:
            while not self.proxy.stopping:
                now = time.monotonic()
                rate = self.rate()
                burst = max(rate / 10.0, 1500.0)
                if self.proxy.moving(now):
                    tokens = min(burst, tokens + (now - last) * rate)
                last = now
                if not self.eof and self.held < BUFFER:
                    r, _, _ = select.select([self.src], [], [], TICK_S)
                    if r:
                        data = self.src.recv(min(16384, BUFFER - self.held))
                        if not data:
                            self.eof = True
                        else:
                            due = now + self.proxy.latency_ms / 1000.0
                            self.queue.append((due, data))
                            self.held += len(data)
                else:
                    time.sleep(TICK_S)
                while (self.queue and self.proxy.moving(now) and tokens >= 1
                       and self.queue[0][0] <= now):
                    due, data = self.queue.popleft()
                    n = min(len(data), int(tokens))
                    self.dst.sendall(data[:n])
                    tokens -= n
                    self.held -= n
                    self.proxy.count(self.down, n)
                    if n < len(data):
                        self.queue.appendleft((due, data[n:]))
                        break
                if self.eof and not self.queue:
                    break
        except OSError:
            pass
        for s in (self.src, self.dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class LinkProxy:
    """The proxy; rates in bytes/s (0 = unlimited), times in ms/s."""

    def __init__(self, target, down_bps=0, up_bps=0, latency_ms=0,
                 stall_every_s=0, stall_for_s=0, stall_first_s=None):
        self.target = target
        self.down_bps = down_bps or 1e12
        self.up_bps = up_bps or 1e12
        self.latency_ms = latency_ms
        self.stall_every_s = stall_every_s
        self.stall_for_s = stall_for_s
        self.stall_first_s = (stall_every_s - stall_for_s
                              if stall_first_s is None else stall_first_s)
        self.stopping = False
        self.holed = False
        self.connections = 0
        self.bytes_down = 0
        self.bytes_up = 0
        self.stalls_seen = 0
        self._lock = threading.Lock()
        self._socks = []
        self._t0 = time.monotonic()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.endpoint = "tcp://127.0.0.1:%d" % self.port

    # -- the line

    def moving(self, now):
        """False while blackholed or in a stall window."""
        if self.holed:
            return False
        if self.stall_every_s <= 0 or self.stall_for_s <= 0:
            return True
        t = now - self._t0 - self.stall_first_s
        return t < 0 or (t % self.stall_every_s) >= self.stall_for_s

    def blackhole(self, on):
        self.holed = on

    def count(self, down, n):
        with self._lock:
            if down:
                self.bytes_down += n
            else:
                self.bytes_up += n

    # -- life cycle

    def start(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while not self.stopping:
            r, _, _ = select.select([self.lsock], [], [], 0.1)
            if not r:
                continue
            try:
                c, _ = self.lsock.accept()
                t = socket.create_connection(self.target, timeout=5)
            except OSError:
                continue
            t.settimeout(None)
            for s in (c, t):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.connections += 1
                self._socks += [c, t]
            _Pump(self, c, t, down=False).start()  # node -> hub
            _Pump(self, t, c, down=True).start()   # hub -> node

    def stop(self):
        self.stopping = True
        for s in [self.lsock] + self._socks:
            try:
                s.close()
            except OSError:
                pass
