#!/usr/bin/env python3
"""t_config.py - obsyncd refuses bad configuration files: `obsyncd -c F -n`
exits 1 with "FILE:LINE: key: reason" for an unknown key, a bad role, a
missing node_id, a bad size, a duplicate key, a binary file and a nonexistent
file; every deploy/conf/*.conf sample passes -n; and a store made by node COL
is refused when reopened as node MEX. Run by ctest as integration.config."""

import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

GOOD = ["role = node", "node_id = COL", "provider = COL",
        "data_dir = {d}/data", "log_level = info", "map_size = 64M"]


def write_conf(env, name, lines):
    p = env.path(name + ".conf")
    with open(p, "w") as f:
        f.write("\n".join(l.format(d=env.tmp) for l in lines) + "\n")
    return p


def expect_refused(env, name, lines, key, line_no, reason_words=()):
    """-n on the file exits 1 and names FILE:LINE: key (line_no None: the
    line is not required, e.g. a missing key)."""
    path = write_conf(env, name, lines) if lines is not None else env.path(
        name + ".conf")
    r = h.run([h.OBSYNCD, "-c", path, "-n"], timeout=30)
    h.eq(r.rc, 1, "%s: obsyncd -n exits 1" % name)
    if line_no is not None:
        want = "%s:%d: %s:" % (path, line_no, key)
        h.check(want in r.err, "%s: message names %r" % (name, want), r.err)
    else:
        h.check(path in r.err and key in r.err,
                "%s: message names the file and %r" % (name, key), r.err)
    for w in reason_words:
        h.check(w.lower() in r.err.lower(), "%s: message says %r" % (name, w),
                r.err)
    h.log("       message: %s" % r.err.strip())
    return r


def test_good_config_passes(env):
    path = write_conf(env, "good", GOOD)
    r = h.run([h.OBSYNCD, "-c", path, "-n"], timeout=30)
    h.eq(r.rc, 0, "a good configuration passes -n")
    h.check(not os.path.exists(env.path("data")),
            "-n does not create the data dir")


def test_unknown_key_refused(env):
    expect_refused(env, "unknown", GOOD[:3] + ["frobnicate = yes"] + GOOD[3:],
                   "frobnicate", 4, ["unknown"])


def test_bad_role_refused(env):
    expect_refused(env, "badrole", ["role = queen"] + GOOD[1:], "role", 1)


def test_missing_node_id_refused(env):
    lines = [l for l in GOOD if not l.startswith("node_id")]
    expect_refused(env, "noid", lines, "node_id", None, ["missing"])


def test_bad_size_refused(env):
    lines = [l for l in GOOD if not l.startswith("map_size")]
    expect_refused(env, "badsize", lines + ["map_size = 12Q"], "map_size",
                   len(lines) + 1)


def test_size_out_of_range_refused(env):
    lines = [l for l in GOOD if not l.startswith("map_size")]
    expect_refused(env, "smallmap", lines + ["map_size = 1K"], "map_size",
                   len(lines) + 1)


def test_duplicate_key_refused(env):
    expect_refused(env, "dup", GOOD + ["node_id = MEX"], "node_id",
                   len(GOOD) + 1)


def test_bad_node_id_refused(env):
    lines = ["node_id = C O/L" if l.startswith("node_id") else l
             for l in GOOD]
    expect_refused(env, "badid", lines, "node_id", 2)


def test_binary_file_refused(env):
    p = env.path("binary.conf")
    with open(p, "wb") as f:
        f.write(bytes(env.rng.randrange(256) for _ in range(4096)) +
                b"\0role = node\n\0\0")
    r = h.run([h.OBSYNCD, "-c", p, "-n"], timeout=30)
    h.eq(r.rc, 1, "binary file: obsyncd -n exits 1")
    h.check(p in r.err, "binary file: message names the file", r.err)
    h.log("       message: %s" % r.err.strip()[:300])


def test_nonexistent_file_refused(env):
    p = env.path("no", "such.conf")
    r = h.run([h.OBSYNCD, "-c", p, "-n"], timeout=30)
    h.eq(r.rc, 1, "nonexistent file: obsyncd -n exits 1")
    h.check(p in r.err, "nonexistent file: message names the path", r.err)
    h.log("       message: %s" % r.err.strip())


def test_deploy_samples_pass(env):
    confs = sorted(glob.glob(os.path.join(h.SOURCE_DIR, "deploy", "conf",
                                          "*.conf")))
    h.check(confs, "deploy/conf has sample configurations (%d)" % len(confs),
            os.path.join(h.SOURCE_DIR, "deploy", "conf"))
    for c in confs:
        r = h.run([h.OBSYNCD, "-c", c, "-n"], timeout=30)
        h.check(r.rc == 0, "deploy sample %s passes -n" % os.path.basename(c),
                r.err)


def test_store_of_other_node_refused(env):
    d = env.daemon("col", node_id="COL", provider="COL", no_sync=True)
    d.start()
    st = d.status()
    h.eq(st.get("node_id"), "COL", "status names node COL")
    d.stop()
    d.write_config(node_id="MEX", provider="MEX")
    rc, text = d.start_expect_exit()
    h.check(rc != 0, "reopening COL's store as MEX exits non-zero (%d)" % rc)
    h.check(re.search(r"\bCOL\b", text) and re.search(r"\bMEX\b", text),
            "the message names both node ids", text)
    h.log("       log: %s" % text.strip().splitlines()[-1])
    d.write_config(node_id="COL", provider="COL")
    d.start()
    h.eq(d.status().get("node_id"), "COL", "store reopens as COL afterwards")
    d.stop()


if __name__ == "__main__":
    h.main([test_good_config_passes, test_unknown_key_refused,
            test_bad_role_refused, test_missing_node_id_refused,
            test_bad_size_refused, test_size_out_of_range_refused,
            test_duplicate_key_refused, test_bad_node_id_refused,
            test_binary_file_refused, test_nonexistent_file_refused,
            test_deploy_samples_pass, test_store_of_other_node_refused])
