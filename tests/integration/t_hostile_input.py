#!/usr/bin/env python3
"""t_hostile_input.py - hostile files given to `obsync import`: garbage
text, an empty file, random binary bytes with NULs, a 50 MB line without
separators, a 20 MB field, many bad rows, files of an unknown dataflow
(BIS:BIS_DER(1.0), SDMX-CSV v2 and v1, real BIS files), a nonexistent path
and a directory. Each gets a clear message and the documented exit code
(5 input unreadable/empty/binary/malformed, 1 rows rejected); after each the
daemon still answers status and holds exactly the data it held before. Also
the CLI against no daemon exits 3. Raw garbage frames on the API socket are
not sent from here (Python has no ZeroMQ): the C fuzz targets cover the
decoder. Run by ctest as integration.hostile_input."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# Real BIS files (the v1 one cut to its first 40 lines), kept beside the
# test so it runs the same on a fresh machine.
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
BIS_V2 = os.path.join(DATA, "bis_der_subset_sdmx-csv-v2_action.csv")
BIS_V1 = os.path.join(DATA, "bis_der_sdmx-csv-v1_head40.csv")
BASE = h.sample("violence_wdi_homicide.csv")
BASE_ROWS = 972


def make_files(env):
    rng = env.rng
    files = []

    def add(name, data, want, words=()):
        p = env.path(name)
        with open(p, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
        files.append((name, p, want, words))

    letters = "abcdefghijklmnopqrstuvwxyz ;.:!?'\t"
    add("garbage.txt",
        "\n".join("".join(rng.choice(letters) for _ in range(rng.randrange(
            1, 120))) for _ in range(200)).encode(), (h.EXIT_INPUT,))
    add("empty.csv", b"", (h.EXIT_INPUT,), ("empty",))
    add("binary.csv", bytes(rng.randrange(256) for _ in range(65536)) +
        b"\0\0\0", (h.EXIT_INPUT,))

    def one_line(f):  # 50 MB without a separator or a newline
        chunk = b"x" * (1 << 20)
        for _ in range(50):
            f.write(chunk)
    add("huge_line.csv", one_line, (h.EXIT_INPUT,))

    def big_field(f):  # valid header, then one row with a 20 MB field
        f.write(h.VIOLENCE_HEADER.encode())
        f.write(("dataflow,%s,M,A,MEX,VC_IHR_PSRC,_T,_T,_T,HARM,1999,1.5,"
                 "PER_100000_POP,\"" % h.DF_VIOLENCE).encode())
        chunk = b"y" * (1 << 20)
        for _ in range(20):
            f.write(chunk)
        f.write(b"\"\n")
    add("huge_field.csv", big_field, (h.EXIT_REJECTED, h.EXIT_INPUT))

    def many_bad(f):  # valid header, 20000 rows with an unknown area
        f.write(h.VIOLENCE_HEADER.encode())
        for i in range(20000):
            f.write(("dataflow,%s,M,A,X%02d,VC_IHR_PSRC,_T,_T,_T,HARM,%d,1,"
                     "PER_100000_POP,A\n" % (h.DF_VIOLENCE, i % 100,
                                             1900 + i % 126)).encode())
    add("many_bad.csv", many_bad, (h.EXIT_REJECTED,))
    return files


def check_alive(d, what):
    h.check(d.running(), "%s: daemon still running" % what)
    st = d.status()
    h.check("observations" in st, "%s: status --json has observations" %
            what, repr(st))
    h.eq(st["observations"], BASE_ROWS, "%s: daemon answers status, still "
         "holds the %d earlier observations" % (what, BASE_ROWS))
    h.eq(d.count(h.DF_VIOLENCE), BASE_ROWS, "%s: query count unchanged" %
         what)


def hostile_import(d, name, path, want, words=()):
    r = d.import_(path, check=None, json=False, max_issues=50,
                  timeout=180)
    h.check(r.rc in want, "%s: exit %d (want %s)" % (name, r.rc,
                                                      "/".join(map(str,
                                                                   want))),
            r.res.describe())
    msg = r.res.err.strip()
    h.check(msg, "%s: a message on stderr" % name)
    h.check(len(r.res.err) < 2 * 1024 * 1024,
            "%s: stderr stays bounded (%d bytes)" % (name, len(r.res.err)))
    first = msg.splitlines()[0]
    h.check(path in msg or os.path.basename(path) in msg,
            "%s: message names the file" % name, first[:300])
    for w in words:
        h.check(w.lower() in msg.lower(), "%s: message says %r" % (name, w),
                first[:300])
    h.log("       message: %s" % first[:200])
    return r


def test_hostile_files(env):
    d = env.daemon("h", no_sync=True)
    d.start()
    r = d.import_(BASE, check=0)
    h.eq(r.summary["accepted"], BASE_ROWS, "base data imported")
    for name, path, want, words in make_files(env):
        r = hostile_import(d, name, path, want, words)
        if name == "many_bad.csv":
            h.eq((r.summary["accepted"], r.summary["rejected"]),
                 (0, 20000), "many_bad: every row rejected, none stored")
        check_alive(d, name)
    d.stop()


def test_unknown_dataflow(env):
    d = env.daemon("u", no_sync=True)
    d.start()
    d.import_(BASE, check=0)
    for name, path in (("BIS v2", BIS_V2), ("BIS v1", BIS_V1)):
        h.check(os.path.exists(path), "%s: the real file is there" % name,
                "%s is missing" % path)
        r = hostile_import(d, name, path, (h.EXIT_REJECTED, h.EXIT_INPUT))
        h.check("BIS:BIS_DER" in r.res.err or "dataflow" in r.res.err.lower(),
                "%s: message names the dataflow" % name)
        # a summary line, when the file got that far, accepts nothing; the
        # store's count (check_alive) shows nothing of it was stored
        h.eq(sum(s["accepted"] for s in r.summaries.values()), 0,
             "%s: nothing accepted (%d summary line(s))" %
             (name, len(r.summaries)))
        check_alive(d, name)
    d.stop()


def test_bad_paths(env):
    d = env.daemon("p", no_sync=True)
    d.start()
    d.import_(BASE, check=0)
    missing = env.path("no", "such.csv")
    hostile_import(d, "nonexistent path", missing, (h.EXIT_INPUT,))
    check_alive(d, "nonexistent path")
    os.mkdir(env.path("adir"))
    hostile_import(d, "directory", env.path("adir"), (h.EXIT_INPUT,))
    check_alive(d, "directory")
    d.stop()


def test_no_daemon(env):
    r = env.cli("status", json=True, check=None, timeout=60)
    h.eq(r.rc, h.EXIT_UNREACHABLE, "status without a daemon exits 3")
    h.check(r.err.strip(), "... with a message", r.describe())
    h.log("       message: %s" % r.err.strip().splitlines()[0][:200])
    r = env.cli("import", BASE, check=None, timeout=60)
    h.eq(r.rc, h.EXIT_UNREACHABLE, "import without a daemon exits 3")
    r = env.cli("frobnicate", check=None, timeout=60)
    h.eq(r.rc, h.EXIT_USAGE, "an unknown command exits 2")


if __name__ == "__main__":
    h.main([test_hostile_files, test_unknown_dataflow, test_bad_paths,
            test_no_daemon])
