#!/usr/bin/env python3
"""t_sample_roundtrip.py - the three clean sample files go in and come out
without loss: each imports with exit 0 and 0 rejected (accepted = data rows),
query counts per dataflow match, export -> import on a second fresh daemon ->
export is byte-identical, every exported OBS_VALUE and attribute equals the
source text, a re-import is all unchanged, and one observation's get /
history / put / --as-of / --updated-after / delete behave. Prints the import
rate. Run by ctest as integration.sample_roundtrip."""

import datetime
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

SAMPLES = ["violence_wdi_homicide.csv", "violence_ihme_gbd2016.csv",
           "drug_use_wdr2025.csv"]

# Real values looked up in the sample files (key, period, OBS_VALUE text).
KNOWN = [
    (h.DF_VIOLENCE, "A.MEX.VC_IHR_PSRC._T._T._T.HARM", "2023", "24.858995"),
    (h.DF_VIOLENCE, "A.ARG.VC_IHR_PSRC._T._T._T.HARM", "2003", "7.721680"),
    (h.DF_VIOLENCE, "A.COL.VIOL_DEATHS_N._T._T._T.MOD", "2016", "16849"),
    (h.DF_DRUG_USE, "A.BHS.GENPOP.PREV_PY.CANNABIS._T.Y15T64", "2008",
     "5.54"),
]
PROBE = KNOWN[0]  # the observation get/put/history/delete work on


def source_rows():
    """{(df, key, period): row} over the three samples, and rows per file."""
    rows, per_file = {}, {}
    for name in SAMPLES:
        _, rs = h.read_sdmx_csv(h.sample(name))
        per_file[name] = len(rs)
        for r in rs:
            ident = h.row_ident(r)
            if ident in rows:
                h.fail("sample data has a duplicate key %r" % (ident,))
            rows[ident] = r
    return rows, per_file


def import_samples(d, per_file):
    t0 = time.monotonic()
    total = 0
    for name in SAMPLES:
        r = d.import_(h.sample(name), check=0)
        s = r.summary
        h.eq((s["accepted"], s["rejected"], s["state"]),
             (per_file[name], 0, "committed"),
             "import %s: accepted = data rows, 0 rejected" % name)
        total += s["accepted"]
    dt = time.monotonic() - t0
    h.log("  rate %d observations in %.2f s = %.0f obs/s (3 imports, CLI "
          "included)" % (total, dt, total / dt if dt > 0 else 0))
    return total


def check_counts(d, src):
    for df in (h.DF_VIOLENCE, h.DF_DRUG_USE):
        want = sum(1 for k in src if k[0] == df)
        h.eq(d.count(df), want, "query %s returns every observation" % df)
    h.eq(d.count(), len(src), "query without dataflow returns all")
    st = d.status()
    h.check("observations" in st, "status --json has observations", repr(st))
    h.eq(st["observations"], len(src), "status counts the observations")


def parse_export(path):
    header, rows = h.read_sdmx_csv(path)
    h.eq(header[:3], ["STRUCTURE", "STRUCTURE_ID", "ACTION"],
         "export header starts STRUCTURE,STRUCTURE_ID,ACTION")
    return {h.row_ident(r): r for r in rows}, len(rows)


def check_export_matches_source(exp, n_rows, src):
    h.eq(n_rows, len(src), "export has one row per observation")
    h.eq(set(exp), set(src), "export holds exactly the source keys")
    bad = []
    for ident, s in src.items():
        e = exp[ident]
        for col, v in s.items():
            if col in ("_line", "ACTION") or v == "":
                continue
            if e.get(col) != v:
                bad.append("%s %s: %s=%r in export, %r in source" %
                           (ident[1], ident[2], col, e.get(col), v))
    h.check(not bad, "every OBS_VALUE and attribute exported exactly as "
            "imported (%d observations)" % len(src), "\n".join(bad[:10]))
    for df, key, period, value in KNOWN:
        h.eq(exp[(df, key, period)]["OBS_VALUE"], value,
             "export %s %s OBS_VALUE text" % (key, period))


def test_roundtrip(env):
    src, per_file = source_rows()
    a = env.daemon("a", no_sync=True)
    a.start()
    import_samples(a, per_file)
    check_counts(a, src)

    exp1 = env.path("export1.csv")
    a.cli("export", "--format", "csv", "-o", exp1)
    exp, n = parse_export(exp1)
    check_export_matches_source(exp, n, src)

    b = env.daemon("b", no_sync=True)
    b.start()
    r = b.import_(exp1, check=0)
    h.eq((r.summary["accepted"], r.summary["rejected"]), (len(src), 0),
         "second daemon imports the export whole")
    exp2 = env.path("export2.csv")
    b.cli("export", "--format", "csv", "-o", exp2)
    with open(exp1, "rb") as f1, open(exp2, "rb") as f2:
        d1, d2 = f1.read(), f2.read()
    h.check(d1 == d2, "export -> import -> export is byte-identical (%d "
            "bytes)" % len(d1), "first difference at byte %d" %
            next((i for i in range(min(len(d1), len(d2))) if d1[i] != d2[i]),
                 min(len(d1), len(d2))))
    b.stop()

    # JSON lines export parses and has the same count
    jl = env.path("export.jsonl")
    a.cli("export", "--format", "jsonl", "-o", jl)
    with open(jl) as f:
        objs = [json.loads(l) for l in f if l.strip()]
    h.eq(len(objs), len(src), "JSON lines export has every observation")

    for name in SAMPLES:
        r = a.import_(h.sample(name), check=0)
        h.eq((r.summary["accepted"], r.summary["unchanged"]),
             (0, per_file[name]), "re-import %s: all unchanged" % name)
    a.stop()


def iso_ms(ms):
    t = datetime.datetime.fromtimestamp(ms / 1000.0, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (ms % 1000)


def version_ms(obs):
    v = obs["version"]
    return v["hlc"] >> 16


def test_get_put_history_delete(env):
    df, key, period, value = PROBE
    a = env.daemon("p", no_sync=True)
    a.start()
    a.import_(h.sample("violence_wdi_homicide.csv"), check=0)

    o = a.get(df, key, period)
    h.eq((o["dataflow"], o["series_key"], o["time_period"], o["value"]),
         (df, key, period, value), "get returns the imported observation")
    h.eq(o["attrs"].get("UNIT_MEASURE"), "PER_100000_POP",
         "get returns its attributes")
    hist = a.history(df, key, period)
    h.eq(len(hist), 1, "history has 1 version after the import")
    t1 = version_ms(hist[0])

    # the put must be stamped strictly after t1 + 1 ms so that a time
    # between the two versions exists
    h.wait_until(lambda: time.time() * 1000 > t1 + 5, 5,
                 "the clock to pass the first version")
    a.cli("put", df, key, period, "25.000100", "OBS_STATUS=E",
          "UNIT_MEASURE=PER_100000_POP")
    o2 = a.get(df, key, period)
    h.eq(o2["value"], "25.000100", "get returns the put value as text")
    h.eq(o2["attrs"].get("OBS_STATUS"), "E", "put set OBS_STATUS")
    h.eq(o2["attrs"].get("SOURCE_DETAIL"), o["attrs"].get("SOURCE_DETAIL"),
         "put merges: SOURCE_DETAIL kept")
    hist = a.history(df, key, period)
    h.eq([v["value"] for v in hist], ["25.000100", value],
         "history has 2 versions, newest first")
    t2 = version_ms(hist[0])
    h.check(t2 > t1 + 1, "the put is stamped after the import (%d > %d)" %
            (t2, t1))
    mid = iso_ms(t1 + (t2 - t1) // 2)

    old = a.query(df, "--key", key, "--start", period, "--end", period,
                  "--as-of", mid)
    h.eq([x["value"] for x in old], [value],
         "query --as-of %s returns the old value" % mid)
    now = a.query(df, "--key", key, "--start", period, "--end", period)
    h.eq([x["value"] for x in now], ["25.000100"],
         "query without --as-of returns the new value")
    changed = a.query("--updated-after", mid)
    h.eq([(x["series_key"], x["time_period"]) for x in changed],
         [(key, period)], "--updated-after returns only the changed one")

    a.cli("delete", df, key, period)
    r = a.cli("get", df, key, period, json=True,
              check=h.EXIT_NOT_FOUND)
    h.check(key in r.err or "not found" in r.err.lower(),
            "get after delete: exit 4 with a message", r.err)
    hist = a.history(df, key, period)
    h.eq(len(hist), 3, "history has 3 versions after the delete")
    h.check(hist[0]["version"]["tombstone"] is True,
            "newest version is the tombstone")
    h.eq(a.count(df), 971, "the other 971 observations are still there")
    gone = a.query("--updated-after", mid)
    h.eq([(x["series_key"], x["version"]["tombstone"]) for x in gone],
         [(key, True)], "--updated-after now returns the tombstone")
    a.stop()


def test_merge_put_keeps_mandatory_attribute(env):
    """A merge put that gives only the value keeps the stored attributes,
    the mandatory UNIT_MEASURE included: the merged observation is valid."""
    df, key, period, value = KNOWN[1]
    a = env.daemon("m", no_sync=True)
    a.start()
    a.import_(h.sample("violence_wdi_homicide.csv"), check=0)
    r = a.cli("put", df, key, period, "7.9", check=None)
    h.eq(r.rc, 0, "merge put of a value alone is accepted" +
         ("" if r.rc == 0 else " (stderr: %s)" % r.err.strip()))
    o = a.get(df, key, period)
    h.eq((o["value"], o["attrs"].get("UNIT_MEASURE")),
         ("7.9", "PER_100000_POP"), "value replaced, UNIT_MEASURE kept")
    a.stop()


def write_actions(path, rows):
    """An SDMX-CSV 2.x DF_VIOLENCE file of (action, area, month, value)."""
    with open(path, "w") as f:
        f.write(h.VIOLENCE_HEADER)
        for action, area, month, value in rows:
            f.write("dataflow,%s,%s,M,%s,VC_IHR_PSRC,_T,_T,_T,CJ,%s,%s,"
                    "PER_100000_POP,A\n" %
                    (h.DF_VIOLENCE, action, area, month, value))


def test_import_actions_in_one_file(env):
    """Import rows take a fast path when their key is new and the full one
    otherwise; both must count and store alike: a merge onto a live key, an
    unchanged row, a delete, a key added and deleted in one file, a key
    written again over its tombstone, and a dry run."""
    a = env.daemon("x", no_sync=True)
    a.start()
    p1, p2, p3 = env.path("a1.csv"), env.path("a2.csv"), env.path("a3.csv")
    write_actions(p1, [("M", "COL", "2020-01", "1"), ("M", "COL", "2020-02",
                                                      "2"),
                       ("M", "COL", "2020-03", "3")])
    s = a.import_(p1, check=0).summary
    h.eq((s["accepted"], s["unchanged"], s["deleted"]), (3, 0, 0),
         "first import: 3 new keys")
    write_actions(p2, [("M", "COL", "2020-01", "1"),    # unchanged
                       ("M", "COL", "2020-02", "20"),   # merge onto live
                       ("D", "COL", "2020-03", ""),     # delete
                       ("M", "COL", "2020-04", "4"),    # new ...
                       ("D", "COL", "2020-04", "")])    # ... and deleted
    dry = a.import_(p2, flags=["--dry-run"], check=0).summary
    s = a.import_(p2, check=0).summary
    # a delete is counted as accepted and as deleted
    h.eq((s["accepted"], s["unchanged"], s["deleted"]), (4, 1, 2),
         "second import: 4 accepted (2 of them deletes), 1 unchanged")
    h.eq((dry["accepted"], dry["unchanged"], dry["deleted"]), (4, 1, 2),
         "its dry run counted the same")
    key = "M.COL.VC_IHR_PSRC._T._T._T.CJ"
    h.eq(a.get(h.DF_VIOLENCE, key, "2020-02")["value"], "20", "merged value")
    for month in ("2020-03", "2020-04"):
        a.cli("get", h.DF_VIOLENCE, key, month, json=True,
              check=h.EXIT_NOT_FOUND)
        h.eq(len(a.history(h.DF_VIOLENCE, key, month)), 2,
             "%s: a version and its tombstone" % month)
    write_actions(p3, [("M", "COL", "2020-03", "30")])
    s = a.import_(p3, check=0).summary
    h.eq(s["accepted"], 1, "a key written again over its tombstone")
    o = a.get(h.DF_VIOLENCE, key, "2020-03")
    h.eq((o["value"], o["attrs"].get("UNIT_MEASURE")),
         ("30", "PER_100000_POP"), "its new value and attributes")
    h.eq(a.count(h.DF_VIOLENCE), 3, "three live observations")
    a.stop()


def test_text_summary_line(env):
    """Without --json, import prints the documented summary line."""
    a = env.daemon("t", no_sync=True)
    a.start()
    p = h.sample("violence_wdi_homicide.csv")
    r = a.import_(p, check=0, json=False)
    h.eq(r.summary["accepted"], 972, "text summary line parsed")
    h.check(("%s: accepted 972, unchanged 0, rejected 0, deleted 0, "
             "warnings 0 (committed)" % p) in r.res.out.splitlines(),
            "summary line on stdout exactly as documented", r.res.out)
    a.stop()


if __name__ == "__main__":
    h.main([test_roundtrip, test_get_put_history_delete,
            test_merge_put_keeps_mandatory_attribute,
            test_import_actions_in_one_file, test_text_summary_line])
