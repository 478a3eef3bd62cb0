"""slow_link.py - what the slow-link tests (t_slow_link_*.py) and the
benchmark (tests/bench/bench_slow_link.py) share: a hub, a fast node COL that
writes, and a node JAM (a small-island observatory) that reaches the hub
through a LinkProxy, all with the DEFAULT heartbeat_ms and peer_timeout_ms
(the point is that nobody has to tune them for a slow line).

run_profile() moves n observations one way through the line and returns
what it measured: seconds, bytes that crossed the line each way, the bytes
the hub counted as delivered to JAM, connections (1 = no reconnect)."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402
from link_proxy import LinkProxy  # noqa: E402

# Profiles from issue 14: (down bytes/s, up bytes/s, latency ms,
# stall every s, stall for s)
PROFILES = {
    "20kBps-300ms": dict(down_bps=20000, up_bps=20000, latency_ms=300),
    "5kBps-stalls": dict(down_bps=5000, up_bps=5000, latency_ms=100,
                         stall_every_s=60, stall_for_s=10, stall_first_s=5),
    "2kBps": dict(down_bps=2000, up_bps=2000, latency_ms=100),
}


def defaults(d):
    """Back to obsyncd's own heartbeat and peer timeout (repl_harness
    shortens them for the other tests)."""
    d.cfg.pop("heartbeat_ms", None)
    d.cfg.pop("peer_timeout_ms", None)
    d.write_config()


def setup(env, tag, proxy_kw):
    hub = rh.hub(env, "hub" + tag, no_sync=True)
    defaults(hub)
    rh.start_hub(hub)
    port = int(hub.endpoint.rsplit(":", 1)[1])
    proxy = LinkProxy(("127.0.0.1", port), **proxy_kw).start()
    env.proxies = getattr(env, "proxies", []) + [proxy]
    col = rh.node(env, "col" + tag, hub, "COL", no_sync=True)
    jam = rh.node(env, "jam" + tag, hub, "JAM", no_sync=True,
                  hub_endpoint=proxy.endpoint)
    for d in (col, jam):
        defaults(d)
    return hub, col, jam, proxy


def import_rows(env, d, n, offset=0):
    """Imports n generated DF_VIOLENCE rows of d's provider's REF_AREA (the
    only area its agreement lets it write)."""
    path = env.path("%s-%d.csv" % (d.name, offset))
    rh.write_rows(path, d.cfg["provider"], n, env.rng, offset=offset)
    r = d.import_(path)
    h.eq(r.summary["rejected"], 0, "%s imported %d rows" % (d.name, n))


def peer(hub, node_id):
    rows = rh.peer_rows(rh.must_status(hub))
    h.check(node_id in rows, "the hub has a row for %s" % node_id, "")
    return rows[node_id]


def wait_moved(hub, nodes, proxy, timeout, what):
    """Waits for convergence; returns the seconds it took."""
    t0 = time.monotonic()
    rh.wait_converged(hub, nodes, timeout, what=what)
    return time.monotonic() - t0


def check_rate(what, seconds, crossed, bps, latency_ms, stalled_s=0.0,
               factor=2.0, slack_s=10.0):
    """The transfer took at most factor x (bytes that crossed / the line's
    rate) + the stalls in it + slack: obsync moved at close to the line's
    speed, not at a fraction of it."""
    ideal = crossed / float(bps)
    bound = factor * ideal + stalled_s + slack_s + latency_ms / 1000.0
    h.log("  ..   %s: %.1f s for %d bytes at %d B/s (ideal %.1f s, bound "
          "%.1f s, %.0f%% of the line)" %
          (what, seconds, crossed, bps, ideal, bound,
           100.0 * ideal / seconds if seconds else 0))
    h.check(seconds <= bound, "%s within %.1fx the line's time" %
            (what, factor), "%.1f s > %.1f s" % (seconds, bound))


def status_fields(st, fields, who):
    for f in fields:
        if f not in st:
            h.fail("%s's status --json has no %r" % (who, f))


def stop_proxies(env):
    for p in getattr(env, "proxies", []):
        p.stop()
    env.proxies = []
