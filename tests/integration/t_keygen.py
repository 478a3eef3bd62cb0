#!/usr/bin/env python3
"""t_keygen.py - `obsync keygen NAME` writes a CURVE key pair that obsyncd
can use: DIR/NAME.key mode 0644 and DIR/NAME.key_secret mode 0600 whatever
the caller's umask (000, 022, 077) and even when --force replaces a secret
that was left readable; both are ZPL (ZeroMQ's certificate format) with a
40-character Z85 curve/public-key, the secret one also a curve/secret-key,
and metadata node_id, provider (default NAME) and created_by; --hub writes
role = hub and no provider. The secret key never appears on stdout or
stderr (text or --json); the public key printed is the file's. An existing
pair is not overwritten without --force (exit 2, files unchanged), a bad
NAME or provider is refused with the id grammar in the message (exit 2, no
file written), a missing directory is exit 5 naming the path, and no
temporary file is left behind. No daemon is needed. Run by ctest as
integration.keygen."""

import json
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as h  # noqa: E402

Z85 = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
          ".-:+=^!/*?&<>()[]{}@%$#")


def keygen(*args, umask=None):
    """`obsync [--json] keygen ARGS`; --json first when given first."""
    args = list(args)
    glob = [args.pop(0)] if args and args[0] == "--json" else []
    argv = [h.OBSYNC] + glob + ["keygen"] + args
    if umask is not None:
        argv = ["sh", "-c", 'umask %s && exec "$@"' % umask, "sh"] + argv
    return h.run(argv, timeout=30)


def parse_zpl(text, what):
    """ZPL as zconfig reads it: '#' comment lines, 4 spaces per level,
    `name` or `name = "value"`. Returns {"a/b": value}; fails on any other
    line."""
    out, stack = {}, []
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        if indent % 4 or indent // 4 > len(stack):
            h.fail("%s:%d: bad indentation: %r" % (what, no, line))
        stack = stack[:indent // 4]
        name, eq, value = body.partition("=")
        name = name.strip()
        if not name or not all(c.isalnum() or c in "$-_@.&+/" for c in name):
            h.fail("%s:%d: bad name: %r" % (what, no, line))
        stack.append(name)
        if eq:
            value = value.strip()
            if len(value) < 2 or value[0] != '"' or value[-1] != '"':
                h.fail("%s:%d: value not quoted: %r" % (what, no, line))
            out["/".join(stack)] = value[1:-1]
    return out


def read(path):
    with open(path) as f:
        return f.read()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def fresh_dir(env, name):
    d = env.path(name)
    os.makedirs(d)
    return d


def check_pair(d, name, res, provider=None, hub=False):
    """The pair NAME in d, as the run res made it: modes, ZPL, keys,
    metadata, nothing secret printed. Returns (public, secret) key text."""
    pub = os.path.join(d, name + ".key")
    sec = pub + "_secret"
    h.check(os.path.isfile(pub) and os.path.isfile(sec),
            "%s: both files written" % name, res.describe())
    h.eq(oct(mode(pub)), oct(0o644), "%s: public file mode" % name)
    h.eq(oct(mode(sec)), oct(0o600), "%s: secret file mode" % name)
    p, s = parse_zpl(read(pub), pub), parse_zpl(read(sec), sec)
    key = p.get("curve/public-key", "")
    h.check(len(key) == 40 and set(key) <= Z85,
            "%s: curve/public-key is 40 Z85 characters" % name, repr(key))
    h.check("curve/secret-key" not in p,
            "%s: no secret key in the public file" % name)
    secret = s.get("curve/secret-key", "")
    h.check(len(secret) == 40 and set(secret) <= Z85 and secret != key,
            "%s: the secret file has its own 40-character secret key" % name)
    h.eq(s.get("curve/public-key"), key, "%s: both halves, one public key"
         % name)
    h.eq(p.get("metadata/node_id"), name, "%s: metadata/node_id" % name)
    h.eq(p.get("metadata/provider"), None if hub else (provider or name),
         "%s: metadata/provider" % name)
    h.eq(p.get("metadata/role"), "hub" if hub else None,
         "%s: metadata/role" % name)
    h.eq(p.get("metadata/created_by"), "obsync keygen",
         "%s: metadata/created_by" % name)
    h.check(secret not in res.out and secret not in res.err,
            "%s: the secret key is not printed" % name)
    h.check(key in res.out, "%s: the public key is printed" % name, res.out)
    h.check(pub in res.out and sec in res.out,
            "%s: both paths are printed" % name, res.out)
    left = [f for f in os.listdir(d) if f.startswith(".")]
    h.eq(left, [], "%s: no temporary file left in the directory" % name)
    return key, secret


def test_node_pair(env):
    d = fresh_dir(env, "node")
    r = keygen("COL", "--dir", d)
    h.eq(r.rc, h.EXIT_OK, "keygen COL exits 0")
    check_pair(d, "COL", r)
    r = keygen("JAM_2", "--provider", "OID-x", "--dir", d)
    h.eq(r.rc, h.EXIT_OK, "keygen JAM_2 --provider OID-x exits 0")
    check_pair(d, "JAM_2", r, provider="OID-x")
    long_name = "N" * 63
    r = keygen(long_name, "--dir", d)
    h.eq(r.rc, h.EXIT_OK, "a NAME of 63 characters is accepted")
    check_pair(d, long_name, r)


def test_hub_pair(env):
    d = fresh_dir(env, "hub")
    r = keygen("HUB", "--hub", "--dir", d)
    h.eq(r.rc, h.EXIT_OK, "keygen HUB --hub exits 0")
    check_pair(d, "HUB", r, hub=True)
    r = keygen("HUB2", "--hub", "--provider", "OID", "--dir", d)
    h.eq(r.rc, h.EXIT_USAGE, "--hub with --provider is a usage error")
    h.check(not os.path.exists(os.path.join(d, "HUB2.key")),
            "nothing written for it")


def test_modes_whatever_umask(env):
    for um in ("000", "022", "077"):
        d = fresh_dir(env, "umask" + um)
        r = keygen("COL", "--dir", d, umask=um)
        h.eq(r.rc, h.EXIT_OK, "keygen under umask %s exits 0" % um)
        check_pair(d, "COL", r)


def test_json_output(env):
    d = fresh_dir(env, "json")
    r = keygen("--json", "MEX", "--provider", "OID", "--dir", d)
    h.eq(r.rc, h.EXIT_OK, "obsync --json keygen exits 0")
    key, secret = check_pair(d, "MEX", r, provider="OID")
    j = r.json()
    h.eq((j.get("node_id"), j.get("provider"), j.get("role")),
         ("MEX", "OID", "node"), "--json: node_id, provider, role")
    h.eq(j.get("public_key"), key, "--json: public_key is the file's")
    h.eq((j.get("public_file"), j.get("secret_file")),
         (os.path.join(d, "MEX.key"), os.path.join(d, "MEX.key_secret")),
         "--json: public_file, secret_file")
    h.check(secret not in r.out, "--json: no secret key in the output")


def test_no_overwrite_without_force(env):
    d = fresh_dir(env, "force")
    r = keygen("COL", "--dir", d)
    h.eq(r.rc, h.EXIT_OK, "first keygen COL exits 0")
    pub, sec = os.path.join(d, "COL.key"), os.path.join(d, "COL.key_secret")
    before = (read(pub), read(sec))
    r = keygen("COL", "--dir", d)
    h.eq(r.rc, h.EXIT_USAGE, "keygen COL again exits 2")
    h.check(pub in r.err and "exists" in r.err and "--force" in r.err,
            "the message names the file and --force", r.err)
    h.log("       message: %s" % r.err.strip())
    h.eq((read(pub), read(sec)), before, "both files unchanged")
    os.unlink(pub)
    r = keygen("COL", "--dir", d)
    h.eq(r.rc, h.EXIT_USAGE, "a secret half alone also stops it")
    h.check(sec in r.err, "the message names the secret file", r.err)
    h.eq(read(sec), before[1], "the secret file unchanged")
    os.chmod(sec, 0o644)  # a secret someone left readable
    r = keygen("COL", "--dir", d, "--force")
    h.eq(r.rc, h.EXIT_OK, "--force replaces the pair")
    key, secret = check_pair(d, "COL", r)
    h.check(secret not in before[1], "a new key pair was written")


def test_bad_names_refused(env):
    d = fresh_dir(env, "bad")
    cases = [("NAME", ["a b"]), ("NAME", ["COL/../x"]), ("NAME", ["N" * 64]),
             ("NAME", ["col.key"]), ("NAME", [""]),
             ("--provider", ["COL", "--provider", "O I D"]),
             ("--provider", ["COL", "--provider", "P" * 64])]
    for what, args in cases:
        r = keygen(*(args + ["--dir", d]))
        h.eq(r.rc, h.EXIT_USAGE, "%s %r refused with exit 2" % (what, args))
        bad = args[-1]
        h.check(("'%s'" % bad) in r.err and "letters, digits" in r.err and
                what in r.err,
                "the message names the %s and the grammar" % what, r.err)
    h.log("       message: %s" % r.err.strip())
    h.eq(os.listdir(d), [], "no file written")
    r = keygen("--dir", d)
    h.eq(r.rc, h.EXIT_USAGE, "keygen without NAME exits 2")
    h.check("NAME" in r.err, "the message says NAME is missing", r.err)
    r = keygen("COL", "--frobnicate", "--dir", d)
    h.eq(r.rc, h.EXIT_USAGE, "an unknown option exits 2")


def test_missing_dir(env):
    d = env.path("no", "such", "dir")
    r = keygen("COL", "--dir", d)
    h.eq(r.rc, h.EXIT_INPUT, "keygen into a missing directory exits 5")
    h.check(os.path.join(d, "COL.key") in r.err and "cannot write" in r.err,
            "the message names the path", r.err)
    h.log("       message: %s" % r.err.strip())


if __name__ == "__main__":
    h.main([test_node_pair, test_hub_pair, test_modes_whatever_umask,
            test_json_output, test_no_overwrite_without_force,
            test_bad_names_refused, test_missing_dir])
