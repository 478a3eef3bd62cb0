#!/usr/bin/env python3
"""Check that every dimension code of the sample SDMX-CSV files is known.

What it is: a small stdlib-only cross-check between the sample data written by
convert.py and a structure file in the deploy/structure text format
(`codelist URN "name"` / `  code ID "name" [parent=X]` / `end`, `dsd URN` with
`  dimension ID codelist=URN` lines, `dataflow URN ... dsd=URN`). For every
*.csv file under the sample folder whose header starts with STRUCTURE, each
row's STRUCTURE_ID is resolved to a dataflow and its DSD, and every dimension
cell is looked up in the dimension's code list. Coded attributes (lines
`attribute ID codelist=URN`, when present) are checked too but only warned
about.

What it is not: the obsync validator (structure.c and the importer do the real
checks, including TIME_PERIOD, values and bounds); it does not check the
defects on purpose put into defects/*.csv, only their codes.

Who calls it: engineers after editing the structure file or the converter, and
convert.py's documented workflow (SOURCES.md). Exit status: 0 all dimension
codes known, 1 some missing (they are printed), 2 usage or read error.
"""

import argparse
import csv
import os
import re
import shlex
import sys

FIXED_COLUMNS = {"STRUCTURE", "STRUCTURE_ID", "STRUCTURE_NAME", "ACTION",
                 "SERIES_KEY", "OBS_KEY", "TIME_PERIOD", "OBS_VALUE"}
RE_REF = re.compile(r"^(?P<agency>[^:=\s]+):(?P<id>[^(\s]+)"
                    r"(?:\((?P<version>[^)]*)\))?$")


def norm_ref(ref):
    """'urn:sdmx:...Codelist=OID:CL_X(1.0)' -> 'OID:CL_X(1.0)'."""
    ref = ref.strip()
    if ref.lower().startswith("urn:") and "=" in ref:
        ref = ref.rsplit("=", 1)[1]
    return ref


def version_key(version):
    return tuple(int(p) if p.isdigit() else 0 for p in version.split("."))


def resolve(ref, table):
    """Exact match on the normalised reference, else AGENCY:ID (any or
    missing version) with the highest version; None if unknown."""
    if ref is None:
        return None
    ref = norm_ref(ref)
    if ref in table:
        return ref
    m = RE_REF.match(ref)
    if not m:
        return None
    stem = "%s:%s" % (m.group("agency"), m.group("id"))
    hits = []
    for urn in table:
        mu = RE_REF.match(urn)
        if mu and "%s:%s" % (mu.group("agency"), mu.group("id")) == stem:
            hits.append((version_key(mu.group("version") or "0"), urn))
    return max(hits)[1] if hits else None


def split_line(line):
    """Tokens of one structure line; quoted names stay one token."""
    try:
        return shlex.split(line, comments=False, posix=True)
    except ValueError:
        return line.split()


def options(tokens):
    """key=value tokens (brackets around them are ignored)."""
    opts = {}
    for t in tokens:
        t = t.strip("[]")
        if "=" in t:
            k, v = t.split("=", 1)
            opts[k.lower()] = v
    return opts


class Structure:
    """Code lists, DSDs and dataflows read from the text format."""

    def __init__(self):
        self.codelists = {}  # urn -> set of code ids
        self.dsds = {}       # urn -> {"dims": [(id, cl)], "attrs": [...]}
        self.dataflows = {}  # urn -> dsd reference (may be None)
        self.types = {}      # (dsd urn, component) -> (type, max length)

    def dsd_for(self, dataflow_ref):
        """DSD urn for a dataflow reference, or None."""
        df = resolve(dataflow_ref, self.dataflows)
        if df is not None and self.dataflows[df]:
            return resolve(self.dataflows[df], self.dsds)
        # No dataflow line: by convention DF_X is described by DSD_X.
        guess = norm_ref(dataflow_ref).replace(":DF_", ":DSD_", 1)
        return resolve(guess, self.dsds)


def parse_structure(text):
    st = Structure()
    cur_kind, cur = None, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        toks = split_line(line)
        kw, indented = toks[0].lower(), raw[:1] in " \t"
        if kw == "end":
            cur_kind, cur = None, None
        elif kw == "code" and cur_kind == "codelist" and len(toks) > 1:
            st.codelists[cur].add(toks[1])
        elif kw in ("dimension", "attribute") and cur_kind == "dsd" \
                and len(toks) > 1:
            opts = options(toks[2:])
            cl = opts.get("codelist") or opts.get("cl")
            key = "dims" if kw == "dimension" else "attrs"
            st.dsds[cur][key].append((toks[1], cl))
            st.types[(cur, toks[1])] = (opts.get("type"), opts.get("max"))
        elif kw in ("dsd", "structure") and cur_kind == "dataflow" \
                and indented and len(toks) > 1:
            st.dataflows[cur] = toks[1]
        elif not indented and len(toks) > 1:
            cur_kind, cur = kw, norm_ref(toks[1])
            if kw == "codelist":
                st.codelists.setdefault(cur, set())
            elif kw == "dsd":
                st.dsds[cur] = {"dims": [], "attrs": []}
            elif kw == "dataflow":
                opts = options(toks[2:])
                st.dataflows[cur] = opts.get("dsd") or opts.get("structure")
    return st


def sample_files(root):
    """Every *.csv under root, sorted, relative paths."""
    found = []
    for d, subdirs, files in os.walk(root):
        subdirs.sort()
        for f in sorted(files):
            if f.endswith(".csv"):
                found.append(os.path.relpath(os.path.join(d, f), root))
    return found


class Report:
    def __init__(self):
        self.missing = {}   # (df, component, codelist, code) -> [n, where]
        self.warnings = {}  # same shape, for attributes
        self.errors = []    # file-level problems

    def add(self, table, key, where):
        ent = table.setdefault(key, [0, where])
        ent[0] += 1


def check_components(st, rep, comps, row, col, df, where, table):
    for comp, cl in comps:
        if comp == "TIME_PERIOD" or cl is None or comp not in col:
            continue
        value = row[col[comp]] if col[comp] < len(row) else ""
        if value == "" and table is rep.warnings:
            continue
        clr = resolve(cl, st.codelists)
        if clr is None:
            rep.add(table, (df, comp, norm_ref(cl) + " (unknown code list)",
                            value), where)
        elif value not in st.codelists[clr]:
            rep.add(table, (df, comp, clr, value), where)


def check_file(st, root, rel, rep):
    with open(os.path.join(root, rel), encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        head = next(rows, [])
        if not head or head[0] != "STRUCTURE":
            print("skip %s: not SDMX-CSV 2.x (no STRUCTURE column)" % rel)
            return 0
        col = {name: i for i, name in enumerate(head)}
        n = 0
        for lineno, row in enumerate(rows, 2):
            n += 1
            check_row(st, rep, rel, lineno, row, col)
    return n


def check_row(st, rep, rel, lineno, row, col):
    where = "%s:%d" % (rel, lineno)
    df = row[col["STRUCTURE_ID"]] if "STRUCTURE_ID" in col else ""
    dsd_urn = st.dsd_for(df)
    if dsd_urn is None:
        rep.add(rep.missing, (df, "STRUCTURE_ID", "(dataflow/DSD unknown)",
                              df), where)
        return
    dsd = st.dsds[dsd_urn]
    for comp, _ in dsd["dims"]:
        if comp != "TIME_PERIOD" and comp not in col:
            rep.add(rep.missing, (df, comp, "(column missing)", ""), where)
    known = {c for c, _ in dsd["dims"]} | {c for c, _ in dsd["attrs"]}
    if dsd["attrs"]:
        for name in col:
            if name not in known and name not in FIXED_COLUMNS:
                rep.add(rep.warnings, (df, name, "(column not in DSD)", ""),
                        where)
    check_components(st, rep, dsd["dims"], row, col, df, where, rep.missing)
    check_components(st, rep, dsd["attrs"], row, col, df, where, rep.warnings)
    check_types(st, rep, dsd_urn, dsd["attrs"], row, col, df, where)


RE_DECIMAL = re.compile(r"^-?[0-9]+(\.[0-9]+)?$")


def check_types(st, rep, dsd_urn, comps, row, col, df, where):
    """Warn on uncoded attribute values that break their declared type."""
    for comp, cl in comps:
        if cl is not None or comp not in col or col[comp] >= len(row):
            continue
        value = row[col[comp]]
        typ, maxlen = st.types.get((dsd_urn, comp), (None, None))
        if value == "" or typ is None:
            continue
        example = "%s (%r)" % (where, value[:40])
        if typ == "decimal" and not RE_DECIMAL.match(value):
            rep.add(rep.warnings, (df, comp, "(not a decimal)", ""), example)
        elif typ == "integer" and not re.match(r"^-?[0-9]+$", value):
            rep.add(rep.warnings, (df, comp, "(not an integer)", ""), example)
        elif typ == "string" and maxlen and maxlen.isdigit() and \
                len(value) > int(maxlen):
            rep.add(rep.warnings, (df, comp, "(longer than max=%s)" % maxlen,
                                   ""), example)


def print_table(title, table):
    if not table:
        return
    print(title)
    for (df, comp, cl, code), (n, where) in sorted(table.items()):
        if cl.startswith("("):  # a column-level or type problem
            print("  %s %s%s %s: %d row(s), first %s"
                  % (df, comp, "=%r" % code if code else "", cl.strip("()"),
                     n, where))
        else:
            print("  %s %s=%r not in %s: %d row(s), first %s"
                  % (df, comp, code, cl, n, where))


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("structure", nargs="?", default=os.path.normpath(
        os.path.join(here, "..", "structure", "starter.structure")))
    p.add_argument("--dir", default=here, help="sample folder to check")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        with open(args.structure, encoding="utf-8") as f:
            st = parse_structure(f.read())
    except OSError as e:
        print("check_codes.py: %s" % e, file=sys.stderr)
        return 2
    print("structure %s: %d code lists, %d DSDs, %d dataflows" % (
        args.structure, len(st.codelists), len(st.dsds), len(st.dataflows)))
    rep = Report()
    for rel in sample_files(args.dir):
        n = check_file(st, args.dir, rel, rep)
        if n:
            print("checked %s: %d rows" % (rel, n))
    print_table("WARNING attribute values/columns not in the structure:",
                rep.warnings)
    print_table("MISSING dimension codes:", rep.missing)
    if rep.missing:
        return 1
    print("all dimension codes are in their code lists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
