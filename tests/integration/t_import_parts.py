#!/usr/bin/env python3
"""t_import_parts.py - `obsync import --commit-every N`: a file committed in
parts as it streams (PROTOCOL.md §4, ImportBegin.commit_rows).

The file is fed through a named pipe, so the test decides how far the client
has read: it writes the header and ROWS_FIRST rows, then a block of blank
lines (skipped by the reader) that pushes every one of those rows through the
client's 64 KiB read buffer. ROWS_FIRST and PART are multiples of the
client's 2000-row chunk, so after that the daemon has committed exactly
ROWS_FIRST rows while the import is still open.

* test_parts_replicate_while_loading: a hub and two nodes; node COL imports
  in parts; node MEX holds the first ROWS_FIRST rows before the file ends;
  the rest follows; the summary counts every part; every row carries the
  import's one batch id; all stores end byte-identical; the hub does not
  stream COL's changes back to it (its bytes out to COL stay small).
* test_kill9_keeps_parts: one node (synced commits); kill -9 while the
  import is open: after the restart exactly the committed rows (the first
  ROWS_FIRST of the file) are there; importing the file again completes it,
  and the store equals one that imported the file as one transaction.
* test_usage: --commit-every 0 and --strict --commit-every are refused.

Run by ctest as integration.import_parts."""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

PART = 6000
ROWS_FIRST = 2 * PART
ROWS = 30000
PAD = b"\n" * (64 * 1024 + 1)  # blank lines: more than the reader's buffer
WAIT_S = 120


class PipeFeeder:
    """Writes an SDMX-CSV file's lines into a FIFO from a thread, in two
    steps: the header and the first `first` rows (plus PAD) at once, the rest
    after release()."""

    def __init__(self, fifo, lines, first):
        self.fifo, self.lines, self.first = fifo, lines, first
        self.go = threading.Event()
        self.error = None
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            with open(self.fifo, "wb") as f:  # blocks until the CLI opens it
                f.write(b"".join(self.lines[:1 + self.first]) + PAD)
                f.flush()
                if not self.go.wait(WAIT_S):
                    return
                f.write(b"".join(self.lines[1 + self.first:]))
        except OSError as e:
            self.error = e

    def release(self):
        self.go.set()

    def join(self):
        self.go.set()
        self.t.join(WAIT_S)
        if self.error:
            h.fail("writing the pipe failed: %s" % self.error)


def make_file(env, area, name):
    path = env.path(name)
    keys = rh.write_rows(path, area, ROWS, env.rng)
    with open(path, "rb") as f:
        lines = f.readlines()
    h.eq(len(lines), ROWS + 1, "generated file lines")
    return path, lines, keys


def import_from_pipe(env, d, lines, name):
    """Starts `import FIFO --commit-every PART --json` at d in the
    background; returns (cli process, feeder)."""
    fifo = env.path(name)
    os.mkfifo(fifo)
    p = d.cli_bg("--json", "import", fifo, "--commit-every", str(PART),
                 reply_timeout=WAIT_S)
    return p, PipeFeeder(fifo, lines, ROWS_FIRST)


def finish(p, feeder):
    feeder.join()
    try:
        rc = p.wait(timeout=WAIT_S)
    except Exception:
        h.fail("the import did not finish")
    with open(p.out_path) as f:
        out = f.read()
    h.eq(rc, 0, "import exit code (output: %s)" % out[-500:])
    return h.json.loads(out.strip().splitlines()[-1])


def batch_ids(d):
    ids = set()
    for line in rh.export(d, "jsonl").splitlines():
        if line.strip():
            ids.add(h.json.loads(line)["version"]["batch_id"])
    return ids


def test_parts_replicate_while_loading(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    col = rh.node(env, "col", hub, node_id="COL", provider="COL",
                  no_sync=True)
    mex = rh.node(env, "mex", hub, node_id="MEX", provider="MEX",
                  no_sync=True)
    col.start()
    mex.start()
    _, lines, _ = make_file(env, "COL", "col.csv")
    p, feeder = import_from_pipe(env, col, lines, "col.fifo")
    h.wait_until(lambda: rh.must_status(mex)["observations"] == ROWS_FIRST,
                 WAIT_S, "MEX to hold the first %d rows" % ROWS_FIRST)
    h.check(p.poll() is None, "the import is still open when MEX holds "
            "its first parts")
    h.eq(rh.must_status(col)["observations"], ROWS_FIRST,
         "COL holds only the committed parts while the file is open")
    feeder.release()
    s = finish(p, feeder)
    h.eq((s["accepted"], s["unchanged"], s["rejected"], s["committed"]),
         (ROWS, 0, 0, True), "summary over every part")
    rh.wait_converged(hub, [col, mex], WAIT_S)
    for d in (hub, col, mex):
        h.eq(rh.must_status(d)["observations"], ROWS,
             "%s holds the whole file" % d.name)
        h.eq(batch_ids(d), {s["batch_id"]},
             "%s: every row carries the import's one batch id" % d.name)
    rh.compare_exports([hub, col, mex])
    # no echo: the hub streams COL's own changes to MEX, not back to COL
    out = {n: r["bytes_out"] for n, r in
           rh.peer_rows(rh.must_status(hub)).items()}
    h.check(out["COL"] * 10 < out["MEX"], "the hub sent COL's changes to "
            "MEX only, not back to COL", "bytes_out %r" % out)
    h.check(rh.log_has(col, r"after %d row\(s\) in %d part\(s\)" %
                       (ROWS - ROWS % PART, ROWS // PART)),
            "COL's log names the parts")


def test_kill9_keeps_parts(env):
    d = env.daemon("one")  # synced commits: durability is under test
    d.start()
    path, lines, keys = make_file(env, "COL", "col.csv")
    p, feeder = import_from_pipe(env, d, lines, "kill.fifo")
    h.wait_until(lambda: d.status()["observations"] == ROWS_FIRST, WAIT_S,
                 "the first %d rows to be committed" % ROWS_FIRST)
    d.kill9()
    p.kill()
    feeder.release()
    d.start()
    h.eq(d.status()["observations"], ROWS_FIRST,
         "after kill -9: exactly the committed parts")
    first, after = keys[ROWS_FIRST - 1], keys[ROWS_FIRST]
    h.check(d.get(h.DF_VIOLENCE, first[0], first[1]) is not None,
            "the last row of the committed parts is stored")
    h.check(d.get(h.DF_VIOLENCE, after[0], after[1],
                  check=(0, h.EXIT_NOT_FOUND)) is None,
            "the first row after them is not")
    s = d.import_(path, flags=("--commit-every", str(PART)), check=0).summary
    h.eq((s["accepted"], s["unchanged"]), (ROWS - ROWS_FIRST, ROWS_FIRST),
         "importing the file again completes it")
    whole = env.daemon("whole")
    whole.start()
    whole.import_(path, check=0)
    h.eq(rh.export(d), rh.export(whole),
         "export after parts + rerun == export of one transaction")


def test_usage(env):
    path = env.path("tiny.csv")
    rh.write_rows(path, "COL", 10, env.rng)
    d = env.daemon("usage")
    d.start()
    for flags in (["--commit-every", "0"], ["--commit-every", "x"],
                  ["--strict", "--commit-every", "5"]):
        r = d.cli("import", path, *flags, check=h.EXIT_USAGE)
        h.check("commit-every" in r.err, "the error names the option",
                r.err)
    h.eq(d.status()["observations"], 0, "nothing imported")


if __name__ == "__main__":
    h.main([test_parts_replicate_while_loading, test_kill9_keeps_parts,
            test_usage])
