#!/usr/bin/env python3
"""t_defects.py - importing the real defective UNODC rows
(deploy/sample-data/defects/drug_use_wdr2025_defects.csv) rejects each bad
row with its line, column and rule (R4-decimal for '@', R3-time for year
2106, R8-bounds for bounds that exclude the value, R6-duplicate naming the
first line, R2-code for the GB-ENG area of the '0,3' row) and stores the
valid rows; --strict stores nothing; --dry-run stores nothing but counts the
same; --decimal-comma accepts '0,3'. The expected verdict of every row is
computed here from the file itself, independently of the daemon. Run by
ctest as integration.defects."""

import os
import sys
from decimal import Decimal, InvalidOperation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

DEFECTS = h.sample("defects/drug_use_wdr2025_defects.csv")
RULE_COLUMNS = {"R4-decimal": ("OBS_VALUE",), "R3-time": ("TIME_PERIOD",),
                "R2-code": ("REF_AREA",),
                "R8-bounds": ("OBS_VALUE", "LOWER_BOUND", "UPPER_BOUND"),
                "R6-duplicate": None}


def expected_verdicts():
    """{line: [(rule, first_line or None)]} for every data row, the rows,
    and {ident: first line} of the keys that must be stored."""
    header, rows = h.read_sdmx_csv(DEFECTS)
    want, first_of = {}, {}
    for r in rows:
        exp = []
        ident = h.row_ident(r)
        if r["REF_AREA"] == "GB-ENG":  # not an ISO 3166-1 code
            exp.append(("R2-code", None))
        elif int(r["TIME_PERIOD"][:4]) > 2025:
            exp.append(("R3-time", None))
        else:
            try:
                v = Decimal(r["OBS_VALUE"])
            except InvalidOperation:
                v = None
                exp.append(("R4-decimal", None))
            lo, hi = r["LOWER_BOUND"], r["UPPER_BOUND"]
            if v is not None and ((lo and v < Decimal(lo)) or
                                  (hi and v > Decimal(hi))):
                exp.append(("R8-bounds", None))
            if ident in first_of:
                exp.append(("R6-duplicate", first_of[ident]))
            else:
                first_of[ident] = r["_line"]
        want[r["_line"]] = exp
    stored = {}
    by_line = {r["_line"]: r for r in rows}
    for ident, line in first_of.items():
        if not want[line]:
            stored[ident] = by_line[line]["OBS_VALUE"]
    return want, rows, stored


def check_issues(res, want):
    kinds = {}
    for line, exp in sorted(want.items()):
        got = res.issues_at(line)
        got_errors = [i for i in got if not i["message"].startswith("warn")]
        if not exp:
            h.check(not got_errors, "line %d: no issue" % line,
                    repr(got_errors))
            continue
        for rule, first in exp:
            match = [i for i in got if i["rule"] == rule]
            h.check(match, "line %d: %s reported" % (line, rule), repr(got))
            cols = RULE_COLUMNS[rule]
            if cols:
                h.check(any(i["column"] in cols for i in match),
                        "line %d: %s names column %s" % (line, rule,
                                                          "/".join(cols)),
                        repr(match))
            if first is not None:
                h.check(any(("line %d" % first) in i["message"]
                            for i in match),
                        "line %d: R6-duplicate names first line %d" %
                        (line, first), repr(match))
            kinds[rule] = kinds.get(rule, 0) + 1
    h.log("  ..   issues by rule: %s" % kinds)
    for rule in ("R4-decimal", "R3-time", "R8-bounds", "R6-duplicate",
                 "R2-code"):
        h.check(kinds.get(rule), "defect kind %s seen" % rule)


def test_defects_import(env):
    want, rows, stored = expected_verdicts()
    n_bad = sum(1 for e in want.values() if e)
    d = env.daemon("d", no_sync=True)
    d.start()

    r = d.import_(DEFECTS, flags=["--dry-run"], check=h.EXIT_REJECTED)
    s = r.summary
    h.eq((s["accepted"], s["rejected"], s["state"]),
         (len(stored), n_bad, "dry run"), "--dry-run: the same counts")
    h.eq(d.count(h.DF_DRUG_USE), 0, "--dry-run stored nothing")

    r = d.import_(DEFECTS, flags=["--strict"], check=h.EXIT_REJECTED)
    h.eq((r.summary["rejected"], r.summary["state"]),
         (n_bad, "not committed"), "--strict: rejected rows, not committed")
    h.eq(d.count(h.DF_DRUG_USE), 0, "--strict stored nothing")

    r = d.import_(DEFECTS, check=h.EXIT_REJECTED)
    s = r.summary
    h.eq((s["accepted"], s["unchanged"], s["rejected"], s["state"]),
         (len(stored), 0, n_bad, "committed"),
         "import: valid rows accepted, bad rows rejected, committed")
    check_issues(r, want)
    h.check(all(i["file"] == DEFECTS for i in r.issues),
            "every issue names the file")
    got = {(o["dataflow"], o["series_key"], o["time_period"]): o["value"]
           for o in d.query(h.DF_DRUG_USE)}
    h.eq(len(got), len(stored), "query returns the valid rows only")
    diff = [k for k in stored if got.get(k) != stored[k]]
    h.check(not diff, "each stored key holds its first valid row's value",
            repr(diff[:5]))
    d.stop()


def test_decimal_comma(env):
    d = env.daemon("c", no_sync=True)
    d.start()
    r = d.import_(DEFECTS, flags=["--decimal-comma", "--dry-run"],
                  check=h.EXIT_REJECTED)
    h.check(not [i for i in r.issues_at(21) if i["rule"] == "R4-decimal"],
            "--decimal-comma: no R4-decimal for '0,3' on line 21",
            repr(r.issues_at(21)))
    # the same real row with a valid area code, alone in a file
    with open(DEFECTS, encoding="utf-8") as f:
        lines = f.read().splitlines(True)
    p = env.path("comma.csv")
    with open(p, "w", encoding="utf-8") as f:
        f.write(lines[0] + lines[20].replace(",GB-ENG,", ",GBR,"))
    r = d.import_(p, check=h.EXIT_REJECTED)
    h.check([i for i in r.issues_at(2) if i["rule"] == "R4-decimal" and
             i["column"] == "OBS_VALUE"],
            "without --decimal-comma '0,3' is R4-decimal", repr(r.issues))
    r = d.import_(p, flags=["--decimal-comma"], check=0)
    h.eq((r.summary["accepted"], r.summary["rejected"]), (1, 0),
         "with --decimal-comma the '0,3' row is accepted")
    o = d.get(h.DF_DRUG_USE, "A.GBR.YOUTH.PREV_PM.NPS_MEPHEDRONE.F.Y15",
              "2018")
    h.eq(Decimal(o["value"]), Decimal("0.3"), "stored value is 0.3 (text %r)"
         % o["value"])
    d.stop()


if __name__ == "__main__":
    h.main([test_defects_import, test_decimal_comma])
