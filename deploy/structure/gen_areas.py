#!/usr/bin/env python3
"""gen_areas.py - prints the OID:CL_AREA(1.0) code list block of
starter.structure: every ISO 3166-1 alpha-3 code with its English ISO short
name (from Debian's iso-codes package), then the declared aggregates.

Usage: python3 gen_areas.py [/usr/share/iso-codes/json/iso_3166-1.json]
Paste the output over the CL_AREA block of starter.structure.
(apt-get install -y iso-codes provides the JSON file.)
"""
import json
import sys

AGGREGATES = [
    ("AMR", "Americas"),
    ("LAC", "Latin America and the Caribbean"),
    ("OAS", "OAS member states"),
    ("WLD", "World"),
]


def quote(name):
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else \
        "/usr/share/iso-codes/json/iso_3166-1.json"
    with open(path, encoding="utf-8") as f:
        countries = json.load(f)["3166-1"]
    codes = {c["alpha_3"]: c["name"] for c in countries}
    for code, name in AGGREGATES:
        assert code not in codes, code
        codes[code] = name
    print('codelist OID:CL_AREA(1.0) "Reference area (ISO 3166-1 alpha-3 '
          'and aggregates)"')
    for code in sorted(codes):
        print("  code %s %s" % (code, quote(codes[code])))
    print("end")


if __name__ == "__main__":
    main()
