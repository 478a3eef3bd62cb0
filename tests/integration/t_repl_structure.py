#!/usr/bin/env python3
"""t_repl_structure.py - structure defined at the hub reaches every node
(issue 3 item 10), and a node validates against it before it publishes.

A hub and two nodes start from the starter structure. The hub then loads a
new code list, DSD and dataflow (OID:DF_PRISON(1.0)) plus an agreement for
COL. Both nodes must list the new dataflow without any operator action; COL
can then import data against it, and the rows reach MEX. A row with a code
the new list does not have is rejected at COL, before it is published.
Run by ctest as integration.repl_structure."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402

NEW_STRUCTURE = """\
codelist OID:CL_PRISON_IND(1.0) "Prison indicators"
  code PRIS_POP_RATE "Persons held per 100,000 population"
  code PRIS_UNSENTENCED "Unsentenced detainees, percent"
end
dsd OID:DSD_PRISON(1.0) "Prisons"
  dimension FREQ codelist=OID:CL_FREQ(1.0)
  dimension REF_AREA codelist=OID:CL_AREA(1.0)
  dimension INDICATOR codelist=OID:CL_PRISON_IND(1.0)
  attribute UNIT_MEASURE codelist=OID:CL_UNIT_MEASURE(1.0) attach=series mandatory=yes
  attribute OBS_STATUS codelist=OID:CL_OBS_STATUS(2.2) attach=obs
end
dataflow OID:DF_PRISON(1.0) dsd=OID:DSD_PRISON(1.0) semantic=reject "Prison statistics"
agreement provider=COL dataflow=OID:DF_PRISON(1.0) areas=COL
"""

ROWS = """\
STRUCTURE,STRUCTURE_ID,ACTION,FREQ,REF_AREA,INDICATOR,TIME_PERIOD,OBS_VALUE,UNIT_MEASURE,OBS_STATUS
dataflow,OID:DF_PRISON(1.0),M,A,COL,PRIS_POP_RATE,2022,198.4,PER_100000_POP,A
dataflow,OID:DF_PRISON(1.0),M,A,COL,PRIS_UNSENTENCED,2022,25.1,PT,A
dataflow,OID:DF_PRISON(1.0),M,A,COL,PRIS_ESCAPES,2022,3,NUMBER,A
"""


def knows(d, urn):
    res = d.cli("structure", "list", "dataflow", check=None)
    return res[0] == 0 and urn in res[1]


def test_structure_replicates(env):
    hub = rh.start_hub(rh.hub(env, no_sync=True))
    col = rh.node(env, "col", hub, no_sync=True)
    mex = rh.node(env, "mex", hub, no_sync=True)
    for n in (col, mex):
        n.start()
    urn = "OID:DF_PRISON(1.0)"
    for n in (col, mex):
        h.check(not knows(n, urn), "%s does not know %s yet" % (n.name, urn))

    path = env.path("prison.structure")
    with open(path, "w") as f:
        f.write(NEW_STRUCTURE)
    hub.cli("structure", "load", path)
    h.check(knows(hub, urn), "the hub knows %s" % urn)
    for n in (col, mex):
        h.wait_until(lambda n=n: knows(n, urn), 30,
                     "%s to receive %s from the hub" % (n.name, urn))
        h.log("  ok   %s received %s" % (n.name, urn))

    rows = env.path("prison.csv")
    with open(rows, "w") as f:
        f.write(ROWS)
    res = col.import_(rows, check=None)
    h.eq(res.summary["accepted"], 2, "COL stores the two valid rows")
    h.eq(res.summary["rejected"], 1, "the unknown indicator is rejected")
    h.check(res.issues_at(4), "line 4 (PRIS_ESCAPES) is reported")

    def at_mex():
        return mex.count(urn) == 2
    h.wait_until(at_mex, 60, "MEX to hold COL's two prison observations")
    rh.compare_exports([hub, col, mex])


if __name__ == "__main__":
    h.main([test_structure_replicates])
