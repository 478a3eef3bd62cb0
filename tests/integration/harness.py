"""harness.py - the integration-test harness: real obsyncd processes driven
with the real obsync CLI (STYLE.md 2.9, integration tier).

What it is: a small Python 3 (stdlib only) library that each
tests/integration/t_*.py imports. It gives every test file one temp dir under
/tmp (short name: ipc socket paths must stay under 107 bytes), starts and stops
daemons (SIGTERM, kill -9, restart), runs the CLI with a timeout, polls with
wait_until() instead of sleeping blindly, seeds randomness from
OBSYNC_TEST_SEED (printed), prints each daemon's log tail when a check fails,
and kills every process it started and removes the temp dir at the end, even
on failure (try/finally plus atexit). What it is not: a test runner; ctest
runs each t_*.py as `integration.<name>` and a test passes iff it exits 0.

Environment: OBSYNCD and OBSYNC (paths of the daemon and the CLI, set by
ctest), OBSYNC_SOURCE_DIR (repo root), OBSYNC_TEST_SEED (optional),
OBSYNC_KEEP_TMP=1 (keep the temp dir for a post-mortem).

Typical use:

    import harness as h

    def test_something(env):
        d = env.daemon("a")            # role node, node_id/provider OID
        d.start()
        r = d.import_(h.sample("violence_wdi_homicide.csv"))
        h.eq(r.summary["rejected"], 0, "no row rejected")

    if __name__ == "__main__":
        h.main([test_something])
"""

import atexit
import csv
import glob
import io
import itertools
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

# ---------------------------------------------------------------- settings

SOURCE_DIR = os.environ.get("OBSYNC_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SAMPLE_DIR = os.path.join(SOURCE_DIR, "deploy", "sample-data")
STRUCTURE_FILE = os.path.join(SOURCE_DIR, "deploy", "structure",
                              "starter.structure")
# Every test file must end well under ctest's 600 s and the 5 min budget.
FILE_DEADLINE_S = int(os.environ.get("OBSYNC_TEST_DEADLINE", "280"))
CLI_TIMEOUT_S = 120
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30

# CLI exit codes (docs/cli.md)
EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_NOT_FOUND = 4
EXIT_INPUT = 5
EXIT_REFUSED = 6

DF_VIOLENCE = "OID:DF_VIOLENCE(1.0)"
DF_DRUG_USE = "OID:DF_DRUG_USE(1.0)"


def _find_binaries():
    """OBSYNCD and OBSYNC from the environment (ctest sets them); for a run
    by hand, the pair from the build dir under build/ with the newest
    obsyncd, so the daemon and the CLI always come from the same build."""
    d, c = os.environ.get("OBSYNCD"), os.environ.get("OBSYNC")
    if d and c:
        return d, c
    dirs = [os.path.dirname(p) for p in
            glob.glob(os.path.join(SOURCE_DIR, "build", "*", "obsyncd"))]
    dirs = [x for x in dirs if os.access(os.path.join(x, "obsync"), os.X_OK)]
    if not dirs:
        sys.stderr.write("harness: set OBSYNCD and OBSYNC (paths of obsyncd "
                         "and the obsync CLI)\n")
        sys.exit(2)
    b = max(dirs, key=lambda x: os.path.getmtime(os.path.join(x, "obsyncd")))
    return d or os.path.join(b, "obsyncd"), c or os.path.join(b, "obsync")


OBSYNCD, OBSYNC = _find_binaries()


# ctest's SKIP_RETURN_CODE for integration tests (cmake/obsync_test.cmake)
EXIT_SKIPPED = 77


def faketime_lib():
    """Path of Debian's libfaketime, for tests that run a daemon with another
    clock (LD_PRELOAD, FAKETIME=...; deploy/install-deps.sh installs it).
    In a sanitizer build (OBSYNC_SANITIZED=1) the test file is skipped (exit
    77): ASan's start-up calls clock_gettime before libfaketime is ready and
    the daemon hangs; the dev build runs these tests. Call it before
    main()."""
    if os.environ.get("OBSYNC_SANITIZED") == "1":
        log("skipped: libfaketime does not run under the sanitizers")
        sys.exit(EXIT_SKIPPED)
    libs = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    if not libs:
        fail("libfaketime not found (/usr/lib/*/faketime/libfaketime.so.1): "
             "install the faketime package (deploy/install-deps.sh)")
    return libs[0]


def sample(name):
    """Path of a file under deploy/sample-data/."""
    return os.path.join(SAMPLE_DIR, name)


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- checks


class TestFailure(Exception):
    pass


def fail(what):
    raise TestFailure(what)


def check(cond, what, detail=""):
    """Prints `ok   what` or raises TestFailure naming what failed."""
    if not cond:
        raise TestFailure(what + (": " + detail if detail else ""))
    log("  ok   " + what)


def _short(v, n=120):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "... (%d chars)" % len(r)


def eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %s, want %s" % (what, _short(got, 2000),
                                                   _short(want, 2000)))
    log("  ok   %s (%s)" % (what, _short(got)))


def wait_until(pred, timeout, what, interval=0.05, max_interval=0.5):
    """Polls pred() until it returns something truthy (returned) or timeout
    seconds pass (TestFailure naming what was awaited). The pause between
    polls grows from interval to max_interval."""
    deadline = time.monotonic() + timeout
    delay = interval
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise TestFailure("timed out after %.1f s waiting for %s" %
                              (timeout, what))
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval)


# ---------------------------------------------------------------- CLI output


class CliResult(tuple):
    """(rc, stdout, stderr) with names."""

    def __new__(cls, rc, out, err, argv):
        r = tuple.__new__(cls, (rc, out, err))
        r.argv = argv
        return r

    rc = property(lambda self: self[0])
    out = property(lambda self: self[1])
    err = property(lambda self: self[2])

    def json(self):
        return json.loads(self.out)

    def json_lines(self):
        return [json.loads(l) for l in self.out.splitlines() if l.strip()]

    def describe(self):
        return "`%s` exited %d\n--- stdout:\n%s\n--- stderr:\n%s" % (
            " ".join(self.argv), self.rc, _clip(self.out), _clip(self.err))


def _clip(s, n=3000):
    return s if len(s) <= n else s[:n] + "\n... (%d more bytes)" % (len(s) -
                                                                     n)


SUMMARY_RE = re.compile(
    r"^(?P<file>.*?): accepted (?P<accepted>\d+), "
    r"unchanged (?P<unchanged>\d+),"
    r" rejected (?P<rejected>\d+), deleted (?P<deleted>\d+), warnings "
    r"(?P<warnings>\d+) \((?P<state>committed|dry run|not committed)\)\s*$")
ISSUE_RE = re.compile(r"^(?P<warning>warning: )?(?P<file>.*?):(?P<line>\d+): "
                      r"(?:(?P<column>[^: ]*): )?"
                      r"(?P<rule>R\d*-[A-Za-z0-9-]+): (?P<message>.*)$")
COUNTS = ("accepted", "unchanged", "rejected", "deleted", "warnings")


class ImportResult:
    """An import's exit code, per-file summaries {file: {accepted, unchanged,
    rejected, deleted, warnings, state}} and issues [{file, line, column,
    rule, message, warning}], parsed from `--json` output (one object per
    file) or from the documented text output (summary line on stdout,
    `FILE:LINE: COLUMN: RULE: message` on stderr)."""

    def __init__(self, res, json_mode):
        self.res = res
        self.rc = res.rc
        self.summaries = {}
        self.issues = []
        self.errors = {}  # file -> "error" of a --json object
        if json_mode:
            self._parse_json(res)
        else:
            self._parse_text(res)

    def _parse_json(self, res):
        for line in res.out.splitlines():
            if not line.strip():
                continue
            try:
                o = json.loads(line)
            except ValueError as e:
                raise TestFailure("import --json printed a line that is not "
                                  "JSON (%s): %r" % (e, line[:200]))
            f = o.get("file")
            s = {k: o.get(k) for k in COUNTS}
            s["state"] = ("dry run" if o.get("dry_run") else
                          "committed" if o.get("committed") else
                          "not committed")
            s["issues_omitted"] = o.get("issues_omitted", 0)
            self.summaries[f] = s
            if "error" in o:
                self.errors[f] = o["error"]
            for i in o.get("issues", []):
                i = dict(i)
                i["file"] = f
                self.issues.append(i)

    def _parse_text(self, res):
        for line in (res.out + "\n" + res.err).splitlines():
            m = SUMMARY_RE.match(line)
            if m:
                s = {k: int(m.group(k)) for k in COUNTS}
                s["state"] = m.group("state")
                self.summaries[m.group("file")] = s
                continue
            m = ISSUE_RE.match(line)
            if m:
                self.issues.append({"file": m.group("file"),
                                    "line": int(m.group("line")),
                                    "column": m.group("column") or "",
                                    "rule": m.group("rule"),
                                    "message": m.group("message"),
                                    "warning": bool(m.group("warning"))})

    @property
    def summary(self):
        """The summary of a one-file import (TestFailure unless one)."""
        if len(self.summaries) != 1:
            raise TestFailure("expected one summary, found %d\n%s" %
                              (len(self.summaries), self.res.describe()))
        return next(iter(self.summaries.values()))

    def issues_at(self, line):
        return [i for i in self.issues if i["line"] == line]


# ---------------------------------------------------------------- processes


def run(argv, timeout=CLI_TIMEOUT_S, input=None, env=None):
    """Runs argv to completion with a timeout; returns CliResult. Text is
    decoded as UTF-8 with replacement so binary garbage never crashes us."""
    try:
        p = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=env)
    except subprocess.TimeoutExpired as e:
        raise TestFailure("`%s` did not finish within %d s" %
                          (" ".join(argv), timeout)) from e
    dec = lambda b: b.decode("utf-8", "replace") if b else ""
    return CliResult(p.returncode, dec(p.stdout), dec(p.stderr), argv)


def _expect(res, check_rc):
    if check_rc is None:
        return res
    want = check_rc if isinstance(check_rc, (tuple, list, set)) else (
        check_rc,)
    if res.rc not in want:
        raise TestFailure("unexpected exit code (want %s): %s" %
                          ("/".join(map(str, want)), res.describe()))
    return res


class Daemon:
    """One obsyncd with its own config, data dir, socket and log file."""

    def __init__(self, env, name, node_id="OID", provider="OID", role="node",
                 no_sync=False, **extra):
        self.env = env
        self.name = name
        self.dir = os.path.join(env.tmp, name)
        os.makedirs(self.dir, exist_ok=True)
        self.data_dir = os.path.join(self.dir, "data")
        self.sock = os.path.join(self.dir, "api.sock")
        self.conf = os.path.join(self.dir, "obsyncd.conf")
        self.log_path = os.path.join(self.dir, "obsyncd.log")
        self.proc = None
        self.extra_env = {}  # added to the environment of the next start
        self.log_offset = 0  # where the current run's log starts
        self.cfg = {"role": role, "node_id": node_id, "provider": provider,
                    "data_dir": self.data_dir, "api_socket": self.sock,
                    "structure_file": STRUCTURE_FILE, "log_level": "info",
                    "map_size": "64M", "map_max": "16G"}
        if no_sync:
            self.cfg["no_sync"] = "yes"
        self.cfg.update({k: str(v) for k, v in extra.items()})
        self.write_config()
        env.daemons.append(self)

    def write_config(self, **changes):
        self.cfg.update({k: str(v) for k, v in changes.items()})
        with open(self.conf, "w") as f:
            for k, v in self.cfg.items():
                if v is not None:
                    f.write("%s = %s\n" % (k, v))

    # -- life cycle

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def spawn(self):
        """Starts the process without waiting for it to answer."""
        if self.running():
            raise TestFailure("daemon %s already running" % self.name)
        self.log_offset = (os.path.getsize(self.log_path)
                           if os.path.exists(self.log_path) else 0)
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([OBSYNCD, "-c", self.conf, "-d"],
                                     stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **self.extra_env))
        logf.close()

    def start(self, timeout=START_TIMEOUT_S):
        """Starts the daemon and waits until `obsync status --json` answers."""
        t0 = time.monotonic()
        self.spawn()

        def ready():
            if self.proc.poll() is not None:
                raise TestFailure("daemon %s exited with %d while starting" %
                                  (self.name, self.proc.returncode))
            r = self.cli("status", json=True, check=None, timeout=10)
            if r.rc != 0:
                return None
            try:
                return r.json()
            except ValueError:
                return None

        st = wait_until(ready, timeout, "daemon %s to answer status" %
                        self.name)
        log("  ..   daemon %s (pid %d) up in %.2f s" %
            (self.name, self.proc.pid, time.monotonic() - t0))
        return st

    def start_expect_exit(self, timeout=START_TIMEOUT_S):
        """Starts the daemon expecting it to refuse and exit; returns
        (exit code, this run's log)."""
        self.spawn()
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise TestFailure("daemon %s did not exit within %d s" %
                              (self.name, timeout))
        return rc, self.log_text()

    def stop(self, timeout=STOP_TIMEOUT_S):
        """SIGTERM and wait; TestFailure when it hangs or exits non-zero."""
        if not self.running():
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise TestFailure("daemon %s ignored SIGTERM for %d s" %
                              (self.name, timeout))
        self.proc = None
        if rc != 0:
            raise TestFailure("daemon %s exited with %d after SIGTERM" %
                              (self.name, rc))

    def kill9(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
        self.proc = None

    def restart(self, **cfg_changes):
        self.stop()
        if cfg_changes:
            self.write_config(**cfg_changes)
        return self.start()

    # -- log

    def log_text(self, whole=False):
        try:
            with open(self.log_path, "rb") as f:
                if not whole:
                    f.seek(self.log_offset)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text(whole=True).splitlines()
        return "\n".join(lines[-n:])

    def wait_log(self, pattern, timeout, what=None, since=None):
        """Waits until this run's log (from byte offset since) matches."""
        rx = re.compile(pattern)
        off = self.log_offset if since is None else since

        def seen():
            try:
                with open(self.log_path, "rb") as f:
                    f.seek(off)
                    m = rx.search(f.read().decode("utf-8", "replace"))
                    return m or None
            except OSError:
                return None

        # at most 20 ms late: tests act on a log line at a precise moment
        # (a kill in the middle of a catch-up that takes a fraction of a
        # second), and reading a log from an offset is cheap
        return wait_until(seen, timeout, what or "log line /%s/" % pattern,
                          interval=0.005, max_interval=0.02)

    def log_size(self):
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    # -- CLI

    def cli_argv(self, *args, json=False, reply_timeout=None):
        """argv of `obsync -s SOCK [--json] [--timeout S] args...` (global
        options before the command)."""
        argv = [OBSYNC, "-s", self.sock] + (["--json"] if json else [])
        if reply_timeout:
            argv += ["--timeout", str(int(reply_timeout))]
        return argv + [str(a) for a in args]

    def cli(self, *args, check=0, json=False, input=None,
            timeout=CLI_TIMEOUT_S, reply_timeout=None):
        """Runs the CLI; returns (rc, stdout, stderr). check: expected exit
        code(s), or None to accept any. timeout bounds the whole run;
        reply_timeout (s) is passed as the CLI's --timeout (default 30 s)."""
        if reply_timeout:
            timeout = max(timeout, reply_timeout + 10)
        argv = self.cli_argv(*args, json=json, reply_timeout=reply_timeout)
        return _expect(run(argv, timeout, input), check)

    def cli_bg(self, *args, reply_timeout=None):
        """Starts the CLI in the background (tracked for cleanup)."""
        outp = os.path.join(self.env.tmp, "bg%d.out" % len(self.env.procs))
        f = open(outp, "wb")
        argv = self.cli_argv(*args, reply_timeout=reply_timeout)
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                             stdout=f, stderr=subprocess.STDOUT)
        f.close()
        p.out_path = outp
        self.env.procs.append(p)
        return p

    def status(self):
        return self.cli("status", json=True, timeout=30).json()

    def import_(self, *files, flags=(), check=None, json=True,
                max_issues=10000, timeout=CLI_TIMEOUT_S, reply_timeout=None):
        """obsync import FILE... [flags] (with --json unless json=False);
        returns ImportResult. check: expected exit code(s) or None."""
        args = ["import"] + list(files) + list(flags)
        args += ["--max-issues", str(max_issues)]
        res = self.cli(*args, check=None, json=json, timeout=timeout,
                       reply_timeout=reply_timeout)
        _expect(res, check)
        return ImportResult(res, json)

    def query(self, *args, check=0):
        """query ... --json: a list of observation dicts."""
        return self.cli("query", *args, json=True,
                        check=check).json_lines()

    def count(self, dataflow=None, *args):
        """Number of observations a query returns."""
        a = ([dataflow] if dataflow else []) + list(args)
        r = self.cli("query", *a, json=True)
        return sum(1 for l in r.out.splitlines() if l.strip())

    def get(self, df, key, period, check=0):
        r = self.cli("get", df, key, period, json=True, check=check)
        return r.json() if r.rc == 0 else None

    def history(self, df, key, period, check=0):
        return self.cli("history", df, key, period, json=True,
                        check=check).json_lines()


# ---------------------------------------------------------------- env


class Env:
    """One test file's world: temp dir, seed, daemons and background
    processes. Everything is torn down by cleanup() (also via atexit)."""

    def __init__(self, name):
        self.name = name
        seed = os.environ.get("OBSYNC_TEST_SEED")
        self.seed = int(seed) if seed else random.SystemRandom().randrange(
            1, 2**31)
        self.rng = random.Random(self.seed)
        log("%s: seed %d (rerun with OBSYNC_TEST_SEED=%d)" %
            (name, self.seed, self.seed))
        self.tmp = tempfile.mkdtemp(prefix="ob%s-" % name[:4], dir="/tmp")
        log("%s: temp dir %s; obsyncd %s; obsync %s" %
            (name, self.tmp, OBSYNCD, OBSYNC))
        self.daemons = []
        self.procs = []
        self.cleaned = False
        atexit.register(self.cleanup)

    def daemon(self, name, **kw):
        return Daemon(self, name, **kw)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def cli(self, *args, sock=None, check=0, json=False, input=None,
            timeout=CLI_TIMEOUT_S):
        """The CLI against an arbitrary socket (default: none running)."""
        argv = [OBSYNC, "-s", sock or self.path("nobody.sock")]
        argv += ["--json"] if json else []
        return _expect(run(argv + [str(a) for a in args], timeout, input),
                       check)

    def dump_logs(self, daemons=None):
        for d in self.daemons if daemons is None else daemons:
            log("----- log tail of daemon %s (%s)" % (d.name, d.log_path))
            log(d.log_tail())
        for p in self.procs:
            try:
                with open(p.out_path, "rb") as f:
                    out = f.read().decode("utf-8", "replace")
                log("----- output of `%s`:\n%s" % (" ".join(p.args),
                                                     _clip(out)))
            except OSError:
                pass

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
        for d in self.daemons:
            d.kill9()

    def cleanup(self, keep=False):
        if self.cleaned:
            return
        self.cleaned = True
        self.kill_all()
        if keep or os.environ.get("OBSYNC_KEEP_TMP"):
            log("%s: kept %s" % (self.name, self.tmp))
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- CSV


def read_sdmx_csv(path):
    """(header, rows) of an SDMX-CSV file; each row is a dict plus '_line',
    the file line it starts on (header = line 1)."""
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    rdr = csv.reader(io.StringIO(text, newline=""))
    header = next(rdr)
    rows = []
    # csv.reader counts physical lines; line_num after the row is its end.
    prev_end = rdr.line_num
    for rec in rdr:
        d = dict(zip(header, rec))
        d["_line"] = prev_end + 1
        prev_end = rdr.line_num
        rows.append(d)
    return header, rows


def obs_ident(row, dim_ids):
    """(dataflow, series key, time period) of a CSV row."""
    df = row.get("STRUCTURE_ID") or row.get("DATAFLOW")
    return (df, ".".join(row[d] for d in dim_ids), row["TIME_PERIOD"])


VIOLENCE_DIMS = ["FREQ", "REF_AREA", "INDICATOR", "SEX", "AGE", "BREAKDOWN",
                 "SOURCE_TYPE"]
DRUG_DIMS = ["FREQ", "REF_AREA", "POP_GROUP", "INDICATOR", "SUBSTANCE", "SEX",
             "AGE_GROUP"]
DIMS = {DF_VIOLENCE: VIOLENCE_DIMS, DF_DRUG_USE: DRUG_DIMS}


def row_ident(row):
    df = row.get("STRUCTURE_ID") or row.get("DATAFLOW")
    return obs_ident(row, DIMS[df])


# ---------------------------------------------------------------- generated

OAS35 = ("ATG ARG BHS BRB BLZ BOL BRA CAN CHL COL CRI CUB DMA DOM ECU SLV GRD "
         "GTM GUY HTI HND JAM MEX NIC PAN PRY PER KNA LCA VCT SUR TTO USA URY "
         "VEN").split()
VIOLENCE_HEADER = ("STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,SEX,"
                   "AGE,BREAKDOWN,SOURCE_TYPE,TIME_PERIOD,OBS_VALUE,"
                   "UNIT_MEASURE,OBS_STATUS\n")


def _violence_idents():
    """Distinct valid DF_VIOLENCE identities: annual 1900-2025, quarterly
    1990-2025, monthly 2000-2025, x 35 OAS areas x SEX x SOURCE_TYPE
    (275,940 in all)."""
    per = [("A", str(y)) for y in range(1900, 2026)]
    per += [("Q", "%d-Q%d" % (y, q)) for y in range(1990, 2026)
            for q in range(1, 5)]
    per += [("M", "%d-%02d" % (y, m)) for y in range(2000, 2026)
            for m in range(1, 13)]
    for freq, period in per:
        for area in OAS35:
            for sex in ("_T", "M", "F"):
                for src in ("CJ", "PH", "HARM", "MOD"):
                    yield freq, area, sex, src, period


def write_violence_csv(path, n, rng, offset=0):
    """Writes an SDMX-CSV 2.x file of n valid OID:DF_VIOLENCE(1.0) rows (the
    identities offset..offset+n of _violence_idents(), random values).
    Returns [(series key, period)] of the first, middle and last row."""
    spots = []
    with open(path, "w") as f:
        f.write(VIOLENCE_HEADER)
        i = -1
        for i, (freq, area, sex, src, period) in enumerate(
                itertools.islice(_violence_idents(), offset, offset + n)):
            val = "%d.%06d" % (rng.randrange(100), rng.randrange(10**6))
            f.write("dataflow,%s,M,%s,%s,VC_IHR_PSRC,%s,_T,_T,%s,%s,%s,"
                    "PER_100000_POP,A\n" % (DF_VIOLENCE, freq, area, sex, src,
                                            period, val))
            if i in (0, n // 2, n - 1):
                spots.append(("%s.%s.VC_IHR_PSRC.%s._T._T.%s" %
                              (freq, area, sex, src), period))
    if i + 1 != n:
        fail("write_violence_csv: only %d identities (wanted %d)" % (i + 1, n))
    return spots


# ---------------------------------------------------------------- main


def _on_alarm(signum, frame):
    raise TestFailure("test file exceeded its %d s deadline" %
                      FILE_DEADLINE_S)


def main(cases, name=None):
    """Runs each case(env) in order with one Env (temp dir) per file; a
    failing case prints the daemons' log tails and the file exits 1. Daemons
    a case started are killed after it, so cases stay independent."""
    name = name or os.path.splitext(os.path.basename(sys.argv[0]))[0]
    env = Env(name)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(FILE_DEADLINE_S)
    failed = []
    t_file = time.monotonic()
    try:
        for case in cases:
            if len(sys.argv) > 1 and case.__name__ not in sys.argv[1:]:
                continue
            log("== %s" % case.__name__)
            t0 = time.monotonic()
            n_daemons = len(env.daemons)
            try:
                case(env)
                log("PASS %s (%.1f s)" % (case.__name__,
                                          time.monotonic() - t0))
            except Exception as e:  # noqa: report any failure, go on
                failed.append(case.__name__)
                log("FAIL %s: %s: %s" % (case.__name__, type(e).__name__, e))
                if not isinstance(e, TestFailure):
                    import traceback
                    traceback.print_exc(file=sys.stdout)
                env.dump_logs(env.daemons[n_daemons:])
            finally:
                for d in env.daemons[n_daemons:]:
                    d.kill9()
    finally:
        signal.alarm(0)
        env.cleanup(keep=bool(failed) and bool(
            os.environ.get("OBSYNC_KEEP_TMP_ON_FAIL")))
    log("%s: %s in %.1f s" % (name, "FAILED: " + ", ".join(failed)
                              if failed else "all passed",
                              time.monotonic() - t_file))
    sys.exit(1 if failed else 0)
