#!/usr/bin/env python3
"""bench_replication.py: obsync's replication benchmark and its references.

What it is: a driver (Python 3, stdlib only) that generates observations with
gen_obs.py, builds and runs bare_pipeline.c (ZeroMQ + protobuf-c + synced
LMDB, the least work "acked means durable" allows), runs pg_logical.sh
(PostgreSQL logical replication origin -> hub -> subscriber), runs obsync (one
hub, three nodes) and prints one table of obs/s with obsync's ratio to each
reference. Ratios are the point: the machine is shared and noisy, so absolute
numbers move from run to run. What it is not: a test; it is never registered
in ctest nor run in CI. Everything talks to 127.0.0.1 only, every wait has a
timeout, and every process it starts is stopped at the end.

    python3 tests/bench/bench_replication.py --n 200000     # quick
    python3 tests/bench/bench_replication.py                # 1,000,000 rows
    ... --no-pg --no-obsync                                 # one reference
"""
import argparse
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
STRUCTURE = os.path.join(REPO, "deploy", "structure", "starter.structure")


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Skip(Exception):
    """A measurement that cannot run here; the message says why."""


def results_of(text):
    """{"name": seconds} from the "RESULT name rows seconds" lines."""
    return {m[0]: float(m[2]) for m in
            re.findall(r"^RESULT (\S+) (\d+) ([\d.]+)$", text, re.M)}


def run_tool(argv, timeout):
    log("$ " + " ".join(argv))
    p = subprocess.run(argv, stdout=subprocess.PIPE, text=True,
                       timeout=timeout, check=True)
    print(p.stdout, end="", flush=True)
    return results_of(p.stdout)


# ------------------------------------------------------------- data

def generate(work, n, seed):
    """The three files obsync needs: n rows in import order, the same n rows
    shuffled, and n further rows (disjoint keys) for the catch-up load."""
    files = {"import": os.path.join(work, "obs-import.csv"),
             "random": os.path.join(work, "obs-random.csv"),
             "more": os.path.join(work, "obs-more.csv")}
    args = {"import": ["--order", "import"], "random": ["--order", "random"],
            "more": ["--order", "import", "--skip", str(n)]}
    for name, path in files.items():
        log("generating %d rows (%s) -> %s" % (n, name, path))
        subprocess.run([sys.executable, os.path.join(HERE, "gen_obs.py"),
                        "--n", str(n), "--seed", str(seed), "-o", path] +
                       args[name], check=True, timeout=600)
    return files


# ------------------------------------------------------------- references

def build_bare(work):
    """protoc-c on bare.proto into work/, then gcc -O2; returns the binary."""
    gen = os.path.join(work, "bare-gen")
    os.makedirs(gen, exist_ok=True)
    subprocess.run(["protoc-c", "--proto_path=" + HERE, "--c_out=" + gen,
                    os.path.join(HERE, "bare.proto")], check=True, timeout=60)
    exe = os.path.join(work, "bare_pipeline")
    subprocess.run(["gcc", "-O2", "-std=c17", "-D_POSIX_C_SOURCE=200809L",
                    "-D_DEFAULT_SOURCE", "-Wall", "-Wextra", "-I" + gen,
                    os.path.join(HERE, "bare_pipeline.c"),
                    os.path.join(gen, "bare.pb-c.c"), "-o", exe, "-lzmq",
                    "-llmdb", "-lprotobuf-c", "-lpthread"],
                   check=True, timeout=120)
    return exe


def run_bare(work, n, timeout):
    exe = build_bare(work)
    return run_tool([exe, "-n", str(n), "-d", work,
                     "-m", "append,keyed,append-group"], timeout)


def run_pg(work, n, seed, timeout):
    if os.geteuid() != 0:
        raise Skip("pg_logical.sh needs root (initdb via runuser)")
    os.chmod(work, 0o711)  # the postgres user must reach its clusters
    return run_tool(["bash", os.path.join(HERE, "pg_logical.sh"), "--n",
                     str(n), "--seed", str(seed), "--workdir", work,
                     "--timeout", str(timeout)], timeout + 600)


# ------------------------------------------------------------- obsync
#
# ====================== run_obsync: obsync's own numbers ======================
# One hub and three nodes on loopback, plaintext. The interface it relies on:
#   hub:  role = hub, node_id = HUB, data_dir, repl_bind = tcp://127.0.0.1:0,
#         security = plaintext; writes its bound endpoint to
#         <data_dir>/repl.endpoint
#   node: role = node, node_id, provider = OID, data_dir, hub_endpoint,
#         security = plaintext, structure_file = deploy/structure/starter...
#   CLI:  obsync -s <data_dir>/api.sock --json status -> observations,
#         hub_cursor (nodes); obsync -s ... import FILE

def find_binaries(bin_dir):
    """(obsyncd, obsync): from bin_dir, else the newest build under build/."""
    found = []
    for name in ("obsyncd", "obsync"):
        pats = ([os.path.join(bin_dir, name)] if bin_dir else
                [os.path.join(REPO, "build", "*", name),
                 os.path.join(REPO, "build", name)])
        cands = [c for p in pats for c in glob.glob(p) if os.access(c, os.X_OK)]
        if not cands:
            raise Skip("no %s binary (build obsync, or pass --bin DIR)" % name)
        found.append(max(cands, key=os.path.getmtime))
    return found


class Daemon:
    """One obsyncd (foreground, log to a file) and its CLI."""

    def __init__(self, bins, root, name, cfg):
        self.obsyncd, self.obsync = bins
        self.dir = os.path.join(root, name)
        self.data_dir = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.data_dir, "api.sock")
        self.conf = os.path.join(self.dir, "obsyncd.conf")
        self.log = os.path.join(self.dir, "obsyncd.log")
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)
        cfg = dict(cfg, data_dir=self.data_dir, map_size="64M", map_max="16G")
        with open(self.conf, "w") as f:
            f.writelines("%s = %s\n" % kv for kv in cfg.items())

    def check_config(self):
        p = subprocess.run([self.obsyncd, "-c", self.conf, "-n"], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        if p.returncode != 0:
            raise Skip("obsyncd has no hub/replication support yet; `obsyncd "
                       "-c %s -n` says: %s" % (self.conf, p.stdout.strip()))

    def start(self, timeout=60):
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([self.obsyncd, "-c", self.conf, "-d"],
                                         stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT)
        wait_until(lambda: self.status() is not None, timeout,
                   "%s to answer status" % self.dir)

    def stop(self, timeout=60):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.proc = None

    def status(self):
        if self.proc is None or self.proc.poll() is not None:
            with open(self.log, errors="replace") as f:
                tail = f.read()[-2000:]
            raise RuntimeError("obsyncd exited; %s ends:\n%s" % (self.log, tail))
        p = subprocess.run([self.obsync, "-s", self.sock, "--json", "status"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, timeout=30)
        try:
            return json.loads(p.stdout) if p.returncode == 0 else None
        except ValueError:
            return None

    def observations(self):
        st = self.status()
        return st.get("observations", -1) if st else -1

    def import_(self, path, timeout, flags=()):
        subprocess.run([self.obsync, "-s", self.sock, "--timeout",
                        str(timeout), "-q", "import", path] + list(flags),
                       check=True, timeout=timeout + 60,
                       stdout=subprocess.DEVNULL)

    def rss_kib(self):
        """Anonymous resident memory: what the hub holds outside the LMDB
        map (the map's pages are file-backed and counted in RssFile)."""
        try:
            with open("/proc/%d/status" % self.proc.pid) as f:
                m = re.search(r"^RssAnon:\s+(\d+) kB", f.read(), re.M)
            return int(m.group(1)) if m else 0
        except (OSError, AttributeError):
            return 0


def wait_until(pred, timeout, what, tick=None):
    """Polls pred() every 0.1 s (calling tick() each time) until it is true;
    RuntimeError after timeout seconds."""
    t0 = time.monotonic()
    while True:
        if tick:
            tick()
        if pred():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise RuntimeError("timed out after %d s waiting for %s" %
                               (timeout, what))
        time.sleep(0.1)


class Cluster:
    """HUB plus nodes N1..N3; tracks the hub's peak RSS while waiting."""

    def __init__(self, bins, root):
        self.root = root
        self.hub = Daemon(bins, root, "hub", {
            "role": "hub", "node_id": "HUB", "repl_bind": "tcp://127.0.0.1:0",
            "security": "plaintext", "structure_file": STRUCTURE})
        self.bins = bins
        self.nodes = {}
        self.rss_max = 0

    def start(self, timeout):
        self.hub.check_config()
        self.hub.start()
        ep_file = os.path.join(self.hub.data_dir, "repl.endpoint")
        try:
            wait_until(lambda: os.path.exists(ep_file), 30, ep_file)
        except RuntimeError:
            raise Skip("the hub wrote no %s: no replication yet" % ep_file)
        with open(ep_file) as f:
            endpoint = f.read().strip()
        for name in ("N1", "N2", "N3"):
            d = Daemon(self.bins, self.root, name, {
                "role": "node", "node_id": name, "provider": "OID",
                "hub_endpoint": endpoint, "security": "plaintext",
                "structure_file": STRUCTURE})
            d.check_config()
            d.start(timeout)
            self.nodes[name] = d

    def sample(self):
        self.rss_max = max(self.rss_max, self.hub.rss_kib())

    def wait_all(self, n, timeout, names=None):
        """Seconds until every named node (default all) holds n."""
        ds = [self.nodes[k] for k in (names or self.nodes)]
        return wait_until(lambda: all(d.observations() == n for d in ds),
                          timeout, "nodes to hold %d observations" % n,
                          self.sample)

    def stop(self):
        for d in list(self.nodes.values()) + [self.hub]:
            try:
                d.stop()
            except Exception as e:  # keep stopping the others
                log("stopping %s: %s" % (d.dir, e))


# Rows per transaction of the import committed in parts (obsync import
# --commit-every): the counterpart of PostgreSQL's 1k-row batches.
PARTS = 10000


def obsync_end_to_end(bins, root, path, n, timeout, flags=(), keep=False):
    """Fresh cluster; import path at N1; seconds until all nodes hold n. The
    cluster's stores are removed after it (unless keep): the random-order
    run leaves ~4 GB of them, and with them in place the next run measured
    ~15% slower here."""
    c = Cluster(bins, root)
    try:
        c.start(timeout)
        os.sync()  # the runs before leave no writeback to compete with
        t0 = time.monotonic()
        c.nodes["N1"].import_(path, timeout, flags)
        c.wait_all(n, timeout)
        return time.monotonic() - t0, c
    finally:
        c.stop()
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def run_obsync(bins, work, files, n, timeout, keep=False):
    """The obsync rows: (a) import at one node until all three nodes hold all
    n, for import-order and random-order files, each on a fresh cluster;
    (b) N3 offline while n more rows are imported at N1 and reach N2, then
    N3 restarted: seconds until it holds 2n. Returns ({name: seconds},
    peak hub RSS in KiB)."""
    res, rss = {}, 0
    runs = [("import", "import", ()), ("random", "random", ()),
            ("parts", "import", ("--commit-every", str(PARTS)))]
    for name, order, flags in runs:
        root = tempfile.mkdtemp(prefix="obs-%s-" % name[0], dir=work)
        secs, c = obsync_end_to_end(bins, root, files[order], n, timeout,
                                    flags, keep)
        res["obsync_" + name] = secs
        rss = max(rss, c.rss_max)
        log("obsync end-to-end (%s order %s): %.2f s" % (
            order, " ".join(flags) or "one transaction", secs))
    root = tempfile.mkdtemp(prefix="obs-c-", dir=work)
    c = Cluster(bins, root)
    try:
        c.start(timeout)
        c.nodes["N1"].import_(files["import"], timeout)
        c.wait_all(n, timeout)
        c.nodes["N3"].stop()
        c.nodes["N1"].import_(files["more"], timeout)
        c.wait_all(2 * n, timeout, ["N1", "N2"])
        os.sync()
        t0 = time.monotonic()
        c.nodes["N3"].start(timeout)
        c.wait_all(2 * n, timeout, ["N3"])
        res["obsync_catchup"] = time.monotonic() - t0
        log("obsync catch-up: %.2f s (hub cursor %s)" % (
            res["obsync_catchup"], c.nodes["N3"].status().get("hub_cursor")))
    finally:
        c.stop()
        if not keep:  # ~2 GB: the next round's runs must not find it
            shutil.rmtree(root, ignore_errors=True)
    return res, max(rss, c.rss_max)

# ==================== end of run_obsync =======================================


# ------------------------------------------------------------- report

REFERENCES = [("bare_append", "bare pipeline append (1 commit/batch)"),
              ("bare_append-group", "bare pipeline append, group commit"),
              ("bare_keyed", "bare pipeline keyed"),
              ("pg_copy", "PostgreSQL end-to-end COPY"),
              ("pg_batch", "PostgreSQL end-to-end 1k batches"),
              ("pg_catchup", "PostgreSQL catch-up")]
OBSYNC = [("obsync_import", "obsync end-to-end import-order"),
          ("obsync_parts", "obsync end-to-end import-order, in parts"),
          ("obsync_random", "obsync end-to-end random-order"),
          ("obsync_catchup", "obsync catch-up")]
# which obsync number is compared with which reference: one transaction
# with one transaction (COPY), parts with batches
COMPARE = {"bare_append": "obsync_parts", "bare_append-group": "obsync_parts",
           "bare_keyed": "obsync_random", "pg_copy": "obsync_import",
           "pg_batch": "obsync_parts", "pg_catchup": "obsync_catchup"}


def median(xs):
    xs = sorted(xs)
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


def report(n, runs, notes):
    """runs: {name: [seconds of each round]}; each row's rate is the median
    round's, with the range of rounds beside it when there were several."""
    rate = {k: n / median(v) for k, v in runs.items() if v and min(v) > 0}
    spread = {k: "%.0f-%.0f" % (n / max(v), n / min(v))
              for k, v in runs.items() if len(v) > 1 and min(v) > 0}
    rounds = max((len(v) for v in runs.values()), default=1)
    print("\n%-40s %12s  %s" % ("row (%d observations)" % n,
                                  "obs/s" if rounds == 1 else
                                  "median obs/s", "obsync / reference"))
    for key, label in REFERENCES + OBSYNC:
        if key not in rate:
            print("%-40s %12s  %s" % (label, "-", notes.get(key, "not run")))
            continue
        ratio = ""
        other = COMPARE.get(key)
        if other in rate:
            ratio = "%.2fx (%s)" % (rate[other] / rate[key], other)
        if key in spread:
            ratio = "%-28s rounds %s" % (ratio, spread[key])
        print("%-40s %12.0f  %s" % (label, rate[key], ratio))
    for k in ("hub_rss", "obsync"):
        if k in notes:
            print(notes[k])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workdir", default="/tmp",
                    help="parent of the scratch dir (keep it short: ipc "
                    "socket paths must fit 107 bytes)")
    ap.add_argument("--bin", help="dir holding obsyncd and obsync (default: "
                    "newest build under build/)")
    ap.add_argument("--timeout", type=int, default=1800,
                    help="seconds any one wait may take")
    ap.add_argument("--no-bare", action="store_true")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-obsync", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch dir")
    ap.add_argument("--rounds", type=int, default=1,
                    help="measure everything this many times, the rounds "
                    "interleaved (bare, PostgreSQL, obsync, bare, ...); each "
                    "row reports its median round and the range")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="obsb-", dir=args.workdir)
    runs, notes, rss = {}, {}, 0
    files, bins = None, None
    do_bare, do_pg, do_obsync = (not args.no_bare, not args.no_pg,
                                 not args.no_obsync)

    def add(res):
        for k, v in res.items():
            runs.setdefault(k, []).append(v)

    def drop(keys, why):
        """A group that failed in any round is reported as failed, not as
        the median of the rounds before."""
        for k in keys:
            runs.pop(k, None)
            notes[k] = why
    try:
        for rnd in range(1, max(args.rounds, 1) + 1):
            if args.rounds > 1:
                log("round %d of %d" % (rnd, args.rounds))
            if do_bare:
                try:
                    add(run_bare(work, args.n, args.timeout))
                except subprocess.SubprocessError as e:
                    log("bare pipeline: %s" % e)
                    drop(("bare_append", "bare_append-group", "bare_keyed"),
                         "failed: %s" % e)
                    do_bare = False
            if do_pg:
                try:
                    add(run_pg(work, args.n, args.seed, args.timeout))
                except (Skip, subprocess.SubprocessError) as e:
                    log("PostgreSQL reference: %s" % e)
                    drop(("pg_copy", "pg_batch", "pg_catchup"),
                         "skipped: %s" % e)
                    do_pg = False
            if do_obsync:
                try:
                    if files is None:
                        bins = find_binaries(args.bin)
                        files = generate(work, args.n, args.seed)
                    res, r = run_obsync(bins, work, files, args.n,
                                        args.timeout, args.keep)
                    add(res)
                    rss = max(rss, r)
                    notes["hub_rss"] = "obsync hub peak memory outside the LMDB map (RssAnon): %.1f MiB" % (rss / 1024)
                except Skip as e:
                    log("obsync skipped: %s" % e)
                    notes["obsync"] = "obsync skipped: %s" % e
                    drop([k for k, _ in OBSYNC], "skipped (see below)")
                    do_obsync = False
                except (RuntimeError, subprocess.SubprocessError) as e:
                    log("obsync failed: %s" % e)
                    notes["obsync"] = "obsync FAILED: %s" % e
                    drop([k for k, _ in OBSYNC], "failed (see below)")
                    do_obsync = False
        report(args.n, runs, notes)
    finally:
        if args.keep:
            log("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
