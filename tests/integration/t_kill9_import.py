#!/usr/bin/env python3
"""t_kill9_import.py - one import is one transaction, even across kill -9:
a large valid SDMX-CSV (up to 200,000 observations of OID:DF_VIOLENCE(1.0),
real OAS area codes, annual, quarterly and monthly periods; N is sized by a
calibration import so the test stays bounded on slow builds) is imported in the
background and the daemon is killed with SIGKILL at a random moment (before
the import starts, while rows stream, while the commit runs: the daemon log's
"started" and "committing" lines place the kills; and right after the CLI
reported the commit, when all N must be there: acked means durable). After
each restart the import is wholly present (N) or wholly absent (0), never in
between. Then a
complete import succeeds and a second one reports unchanged N. Durability is
under test, so the daemon syncs (no no_sync). Run by ctest as
integration.kill9_import."""

import datetime
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

# N rows: OBSYNC_KILL9_ROWS, else sized from a calibration import so that
# one import takes about TARGET_S seconds (200,000 at most): the test stays
# bounded on slow (ASan) builds.
N = int(os.environ.get("OBSYNC_KILL9_ROWS", "0"))
MAX_ROWS = 200000
CAL_ROWS = 20000
TARGET_S = 14.0
ROUNDS = ["early", "streaming", "commit", "acked", "commit", "streaming"]
MAX_ROUNDS = 6
ROUNDS_BUDGET_S = 80.0
REPLY_TIMEOUT_S = 200
# Big enough that the commit never waits for map growth, which redoes the
# whole transaction per doubling (see the README's notes).
MAP_SIZE = "1G"
STARTED_RE = r"import \d+ of '[^']*' started"
COMMITTING_RE = r"import \d+ of '[^']*': committing"


def stored(d, spots):
    """(count, spots present) of what the restarted daemon holds."""
    st = d.status()
    h.check("observations" in st, "status --json has observations", repr(st))
    n = st["observations"]
    present = [d.get(h.DF_VIOLENCE, k, p, check=(0, h.EXIT_NOT_FOUND))
               is not None for k, p in spots]
    return n, present


def wipe(d):
    d.kill9()
    shutil.rmtree(d.data_dir, ignore_errors=True)


def one_round(env, d, path, n_rows, spots, where, timing):
    """Starts a fresh store, imports in the background, kills -9 at `where`,
    restarts and checks all-or-nothing. Returns the count seen."""
    rng = env.rng
    d.start()
    since = d.log_size()
    t0 = time.monotonic()
    cli = d.cli_bg("import", path, reply_timeout=REPLY_TIMEOUT_S)
    if where == "early":
        delay = rng.uniform(0, 0.03)  # CLI start-up: before or at begin
        h.wait_until(lambda: time.monotonic() - t0 >= delay, 5, "the delay")
    elif where == "streaming":
        d.wait_log(STARTED_RE, 60, since=since)
        delay = rng.uniform(0, timing["stream"])
        t1 = time.monotonic()
        h.wait_until(lambda: time.monotonic() - t1 >= delay, 60, "the delay")
    elif where == "acked":  # acked means durable: kill right after exit 0
        delay = 0.0
        h.wait_until(lambda: cli.poll() is not None, REPLY_TIMEOUT_S,
                     "the import to finish")
        h.check(cli.returncode == 0, "import finished with exit 0")
    else:  # commit
        d.wait_log(COMMITTING_RE, 120, since=since)
        # a bit past the expected end too: some kills land after the commit
        delay = rng.uniform(0, 1.3 * timing["commit"])
        t1 = time.monotonic()
        h.wait_until(lambda: time.monotonic() - t1 >= delay, 60, "the delay")
    cli_rc = cli.poll()
    log = d.log_text()
    phase = ("after commit" if cli_rc == 0 else
             "in commit" if re.search(COMMITTING_RE, log) else
             "while streaming" if re.search(STARTED_RE, log) else
             "before the import began")
    d.kill9()
    t_kill = time.monotonic() - t0
    if cli.poll() is None:
        cli.kill()
    cli.wait(timeout=10)
    h.log("  ..   round %-9s: killed at %.3f s (%s +%.3f s), %s; CLI exit %s" %
          (where, t_kill, where, delay, phase, cli_rc))
    d.start()
    n, present = stored(d, spots)
    if where == "acked":
        h.eq(n, n_rows, "after kill -9 right after the acknowledged commit "
             "all rows are there")
    h.check(n in (0, n_rows), "after kill -9 %s the import is all or "
            "nothing (%d of %d)" % (phase, n, n_rows))
    h.check(all(present) if n == n_rows else not any(present),
            "spot checks (first, middle, last row) agree with the count",
            repr(present))
    wipe(d)
    return n


def calibrate(env, d):
    """Imports CAL_ROWS rows on a fresh store; returns the streaming and
    commit rates (rows/s) read from the daemon log's timestamps."""
    p = env.path("cal.csv")
    h.write_violence_csv(p, CAL_ROWS, env.rng)
    d.start()
    t0 = time.monotonic()
    r = d.import_(p, check=0, reply_timeout=REPLY_TIMEOUT_S)
    total = time.monotonic() - t0
    h.eq(r.summary["accepted"], CAL_ROWS, "calibration import accepts all")
    text = d.log_text()
    h.check(re.search(STARTED_RE, text) and re.search(COMMITTING_RE, text),
            "the daemon logs the import's start and commit (log_level info)")
    t = phase_times(text, total)
    wipe(d)
    return CAL_ROWS / max(t["stream"], 1e-3), CAL_ROWS / max(t["commit"],
                                                            1e-3)


def test_kill9_during_import(env):
    d = env.daemon("k", map_size=MAP_SIZE)  # syncs: durability under test
    r_stream, r_commit = calibrate(env, d)
    n = N or int(min(MAX_ROWS, max(CAL_ROWS, TARGET_S / (1 / r_stream +
                                                          1 / r_commit))))
    timing = {"stream": n / r_stream, "commit": n / r_commit}
    h.log("  ..   calibration: %.0f rows/s streaming, %.0f rows/s commit; "
          "N = %d (expect %.1f s + %.1f s)" % (r_stream, r_commit, n,
                                               timing["stream"],
                                               timing["commit"]))
    path = env.path("big.csv")
    t0 = time.monotonic()
    spots = h.write_violence_csv(path, n, env.rng)
    h.log("  ..   generated %d rows (%.1f MB) in %.1f s" %
          (n, os.path.getsize(path) / 1e6, time.monotonic() - t0))

    seen = {0: 0, n: 0}
    t_rounds = time.monotonic()
    rounds = 0
    while True:
        where = ROUNDS[rounds % len(ROUNDS)]
        seen[one_round(env, d, path, n, spots, where, timing)] += 1
        rounds += 1
        per_round = (time.monotonic() - t_rounds) / rounds
        if rounds >= len(ROUNDS) and (rounds >= MAX_ROUNDS or
                                      time.monotonic() - t_rounds +
                                      per_round > ROUNDS_BUDGET_S):
            break
    h.log("  ..   %d rounds: %d wholly absent, %d wholly present" %
          (rounds, seen[0], seen[n]))

    d.start()
    t0 = time.monotonic()
    r = d.import_(path, check=0, reply_timeout=REPLY_TIMEOUT_S)
    dt = time.monotonic() - t0
    h.eq((r.summary["accepted"], r.summary["rejected"]), (n, 0),
         "a complete import after the crashes accepts N")
    h.log("  rate %d observations in %.2f s = %.0f obs/s (synced)" %
          (n, dt, n / dt))
    r = d.import_(path, check=0, reply_timeout=REPLY_TIMEOUT_S)
    h.eq((r.summary["accepted"], r.summary["unchanged"]), (0, n),
         "a second import of the same file is unchanged N")
    d.stop()
    d.start()
    h.eq(stored(d, spots)[0], n, "after a clean restart the store holds N")
    d.stop()


def phase_times(text, total):
    """Streaming and commit durations from the log's timestamps."""

    def ts(rx):
        for line in text.splitlines():
            if re.search(rx, line):
                try:
                    t = datetime.datetime.strptime(line[:23],
                                                   "%Y-%m-%dT%H:%M:%S.%f")
                    return t.timestamp()
                except ValueError:
                    return None
        return None

    a, b = ts(STARTED_RE), ts(COMMITTING_RE)
    if a is None or b is None or b < a:
        return {"stream": total * 0.7, "commit": total * 0.3}
    stream = b - a
    return {"stream": stream, "commit": max(0.05, total - stream)}


if __name__ == "__main__":
    h.main([test_kill9_during_import])
