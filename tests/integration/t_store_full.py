#!/usr/bin/env python3
"""t_store_full.py - a full store is an error, not a crash: a daemon with
map_size = map_max = 1M imports generated DF_VIOLENCE files until one fails
with OBS_ESTOREFULL; the CLI exits 6 with a message about the store/map being
full, nothing of the failed import is stored, the daemon keeps running and
the data committed before is still queryable. Restarted with map_max = 64M
the same import succeeds (the map grows). An import in parts
(--commit-every) that fills the store keeps the parts committed before the
failing one, and the error says how many rows they hold; importing the file
again after the map may grow completes it. Run by ctest as
integration.store_full."""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

CHUNK = 400
MAX_CHUNKS = 40


def test_store_full_then_grow(env):
    d = env.daemon("f", no_sync=True, map_size="1M", map_max="1M")
    d.start()
    committed = 0
    failed = None
    for i in range(MAX_CHUNKS):
        n = 50 if i == 0 else CHUNK  # a small first import always fits
        p = env.path("chunk%02d.csv" % i)
        spots = h.write_violence_csv(p, n, env.rng, offset=committed)
        r = d.import_(p, check=(0, h.EXIT_REFUSED), json=False)
        if r.rc == h.EXIT_REFUSED:
            failed = (p, n, spots, r)
            break
        h.eq(r.summary["accepted"], n, "chunk %d: %d rows committed" % (i, n))
        committed += n
    h.check(failed is not None, "the 1M store fills within %d imports" %
            MAX_CHUNKS)
    p, n, spots, r = failed
    h.log("  ..   store full after %d committed rows" % committed)
    err = r.res.err.lower()
    h.check("full" in err, "exit 6 with a message about the store being "
            "full", r.res.err.strip()[:300])
    h.log("       message: %s" % r.res.err.strip().splitlines()[0][:200])
    h.check(committed > 0, "something was committed before the store filled")

    h.check(d.running(), "the daemon keeps running")
    h.eq(d.count(h.DF_VIOLENCE), committed,
         "earlier data still queryable, nothing of the failed import stored")
    for key, period in spots:
        d.cli("get", h.DF_VIOLENCE, key, period, check=h.EXIT_NOT_FOUND)
    h.check(True, "rows of the failed import are absent")
    st1 = d.status()

    d.restart(map_max="64M")
    h.eq(d.count(h.DF_VIOLENCE), committed, "restart keeps the data")
    r = d.import_(p, check=0)
    h.eq(r.summary["accepted"], n, "with map_max = 64M the import succeeds")
    h.eq(d.count(h.DF_VIOLENCE), committed + n, "all rows now stored")
    st2 = d.status()
    h.check("map_size" in st1 and "map_size" in st2,
            "status --json has map_size", repr((st1, st2)))
    h.eq(st1["map_size"], 1024 * 1024, "the full store's map is 1M")
    h.check(st2["map_size"] > 1024 * 1024, "the map grew (%d -> %d)" %
            (st1["map_size"], st2["map_size"]))
    d.stop()


def test_parts_committed_before_a_full_store_stay(env):
    # parts commit at the client's 2,000-row chunks: a map that holds a few
    d = env.daemon("p", no_sync=True, map_size="8M", map_max="8M")
    d.start()
    n = 40000  # far more than 8M of map holds
    p = env.path("big.csv")
    h.write_violence_csv(p, n, env.rng)
    r = d.cli("import", p, "--commit-every", "2000", check=h.EXIT_REFUSED)
    m = re.search(r"(\d+) row\(s\) of it were committed before", r.err)
    h.check(m is not None and "full" in r.err.lower(), "the error says the "
            "store is full and how many rows its parts hold", r.err[:300])
    kept = int(m.group(1))
    h.check(0 < kept < n, "some parts fit (%d rows)" % kept)
    h.check(d.running(), "the daemon keeps running")
    h.eq(d.count(h.DF_VIOLENCE), kept, "exactly the committed parts are "
         "stored")
    d.restart(map_max="64M")
    s = d.import_(p, flags=("--commit-every", "2000"), check=0).summary
    h.eq((s["accepted"], s["unchanged"]), (n - kept, kept),
         "importing the file again completes it")
    h.eq(d.count(h.DF_VIOLENCE), n, "all rows now stored")
    d.stop()


if __name__ == "__main__":
    h.main([test_store_full_then_grow,
            test_parts_committed_before_a_full_store_stay])
