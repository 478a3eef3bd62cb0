#!/usr/bin/env python3
"""Convert the real public files in shared/data/ into SDMX-CSV 2.x samples.

What it is: a deterministic, rerunnable, stdlib-only converter that writes the
sample data for obsync's two starter dataflows, OID:DF_VIOLENCE(1.0) and
OID:DF_DRUG_USE(1.0), from the public files described in shared/data/README.md
(World Bank WDI homicide rates, IHME GBD 2016 violence mortality via OWID, and
the UNODC World Drug Report 2025 prevalence tables). The real defects of the
WDR tables (DOMAIN.md section 7) are not fixed silently: every defective row
goes to defects/drug_use_wdr2025_defects.csv, with an index file that says
which defect each row shows.

What it is not: an importer or validator; obsync's C code does that. It does
not invent codes: rows whose codes cannot be mapped are skipped and counted.

Who calls it: engineers regenerating deploy/sample-data/, the demo and the
validator tests (which read its outputs). Run `python3 convert.py --help`;
`python3 convert.py --selftest` checks the mapping rules on tiny inline rows.
"""

import argparse
import csv
import hashlib
import os
import re
import sys

OAS35 = (
    "ATG ARG BHS BRB BLZ BOL BRA CAN CHL COL CRI CUB DMA DOM ECU SLV GRD GTM "
    "GUY HTI HND JAM MEX NIC PAN PRY PER KNA LCA VCT SUR TTO USA URY VEN"
).split()

# Latest year a WDR 2025 observation can refer to (the report's publication
# year). A fixed bound keeps the output independent of the day it is run.
WDR_MAX_YEAR = 2025
WDR_MIN_YEAR = 1900
DUP_EXAMPLE_CAP = 40

VIOL_DF = "OID:DF_VIOLENCE(1.0)"
VIOL_DIMS = ["FREQ", "REF_AREA", "INDICATOR", "SEX", "AGE", "BREAKDOWN",
             "SOURCE_TYPE"]
VIOL_ATTRS = ["UNIT_MEASURE", "OBS_STATUS", "SOURCE_DETAIL"]

DRUG_DF = "OID:DF_DRUG_USE(1.0)"
DRUG_DIMS = ["FREQ", "REF_AREA", "POP_GROUP", "INDICATOR", "SUBSTANCE", "SEX",
             "AGE_GROUP"]
DRUG_ATTRS = ["UNIT_MEASURE", "OBS_STATUS", "LOWER_BOUND", "UPPER_BOUND",
              "COMMENT_OBS", "SOURCE_DETAIL", "TIME_DETAIL", "SURVEY_METHOD",
              "ADJUSTMENT"]

SRC_WDI = "homicide/wb_wdi_VC.IHR.PSRC.P5_tidy_2025-10-07_OAS35.csv"
SRC_IHME = "homicide/owid_ihme_gbd2016_violence_mortality_OAS35.csv"
SRC_DRUG_OAS = "drug_use/unodc_wdr2025_drug_prevalence_long_OAS35.csv"
SRC_DRUG_FULL = "drug_use/unodc_wdr2025_drug_prevalence_long.csv"

OUT_WDI = "violence_wdi_homicide.csv"
OUT_IHME = "violence_ihme_gbd2016.csv"
OUT_DRUG = "drug_use_wdr2025.csv"
OUT_DEFECTS = "defects/drug_use_wdr2025_defects.csv"
# Tab-separated on purpose: not an SDMX-CSV file, so globs of *.csv skip it.
OUT_INDEX = "defects/drug_use_wdr2025_defects_index.tsv"

WDI_SOURCE_DETAIL = "World Bank WDI VC.IHR.PSRC.P5 (UNODC/WHO), 2025-10-07"
IHME_SOURCE_DETAIL = "IHME GBD 2016 via Our World in Data"

# The long file leaves REF_AREA empty for UK sub-national entries; map them to
# their ISO 3166-2 codes (not invented codes). Only the full-file defects scan
# meets them (none is in OAS-35). "Ireland and Northern Ireland" has no code.
SUBNATIONAL_AREAS = {
    "United Kingdom (England)": "GB-ENG",
    "United Kingdom (England and Wales)": "GB-EAW",
    "United Kingdom (Northern Ireland)": "GB-NIR",
    "United Kingdom (Scotland)": "GB-SCT",
    "United Kingdom (Wales)": "GB-WLS",
}

RECALL_TO_INDICATOR = {
    "LIFETIME": "PREV_LT",
    "PAST_YEAR": "PREV_PY",
    "PAST_MONTH": "PREV_PM",
}

SUBSTANCE_MAP = {
    "PRESCRIPTION_OPIOIDS": "RX_OPIOIDS",
    "PRESCRIPTION_STIMULANTS": "RX_STIMULANTS",
    "TRANQUILLIZERS_SEDATIVES": "TRANQ_SED",
}

NPS_DETAIL_MAP = {
    "": "NPS",
    "Synthetic cannabinoids": "NPS_SYNTH_CANNABINOIDS",
    "Ketamine": "NPS_KETAMINE",
    "Miscellaneous NPS: BZP/TFMPP": "NPS_BZP_TFMPP",
    "Miscellaneous NPS: Kratom": "NPS_KRATOM",
    "Miscellaneous NPS: Mephedrone": "NPS_MEPHEDRONE",
    "Miscellaneous NPS: NPS": "NPS_MISC",
    "Miscellaneous NPS: Other NPS (except ketamine and SCRA)": "NPS_OTHER",
    "Miscellaneous NPS: Synthetic cathinones": "NPS_SYNTH_CATHINONES",
    "Plant-based substances: Khat": "NPS_KHAT",
    "Plant-based substances: PBS-total": "NPS_PBS",
    "Plant-based substances: Salvia Divinorum": "NPS_SALVIA",
    "Plant-based substances: San Pedro cactus": "NPS_SAN_PEDRO",
}

# Defect kinds, in the order they are reported.
K_LT = "AT_SIGN_LT"          # '@' = less than 0.005
K_COMMA = "DECIMAL_COMMA"    # '0,3'
K_YEAR = "BAD_YEAR"          # '2106'
K_BOUNDS = "BOUNDS"          # best outside [LOWER_BOUND, UPPER_BOUND]
K_DUP = "DUP_KEY"            # same dataflow + dims + TIME_PERIOD seen before
DEFECT_KINDS = [K_LT, K_COMMA, K_YEAR, K_BOUNDS, K_DUP]
# Kinds that keep a row out of the clean file (the others are normalised).
EXCLUDING = {K_YEAR, K_BOUNDS, K_DUP}

RE_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
RE_COMMA_DECIMAL = re.compile(r"^[0-9]+,[0-9]+$")
RE_INTEGER = re.compile(r"^[0-9]+$")
RE_YEAR = re.compile(r"^[0-9]{4}$")


class SourceError(Exception):
    """A source file is missing or not in the documented layout."""


# ---------------------------------------------------------------- CSV output

def csv_field(text):
    """One RFC 4180 field: quoted only when it holds , " CR or LF."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def csv_line(fields):
    return ",".join(csv_field(f) for f in fields) + "\n"


def header(dims, attrs):
    return ["STRUCTURE", "STRUCTURE_ID", "ACTION"] + dims + [
        "TIME_PERIOD", "OBS_VALUE"] + attrs


def obs_line(dataflow, dims, attrs, dim_vals, time, value, attr_vals):
    """SDMX-CSV 2.x data row (ACTION=M) from dicts of dimension/attribute
    values; missing attributes are written empty."""
    fields = ["dataflow", dataflow, "M"]
    fields += [dim_vals[d] for d in dims]
    fields += [time, value]
    fields += [attr_vals.get(a, "") for a in attrs]
    return csv_line(fields)


def write_text(path, text):
    """Write UTF-8 (no BOM), LF, atomically (rerunnable)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


# ---------------------------------------------------------------- CSV input

def read_rows(path, required):
    """Rows of a CSV file as dicts; checks the header has `required`."""
    if not os.path.isfile(path):
        raise SourceError("missing source file: " + path)
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise SourceError("%s: missing columns %s" % (path, missing))
        return list(reader)


def area_ok(code, areas):
    return areas is None or code in areas


# ---------------------------------------------------------------- homicide

def convert_wdi(src, areas, stats):
    """WDI VC.IHR.PSRC.P5 tidy file -> DF_VIOLENCE rows (HARM)."""
    path = os.path.join(src, SRC_WDI)
    rows = read_rows(path, ["iso3", "year", "rate_per_100k"])
    out = [csv_line(header(VIOL_DIMS, VIOL_ATTRS))]
    for r in rows:
        if not area_ok(r["iso3"], areas):
            continue
        rate = r["rate_per_100k"]
        if rate == "":
            continue
        if not RE_DECIMAL.match(rate) or not RE_YEAR.match(r["year"]):
            stats.setdefault("wdi_skipped", []).append(r)
            continue
        dims = {"FREQ": "A", "REF_AREA": r["iso3"], "INDICATOR": "VC_IHR_PSRC",
                "SEX": "_T", "AGE": "_T", "BREAKDOWN": "_T",
                "SOURCE_TYPE": "HARM"}
        attrs = {"UNIT_MEASURE": "PER_100000_POP", "OBS_STATUS": "A",
                 "SOURCE_DETAIL": WDI_SOURCE_DETAIL}
        out.append(obs_line(VIOL_DF, VIOL_DIMS, VIOL_ATTRS, dims, r["year"],
                            rate, attrs))
    return out


# IHME columns: (column-name prefix, indicator, unit, value pattern)
IHME_COLUMNS = [
    ("Age-standardized death rate", "VIOL_DEATHS_ASR", "PER_100000_POP",
     RE_DECIMAL),
    ("Total deaths", "VIOL_DEATHS_N", "NUMBER", RE_INTEGER),
    ("Death rate", "VIOL_DEATHS_CR", "PER_100000_POP", RE_DECIMAL),
]


def ihme_column_names(fieldnames):
    """Maps each IHME_COLUMNS entry to the actual (long) source header."""
    names = []
    for prefix, _, _, _ in IHME_COLUMNS:
        hits = [n for n in fieldnames if n.startswith(prefix)]
        if len(hits) != 1:
            raise SourceError("IHME file: no unique column '%s...'" % prefix)
        names.append(hits[0])
    return names


def convert_ihme(src, areas, stats):
    """OWID/IHME GBD 2016 OAS-35 file -> three DF_VIOLENCE indicators (MOD)."""
    path = os.path.join(src, SRC_IHME)
    rows = read_rows(path, ["iso3", "Year"])
    names = ihme_column_names(list(rows[0].keys()) if rows else [])
    out = [csv_line(header(VIOL_DIMS, VIOL_ATTRS))]
    for r in rows:
        if not area_ok(r["iso3"], areas) or not RE_YEAR.match(r["Year"]):
            continue
        for (_, ind, unit, pattern), col in zip(IHME_COLUMNS, names):
            value = r[col]
            if value == "":
                continue
            if not pattern.match(value):
                stats.setdefault("ihme_skipped", []).append((r, col))
                continue
            dims = {"FREQ": "A", "REF_AREA": r["iso3"], "INDICATOR": ind,
                    "SEX": "_T", "AGE": "_T", "BREAKDOWN": "_T",
                    "SOURCE_TYPE": "MOD"}
            attrs = {"UNIT_MEASURE": unit,
                     "SOURCE_DETAIL": IHME_SOURCE_DETAIL}
            out.append(obs_line(VIOL_DF, VIOL_DIMS, VIOL_ATTRS, dims,
                                r["Year"], value, attrs))
    return out


# ---------------------------------------------------------------- drug use

DRUG_COLUMNS = ["REF_AREA", "AREA_NAME", "POP_GROUP", "SUBSTANCE",
                "SUBSTANCE_DETAIL",
                "RECALL_PERIOD", "SEX", "AGE", "TIME_PERIOD", "TIME_DETAIL",
                "OBS_VALUE", "LOWER_BOUND", "UPPER_BOUND", "UNIT_MEASURE",
                "SURVEY_METHOD", "SOURCE_DETAIL", "ADJUSTMENT", "COMMENT_OBS",
                "TABLE_ID", "SOURCE_SHEET", "SOURCE_ROW"]


def substance_code(r):
    """SUBSTANCE code for a long-file row, or None if it has no mapping."""
    sub = r["SUBSTANCE"]
    if sub == "NPS":
        return NPS_DETAIL_MAP.get(r["SUBSTANCE_DETAIL"])
    return SUBSTANCE_MAP.get(sub, sub) if sub else None


def area_code(r):
    """REF_AREA of a long-file row ('' when it has none)."""
    return r["REF_AREA"] or SUBNATIONAL_AREAS.get(r["AREA_NAME"], "")


def drug_dims(r):
    """DF_DRUG_USE dimension values, or None when a code cannot be mapped."""
    sub = substance_code(r)
    ind = RECALL_TO_INDICATOR.get(r["RECALL_PERIOD"])
    area = area_code(r)
    fields = (area, r["POP_GROUP"], r["SEX"], r["AGE"])
    if sub is None or ind is None or "" in fields:
        return None
    return {"FREQ": "A", "REF_AREA": area,
            "POP_GROUP": r["POP_GROUP"], "INDICATOR": ind, "SUBSTANCE": sub,
            "SEX": r["SEX"], "AGE_GROUP": r["AGE"]}


def to_float(text):
    try:
        return float(text)
    except ValueError:
        return None


def bounds_violated(r):
    """True when the best value lies outside [LOWER_BOUND, UPPER_BOUND]."""
    best = to_float(r["OBS_VALUE"].replace(",", "."))
    if best is None:
        return False
    lo = to_float(r["LOWER_BOUND"]) if r["LOWER_BOUND"] else None
    hi = to_float(r["UPPER_BOUND"]) if r["UPPER_BOUND"] else None
    return (lo is not None and best < lo) or (hi is not None and best > hi)


def value_defects(r):
    """Defect kinds of one row that do not depend on other rows."""
    kinds = []
    value = r["OBS_VALUE"]
    if value == "@":
        kinds.append(K_LT)
    elif RE_COMMA_DECIMAL.match(value):
        kinds.append(K_COMMA)
    year = r["TIME_PERIOD"]
    if not RE_YEAR.match(year) or not (
            WDR_MIN_YEAR <= int(year) <= WDR_MAX_YEAR):
        kinds.append(K_YEAR)
    if bounds_violated(r):
        kinds.append(K_BOUNDS)
    return kinds


def drug_attrs(r):
    attrs = {"UNIT_MEASURE": "PT", "LOWER_BOUND": r["LOWER_BOUND"],
             "UPPER_BOUND": r["UPPER_BOUND"], "COMMENT_OBS": r["COMMENT_OBS"],
             "SOURCE_DETAIL": r["SOURCE_DETAIL"],
             "SURVEY_METHOD": r["SURVEY_METHOD"],
             "ADJUSTMENT": r["ADJUSTMENT"]}
    if r["TIME_DETAIL"] != r["TIME_PERIOD"]:
        attrs["TIME_DETAIL"] = r["TIME_DETAIL"]
    return attrs


def join_comment(old, note):
    return note if not old else old + "; " + note


def clean_value(r, kinds):
    """(OBS_VALUE, extra attributes) for the clean file: '@' -> empty + LT,
    decimal comma -> '.' with a COMMENT_OBS quoting the source text."""
    attrs = drug_attrs(r)
    value = r["OBS_VALUE"]
    if K_LT in kinds:
        attrs["OBS_STATUS"] = "LT"
        value = ""
    elif K_COMMA in kinds:
        value = value.replace(",", ".")
        attrs["COMMENT_OBS"] = join_comment(
            attrs["COMMENT_OBS"],
            'source value "%s" (decimal comma) normalised' % r["OBS_VALUE"])
    return value, attrs


def classify(rows, areas):
    """One pass over long-file rows in source order.

    Returns a list of dicts {row, dims, key, kinds, first} for rows in `areas`
    whose codes map; `first` is the index (in the returned list) of the first
    occurrence of a duplicated key. The 'seen' set holds only keys of rows the
    clean file keeps, so a row excluded for another defect never makes a
    later row a duplicate. Unmappable rows are counted in the second result.
    """
    seen = {}
    items = []
    unmapped = 0
    for r in rows:
        if areas is not None and area_code(r) not in areas:
            continue
        dims = drug_dims(r)
        if dims is None:
            unmapped += 1
            continue
        key = tuple(dims[d] for d in DRUG_DIMS) + (r["TIME_PERIOD"],)
        kinds = value_defects(r)
        first = None
        if not EXCLUDING.intersection(kinds):
            if key in seen:
                kinds.append(K_DUP)
                first = seen[key]
            else:
                seen[key] = len(items)
        items.append({"row": r, "dims": dims, "key": key, "kinds": kinds,
                      "first": first})
    return items, unmapped


def convert_drug_clean(rows, areas):
    """Clean DF_DRUG_USE file; returns (lines, items, line number by item)."""
    items, unmapped = classify(rows, areas)
    out = [csv_line(header(DRUG_DIMS, DRUG_ATTRS))]
    line_of = {}
    excluded = {}
    for i, it in enumerate(items):
        bad = EXCLUDING.intersection(it["kinds"])
        if bad:
            for k in bad:
                excluded[k] = excluded.get(k, 0) + 1
            continue
        r = it["row"]
        value, attrs = clean_value(r, it["kinds"])
        out.append(obs_line(DRUG_DF, DRUG_DIMS, DRUG_ATTRS, it["dims"],
                            r["TIME_PERIOD"], value, attrs))
        line_of[i] = len(out)
    return out, items, line_of, excluded, unmapped


def pick_duplicates(items, areas_for_dups, cap):
    """Deterministic, varied choice of at most `cap` duplicate-only rows:
    round-robin over (value differs from first?, SUBSTANCE) groups in sorted
    order, each group in source order."""
    groups = {}
    for i, it in enumerate(items):
        if it["kinds"] != [K_DUP]:
            continue
        if areas_for_dups is not None and \
                it["dims"]["REF_AREA"] not in areas_for_dups:
            continue
        first = items[it["first"]]["row"]
        differs = first["OBS_VALUE"] != it["row"]["OBS_VALUE"]
        groups.setdefault((not differs, it["dims"]["SUBSTANCE"]), []).append(i)
    chosen = []
    order = sorted(groups)
    depth = 0
    while len(chosen) < cap and any(depth < len(groups[g]) for g in order):
        for g in order:
            if depth < len(groups[g]) and len(chosen) < cap:
                chosen.append(groups[g][depth])
        depth += 1
    return set(chosen)


def defect_row_line(it):
    """Defects-file row: mapped dimension codes, every value as in the
    source (OBS_VALUE, TIME_PERIOD, bounds), no status added."""
    r = it["row"]
    return obs_line(DRUG_DF, DRUG_DIMS, DRUG_ATTRS, it["dims"],
                    r["TIME_PERIOD"], r["OBS_VALUE"], drug_attrs(r))


INDEX_HEADER = ["DEFECTS_LINE", "KINDS", "SOURCE_FILE", "TABLE_ID",
                "SOURCE_SHEET", "SOURCE_ROW", "AREA_NAME", "FIRST_OCCURRENCE",
                "NOTE"]


def tsv_line(fields):
    return "\t".join(f.replace("\t", " ") for f in fields) + "\n"


def defect_note(items, it):
    """Short human-readable explanation of a defects-file row."""
    r = it["row"]
    notes = []
    if K_LT in it["kinds"]:
        notes.append("value '@' = less than 0.005; clean form: empty "
                     "OBS_VALUE + OBS_STATUS=LT")
    if K_COMMA in it["kinds"]:
        notes.append("decimal comma '%s'; clean form: %s" % (
            r["OBS_VALUE"], r["OBS_VALUE"].replace(",", ".")))
    if K_YEAR in it["kinds"]:
        notes.append("TIME_PERIOD %s outside [%d, %d]" % (
            r["TIME_PERIOD"], WDR_MIN_YEAR, WDR_MAX_YEAR))
    if K_BOUNDS in it["kinds"]:
        notes.append("best %s outside [%s, %s]" % (
            r["OBS_VALUE"], r["LOWER_BOUND"], r["UPPER_BOUND"]))
    if K_DUP in it["kinds"]:
        fr = items[it["first"]]["row"]
        notes.append("same key as an earlier row (value %s, source '%s'; "
                     "this row: value %s, source '%s')" % (
                         fr["OBS_VALUE"], fr["SOURCE_DETAIL"],
                         r["OBS_VALUE"], r["SOURCE_DETAIL"]))
    if not r["REF_AREA"]:
        notes.append("REF_AREA %s mapped from AREA_NAME" % it["dims"][
            "REF_AREA"])
    return "; ".join(notes)


def first_ref(items, it, clean_line_of_key, src_name):
    """Where the first occurrence of a duplicated key is."""
    if it["first"] is None:
        return ""
    line = clean_line_of_key.get(it["key"])
    if line is not None:
        return "%s line %d" % (OUT_DRUG, line)
    fr = items[it["first"]]["row"]
    return "%s %s/%s row %s" % (src_name, fr["TABLE_ID"], fr["SOURCE_SHEET"],
                                fr["SOURCE_ROW"])


def convert_drug_defects(rows, src_name, areas, dup_areas, clean_keys):
    """Defects file + index; returns (lines, index lines, counts)."""
    items, unmapped = classify(rows, areas)
    chosen = pick_duplicates(items, dup_areas, DUP_EXAMPLE_CAP)
    found = {k: 0 for k in DEFECT_KINDS}
    written = {k: 0 for k in DEFECT_KINDS}
    out = [csv_line(header(DRUG_DIMS, DRUG_ATTRS))]
    index = [tsv_line(INDEX_HEADER)]
    for i, it in enumerate(items):
        for k in it["kinds"]:
            found[k] += 1
        if not it["kinds"] or (it["kinds"] == [K_DUP] and i not in chosen):
            continue
        for k in it["kinds"]:
            written[k] += 1
        out.append(defect_row_line(it))
        r = it["row"]
        index.append(tsv_line([
            str(len(out)), " ".join(it["kinds"]), src_name, r["TABLE_ID"],
            r["SOURCE_SHEET"], r["SOURCE_ROW"], r["AREA_NAME"],
            first_ref(items, it, clean_keys, src_name),
            defect_note(items, it)]))
    return out, index, found, written, unmapped


# ---------------------------------------------------------------- driver

def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    default_src = os.environ.get("OBSYNC_SHARED_DATA") or os.path.normpath(
        os.path.join(here, "..", "..", "..", "shared", "data"))
    p = argparse.ArgumentParser(
        description="Convert shared/data/ into obsync SDMX-CSV samples.")
    p.add_argument("--src", default=default_src,
                   help="shared data folder (default %(default)s; "
                        "env OBSYNC_SHARED_DATA)")
    p.add_argument("--out", default=here,
                   help="output folder (default %(default)s)")
    p.add_argument("--area", default=None,
                   help="only these REF_AREA codes, e.g. MEX,COL")
    p.add_argument("--suffix", default="",
                   help="appended to every output file name before .csv")
    p.add_argument("--selftest", action="store_true",
                   help="check the mapping rules on inline rows and exit")
    return p.parse_args(argv)


def with_suffix(name, sfx):
    """'a/b.csv' + '_x' -> 'a/b_x.csv'."""
    stem, ext = os.path.splitext(name)
    return stem + sfx + ext


def parse_areas(text):
    if text is None:
        return None
    codes = {c.strip() for c in text.split(",") if c.strip()}
    bad = sorted(c for c in codes if not re.match(r"^[A-Z0-9_-]{2,10}$", c))
    if bad or not codes:
        raise SourceError("--area: bad code(s) %s" % (bad or text))
    return codes


def run(args):
    areas = parse_areas(args.area)
    src, out, sfx = args.src, args.out, args.suffix
    stats = {}
    files = {}
    files[OUT_WDI] = convert_wdi(src, areas, stats)
    files[OUT_IHME] = convert_ihme(src, areas, stats)

    oas_rows = read_rows(os.path.join(src, SRC_DRUG_OAS), DRUG_COLUMNS)
    clean, items, line_of, excluded, unm_clean = convert_drug_clean(
        oas_rows, areas)
    files[OUT_DRUG] = clean
    clean_keys = {items[i]["key"]: ln for i, ln in line_of.items()}

    full_path = os.path.join(src, SRC_DRUG_FULL)
    if os.path.isfile(full_path):
        full_rows, full_name = read_rows(full_path, DRUG_COLUMNS), \
            os.path.basename(SRC_DRUG_FULL)
    else:
        print("note: %s missing, defects from the OAS-35 file" % full_path)
        full_rows, full_name = oas_rows, os.path.basename(SRC_DRUG_OAS)
    dup_areas = areas if areas is not None else set(OAS35)
    dlines, index, found, written, unm_full = convert_drug_defects(
        full_rows, full_name, areas, dup_areas, clean_keys)
    files[OUT_DEFECTS] = dlines
    files[OUT_INDEX] = index

    for name in sorted(files):
        write_text(os.path.join(out, with_suffix(name, sfx)),
                   "".join(files[name]))
    report(files, sfx, stats, excluded, unm_clean, found, written, unm_full)
    if areas is None and not sfx:
        update_sources_md(out, files, excluded, found, written, src)
    run_check_codes(out)
    return 0


def run_check_codes(out):
    """Informational: run check_codes.py on the outputs when the starter
    structure file exists. Its result does not change our exit status."""
    here = os.path.dirname(os.path.abspath(__file__))
    structure = os.path.join(here, "..", "structure", "starter.structure")
    if not os.path.isfile(structure):
        print("(no %s yet: code check skipped)" % os.path.normpath(structure))
        return
    sys.dont_write_bytecode = True  # keep the sample folder clean
    sys.path.insert(0, here)
    import check_codes  # pylint: disable=import-outside-toplevel
    print("--- check_codes.py")
    rc = check_codes.main([os.path.normpath(structure), "--dir", out])
    print("--- check_codes.py exit status %d" % rc)


COUNTS_BEGIN = "<!-- counts:begin (written by convert.py) -->"
COUNTS_END = "<!-- counts:end -->"


def source_hashes(src):
    lines = ["| source file (under shared/data/) | sha256 |", "|---|---|"]
    for rel in (SRC_WDI, SRC_IHME, SRC_DRUG_OAS, SRC_DRUG_FULL):
        path = os.path.join(src, rel)
        if os.path.isfile(path):
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            lines.append("| `%s` | `%s` |" % (rel, digest))
    return lines


def counts_block(files, excluded, found, written, src):
    lines = [COUNTS_BEGIN, ""] + source_hashes(src) + [
        "", "| output file | data rows | bytes |", "|---|---:|---:|"]
    for name in sorted(files):
        text = "".join(files[name])
        lines.append("| `%s` | %d | %d |" % (
            name, len(files[name]) - 1, len(text.encode("utf-8"))))
    lines += ["", "Rows of `%s` kept out of the clean file: %s." % (
        OUT_DRUG, ", ".join("%s %d" % (k, excluded.get(k, 0))
                            for k in sorted(EXCLUDING))), "",
        "| defect kind | source rows (full long file) | in defects file |",
        "|---|---:|---:|"]
    for k in DEFECT_KINDS:
        lines.append("| `%s` | %d | %d |" % (k, found[k], written[k]))
    lines += ["", COUNTS_END]
    return "\n".join(lines)


def update_sources_md(out, files, excluded, found, written, src):
    """Refresh the generated counts section of <out>/SOURCES.md, if the file
    and its markers exist (so the documented counts never go stale)."""
    path = os.path.join(out, "SOURCES.md")
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8", newline="") as f:
        text = f.read()
    i, j = text.find(COUNTS_BEGIN), text.find(COUNTS_END)
    if i < 0 or j < i:
        print("note: %s has no counts markers, not updated" % path)
        return
    new = text[:i] + counts_block(files, excluded, found, written, src) + \
        text[j + len(COUNTS_END):]
    if new != text:
        write_text(path, new)
        print("updated counts in %s" % path)


def report(files, sfx, stats, excluded, unm_clean, found, written,
           unm_full):
    print("rows written (data rows, header excluded):")
    for name in sorted(files):
        print("  %-45s %6d" % (with_suffix(name, sfx), len(files[name]) - 1))
    for key in ("wdi_skipped", "ihme_skipped"):
        if stats.get(key):
            print("  %s: %d source cells not a plain number, skipped"
                  % (key, len(stats[key])))
    print("%s: rows kept out of the clean file: %s; unmappable "
          "codes: %d" % (with_suffix(OUT_DRUG, sfx), ", ".join(
              "%s %d" % (k, excluded.get(k, 0)) for k in sorted(EXCLUDING)),
              unm_clean))
    print("defects (found in source -> written to defects file):")
    for k in DEFECT_KINDS:
        print("  %-14s %5d -> %d" % (k, found[k], written[k]))
    print("  rows skipped in the defects scan (no code mapping: empty "
          "REF_AREA or unlisted NPS detail): %d" % unm_full)


# ---------------------------------------------------------------- selftest

def _row(**kw):
    base = {c: "" for c in DRUG_COLUMNS}
    base.update({"REF_AREA": "HKG", "POP_GROUP": "YOUTH",
                 "SUBSTANCE": "OPIOIDS", "RECALL_PERIOD": "PAST_MONTH",
                 "SEX": "_T", "AGE": "Y11T20", "TIME_PERIOD": "2016",
                 "TIME_DETAIL": "2016", "OBS_VALUE": "1.5",
                 "UNIT_MEASURE": "PT"})
    base.update(kw)
    return base


def selftest():
    checks = []

    def check(name, cond):
        checks.append((name, bool(cond)))

    check("quote comma", csv_field("a,b") == '"a,b"')
    check("quote quote", csv_field('say "x"') == '"say ""x"""')
    check("no quote plain", csv_field("a b;c") == "a b;c")
    v, a = clean_value(_row(OBS_VALUE="@"), [K_LT])
    check("@ -> empty + LT", v == "" and a["OBS_STATUS"] == "LT")
    r = _row(OBS_VALUE="0,3")
    v, a = clean_value(r, value_defects(r))
    check("0,3 -> 0.3 + comment", v == "0.3" and '"0,3"' in a["COMMENT_OBS"])
    check("2106 bad year", K_YEAR in value_defects(_row(TIME_PERIOD="2106")))
    check("bounds", K_BOUNDS in value_defects(
        _row(OBS_VALUE="0.49", LOWER_BOUND="0.5", UPPER_BOUND="0.36")))
    check("in bounds ok", value_defects(
        _row(OBS_VALUE="2.1", LOWER_BOUND="1.9", UPPER_BOUND="2.3")) == [])
    check("nps child", drug_dims(_row(
        SUBSTANCE="NPS", SUBSTANCE_DETAIL="Ketamine"))["SUBSTANCE"]
        == "NPS_KETAMINE")
    check("nps unlisted -> None", drug_dims(_row(
        SUBSTANCE="NPS", SUBSTANCE_DETAIL="Miscellaneous NPS: BZP")) is None)
    check("rx opioids", drug_dims(_row(
        SUBSTANCE="PRESCRIPTION_OPIOIDS"))["SUBSTANCE"] == "RX_OPIOIDS")
    check("time detail only when different",
          "TIME_DETAIL" not in drug_attrs(_row())
          and drug_attrs(_row(TIME_DETAIL="2016/17"))["TIME_DETAIL"]
          == "2016/17")
    items, _ = classify([_row(), _row(OBS_VALUE="2"), _row(TIME_PERIOD="2106"),
                         _row(TIME_PERIOD="2106")], None)
    check("dup second only", [it["kinds"] for it in items]
          == [[], [K_DUP], [K_YEAR], [K_YEAR]])
    for name, ok in checks:
        print("%-4s %s" % ("ok" if ok else "FAIL", name))
    return 0 if all(ok for _, ok in checks) else 1


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.selftest:
        return selftest()
    try:
        return run(args)
    except SourceError as e:
        print("convert.py: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
