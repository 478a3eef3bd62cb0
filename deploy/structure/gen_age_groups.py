#!/usr/bin/env python3
"""gen_age_groups.py - prints the OID:CL_AGE_GROUP(1.0) code list block of
starter.structure: _T, _U, the school grades, and every code of the AGE
column of the UNODC WDR 2025 long drug-prevalence file (all rows), named
from the code itself (Y15T64 "15 to 64 years", Y_GE15 "15 years and over").

Usage: python3 gen_age_groups.py \
    [/work/shared/data/drug_use/unodc_wdr2025_drug_prevalence_long.csv]
"""
import csv
import re
import sys

FIXED = {
    "_T": "Total",
    "_U": "Unknown",
    "GRD08": "8th grade",
    "GRD10": "10th grade",
    "GRD12": "12th grade",
}


def age_name(code):
    if code in FIXED:
        return FIXED[code]
    m = re.fullmatch(r"Y(\d+)T(\d+)", code)
    if m:
        return "%d to %d years" % (int(m.group(1)), int(m.group(2)))
    m = re.fullmatch(r"Y_GE(\d+)", code)
    if m:
        return "%d years and over" % int(m.group(1))
    m = re.fullmatch(r"Y(\d+)", code)
    if m:
        return "%d years" % int(m.group(1))
    raise SystemExit("unknown age code %r" % code)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else \
        "/work/shared/data/drug_use/unodc_wdr2025_drug_prevalence_long.csv"
    codes = set(FIXED)
    with open(path, encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            if row["AGE"]:
                codes.add(row["AGE"])
    print('codelist OID:CL_AGE_GROUP(1.0) "Age group or school grade '
          '(drug use)"')
    for code in sorted(codes):
        print('  code %s "%s"' % (code, age_name(code)))
    print("end")


if __name__ == "__main__":
    main()
