#!/usr/bin/env python3
"""Generate synthetic SDMX-CSV 2.x observations for OID:DF_VIOLENCE(1.0).

Benchmark input only (tests/bench/); not a test fixture and not real data. Keys
are drawn series by series: the series (FREQ..SOURCE_TYPE) are shuffled with the
seed and each one gets a contiguous span of months ending at 2025-12, so a file
looks like a country's monthly series, not scattered cells. The key stream is a
function of the seed and --areas only, never of --n, so `--n M` and
`--n N --skip M` with the same seed give disjoint key sets (the benchmark's
catch-up load uses that). Keys are unique by construction.

Values are consistent across SEX where it is cheap: M = 4k, F = k and _T = 5k for
counts (so _T = M + F exactly), rates M = 1.6 T and F = 0.4 T (so _T lies
between), which keeps DOMAIN.md semantic rule 10 quiet.

    gen_obs.py --n 1000000 --order import --seed 1 -o obs.csv
    gen_obs.py --n 200000 --order random --areas COL,MEX
"""
import argparse
import csv
import random
import sys
import zlib

AREAS = ("ATG ARG BHS BRB BLZ BOL BRA CAN CHL COL CRI CUB DMA DOM ECU SLV GRD "
         "GTM GUY HTI HND JAM MEX NIC PAN PRY PER KNA LCA VCT SUR TTO USA URY "
         "VEN").split()
INDICATORS = ("VC_IHR_PSRC VC_IHR_PSRCN PERS_ARREST_IH VIOL_DEATHS_ASR "
              "VIOL_DEATHS_CR VIOL_DEATHS_N FEMICIDE_N").split()
COUNTS = {"VC_IHR_PSRCN", "PERS_ARREST_IH", "VIOL_DEATHS_N", "FEMICIDE_N"}
SEXES = ("_T", "M", "F")
SEX_SHARE = {"_T": (5, 1.0), "M": (4, 1.6), "F": (1, 0.4)}  # count, rate
AGES = ("_T", "Y0T14", "Y15T29", "Y30T44", "Y45T59", "Y_GE60")
BREAKDOWNS = ("_T", "REL_IPFM", "REL_UNKNOWN", "MECH_FIREARM", "CTX_ORGCRIME",
              "CIT_NATIONAL")
SOURCES = ("CJ", "PH", "HARM", "MOD")
MONTHS = [f"{y}-{m:02d}" for y in range(1990, 2026) for m in range(1, 13)]
HEADER = ("STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,SEX,AGE,"
          "BREAKDOWN,SOURCE_TYPE,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE,OBS_STATUS,"
          "SOURCE_DETAIL").split(",")
DETAIL = {  # about 40 bytes, so a row is about 150 bytes
    "CJ": "{a} police and prosecutor records, 2025-10",
    "PH": "{a} vital statistics, ICD-10 X85-Y09",
    "HARM": "UNODC/WHO harmonised estimate for {a}",
    "MOD": "IHME GBD 2021 modelled estimate, {a}",
}
MIN_SPAN = 60  # months: every drawn series covers at least five years


def series_list(areas):
    return [(a, i, s, g, b, src) for a in areas for i in INDICATORS
            for s in SEXES for g in AGES for b in BREAKDOWNS for src in SOURCES]


def key_stream(rng, areas):
    """Yield (series, month index) forever-unique pairs, a deterministic
    function of rng's seed and areas. Pass 1 gives each shuffled series a
    random span ending at 2025-12; pass 2 fills the earlier months."""
    series = series_list(areas)
    rng.shuffle(series)
    starts = []
    for ser in series:
        start = len(MONTHS) - rng.randint(MIN_SPAN, len(MONTHS))
        starts.append(start)
        for t in range(start, len(MONTHS)):
            yield ser, t
    for ser, start in zip(series, starts):
        for t in range(start):
            yield ser, t


def obs_value(seed, ser, t):
    """Decimal text: integers for counts, 4-6 decimals for rates. The base is
    a hash of the key without SEX, so the three sexes of a cell agree."""
    area, ind, sex, age, brk, src = ser
    h = zlib.crc32(f"{seed}|{area}|{ind}|{age}|{brk}|{src}|{t}".encode())
    if ind in COUNTS:
        k = h % 401  # _T = 5k, M = 4k, F = k: integers and _T = M + F
        return str(k * SEX_SHARE[sex][0]), "NUMBER"
    rate = (0.5 + (h >> 9) % 59500 / 1000.0) * SEX_SHARE[sex][1]
    return f"{rate:.{4 + (h >> 26) % 3}f}", "PER_100000_POP"


def generate(n, skip, seed, areas):
    capacity = len(series_list(areas)) * len(MONTHS)
    if n + skip > capacity:
        sys.exit(f"gen_obs: {n + skip} keys asked, key space holds {capacity}")
    rng = random.Random(seed)
    stream = key_stream(rng, areas)
    for _ in range(skip):
        next(stream)
    rows = []
    for _ in range(n):
        ser, t = next(stream)
        value, unit = obs_value(seed, ser, t)
        rows.append(("dataflow", "OID:DF_VIOLENCE(1.0)", "M", "M", ser[0],
                     ser[1], ser[2], ser[3], ser[4], ser[5], MONTHS[t], value,
                     unit, "A", DETAIL[ser[5]].format(a=ser[0])))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--skip", type=int, default=0,
                    help="drop the first SKIP keys of the stream")
    ap.add_argument("--order", choices=("import", "random"), default="import")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--areas", default=",".join(AREAS))
    ap.add_argument("-o", "--output", default="-")
    args = ap.parse_args()
    areas = sorted(set(args.areas.split(",")))
    bad = [a for a in areas if a not in AREAS]
    if bad:
        sys.exit(f"gen_obs: not an OAS member: {','.join(bad)}")
    rows = generate(args.n, args.skip, args.seed, areas)
    if args.order == "import":
        rows.sort(key=lambda r: r[3:11])
    else:
        random.Random(args.seed + 1).shuffle(rows)
    out = sys.stdout if args.output == "-" else open(args.output, "w",
                                                     newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
