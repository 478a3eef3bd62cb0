#!/usr/bin/env python3
"""t_security.py - CURVE replication security end to end: who may connect
to a hub, what happens when a key leaves its allow-list or is rotated, that
a node writes only as its own provider whatever path it takes, that nobody
takes over another node's session, and the refusals of a daemon started
with the wrong security setup (DESIGN.md §4, PROTOCOL.md §5.2).

Each case has its own hub and nodes (C daemons; Python nodes from
tests/conformance/obsnode.py where a hand-made client is needed):

* test_unknown_key_cannot_connect: a node whose key is not in the hub's
  allow-list never streams; its changes stay in its outbox; the hub counts
  refused unknown_key and logs the refusal once (rate-limited, not per
  retry). Allowed, it converges and nothing is lost.
* test_key_removed: the key of a streaming node leaves the allow-list: the
  hub ends the session within a heartbeat (Goodbye -5, node logs "refused
  our key"); what the node writes meanwhile waits in its outbox and
  arrives once the key is back. `obsync reload` and SIGHUP each pick up a
  change of the list at once (the change is made in place with the file's
  size and mtime kept, so the hub's directory watch does not see it). A
  removal in the middle of a 20,000-change stream loses nothing; a
  certificate edited to name another provider ends the session too; a
  list with a secret file in it is refused whole (`obsync reload` exit 6)
  and the sessions go on.
* test_key_rotation: node COL moves from key A to key B with both allowed,
  writing all along; A is then removed and a process still holding A is
  refused; every write of COL arrives.
* test_authority: a node allowed for COL writes MEX rows by import, put,
  delete, a hand-made Publish (provider COL: R12-authority; provider or
  origin MEX: R-origin) and a Hello claiming MEX (Goodbye -5, counted as
  identity); MEX's rows are unchanged everywhere.
* test_takeover: a process with COL's node_id but another node's allowed
  key (or an unknown key) cannot take over COL's session nor get COL's
  next origin_seq acknowledged: COL stays up and its next change arrives.
* test_same_routing_id: a process with another allowed key reusing the
  routing id of a node's connection (the peer chooses it): while the
  connection lives it gets no answer; once the connection dropped its
  message ends the node's lingering session with -5 key_changed; neither
  time is its Publish of the node's next origin_seq acknowledged.
* test_key_changed_strikes_the_intruder: with abuse_threshold = 2, two such
  intrusions back off the intruder's key, not the key of the node whose
  session they hit; the back-off is logged. (Fails while the hub's
  shut_out(), hub_security.c, counts a key_changed strike against the
  session's key instead of the key that sent the message.)
* test_security_config: a hub with no security line and no key refuses to
  start naming curve_secret_key; plaintext starts with its warning and says
  so in status; a secret key file readable by others is refused (file and
  mode named); no secret key text appears in any daemon log, status,
  reload or keygen output of this file.

Run by ctest as integration.security. Needs a Python with zmq (CURVE) and
protobuf and protoc (as the conformance tier): when the interpreter ctest
runs lacks them, the file re-runs itself under OBSYNC_CONFORMANCE_PYTHON
or /usr/bin/python3."""

import os
import re
import shutil
import signal
import sys
import time


def _python_with_zmq():
    """Re-executes this file under a Python that has zmq and protobuf when
    the current one lacks them (ctest runs integration tests with CMake's
    Python3, the conformance tier with OBSYNC_CONFORMANCE_PYTHON)."""
    try:
        import zmq  # noqa: F401
        import google.protobuf  # noqa: F401
        return
    except ImportError as e:
        missing = str(e)
    if not os.environ.get("OBSYNC_T_SECURITY_REEXEC"):
        for cand in (os.environ.get("OBSYNC_CONFORMANCE_PYTHON"),
                     "/usr/bin/python3"):
            if cand and os.access(cand, os.X_OK) and \
                    os.path.realpath(cand) != os.path.realpath(
                        sys.executable):
                os.environ["OBSYNC_T_SECURITY_REEXEC"] = "1"
                sys.stdout.flush()
                os.execv(cand, [cand] + sys.argv)
    sys.stderr.write("t_security: %s: needs a Python with the zmq and "
                     "protobuf modules (Debian: python3-zmq, "
                     "python3-protobuf)\n" % missing)
    sys.exit(1)


_python_with_zmq()

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "conformance"))
import harness as h  # noqa: E402
import repl_harness as rh  # noqa: E402
import conformance as cf  # noqa: E402
import obsnode as on  # noqa: E402

# conformance.py lowers the file deadline to 200 s; this file takes ~25 s
if "OBSYNC_TEST_DEADLINE" not in os.environ:
    h.FILE_DEADLINE_S = 240

OBS_EAUTH = -5
DF = h.DF_VIOLENCE
MEX_KEY = ".MEX....."  # REF_AREA is the second of DF_VIOLENCE's 7 dims
HUB_FIELDS = ("security", "public_key", "allowed_keys", "refused",
              "connections", "pending_hello", "handshake_failures",
              "backoffs")
NODE_FIELDS = ("security", "public_key", "hub_key")
REASONS = ("unknown_key", "backoff", "pending_full", "mechanism", "identity",
           "key_changed", "key_removed", "malformed", "version", "too_big",
           "no_session")

# every CLI output of this file that could leak a secret key (checked at
# the end of test_security_config)
OUTPUTS = []


# ---------------------------------------------------------------- status


def sec_status(d, timeout=30):
    """`status --json` (recorded for the secret scan); None when the daemon
    does not answer."""
    if not d.running():
        return None
    try:
        r = d.cli("status", json=True, check=None, timeout=timeout)
    except h.TestFailure:
        return None
    OUTPUTS.append(("%s status --json" % d.name, r.out + r.err))
    if r.rc != 0:
        return None
    try:
        return r.json()
    except ValueError:
        return None


def must(d):
    st = sec_status(d)
    if st is None:
        h.fail("daemon %s does not answer status" % d.name)
    if d.is_hub:
        rh.need(st, *HUB_FIELDS, who="%s's status" % d.name)
        rh.need(st["refused"], *REASONS, who="%s's refused counts" % d.name)
        for p in rh.need(st, "peers")["peers"]:
            rh.need(p, "key", "refused", "up", "reconnects",
                    "last_origin_seq", who="%s's row for %s" %
                    (d.name, p.get("node_id")))
    else:
        rh.need(st, *NODE_FIELDS, "repl_state", "outbox_depth",
                who="%s's status" % d.name)
    return st


def refused(st, reason):
    """A hub's (or a peer row's) refused count for reason."""
    return rh.need(rh.need(st, "refused")["refused"], reason,
                   who="refused counts")[reason]


def row(hub_d, node_id):
    return rh.peer_row(must(hub_d), node_id)


def fp(pub_file):
    """The 8-character fingerprint the hub shows of a public key."""
    return rh.cert_key(pub_file)[:8]


def window(seconds, check, what):
    """Polls check() (which fails the test itself) for `seconds`: a state
    that must hold over a span, e.g. while a node retries."""
    t_end = time.monotonic() + seconds
    h.wait_until(lambda: (check() or True) and time.monotonic() >= t_end,
                 seconds + 30, what, interval=0.1, max_interval=0.2)
    h.log("  ok   %s (held for %.1f s)" % (what, seconds))


def streams(d):
    st = must(d)
    return st if st["repl_state"] == "streaming" else None


def wait_streaming(d, timeout, what=None):
    return h.wait_until(lambda: streams(d), timeout,
                        what or "%s to stream" % d.name)


def get_value(d, key, period):
    got = d.get(DF, key, period, check=(0, h.EXIT_NOT_FOUND))
    return got.get("value") if got else None


def mex_view(d):
    """d's MEX rows as jsonl with versions (tombstones too): its own bytes
    before and after must match exactly."""
    return rh.export(d, "jsonl", DF, "--key", MEX_KEY, "--include-deleted")


def py_node(env, hub_d, node_id, provider, secret, **kw):
    """A started Python node (obsnode.Node) with the given secret
    certificate, closed by cf.case at the end of the case."""
    kw.setdefault("peer_timeout_ms", rh.PEER_TIMEOUT_MS)
    return cf.node(env, hub_d, node_id, provider,
                   curve=(hub_d.public_key, secret), **kw)


def swap_in_place(path, src):
    """Overwrites path with src's bytes in place (same inode, same size,
    mtime kept): only an explicit reload (or a hub reading contents) can
    see the change, not a watch of names, sizes and mtimes."""
    with open(src, "rb") as f:
        data = f.read()
    st = os.stat(path)
    if st.st_size != len(data):
        h.fail("%s (%d bytes) and %s (%d bytes) differ in size" %
               (path, st.st_size, src, len(data)))
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, data, 0)
    finally:
        os.close(fd)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def write_atomic(path, text):
    """Replaces path with text (renamed into place: the hub, which skips
    names ending in '~', never reads it half written)."""
    with open(path + ".tmp~", "w") as f:
        f.write(text)
    os.rename(path + ".tmp~", path)


def setup(env, tag, nodes=("COL", "MEX")):
    """A hub and started C nodes named hub_TAG, col_TAG, ... (each node's
    provider its node_id), all streaming."""
    hub = rh.start_hub(rh.hub(env, "hub_" + tag, no_sync=True))
    ds = [rh.node(env, "%s_%s" % (n.lower(), tag), hub, node_id=n,
                  no_sync=True) for n in nodes]
    rh.wait_allowed(hub, len(ds))
    for d in ds:
        d.start()
    for d in ds:
        wait_streaming(d, 20)
    return hub, ds


def rows_file(env, name, area, n, offset=0):
    path = env.path(name + ".csv")
    rh.write_rows(path, area, n, env.rng, offset=offset)
    return path


# ---------------------------------------------------------------- cases


def test_unknown_key_cannot_connect(env):
    hub = rh.start_hub(rh.hub(env, "hub_u", no_sync=True))
    mex = rh.node(env, "mex_u", hub, node_id="MEX", no_sync=True)
    col = rh.node(env, "col_u", hub, node_id="COL", allowed=False,
                  no_sync=True)
    rh.wait_allowed(hub, 1)
    mex.start()
    off = hub.log_size()
    t0 = time.monotonic()
    col.start()
    n = rh.import_ok(col, rows_file(env, "u_col", "COL", 40))
    h.eq(n, 40, "COL imported its rows locally")

    st = must(col)
    h.eq((st["security"], st["public_key"], st["hub_key"]),
         ("curve", rh.cert_key(col.public_key), rh.cert_key(hub.public_key)),
         "COL's status: security, its public key, the pinned hub key")
    hs = must(hub)
    h.eq((hs["security"], hs["public_key"], hs["allowed_keys"]),
         ("curve", rh.cert_key(hub.public_key), 1),
         "hub's status: security, its public key, 1 allowed key (MEX)")

    def not_in():
        st = must(col)
        if st["repl_state"] == "streaming" or st["outbox_depth"] != n:
            h.fail("COL (key not allowed): repl_state %s, outbox_depth %d "
                   "(want not streaming, %d)" % (st["repl_state"],
                                                 st["outbox_depth"], n))
        rows = rh.peer_rows(must(hub))
        if "COL" in rows and rows["COL"]["up"]:
            h.fail("the hub shows COL up: %r" % rows["COL"])
    # at least 3 s from COL's start and two of its attempts (it retries
    # once its Hello goes unanswered for peer_timeout_ms)
    def retried():
        not_in()
        return time.monotonic() - t0 >= 3.0 and \
            refused(must(hub), "unknown_key") >= 2
    h.wait_until(retried, 15, "COL's retries", interval=0.1,
                 max_interval=0.2)
    hs = must(hub)
    tries = refused(hs, "unknown_key")
    h.log("  ok   COL never streamed, its %d changes stayed in its outbox, "
          "the hub never showed it up (%.1f s)" % (n, time.monotonic() - t0))
    h.log("  ok   the hub refused COL's handshakes as unknown_key (%d "
          "times)" % tries)
    h.check(hs["handshake_failures"] >= 1, "the hub counts failed "
            "handshakes (%d)" % hs["handshake_failures"])
    lines = [l for l in hub.log_text(whole=True)[off:].splitlines()
             if "refused a CURVE handshake" in l and fp(col.public_key) in l]
    for l in lines:
        h.log("       hub: %s" % l)
    h.check(1 <= len(lines) <= 2, "the hub logged the refusal of COL's "
            "key, rate-limited (%d line(s) for %d refusals)" %
            (len(lines), tries), "\n".join(lines) or "no line")
    h.check(all("unknown_key" in l for l in lines), "the log line says "
            "unknown_key")
    obs = must(hub)["observations"]
    h.eq(obs, 0, "nothing of COL reached the hub")

    rh.allow(hub, col.public_key, "COL-COL.key")
    rh.wait_allowed(hub, 2)
    wait_streaming(col, 20, "COL to stream once its key is allowed")
    sts = rh.wait_converged(hub, [col, mex], 30)
    h.eq(sts[col.name]["outbox_depth"], 0, "COL's outbox drained")
    h.eq(sts[hub.name]["observations"], n, "the hub holds all %d of COL's "
         "changes" % n)
    h.eq(rh.peer_row(sts[hub.name], "COL")["key"], fp(col.public_key),
         "the hub's row for COL shows its key's fingerprint")
    rh.compare_exports([hub, col, mex])


def test_key_removed(env):
    hub, (col, mex) = setup(env, "r")
    n = rh.import_ok(col, rows_file(env, "r_col1", "COL", 20))
    rh.wait_converged(hub, [col, mex], 30)
    r0 = row(hub, "COL")
    h.check(r0["up"], "COL up at the hub")
    hs0 = must(hub)

    # removed from the directory: the hub's watch sees it within a heartbeat
    off_col = col.log_size()
    t0 = time.monotonic()
    rh.disallow(hub, "COL-COL.key")
    h.wait_until(lambda: not row(hub, "COL")["up"], 2.0,
                 "the hub to end COL's session (key removed)")
    col.wait_log(r"refused our key .*\(.*\): .*left the allow-list", 2.0,
                 "COL to log that the hub refused its key", since=off_col)
    h.log("  ok   COL's session ended %.2f s after its key was removed" %
          (time.monotonic() - t0))
    h.check(re.search(r"refused our key %s" % re.escape(fp(col.public_key)),
                      col.log_text(whole=True)[off_col:]) is not None,
            "COL's log names its key's fingerprint")
    h.check(rh.log_has(hub, r"key %s\.\.\. of COL left the allow-list" %
                       re.escape(fp(col.public_key))),
            "the hub logs that COL's key left the allow-list")
    hs = must(hub)
    h.eq(refused(hs, "key_removed") - refused(hs0, "key_removed"), 1,
         "hub: refused key_removed +1")
    h.eq(refused(rh.peer_row(hs, "COL"), "key_removed"), 1,
         "hub's row for COL: refused key_removed 1")
    h.check(rh.peer_row(hs, "MEX")["up"], "MEX still up")

    # COL writes while it is out
    more = rh.import_ok(col, rows_file(env, "r_col2", "COL", 15, offset=20))
    key, period = rh.ident("COL", 3)
    col.cli("put", DF, key, period, "71.25", "UNIT_MEASURE=PER_100000_POP",
            "OBS_STATUS=E")
    pending = n + more + 1

    def out():
        st = must(col)
        if st["repl_state"] == "streaming" or \
                st["outbox_depth"] != more + 1:
            h.fail("COL (key removed): repl_state %s, outbox_depth %d" %
                   (st["repl_state"], st["outbox_depth"]))
        if must(hub)["observations"] != n:
            h.fail("the hub got changes of COL while its key was removed")
    window(1.0, out, "COL's %d new changes wait in its outbox" % (more + 1))

    rh.allow(hub, col.public_key, "COL-COL.key")
    sts = rh.wait_converged(hub, [col, mex], 30, what="convergence after "
                            "COL's key is back")
    h.eq(sts[hub.name]["observations"], n + more, "the hub holds all of "
         "COL's rows (%d changes, one a revision)" % pending)
    for d in (hub, mex):
        h.eq(get_value(d, key, period), "71.25", "%s has COL's put made "
             "while its key was removed" % d.name)
    rh.compare_exports([hub, col, mex])

    # `obsync reload` and SIGHUP: COL-COL.key rewritten in place with
    # another COL key (same size, mtime kept): only a reload sees it
    spare_pub, _ = rh.keygen_in(env, "COL-spare", "COL", "COL")
    allowed = os.path.join(hub.allow_dir, "COL-COL.key")

    def removed_by(how, act):
        before = refused(row(hub, "COL"), "key_removed")
        off = col.log_size()
        swap_in_place(allowed, spare_pub)
        t = time.monotonic()
        act()
        h.wait_until(lambda: not row(hub, "COL")["up"], 1.0,
                     "%s to end COL's session" % how)
        col.wait_log(r"refused our key", 2.0, since=off)
        h.eq(refused(row(hub, "COL"), "key_removed"), before + 1,
             "%s: COL's session ended at once (%.2f s), key_removed +1" %
             (how, time.monotonic() - t))

    def back_by(how, act, value):
        swap_in_place(allowed, col.public_key)
        act()
        wait_streaming(col, 20, "COL to stream again after %s" % how)
        rh.wait_converged(hub, [col, mex], 30)
        h.eq(get_value(hub, key, period), value, "%s: COL back, its put "
             "made while out arrived" % how)

    def reload(keys=2):
        r = hub.cli("reload")
        OUTPUTS.append(("hub reload", r.out + r.err))
        h.check("allow-list reloaded: %d node key(s) allowed" % keys in
                r.out, "`obsync reload` reports %d key(s)" % keys,
                r.out.strip())

    def sighup():
        off = hub.log_size()
        os.kill(hub.proc.pid, signal.SIGHUP)
        hub.wait_log(r"allow-list reloaded", 5, since=off)

    removed_by("`obsync reload`", reload)
    col.cli("put", DF, key, period, "72.5")
    back_by("SIGHUP", sighup, "72.5")
    removed_by("SIGHUP", sighup)
    col.cli("put", DF, key, period, "73.75")
    back_by("`obsync reload`", reload, "73.75")
    rh.compare_exports([hub, col, mex])

    # removed (and reloaded at once) while COL's changes stream to the
    # hub: what was in flight is not lost
    base = row(hub, "COL")["last_origin_seq"]
    big = 20000
    imp = col.cli_bg("import", rows_file(env, "r_col3", "COL", big,
                                         offset=100))
    h.wait_until(lambda: row(hub, "COL")["last_origin_seq"] > base, 30,
                 "COL's import to start streaming to the hub")
    rh.disallow(hub, "COL-COL.key")
    reload(1)
    at = row(hub, "COL")
    h.check(not at["up"], "COL's session ended at the reload")
    h.wait_until(lambda: imp.poll() is not None, 60, "COL's import")
    h.eq(imp.returncode, 0, "COL's import committed")
    h.log("  ..   key removed with %d of COL's %d changes at the hub" %
          (at["last_origin_seq"] - base, big))
    rh.allow(hub, col.public_key, "COL-COL.key")
    reload()
    wait_streaming(col, 20, "COL to stream again")
    sts = rh.wait_converged(hub, [col, mex], 60, what="convergence after "
                            "a removal mid-stream")
    h.eq(sts[hub.name]["observations"], n + more + big, "the hub holds "
         "every row of COL")
    rh.compare_exports([hub, col, mex])

    # COL's certificate now names another provider (replaced; the
    # hub's watch sees it): the session COL opened as provider COL ends,
    # and its Hellos as COL are refused (identity) until the file is right
    with open(allowed) as f:
        text = f.read()
    h.check('provider = "COL"' in text, "COL's certificate names provider "
            "COL")
    hs0 = must(hub)
    off = col.log_size()
    write_atomic(allowed, text.replace('provider = "COL"',
                                       'provider = "MEX"'))
    h.wait_until(lambda: not row(hub, "COL")["up"], 2.0, "the hub to end "
                 "COL's session when its key speaks for provider MEX")
    h.wait_until(lambda: refused(must(hub), "identity") >
                 refused(hs0, "identity"), 5, "COL's next Hello (provider "
                 "COL) to be refused as identity")
    col.wait_log(r"refused our key .*provider MEX", 2, since=off)
    col.cli("put", DF, key, period, "75.25")
    window(0.6, lambda: get_value(hub, key, period) == "73.75" or h.fail(
        "COL's put reached the hub while its key spoke for MEX"),
        "COL's put waits in its outbox")
    write_atomic(allowed, text)
    wait_streaming(col, 20, "COL to stream with its certificate restored")
    rh.wait_converged(hub, [col, mex], 30)
    h.eq(get_value(hub, key, period), "75.25", "COL's put arrived")

    # a bad allow-list (a secret half in it) is refused as a whole: the
    # old list stays, sessions go on
    bad = os.path.join(hub.allow_dir, "COL-COL.key_secret")
    shutil.copyfile(col.secret_key, bad)
    r = hub.cli("reload", check=None)
    OUTPUTS.append(("hub reload of a bad list", r.out + r.err))
    h.check(r.rc == h.EXIT_REFUSED and bad in r.out + r.err,
            "`obsync reload` of a list holding a secret file exits 6 naming "
            "it", r.describe())
    os.unlink(bad)
    hs = rh.wait_allowed(hub, 2)
    h.check(rh.peer_row(hs, "COL")["up"] and rh.peer_row(hs, "MEX")["up"],
            "COL and MEX keep their sessions")
    col.cli("put", DF, key, period, "74.5")
    rh.wait_converged(hub, [col, mex], 30)
    h.eq(get_value(mex, key, period), "74.5", "COL's put still arrives")


@cf.case
def test_key_rotation(env):
    hub, (col, mex) = setup(env, "k")
    a_pub, a_sec = col.public_key, col.secret_key
    n1 = rh.import_ok(col, rows_file(env, "k_col1", "COL", 20))
    rh.wait_converged(hub, [col, mex], 30)
    h.eq(row(hub, "COL")["key"], fp(a_pub), "COL streams with key A")

    b_pub, b_sec = rh.keygen_in(env, "COL-B", "COL", "COL")
    rh.allow(hub, b_pub, "COL-COL-B.key")
    rh.wait_allowed(hub, 3)
    h.check(row(hub, "COL")["up"], "adding key B leaves COL's session up")

    # a write, and COL restarts at once with key B (part of it may still
    # be in its outbox), and writes again as it reconnects
    n2 = rh.import_ok(col, rows_file(env, "k_col2", "COL", 20, offset=20))
    col.stop()
    col.write_config(curve_secret_key=b_sec)
    col.start()
    n3 = rh.import_ok(col, rows_file(env, "k_col3", "COL", 20, offset=40))
    sts = rh.wait_converged(hub, [col, mex], 30, what="convergence with "
                            "COL on key B")
    h.eq(sts[hub.name]["observations"], n1 + n2 + n3, "the hub holds every "
         "change COL wrote across the rotation")
    h.eq(sts[col.name]["public_key"], rh.cert_key(b_pub),
         "COL's status shows key B")
    r = rh.peer_row(sts[hub.name], "COL")
    h.eq(r["key"], fp(b_pub), "the hub's row for COL shows key B")
    reconnects = r["reconnects"]

    # A leaves the list; COL (on B) stays, a process on A is refused
    rh.disallow(hub, "COL-COL.key")
    hs = rh.wait_allowed(hub, 2)
    h.check(rh.peer_row(hs, "COL")["up"] and
            rh.peer_row(hs, "COL")["reconnects"] == reconnects,
            "removing key A leaves COL's session on key B alone")
    unknown = refused(hs, "unknown_key")
    old = py_node(env, hub, "COL", "COL", a_sec, auto_reconnect=False)
    h.wait_until(lambda: refused(must(hub), "unknown_key") > unknown, 5,
                 "the hub to refuse a process still holding key A")
    with old.lock:
        h.eq((old.welcomes, old.goodbyes), ([], []), "the process on key A "
             "got no session")
    r = row(hub, "COL")
    h.check(r["up"] and r["reconnects"] == reconnects and
            r["key"] == fp(b_pub), "COL still streams on key B")
    old.close()

    key, period = rh.ident("COL", 5)
    col.cli("put", DF, key, period, "64.5")
    rh.wait_converged(hub, [col, mex], 30)
    for d in (hub, mex):
        h.eq(get_value(d, key, period), "64.5", "%s has COL's put after "
             "the rotation" % d.name)
    rh.compare_exports([hub, col, mex])


@cf.case
def test_authority(env):
    hub, (col, mex) = setup(env, "a")
    n = rh.import_ok(mex, rows_file(env, "a_mex", "MEX", 30))
    rh.wait_converged(hub, [col, mex], 30)
    before = {d.name: mex_view(d) for d in (hub, mex, col)}
    rh.compare_exports([hub, mex, col], "MEX's rows", args=(DF, "--key",
                                                           MEX_KEY))

    # the node's own paths: import, put, delete (checked at the node)
    r = col.import_(rows_file(env, "a_col_mex", "MEX", 10))
    h.eq(r.rc, h.EXIT_REJECTED, "COL: import of MEX rows exits 1")
    rules = sorted({i["rule"] for i in r.issues})
    h.eq(rules, ["R12-authority"], "COL: every issue is R12-authority")
    s = r.summary
    h.eq((s["accepted"], s["rejected"]), (0, 10), "COL: no MEX row accepted")
    key, period = rh.ident("MEX", 0)
    for what, args in (("put", ("put", DF, key, period, "99.5",
                                "UNIT_MEASURE=PER_100000_POP",
                                "OBS_STATUS=A")),
                       ("put --replace", ("put", DF, key, period, "99.5",
                                          "UNIT_MEASURE=PER_100000_POP",
                                          "--replace"))):
        res = col.cli(*args, check=None)
        h.check(res.rc == h.EXIT_REJECTED and
                "R12-authority" in res.out + res.err,
                "COL: `obsync %s` of a MEX key refused with R12-authority "
                "(exit 1)" % what, res.describe())
    # delete prints a summary only (libobsync's obsync_delete returns no
    # issues): refused, nothing deleted; MEX's rows are compared below
    res = col.cli("delete", DF, key, period, json=True, check=None)
    s = res.json() if res.rc in (0, 1) else {}
    h.check(res.rc == h.EXIT_REJECTED and s.get("rejected") == 1 and
            s.get("deleted") == 0 and not s.get("committed"),
            "COL: `obsync delete` of a MEX key refused (exit 1, rejected 1, "
            "nothing deleted)", res.describe())
    h.eq(must(col)["outbox_depth"], 0, "nothing in COL's outbox")

    # a hand-made client with COL's own key (the C node COL stopped: one
    # session per node)
    hs = must(hub)
    rejected0 = rh.peer_row(hs, "COL")["rejected"]
    col.stop()
    py = py_node(env, hub, "COL", "COL", col.secret_key)
    cf.wait(py, lambda: py.state == "streaming", 10, "COL's key streaming")
    rng = env.rng

    def mex_change(i, **version):
        dims, period = cf.ident("MEX", i)
        o = py.make_change(DF, dims, period, cf.value(rng), dict(cf.ATTRS))
        for k, v in version.items():
            setattr(o.version, k, v)
        return py.add(o, apply=False)
    want = [("R12-authority", mex_change(1), "REF_AREA"),  # provider COL
            ("R-origin", mex_change(2, provider="MEX"), None),
            ("R-origin", mex_change(3, origin="MEX", provider="MEX"), None)]
    cf.wait(py, lambda: py.all_acked() or py.goodbyes, 10,
            "the hub's answer to the Publish of MEX data")
    with py.lock:
        got = [(r.rule, r.line, r.column) for s, r in py.rejects]
        goodbyes = list(py.goodbyes)
    h.log("  ..   rejects %r, goodbyes %r" % (got, goodbyes))
    h.eq(goodbyes, [], "no Goodbye: rejected changes are consumed")
    h.eq([g[:2] for g in got], [w[:2] for w in want],
         "PublishAck rejects each change of MEX data (rule, origin_seq)")
    h.eq(got[0][2], "REF_AREA", "the R12-authority reject names REF_AREA")
    h.eq(row(hub, "COL")["rejected"] - rejected0, 3,
         "the hub's row for COL counts 3 rejected")
    py.close()

    # a Hello claiming MEX (or provider MEX) with COL's key
    hs = must(hub)
    ident0 = refused(hs, "identity")
    col_ident0 = refused(rh.peer_row(hs, "COL"), "identity")
    mex_row0 = rh.peer_row(hs, "MEX")
    for node_id, provider in (("MEX", "MEX"), ("COL", "MEX")):
        liar = py_node(env, hub, node_id, provider, col.secret_key,
                       auto_reconnect=False)
        code, reason = cf.goodbye_code(liar, 1, timeout=5, grace=2)
        h.eq(code, OBS_EAUTH, "Hello as node %s provider %s with COL's key: "
             "Goodbye -5 (%s)" % (node_id, provider, reason))
        with liar.lock:
            h.eq(liar.welcomes, [], "no Welcome")
        liar.close()
    hs = must(hub)
    h.eq(refused(hs, "identity") - ident0, 2, "hub: refused identity +2")
    h.eq(refused(rh.peer_row(hs, "COL"), "identity") - col_ident0, 2,
         "hub's row for COL (the key's node): refused identity +2")
    m = rh.peer_row(hs, "MEX")
    h.check(m["up"] and m["reconnects"] == mex_row0["reconnects"],
            "the real MEX kept its session")

    # the C node COL back: still COL, still serves
    col.start()
    wait_streaming(col, 20)
    ckey, cperiod = rh.ident("COL", 0)
    col.cli("put", DF, ckey, cperiod, "12.5", "UNIT_MEASURE=PER_100000_POP",
            "OBS_STATUS=A")
    rh.wait_converged(hub, [col, mex], 30)
    h.eq(get_value(mex, ckey, cperiod), "12.5", "COL's own put arrives")
    for d in (hub, mex, col):
        h.check(mex_view(d) == before[d.name], "%s: MEX's rows unchanged "
                "(values and versions)" % d.name)
    got = rh.compare_exports([hub, mex, col], "MEX's rows",
                             args=(DF, "--key", MEX_KEY))
    h.eq(got, n, "MEX's %d rows everywhere" % n)


@cf.case
def test_takeover(env):
    hub, (col, mex) = setup(env, "t")
    rh.import_ok(col, rows_file(env, "t_col", "COL", 10))
    rh.wait_converged(hub, [col, mex], 30)
    seq = must(col)["last_origin_seq"]
    r0 = row(hub, "COL")
    h.eq(r0["last_origin_seq"], seq, "the hub has COL's changes up to %d" %
         seq)
    xyz_pub, xyz_sec = rh.keygen(env, "XYZ", "XYZ")
    rh.allow(hub, xyz_pub, "XYZ-XYZ.key")
    rh.wait_allowed(hub, 3)
    rogue_pub, rogue_sec = rh.keygen_in(env, "COL-rogue", "COL", "COL")
    key, period = rh.ident("COL", 0)
    dims = key.split(".")

    def impostor(secret, what):
        """A process as COL with that key: its Hello and, right behind it
        (queued before its thread starts, so before any answer), a Publish
        of COL's next change, origin_seq seq + 1."""
        n = on.Node(cf.pb(env), hub.endpoint, "COL", "COL", log=h.log,
                    curve=(hub.public_key, secret), auto_reconnect=False,
                    peer_timeout_ms=rh.PEER_TIMEOUT_MS)
        env.py_nodes.append(n)  # closed by cf.case
        o = n.make_change(DF, dims, period, "666.5", dict(cf.ATTRS),
                          seq=seq + 1)
        pub = n.envelope()
        pub.publish.first_seq = pub.publish.last_seq = seq + 1
        pub.publish.changes.append(o.SerializeToString(deterministic=True))
        sent = []
        n._cmds.append(lambda: sent.append(n._send(pub)))
        n.start()
        h.wait_until(lambda: sent, 5, "the impostor to send its Publish")
        h.check(sent == [True], "impostor (%s): Hello and Publish{%d} "
                "queued on its socket" % (what, seq + 1))
        return n

    def col_unmoved(what):
        r = row(hub, "COL")
        h.check(r["up"] and r["reconnects"] == r0["reconnects"] and
                r["key"] == fp(col.public_key) and
                r["last_origin_seq"] == seq and
                must(col)["repl_state"] == "streaming",
                "%s: COL keeps its session, nothing acknowledged for it" %
                what, repr(r))

    hs = must(hub)
    ident0 = refused(hs, "identity")
    imp = impostor(xyz_sec, "XYZ's allowed key")
    code, reason = cf.goodbye_code(imp, 1, timeout=5, grace=2)
    h.eq(code, OBS_EAUTH, "the impostor on XYZ's key: Goodbye -5 (%s)" %
         reason)
    h.wait_until(lambda: refused(must(hub), "identity") > ident0, 5,
                 "the hub to count the identity refusal")
    h.check(refused(row(hub, "XYZ"), "identity") >= 1,
            "counted in the row of XYZ, the key's node")
    with imp.lock:
        h.eq((imp.welcomes, imp.acks), ([], []), "no Welcome, no PublishAck")
    imp.close()
    col_unmoved("XYZ's key")

    unknown0 = refused(must(hub), "unknown_key")
    imp = impostor(rogue_sec, "an unknown key")
    h.wait_until(lambda: refused(must(hub), "unknown_key") > unknown0, 5,
                 "the hub to refuse the unknown key's handshake")
    with imp.lock:
        h.eq((imp.welcomes, imp.acks, imp.goodbyes), ([], [], []),
             "the impostor on an unknown key never got a session")
    imp.close()
    col_unmoved("an unknown key")

    # COL's own next change (origin_seq seq + 1) arrives
    col.cli("put", DF, key, period, "24.25", "UNIT_MEASURE=PER_100000_POP",
            "OBS_STATUS=A")
    sts = rh.wait_converged(hub, [col, mex], 30)
    h.eq((sts[col.name]["last_origin_seq"],
          rh.peer_row(sts[hub.name], "COL")["last_origin_seq"]),
         (seq + 1, seq + 1), "COL's change %d acknowledged by the hub" %
         (seq + 1))
    for d in (hub, mex):
        h.eq(get_value(d, key, period), "24.25", "%s has COL's change %d" %
             (d.name, seq + 1))
        values = [v.get("value") for v in d.history(DF, key, period)]
        h.check("666.5" not in values, "%s: the impostor's value is in no "
                "version" % d.name, repr(values))
    rh.compare_exports([hub, col, mex])


class FixedIdNode(on.Node):
    """An obsnode.Node whose every connection uses one routing id (obsnode
    draws a random one per connection): the peer chooses it, so a second
    process can reuse another's (PROTOCOL.md §5.2 "Security")."""

    def __init__(self, *args, routing_suffix=b"\x5e\xc0\x7e\x57", **kw):
        self.routing_suffix = routing_suffix
        super().__init__(*args, **kw)

    def _connect(self):
        real, suffix = on.os, self.routing_suffix

        class _Os:  # obsnode draws the routing id with os.urandom(4)
            def __getattr__(self, name):
                return getattr(real, name)

            @staticmethod
            def urandom(n):
                return suffix[:n]
        on.os = _Os()
        try:
            super()._connect()
        finally:
            on.os = real


def routed_node(env, hub_d, node_id, secret, publish=None, **kw):
    """A FixedIdNode as node_id with that secret key, started; publish:
    (first_seq, [encoded changes]) sent right behind its Hello (queued
    before its thread starts, so before any answer). Closed by cf.case."""
    kw.setdefault("peer_timeout_ms", rh.PEER_TIMEOUT_MS)
    n = FixedIdNode(cf.pb(env), hub_d.endpoint, node_id, node_id,
                    log=h.log, curve=(hub_d.public_key, secret), **kw)
    env.py_nodes.append(n)
    sent = []
    if publish is not None:
        pub = n.envelope()
        pub.publish.first_seq = publish[0]
        pub.publish.last_seq = publish[0] + len(publish[1]) - 1
        pub.publish.changes.extend(publish[1])
        n._cmds.append(lambda: sent.append(n._send(pub)))
    n.start()
    if publish is not None:
        h.wait_until(lambda: sent, 5, "%s to send its Publish" % n.name)
        h.check(sent == [True], "%s: Hello and Publish{%d} queued on its "
                "socket" % (n.name, publish[0]))
    return n


def jam_and_xyz(env, hub):
    """Keys for JAM and XYZ in hub's allow-list; returns their secrets."""
    jam_pub, jam_sec = rh.keygen(env, "JAM", "JAM")
    xyz_pub, xyz_sec = rh.keygen(env, "XYZ", "XYZ")
    n = must(hub)["allowed_keys"]
    rh.allow(hub, jam_pub, "JAM-JAM.key")
    rh.allow(hub, xyz_pub, "XYZ-XYZ.key")
    rh.wait_allowed(hub, n + 2)
    return jam_sec, xyz_sec


def encoded(n, i, value, seq):
    """JAM's change of identity i with that value and origin_seq, made by
    node n (any Python node named JAM), encoded."""
    dims, period = cf.ident("JAM", i)
    o = n.make_change(DF, dims, period, value, dict(cf.ATTRS), seq=seq)
    return o.SerializeToString(deterministic=True)


@cf.case
def test_same_routing_id(env):
    """The routing id is the peer's choice: a process with another allowed
    key (XYZ's) reusing the routing id of node JAM's connection. While
    JAM's connection lives, libzmq keeps the duplicate apart: the intruder
    gets nothing. Once JAM's connection dropped (its session not yet timed
    out), the intruder's message ends that session with -5 key_changed.
    Neither time is the intruder's Publish of JAM's next origin_seq
    acknowledged, and JAM's own change with that number arrives."""
    hub, (mex,) = setup(env, "s", nodes=("MEX",))
    jam_sec, xyz_sec = jam_and_xyz(env, hub)
    jam = routed_node(env, hub, "JAM", jam_sec)
    cf.wait(jam, lambda: jam.state == "streaming", 10, "JAM streaming")
    dims, period = cf.ident("JAM", 0)
    key = ".".join(dims)

    def jam_writes(seq, value):
        jam.put(DF, dims, period, value, dict(cf.ATTRS))
        cf.wait(jam, lambda: jam.all_acked(), 10, "JAM's change %d acked" %
                seq)
        h.wait_until(lambda: get_value(mex, key, period) == value, 10,
                     "JAM's change %d (%s) at MEX" % (seq, value))
        r = row(hub, "JAM")
        h.eq(r["last_origin_seq"], seq, "JAM's change %d arrived (hub and "
             "MEX)" % seq)

    # 1. JAM's connection alive
    live = routed_node(env, hub, "JAM", xyz_sec, name="INTRUDER1",
                       auto_reconnect=False,
                       publish=(1, [encoded(jam, 0, "666.5", 1)]))

    def jam_alone():
        with jam.lock:
            if jam.state != "streaming" or jam.session != 1 or jam.goodbyes:
                h.fail("JAM disturbed: state %s session %d goodbyes %r" %
                       (jam.state, jam.session, jam.goodbyes))
        with live.lock:
            if live.welcomes or live.acks or live.goodbyes:
                h.fail("the intruder got an answer: %r %r %r" %
                       (live.welcomes, live.acks, live.goodbyes))
    window(1.5, jam_alone, "an intruder on JAM's live routing id gets no "
           "answer, JAM's session is untouched")
    r = row(hub, "JAM")
    h.check(r["up"] and r["reconnects"] == 0 and r["last_origin_seq"] == 0,
            "the hub: JAM up, one session, nothing acknowledged", repr(r))
    live.close()
    jam_writes(1, "11.5")

    # 2. JAM's connection dropped, its session alive at the hub
    hs = must(hub)
    kc0 = refused(hs, "key_changed")
    jam.disconnect()  # no Goodbye: the hub keeps the session until timeout
    imp = routed_node(env, hub, "JAM", xyz_sec, name="INTRUDER2",
                      auto_reconnect=False,
                      publish=(2, [encoded(jam, 0, "666.5", 2)]))
    code, reason = cf.goodbye_code(imp, 1, timeout=5, grace=2)
    h.eq(code, OBS_EAUTH, "the intruder's message on JAM's session: Goodbye "
         "-5 (%s)" % reason)
    hs = must(hub)
    h.eq(refused(hs, "key_changed") - kc0, 1, "hub: refused key_changed +1")
    r = rh.peer_row(hs, "JAM")
    h.check(not r["up"] and r["last_origin_seq"] == 1, "the hub ended JAM's "
            "session and acknowledged nothing more", repr(r))
    with imp.lock:
        h.eq((imp.welcomes, imp.acks), ([], []), "the intruder got no "
             "Welcome and no PublishAck")
    imp.close()
    jam.connect()
    cf.wait(jam, lambda: jam.state == "streaming", 10, "JAM streaming again")
    jam_writes(2, "22.5")
    for d in (hub, mex):
        values = [v.get("value") for v in d.history(DF, key, period)]
        h.check("666.5" not in values, "%s: the intruder's value is in no "
                "version" % d.name, repr(values))


@cf.case
def test_key_changed_strikes_the_intruder(env):
    """key_changed is a strike (PROTOCOL.md §5.2: a peer, i.e. its key, with
    abuse_threshold strikes within a minute is backed off): it must count
    against the key that sent the message, not against the node whose
    session it landed on. With abuse_threshold = 2, two intrusions on JAM's
    dropped connection back off the intruder's key (XYZ), and JAM
    reconnects."""
    hub = rh.start_hub(rh.hub(env, "hub_b", no_sync=True, abuse_threshold=2))
    jam_sec, xyz_sec = jam_and_xyz(env, hub)
    jam = routed_node(env, hub, "JAM", jam_sec)
    cf.wait(jam, lambda: jam.state == "streaming", 10, "JAM streaming")
    off = hub.log_size()
    for i in (1, 2):
        jam.disconnect()
        imp = routed_node(env, hub, "JAM", xyz_sec, name="INTRUDER%d" % i,
                          auto_reconnect=False)
        code, reason = cf.goodbye_code(imp, 1, timeout=5, grace=2)
        h.eq(code, OBS_EAUTH, "intrusion %d: Goodbye -5 (%s)" % (i, reason))
        imp.close()
        jam.connect()
        if i == 1:
            cf.wait(jam, lambda: jam.state == "streaming", 10,
                    "JAM streaming again")
    hs = must(hub)
    h.eq(hs["backoffs"], 1, "one back-off started")
    try:
        jam.wait(lambda: jam.state == "streaming", 5, "JAM streaming")
        jam_ok = True
    except on.WaitTimeout:
        jam_ok = False
    hs = must(hub)
    cf.soft_check(env, jam_ok, "JAM, whose session the intruder hit, "
                  "reconnects (not backed off)",
                  "hub refused %r" % hs["refused"])
    back0 = refused(hs, "backoff")
    xyz = routed_node(env, hub, "XYZ", xyz_sec, auto_reconnect=False,
                      routing_suffix=b"\x00\x00\x00\x01")
    got = h.wait_until(lambda: xyz.welcomes or
                       refused(must(hub), "backoff") > back0, 5,
                       "XYZ's handshake answered or refused")
    cf.soft_check(env, got is True, "the intruder's key XYZ is backed off "
                  "(its next handshake refused: backoff)",
                  "XYZ got a Welcome" if got is not True else "")
    xyz_fp = fp(env.path("keys", "XYZ-XYZ", "XYZ.key"))
    lines = [l for l in hub.log_text(whole=True)[off:].splitlines()
             if "refused for" in l]
    cf.soft_check(env, any(xyz_fp in l for l in lines), "the hub logs the "
                  "back-off of XYZ's key %s" % xyz_fp,
                  "\n".join(lines) or "no back-off line in the hub's log")


def test_security_config(env):
    # no security line, no keys: curve by default, refused
    bare = env.daemon("hub_c0", role="hub", node_id="HUB", provider="OID",
                      repl_bind="tcp://127.0.0.1:%d" % rh.free_port())
    rc, text = bare.start_expect_exit()
    h.check(rc != 0 and "curve_secret_key" in text, "a hub with no security "
            "line and no key refuses to start naming curve_secret_key",
            "exit %d: %s" % (rc, text.strip()))
    h.log("       %s" % text.strip().splitlines()[-1])

    # plaintext: explicit, loud
    plain = rh.start_hub(rh.hub(env, "hub_c1", no_sync=True,
                                security="plaintext"))
    plain.wait_log(r"PLAINTEXT", 5, "the plaintext warning")
    h.eq(rh.need(sec_status(plain), "security")["security"], "plaintext",
         "status --json: security plaintext")
    r = plain.cli("status")
    OUTPUTS.append(("hub_c1 status", r.out + r.err))
    h.check("PLAINTEXT" in r.out, "status says PLAINTEXT", r.out)
    plain.stop()

    # a secret key file others can read: refused, file and mode named
    hub = rh.hub(env, "hub_c2", no_sync=True)
    col = rh.node(env, "col_c2", hub, node_id="COL", no_sync=True)
    for d in (hub, col):
        os.chmod(d.secret_key, 0o644)
        rc, text = d.start_expect_exit()
        h.check(rc != 0 and d.secret_key in text and "0644" in text,
                "%s: a secret key of mode 0644 is refused naming the file "
                "and the mode" % d.name, "exit %d: %s" % (rc, text.strip()))
        h.log("       %s" % text.strip().splitlines()[-1])
        os.chmod(d.secret_key, 0o600)
    rh.start_hub(hub)
    col.start()
    wait_streaming(col, 20)
    for d in (hub, col):
        must(d)
        r = d.cli("status")
        OUTPUTS.append(("%s status" % d.name, r.out + r.err))
        h.check(rh.cert_key(d.public_key) in r.out, "%s: status shows its "
                "public key" % d.name)
    r = hub.cli("reload")
    OUTPUTS.append(("hub_c2 reload", r.out + r.err))

    # no secret key text anywhere: every daemon log of this file, every
    # status and reload output, keygen's output
    secrets = []
    for root, _, files in os.walk(env.path("keys")):
        for f in files:
            if f.endswith("_secret"):
                p = os.path.join(root, f)
                secrets.append((p, rh.cert_key(p, "secret-key")))
    h.check(len(secrets) >= 2, "%d secret keys made in this file" %
            len(secrets))
    r = h.run([h.OBSYNC, "keygen", "LEAK", "--dir", env.path("keys")])
    OUTPUTS.append(("keygen", r.out + r.err))
    secrets.append(("LEAK", rh.cert_key(env.path("keys", "LEAK.key_secret"),
                                        "secret-key")))
    texts = [("%s's log" % d.name, d.log_text(whole=True))
             for d in env.daemons] + OUTPUTS
    leaks = ["%s in %s" % (p, where) for p, s in secrets
             for where, t in texts if s in t]
    h.check(not leaks, "no secret key in %d daemon logs and %d CLI outputs" %
            (len(env.daemons), len(OUTPUTS)), "; ".join(leaks[:5]))


if __name__ == "__main__":
    h.main([test_unknown_key_cannot_connect, test_key_removed,
            test_key_rotation, test_authority, test_takeover,
            test_same_routing_id, test_key_changed_strikes_the_intruder,
            test_security_config])
