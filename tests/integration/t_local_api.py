"""t_local_api.py - the local API socket and the write path as an operator
sees them: the socket is created 0600, writes from many clients at once are
grouped into few synced transactions, and SIGTERM stops the daemon cleanly
(exit 0, socket removed, every acknowledged write there after a restart)."""

import os
import stat

import harness as h

N_CLIENTS = 30
KEY = "A.COL.VC_IHR_PSRC._T._T._T.HARM"


def test_socket_is_private(env):
    d = env.daemon("p")
    d.start()
    mode = stat.S_IMODE(os.stat(d.sock).st_mode)
    h.eq(oct(mode), oct(0o600), "api.sock mode")


def test_concurrent_puts_are_group_committed(env):
    d = env.daemon("g")
    d.start()
    before = d.status()
    procs = [d.cli_bg("put", "OID:DF_VIOLENCE(1.0)", KEY, str(1990 + i),
                      "%d.5" % i, "UNIT_MEASURE=PER_100000_POP",
                      "OBS_STATUS=A")
             for i in range(N_CLIENTS)]
    for p in procs:
        p.wait(timeout=h.CLI_TIMEOUT_S)
        with open(p.out_path) as f:
            h.eq(p.returncode, 0, "put exit code (output: %s)" % f.read())
    after = d.status()
    commits = after["commits"] - before["commits"]
    grouped = after["writes_grouped"] - before["writes_grouped"]
    h.log("%d puts from %d clients: %d commit(s)" % (grouped, N_CLIENTS,
                                                    commits))
    h.eq(grouped, N_CLIENTS, "every put was committed")
    h.check(commits < N_CLIENTS,
            "concurrent writes share transactions (%d commits for %d puts)"
            % (commits, N_CLIENTS))
    h.eq(after["observations"], N_CLIENTS, "observations stored")


def test_sigterm_is_clean(env):
    d = env.daemon("t")
    d.start()
    d.import_(h.sample("violence_wdi_homicide.csv"), check=0)
    d.stop()  # TestFailure unless it exits 0 within the timeout
    h.check(not os.path.exists(d.sock), "the socket file was removed")
    d.start()
    h.eq(d.status()["observations"], 972, "acknowledged data after restart")


if __name__ == "__main__":
    h.main([test_socket_is_private, test_concurrent_puts_are_group_committed,
            test_sigterm_is_clean])
