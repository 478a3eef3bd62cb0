"""repl_harness.py - helpers for the replication integration tests
(tests/integration/t_repl_*.py): a hub and several nodes on loopback, driven
with the real obsync CLI.

What it is: a thin layer over harness.py (which starts/stops daemons, runs
the CLI, polls with wait_until, seeds from OBSYNC_TEST_SEED and kills every
process at the end even on failure). This module adds: hub and node configs
(CURVE replication, keys made with `obsync keygen` and the hub's allow-list
filled as nodes are made; on a fixed free loopback port, so a restarted hub
keeps its endpoint), the replication fields of `status --json` (repl_state,
log_last, state_applied, lag_changes, peers, snapshots: the CLI always prints
them, so a missing one fails the test rather than weakening a check),
convergence waits, byte-for-byte export
comparison, generated DF_VIOLENCE rows restricted to one provider's areas,
per-country real sample files (deploy/sample-data/*.csv, one REF_AREA) and
VmRSS sampling. What it is not: a test; each t_repl_*.py is one ctest
`integration.repl_*` that passes iff it exits 0.

Comparing stores: `obsync export --format csv` prints only data (dimension
codes, TIME_PERIOD, OBS_VALUE, attributes) in canonical key order, never
version metadata, so it must be byte-identical on every daemon.
compare_versions() additionally compares every observation's replicated
version (hlc, origin, origin_seq, provider, action, tombstone, batch_id)
from `export --format jsonl` and ignores `hub_seq`, which is local: the
originating node keeps hub_seq 0 on its own write (the hub does not echo
it back, and an echo from before a reconnect is a no-op), while the hub and the other nodes hold the
hub's number.
"""

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# Replication tests run several daemons and large streams: allow them most of
# ctest's 600 s (harness.py's default file deadline is 280 s).
if "OBSYNC_TEST_DEADLINE" not in os.environ:
    h.FILE_DEADLINE_S = 540

HEARTBEAT_MS = 200
PEER_TIMEOUT_MS = 1500

# `history` and friends print the version under this key in --json output.
VERSION_FIELDS = ("hlc", "origin", "origin_seq", "provider", "action",
                  "tombstone", "batch_id")


def free_port():
    """A loopback TCP port that was free a moment ago (bind to 0, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- keys


def keygen(env, name, provider=None, hub=False):
    """`obsync keygen` into the test's key directory, once per (name,
    provider): returns (public file, secret file)."""
    kdir = env.path("keys")
    os.makedirs(kdir, exist_ok=True)
    stem = name if hub else "%s-%s" % (name, provider or name)
    sub = os.path.join(kdir, stem)
    pub = os.path.join(sub, name + ".key")
    if not os.path.exists(pub):
        os.makedirs(sub, exist_ok=True)
        argv = [h.OBSYNC, "keygen", name, "--dir", sub]
        argv += ["--hub"] if hub else ["--provider", provider or name]
        res = h.run(argv)
        if res.rc != 0:
            h.fail("obsync keygen failed: %s" % res.describe())
    return pub, pub + "_secret"


def allow(hub_d, pub, as_name=None, reload=True):
    """Puts a node's public certificate in hub_d's allow-list directory.
    A running hub re-reads it within a heartbeat; reload=True makes it take
    effect now (`obsync reload`), so a node started next is let in at its
    first handshake (libzmq does not retry a handshake the hub refused).
    Returns the path there."""
    dst = os.path.join(hub_d.allow_dir, as_name or os.path.basename(pub))
    with open(pub, "rb") as f:
        data = f.read()
    tmp = dst + ".tmp~"  # skipped by the hub until renamed
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, dst)
    if reload:
        reload_allow(hub_d)
    return dst


def disallow(hub_d, name, reload=True):
    """Removes NAME (a file name in the allow-list directory); reload as
    for allow()."""
    os.unlink(os.path.join(hub_d.allow_dir, name))
    if reload:
        reload_allow(hub_d)


def reload_allow(hub_d):
    """`obsync reload` at a running hub (nothing when it is not running:
    it reads the directory when it starts)."""
    if hub_d.running():
        hub_d.cli("reload", check=0)


# ---------------------------------------------------------------- daemons


def _fresh(env, name):
    """Daemon names are directories of the test file's temp dir: a second
    case reusing a name would silently reuse the first one's store."""
    if os.path.exists(env.path(name)):
        h.fail("daemon name %r already used in this test file" % name)


def hub(env, name="hub", port=None, no_sync=False, security="curve",
        **extra):
    """A hub daemon (node_id HUB, provider OID) bound to a fixed loopback
    port (picked here when not given), so a restart keeps the endpoint.
    d.endpoint is what nodes connect to. With CURVE (the default) its key
    pair is d.public_key / d.secret_key and its allow-list directory
    d.allow_dir (node() adds each node's key)."""
    _fresh(env, name)
    port = port or free_port()
    cfg = {"role": "hub", "node_id": "HUB", "provider": "OID",
           "repl_bind": "tcp://127.0.0.1:%d" % port, "security": security,
           "heartbeat_ms": HEARTBEAT_MS, "peer_timeout_ms": PEER_TIMEOUT_MS}
    allow_dir = env.path(name + "-allow")
    if security == "curve":
        pub, sec = keygen(env, name.upper(), hub=True)
        os.makedirs(allow_dir, exist_ok=True)
        cfg.update({"curve_secret_key": sec, "curve_allow_dir": allow_dir})
    cfg.update(extra)
    d = env.daemon(name, no_sync=no_sync, **cfg)
    d.endpoint = "tcp://127.0.0.1:%d" % port
    d.is_hub = True
    d.security = security
    d.allow_dir = allow_dir
    if security == "curve":
        d.public_key, d.secret_key = pub, sec
    return d


def start_hub(d, timeout=h.START_TIMEOUT_S):
    """Starts a hub and checks that it wrote its endpoint file. One status
    call that hangs past harness.py's 10 s while the daemon runs (seen once
    under ASan on a loaded machine) does not fail the start: polling goes on
    until timeout."""
    t0 = time.monotonic()
    try:
        d.start(timeout)
    except h.TestFailure as e:
        if not d.running() or "did not finish" not in str(e):
            raise
        h.log("  ..   %s: %s; still waiting" % (d.name, e))
        h.wait_until(lambda: status(d, timeout=10),
                     max(1.0, timeout - (time.monotonic() - t0)),
                     "hub %s to answer status" % d.name)
    path = os.path.join(d.data_dir, "repl.endpoint")
    got = h.wait_until(lambda: _read(path), 10, "%s to write %s" %
                       (d.name, path))
    if got.strip() != d.endpoint:
        h.fail("hub %s: repl.endpoint says %r, configured %r" %
               (d.name, got.strip(), d.endpoint))
    return d


def _read(path):
    try:
        with open(path) as f:
            return f.read() or None
    except OSError:
        return None


def node(env, name, hub_d, node_id=None, provider=None, no_sync=False,
         allowed=True, **extra):
    """A node daemon replicating with hub_d; node_id defaults to the name
    upper-cased and provider to node_id. With a CURVE hub the node gets a
    key pair (d.public_key, d.secret_key) from `obsync keygen`, pins the
    hub's key, and (allowed=True) its public key goes in the hub's
    allow-list as NODE_ID-PROVIDER.key."""
    _fresh(env, name)
    node_id = node_id or name.upper()
    provider = provider or node_id
    security = getattr(hub_d, "security", "plaintext")
    cfg = {"role": "node", "node_id": node_id,
           "provider": provider, "hub_endpoint": hub_d.endpoint,
           "security": security, "heartbeat_ms": HEARTBEAT_MS,
           "peer_timeout_ms": PEER_TIMEOUT_MS}
    if security == "curve":
        pub, sec = keygen(env, node_id, provider)
        cfg.update({"curve_secret_key": sec,
                    "hub_public_key": hub_d.public_key})
        if allowed:
            allow(hub_d, pub, "%s-%s.key" % (node_id, provider))
    cfg.update(extra)
    d = env.daemon(name, no_sync=no_sync, **cfg)
    d.is_hub = False
    d.security = security
    if security == "curve":
        d.public_key, d.secret_key = pub, sec
    return d


# ---------------------------------------------------------------- status


def status(d, timeout=30):
    """`status --json` as a dict, or None when the daemon does not answer
    (busy, restarting)."""
    if not d.running():
        return None
    try:
        r = d.cli("status", json=True, check=None, timeout=timeout)
    except h.TestFailure:
        return None
    if r.rc != 0:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def must_status(d):
    st = status(d)
    if st is None:
        h.fail("daemon %s does not answer status" % d.name)
    return st


def need(st, *fields, who="status --json"):
    """Fails unless every field is in st (a status or a peer row): the CLI
    prints them all, so a missing one is a bug, not a reason to skip a
    check."""
    missing = [f for f in fields if f not in st]
    if missing:
        h.fail("%s has no %s: %r" % (who, ", ".join(missing), st))
    return st


def hub_log_last(st):
    """The hub's newest hub_seq from its status (`log_last`)."""
    return need(st, "log_last")["log_last"]


def peer_rows(st):
    """{node_id: row} of a hub's status (`peers`, one row per node)."""
    need(st, "peers")
    return {need(p, "node_id", who="a peers row")["node_id"]: p
            for p in st["peers"]}


def peer_row(st, node_id):
    """The hub's row for node_id; fails when the hub lists no such node."""
    rows = peer_rows(st)
    if node_id not in rows:
        h.fail("the hub's status has no peers row for %s (rows: %s)" %
               (node_id, ", ".join(sorted(rows)) or "none"))
    return rows[node_id]


def describe(daemons):
    """One line per daemon with the counters that matter here."""
    out = []
    for d in daemons:
        st = status(d, timeout=10)
        if st is None:
            out.append("%s: (no status)" % d.name)
            continue
        keys = ["observations", "tombstones", "history_versions",
                "outbox_depth", "last_origin_seq", "hub_cursor", "repl_state",
                "log_first", "log_last", "lag_changes", "snapshots"]
        out.append("%s: %s" % (d.name, ", ".join(
            "%s=%s" % (k, st[k]) for k in keys if k in st)))
    return "\n".join(out)


def check_alive(daemons):
    """Fails at once (instead of at a poll's timeout) when a daemon that
    should be running has exited, e.g. crashed or aborted by a sanitizer."""
    for d in daemons:
        if d.proc is not None and d.proc.poll() is not None:
            h.fail("daemon %s (pid %d) exited with %d; its log ends:\n%s" %
                   (d.name, d.proc.pid, d.proc.returncode, d.log_tail(60)))


def converged(hub_d, nodes, full=None):
    """One poll: the hub's state has applied its whole log, every node's
    outbox is empty, its hub_cursor equals the hub's log_last, and every
    daemon in `full` (default: hub and all nodes)
    holds the same observation and tombstone counts. Returns the statuses
    {name: status} or None."""
    full = [hub_d] + list(nodes) if full is None else full
    check_alive([hub_d] + list(nodes))
    hs = status(hub_d)
    if hs is None:
        return None
    last = hub_log_last(hs)
    # the hub acks from its log and applies its own state behind it
    if need(hs, "state_applied")["state_applied"] != last:
        return None
    sts = {hub_d.name: hs}
    for n in nodes:
        st = status(n)
        if st is None or st["outbox_depth"] != 0 or st["hub_cursor"] != last:
            return None
        sts[n.name] = st
    # the hub may have accepted more in the meantime: re-read it last
    hs2 = status(hub_d)
    if hs2 is None or hub_log_last(hs2) != last:
        return None
    counts = {(sts[d.name]["observations"], sts[d.name]["tombstones"])
              for d in full}
    if len(counts) != 1:
        return None
    return sts


def wait_converged(hub_d, nodes, timeout, full=None, what="convergence"):
    """Polls converged(); on timeout fails with every daemon's counters."""
    t0 = time.monotonic()
    try:
        sts = h.wait_until(lambda: converged(hub_d, nodes, full), timeout,
                           what, interval=0.2)
    except h.TestFailure as e:
        h.fail("%s\n%s" % (e, describe([hub_d] + list(nodes))))
    h.log("  ..   %s in %.1f s (hub log_last %d, %d observations)" %
          (what, time.monotonic() - t0, hub_log_last(sts[hub_d.name]),
           sts[hub_d.name]["observations"]))
    return sts


def wait_until_union(hub_d, nodes, n_obs, timeout):
    """Waits until converged() holds AND the hub and every node hold n_obs
    observations (converged() alone can hold on a silently divergent
    system whose counters agree with a hub that lost data)."""
    def union():
        sts = converged(hub_d, nodes, full=[hub_d])
        ok = sts and all(st["observations"] == n_obs for st in sts.values())
        return sts if ok else None
    try:
        h.wait_until(union, timeout, "hub and nodes to hold the union (%d "
                     "observations)" % n_obs, interval=0.2)
    except h.TestFailure as e:
        h.fail("%s\n%s" % (e, describe([hub_d] + list(nodes))))
    h.log("  ok   hub and nodes hold the union (%d observations)" % n_obs)


# ---------------------------------------------------------------- exports


def export(d, fmt="csv", *args):
    """The daemon's whole export as bytes."""
    argv = d.cli_argv("export", "--format", fmt, *args)
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=h.CLI_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        h.fail("`%s` did not finish" % " ".join(argv))
    if p.returncode != 0:
        h.fail("`%s` exited %d: %s" % (" ".join(argv), p.returncode,
                                        p.stderr.decode("utf-8", "replace")))
    return p.stdout


def _first_diff(a, b, name_a, name_b):
    la, lb = a.splitlines(), b.splitlines()
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            return "line %d:\n  %s: %r\n  %s: %r" % (i + 1, name_a, x[:300],
                                                     name_b, y[:300])
    return "%s has %d lines, %s has %d" % (name_a, len(la), name_b, len(lb))


def compare_exports(daemons, what="exports", args=()):
    """`export --format csv` of every daemon is byte-identical; returns the
    number of data rows."""
    ref = export(daemons[0], "csv", *args)
    for d in daemons[1:]:
        got = export(d, "csv", *args)
        if got != ref:
            only_a = set(ref.splitlines()) - set(got.splitlines())
            only_b = set(got.splitlines()) - set(ref.splitlines())
            h.fail("%s differ: %s vs %s: %d rows only in the first, %d only "
                   "in the second; first difference at %s" %
                   (what, daemons[0].name, d.name, len(only_a), len(only_b),
                    _first_diff(ref, got, daemons[0].name, d.name)))
    rows = max(0, len(ref.splitlines()) - 1)
    h.log("  ok   %s byte-identical on %s (%d rows, %d bytes)" %
          (what, ", ".join(d.name for d in daemons), rows, len(ref)))
    return rows


def versions(d, *args):
    """{(dataflow, series_key, period): version without hub_seq} of the
    daemon's jsonl export (tombstones included)."""
    import json
    out = {}
    for line in export(d, "jsonl", "--include-deleted", *args).splitlines():
        if not line.strip():
            continue
        o = json.loads(line)
        # a missing field would compare equal (None) on every daemon
        v = need(need(o, "version", who="%s's jsonl export" % d.name)
                 ["version"], *VERSION_FIELDS,
                 who="a version in %s's jsonl export" % d.name)
        out[(o["dataflow"], o["series_key"], o["time_period"])] = tuple(
            v[f] for f in VERSION_FIELDS)
    return out


def compare_versions(daemons, args=()):
    """Every daemon holds the same replicated version of every observation
    (hub_seq, which is local, is ignored)."""
    ref = versions(daemons[0], *args)
    for d in daemons[1:]:
        got = versions(d, *args)
        if got != ref:
            diff = [k for k in set(ref) | set(got) if ref.get(k) != got.get(k)]
            k = sorted(diff)[0]
            h.fail("versions differ between %s and %s on %d observations, "
                   "e.g. %s: %r vs %r" % (daemons[0].name, d.name, len(diff),
                                          k, ref.get(k), got.get(k)))
    h.log("  ok   versions (hlc, origin, origin_seq, ...) identical on %s "
          "(%d observations)" % (", ".join(d.name for d in daemons), len(ref)))


# ---------------------------------------------------------------- data

SEXES = ("_T", "M", "F")
SOURCES = ("CJ", "PH", "HARM", "MOD")
AGES = ("_T", "_U", "Y0T14", "Y15T29", "Y30T44", "Y45T59", "Y_GE60", "Y15T64")
MONTHS = ["%d-%02d" % (y, m) for y in range(1900, 2026) for m in range(1, 13)]
PER_AREA = len(MONTHS) * len(SEXES) * len(SOURCES) * len(AGES)  # 145,152
HEADER = h.VIOLENCE_HEADER


def ident(area, i):
    """The i-th monthly DF_VIOLENCE identity of an area: (series key,
    period). Distinct for 0 <= i < PER_AREA."""
    month = MONTHS[i % len(MONTHS)]
    i //= len(MONTHS)
    sex = SEXES[i % len(SEXES)]
    i //= len(SEXES)
    src = SOURCES[i % len(SOURCES)]
    i //= len(SOURCES)
    age = AGES[i % len(AGES)]
    return "M.%s.VC_IHR_PSRC.%s.%s._T.%s" % (area, sex, age, src), month


def write_rows(path, area, n, rng, offset=0, comment=0):
    """Writes an SDMX-CSV 2.x file of n valid OID:DF_VIOLENCE(1.0) monthly
    rows of one REF_AREA (identities offset..offset+n of ident(area, i)) with
    random values (so writing the same identities again makes new versions)
    and, when comment > 0, a COMMENT_OBS of that many characters (to make
    changes big). Returns the list of (series key, period) written."""
    if offset + n > PER_AREA:
        h.fail("write_rows: %d identities per area at most" % PER_AREA)
    filler = ("lorem ipsum dolor sit amet " * (comment // 27 + 2))[:comment]
    filler = filler[:-1] + "." if filler else filler
    keys = []
    with open(path, "w") as f:
        f.write(HEADER.rstrip("\n") + (",COMMENT_OBS\n" if comment else "\n"))
        for i in range(offset, offset + n):
            key, period = ident(area, i)
            dims = key.split(".")
            val = "%d.%06d" % (rng.randrange(100), rng.randrange(10**6))
            f.write("dataflow,%s,M,%s,%s,%s,%s,%s,%s,%s,%s,%s,"
                    "PER_100000_POP,A%s\n" %
                    (h.DF_VIOLENCE, dims[0], dims[1], dims[2], dims[3],
                     dims[4], dims[5], dims[6], period, val,
                     ("," + val + filler[len(val):]) if comment else ""))
            keys.append((key, period))
    return keys


def country_samples(env, area):
    """The committed real sample files (deploy/sample-data/*.csv) restricted
    to one REF_AREA, as FILE_AREA.csv in the test's temp dir, like the demo
    does; returns their paths. Needs nothing outside the repository."""
    out = env.path("samples_%s" % area)
    os.makedirs(out, exist_ok=True)
    files = []
    for name in sorted(os.listdir(h.SAMPLE_DIR)):
        if not name.endswith(".csv"):
            continue
        with open(os.path.join(h.SAMPLE_DIR, name), newline="") as src:
            rows = list(csv.reader(src))
        col = rows[0].index("REF_AREA")
        keep = [r for r in rows[1:] if r[col] == area]
        if not keep:
            continue
        path = os.path.join(out, name[:-4] + "_" + area + ".csv")
        with open(path, "w", newline="") as dst:
            csv.writer(dst, lineterminator="\n").writerows([rows[0]] + keep)
        files.append(path)
    if not files:
        h.fail("no sample rows for REF_AREA %s in %s" % (area, h.SAMPLE_DIR))
    return files


def import_ok(d, *files, reply_timeout=300):
    """Imports files (each its own transaction) and checks that each
    committed with no row rejected; returns total accepted."""
    r = d.import_(*files, check=0, reply_timeout=reply_timeout,
                  timeout=reply_timeout + 30)
    total = 0
    for f, s in r.summaries.items():
        if s["state"] != "committed" or s["rejected"] != 0:
            h.fail("import of %s at %s: %r\n%s" % (f, d.name, s,
                                                   r.res.describe()))
        total += s["accepted"]
    return total


# ---------------------------------------------------------------- processes


def rss_kib(d, field="VmRSS"):
    """A memory field of /proc/PID/status of a running daemon in KiB (0 if
    unknown): VmRSS (everything resident, the LMDB map's file pages
    included) or RssAnon (heap and other anonymous memory only)."""
    try:
        with open("/proc/%d/status" % d.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, AttributeError, ValueError):
        pass
    return 0


def is_asan_build():
    """Is obsyncd built with AddressSanitizer? (its runtime's symbols are in
    the binary when linked statically, its library in the dynamic section
    otherwise)."""
    try:
        with open(h.OBSYNCD, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"libasan" in data


def sigstop(d):
    d.proc.send_signal(signal.SIGSTOP)


def sigcont(d):
    d.proc.send_signal(signal.SIGCONT)


def log_has(d, pattern, whole=True):
    """Does the daemon's log (all runs, or with whole=False this run) match?"""
    return re.search(pattern, d.log_text(whole=whole)) is not None


def count_log(d, pattern):
    """Matches of pattern in the daemon's whole log (all its runs)."""
    return len(re.findall(pattern, d.log_text(whole=True)))


# ---------------------------------------------------------------- more keys


def keygen_in(env, subdir, name, provider=None, hub=False):
    """`obsync keygen` into keys/SUBDIR of the test's temp dir (a second key
    pair for the same node, which keygen() keeps one of): returns (public
    file, secret file)."""
    sub = env.path("keys", subdir)
    os.makedirs(sub, exist_ok=True)
    argv = [h.OBSYNC, "keygen", name, "--dir", sub]
    argv += ["--hub"] if hub else ["--provider", provider or name]
    res = h.run(argv)
    if res.rc != 0:
        h.fail("obsync keygen failed: %s" % res.describe())
    pub = os.path.join(sub, name + ".key")
    return pub, pub + "_secret"


def cert_key(path, field="public-key"):
    """The Z85 text of a certificate's public-key (or secret-key) line."""
    with open(path) as f:
        m = re.search(r'^\s*%s\s*=\s*"([^"]{40})"' % re.escape(field),
                      f.read(), re.M)
    if m is None:
        h.fail("%s: no %s line" % (path, field))
    return m.group(1)


def wait_allowed(hub_d, n, timeout=5):
    """Polls the hub's status until its allow-list holds n keys (it
    re-reads the directory within a heartbeat); returns that status."""
    def seen():
        st = status(hub_d)
        return st if st and need(st, "allowed_keys")["allowed_keys"] == n \
            else None
    return h.wait_until(seen, timeout, "hub %s to allow %d key(s)" %
                        (hub_d.name, n))
