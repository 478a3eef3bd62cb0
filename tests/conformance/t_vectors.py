#!/usr/bin/env python3
"""t_vectors.py - the content-hash test vectors and the golden frames, read
with Python's protobuf and the hash written here from the spec (obsnode.py).

1. proto/vectors/content_hash.json (decision 2): for every vector, the
   Observation built from its JSON serialises (deterministic) to exactly
   encoding_hex; encoding_hex parses and re-serialises to the same bytes
   and is canonical (attrs sorted, unique, non-empty; no unknown field);
   the hash input computed here from the layout (decision 1) is exactly
   hash_input_hex; SHA-256 of it is content_hash_hex, which is also the
   version's content_hash when the vector gives one. A hand-made vector
   (written below byte by byte from the layout) is checked the same way
   first, so the checks are known to work; a missing vector file fails.
2. proto/vectors/structure_hash.json: its hash is the SHA-256 of its text
   (decision 9), 64 lowercase hex digits.
3. tests/golden/frames/v1/*.bin: each parses as an Envelope, re-serialises
   (deterministic) to the same bytes, holds no field unknown to
   obsync.proto, and every change it carries (Publish, LogBatch,
   SnapshotChunk) is a canonical Observation. Content the spec constrains
   but a frozen frame may predate (a change's content_hash, a Hello's
   epoch formats, a StructureUpdate's hash) is reported as notes, not
   failures.
No daemon is started. Run by ctest as conformance.vectors."""

import glob
import hashlib
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import conformance as cf  # noqa: E402
from conformance import h, on  # noqa: E402

VECTORS = os.path.join(h.SOURCE_DIR, "proto", "vectors", "content_hash.json")
STRUCTURE_VECTOR = os.path.join(h.SOURCE_DIR, "proto", "vectors",
                                "structure_hash.json")
FRAMES = os.path.join(h.SOURCE_DIR, "tests", "golden", "frames", "v1")


def hx(s):
    return s.encode("utf-8").hex()


def hand_made_vector():
    """One vector written from the layout by hand: every length and tag is
    a literal here, not computed by the code under test."""
    hash_input = (
        "000000000000000e" + hx("obs-content-v1") +
        "0000000000000009" + hx("24.858995") +
        "00000002" +
        "000000000000000a" + hx("OBS_STATUS") +
        "0000000000000001" + hx("A") +
        "000000000000000c" + hx("UNIT_MEASURE") +
        "000000000000000e" + hx("PER_100000_POP") +
        "00")
    digest = hashlib.sha256(bytes.fromhex(hash_input)).hexdigest()
    version = ("0801" +                      # hlc = 1
               "1203" + hx("COL") +          # origin
               "1801" +                      # origin_seq = 1
               "2203" + hx("COL") +          # provider
               "4001" +                      # action = REPLACE
               "5220" + digest)              # content_hash
    encoding = ("0a14" + hx("OID:DF_VIOLENCE(1.0)") +
                "1201" + hx("A") + "1203" + hx("COL") +
                "120b" + hx("VC_IHR_PSRC") + "1202" + hx("_T") +
                "1202" + hx("_T") + "1202" + hx("_T") + "1204" + hx("HARM") +
                "1a04" + hx("2023") +
                "2209" + hx("24.858995") +
                "2a0f" + "0a0a" + hx("OBS_STATUS") + "1201" + hx("A") +
                "2a1e" + "0a0c" + hx("UNIT_MEASURE") + "120e" +
                hx("PER_100000_POP") +
                "3232" + version)
    return {
        "name": "hand-made: violence row, two attributes",
        "observation": {
            "dataflow": "OID:DF_VIOLENCE(1.0)",
            "dims": ["A", "COL", "VC_IHR_PSRC", "_T", "_T", "_T", "HARM"],
            "time_period": "2023", "value": "24.858995",
            "attrs": [["OBS_STATUS", "A"],
                      ["UNIT_MEASURE", "PER_100000_POP"]],
            "version": {"hlc": 1, "origin": "COL", "origin_seq": 1,
                        "provider": "COL", "action": "ACTION_REPLACE",
                        "content_hash": digest}},
        "encoding_hex": encoding,
        "hash_input_hex": hash_input,
        "content_hash_hex": digest}


def action_value(pb, a):
    if isinstance(a, int):
        return a
    s = str(a).upper()
    for name in (s, "ACTION_" + s):
        if name in pb.Action.keys():
            return pb.Action.Value(name)
    h.fail("unknown action %r in a vector" % a)


def build(pb, o):
    """The Observation a vector's JSON describes."""
    obs = pb.Observation()
    obs.dataflow = o.get("dataflow", "")
    obs.dims.extend(o.get("dims", []))
    obs.time_period = o.get("time_period", "")
    obs.value = o.get("value", "") or ""
    for aid, aval in o.get("attrs", []):
        a = obs.attrs.add()
        a.id = aid
        a.value = aval
    v = o.get("version")
    if v is not None:
        obs.version.SetInParent()
        for k, val in v.items():
            if k == "content_hash":
                obs.version.content_hash = bytes.fromhex(val)
            elif k == "action":
                obs.version.action = action_value(pb, val)
            elif not on.has_field(pb.Version, k):
                h.fail("vector version field %r is not in obsync.proto" % k)
            else:
                setattr(obs.version, k, val)
    return obs


def check_vector(pb, vec, problems):
    name = vec.get("name", "?")
    for f in ("observation", "encoding_hex", "hash_input_hex",
              "content_hash_hex"):
        if f not in vec:
            problems.append("%s: no %s" % (name, f))
            return
    obs = build(pb, vec["observation"])
    enc = obs.SerializeToString(deterministic=True)
    if enc.hex() != vec["encoding_hex"].lower():
        problems.append("%s: serialises to %s, vector says %s" %
                        (name, enc.hex(), vec["encoding_hex"]))
    _, probs = on.check_observation(pb, bytes.fromhex(vec["encoding_hex"]),
                                    name)
    problems.extend(p for p in probs if "content_hash" not in p)
    hin = on.obs_hash_input(obs)
    if hin.hex() != vec["hash_input_hex"].lower():
        problems.append("%s: hash input computed here %s, vector %s" %
                        (name, hin.hex(), vec["hash_input_hex"]))
    want = vec["content_hash_hex"].lower()
    got = hashlib.sha256(bytes.fromhex(vec["hash_input_hex"])).hexdigest()
    if got != want:
        problems.append("%s: sha256(hash_input_hex) = %s, vector says %s" %
                        (name, got, want))
    if on.content_hash(obs).hex() != want:
        problems.append("%s: content hash computed here %s, vector %s" %
                        (name, on.content_hash(obs).hex(), want))
    ch = vec["observation"].get("version", {}).get("content_hash")
    if ch is not None and ch.lower() != want:
        problems.append("%s: version.content_hash %s != content_hash_hex" %
                        (name, ch))
    if not problems:
        h.log("  ok   vector %r" % name)


def test_content_hash_vectors(env):
    pb = cf.pb(env)
    problems = []
    check_vector(pb, hand_made_vector(), problems)
    # the same with a tombstone and no attributes: the layout's edges
    tomb = hand_made_vector()
    if not problems:
        o = tomb["observation"]
        o["value"] = ""
        o["attrs"] = []
        hin = ("000000000000000e" + hx("obs-content-v1") +
               "0000000000000000" + "00000000" + "01")
        d = hashlib.sha256(bytes.fromhex(hin)).hexdigest()
        o["version"] = {"hlc": 2, "origin": "COL", "origin_seq": 2,
                        "provider": "COL", "action": 2, "tombstone": True,
                        "content_hash": d}
        tomb.update(name="hand-made: tombstone, no value, no attributes",
                    hash_input_hex=hin, content_hash_hex=d,
                    encoding_hex=(
                        "0a14" + hx("OID:DF_VIOLENCE(1.0)") +
                        "1201" + hx("A") + "1203" + hx("COL") +
                        "120b" + hx("VC_IHR_PSRC") + "1202" + hx("_T") +
                        "1202" + hx("_T") + "1202" + hx("_T") +
                        "1204" + hx("HARM") + "1a04" + hx("2023") +
                        "3234" + "0802" + "1203" + hx("COL") + "1802" +
                        "2203" + hx("COL") + "4002" + "5220" + d + "5801"))
        check_vector(pb, tomb, problems)
    if problems:
        h.fail("the hand-made vectors fail (the checks themselves are "
               "wrong):\n  " + "\n  ".join(problems))
    if not os.path.exists(VECTORS):
        h.fail("%s does not exist (decision 2: the C side's test vectors)" %
               VECTORS)
    with open(VECTORS) as f:
        vectors = json.load(f)
    h.check(isinstance(vectors, list) and vectors, "%s is a non-empty "
            "JSON list" % VECTORS)
    for vec in vectors:
        check_vector(pb, vec, problems)
    if problems:
        h.fail("%d problem(s) with %s:\n  %s" %
               (len(problems), VECTORS, "\n  ".join(problems)))
    h.log("  ok   all %d vectors of %s" % (len(vectors), VECTORS))


def test_structure_hash_vector(env):
    if not os.path.exists(STRUCTURE_VECTOR):
        h.fail("%s does not exist (PROTOCOL.md 5.3 \"The structure hash\")"
               % STRUCTURE_VECTOR)
    with open(STRUCTURE_VECTOR) as f:
        vec = json.load(f)
    h.check(isinstance(vec, dict) and "text" in vec and "hash" in vec,
            "%s holds text and hash" % STRUCTURE_VECTOR)
    h.check(on.HEX64.match(vec["hash"]), "its hash is 64 lowercase hex",
            vec["hash"])
    h.eq(hashlib.sha256(vec["text"].encode("utf-8")).hexdigest(),
         vec["hash"], "sha256 of the vector's text")


def test_golden_frames(env):
    pb = cf.pb(env)
    files = sorted(glob.glob(os.path.join(FRAMES, "*.bin")))
    h.check(files, "golden frames in %s" % FRAMES)
    bad, notes = [], []
    for path in files:
        name = os.path.basename(path)
        with open(path, "rb") as f:
            data = f.read()
        envl = pb.Envelope()
        try:
            envl.ParseFromString(data)
        except Exception as e:
            bad.append("%s does not parse: %s" % (name, e))
            continue
        again = envl.SerializeToString(deterministic=True)
        if again != data:
            bad.append("%s re-serialises to other bytes:\n    file %s\n    "
                       "again %s" % (name, data.hex(), again.hex()))
        if not on._unknown_fields_free(envl):
            bad.append("%s holds fields unknown to obsync.proto" % name)
        body = envl.WhichOneof("body")
        if body is None:
            bad.append("%s has no body" % name)
            continue
        m = getattr(envl, body)
        for i, c in enumerate(getattr(m, "changes", []) if body in (
                "publish", "log_batch", "snapshot_chunk") else []):
            _, probs = on.check_observation(pb, c, "%s change %d" % (name, i))
            for p in probs:
                (notes if "content_hash" in p else bad).append(p)
        if body == "hello":
            for f, rx in (("node_epoch", on.HEX32), ("hub_epoch", on.HEX32),
                          ("structure_hash", on.HEX64)):
                v = getattr(m, f)
                if v and not rx.match(v):
                    notes.append("%s: %s %r is not in the format decision 8 "
                                 "requires" % (name, f, v))
        if body == "structure_update":
            d = hashlib.sha256(m.text.encode("utf-8")).hexdigest()
            if m.hash != d:
                notes.append("%s: hash %s is not sha256(text) %s" %
                             (name, m.hash, d))
        if body == "welcome" and on.has_field(m, "peer_timeout_ms") and \
                m.peer_timeout_ms == 0:
            notes.append("%s: no peer_timeout_ms" % name)
        h.log("  ok   %s (%s, %d bytes) parses and re-serialises to the same "
              "bytes" % (name, body, len(data)))
    for n in notes:
        h.log("  note %s" % n)
    if bad:
        h.fail("%d golden frame problem(s):\n  %s" % (len(bad),
                                                     "\n  ".join(bad)))
    h.log("  ok   all %d golden frames" % len(files))


if __name__ == "__main__":
    h.main([test_content_hash_vectors, test_structure_hash_vector,
            test_golden_frames])
