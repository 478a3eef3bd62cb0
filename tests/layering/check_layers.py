#!/usr/bin/env python3
"""The layering of STYLE.md §2.1 and README "Layout", checked on the sources.

Every C file's #include lines are read and held against the floors: a file
may include the headers of its own floor and of the floors below it, never
above, and the foreign headers only where they belong (lmdb.h in the store's
store.c, zmq.h nowhere in the store, the model or the state machine,
protobuf-c's headers only in proto/). The client never includes a daemon
header, and no generated protobuf identifier appears outside proto/. The
CMake targets link the same floors; this test is what fails in review when
a file reaches across anyway.

Usage: check_layers.py [SOURCE_DIR]. Exit 0 clean, 1 with one line per
violation: FILE:LINE: what. check_layers.py --self-test plants one violation
of each kind in a scratch tree and fails unless every one is reported.
"""
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

# floor -> the floors it may include (itself included)
FLOORS = {
    'proto': {'proto'},
    'daemon/model': {'proto', 'daemon/model'},
    'daemon/store': {'proto', 'daemon/model', 'daemon/store'},
    'daemon/repl/fsm': {'daemon/repl/fsm'},
    'daemon/runtime': {'proto', 'daemon/runtime'},
    'daemon/repl': {'proto', 'daemon/model', 'daemon/store', 'daemon/repl/fsm',
                    'daemon/runtime', 'daemon/repl'},
    'daemon/api': {'proto', 'daemon/model', 'daemon/store', 'daemon/repl/fsm',
                   'daemon/runtime', 'daemon/repl', 'daemon/api'},
    'daemon': {'proto', 'daemon/model', 'daemon/store', 'daemon/repl/fsm',
               'daemon/runtime', 'daemon/repl', 'daemon/api', 'daemon'},
    'client': {'proto', 'client'},
}
# foreign headers -> the floors (or single files) that may include them
FOREIGN = [
    (re.compile(r'^lmdb\.h$'), {'daemon/store/store.c'}),
    (re.compile(r'^(zmq|czmq)\.h$'), {'daemon/runtime', 'daemon/repl',
                                     'daemon/api', 'daemon', 'client'}),
    (re.compile(r'(^|/)[^/]*\.pb-c\.h$|^protobuf-c/'), {'proto'}),
    (re.compile(r'^pthread\.h$'), {'daemon/repl/hub/hub_prep.c'}),
]
GENERATED = re.compile(r'\b(Obsync__V1__|obsync__v1__|OBSYNC__V1__)\w*')
# Tests of the codec's own internals may name the generated types.
GENERATED_OK = {'tests/unit/test_codec.c', 'tests/fuzz/fuzz_codec.c'}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def floor_of(rel):
    """The floor a source file belongs to: its longest matching folder."""
    best = None
    for f in FLOORS:
        if rel.startswith(f + '/') and (best is None or len(f) > len(best)):
            best = f
    if best == 'daemon/repl' and rel.startswith('daemon/repl/fsm/'):
        best = 'daemon/repl/fsm'
    return best


def sources(top):
    for d, _, files in os.walk(os.path.join(ROOT, top)):
        for n in sorted(files):
            if n.endswith(('.c', '.h')):
                yield os.path.relpath(os.path.join(d, n), ROOT)


def header_index():
    """Our header names -> the floor that defines each."""
    idx = {}
    for top in ('proto', 'daemon', 'client'):
        for rel in sources(top):
            if rel.endswith('.h'):
                idx.setdefault(os.path.basename(rel), floor_of(rel))
    return idx


def allowed_foreign(rel, floor, allow):
    """allow names floors, or single files."""
    return rel in allow or floor in allow


def check():
    """Every violation under ROOT, as FILE:LINE: what."""
    headers = header_index()
    bad = []
    for top in ('proto', 'daemon', 'client'):
        for rel in sources(top):
            floor = floor_of(rel)
            if floor is None:
                bad.append(f'{rel}:1: in no floor (add its folder to FLOORS)')
                continue
            with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
                lines = f.read().split('\n')
            for no, line in enumerate(lines, 1):
                m = INCLUDE.match(line)
                if m:
                    name = m.group(2)
                    for pat, allow in FOREIGN:
                        if pat.search(name) and not allowed_foreign(
                                rel, floor, allow):
                            bad.append(f'{rel}:{no}: includes <{name}>, '
                                       f'allowed only in {sorted(allow)}')
                    owner = headers.get(os.path.basename(name))
                    if m.group(1) == '"' and owner is not None and \
                            owner not in FLOORS[floor]:
                        bad.append(f'{rel}:{no}: includes "{name}" of '
                                   f'{owner}, above or beside {floor}')
                g = GENERATED.search(line)
                if g and floor != 'proto':
                    bad.append(f'{rel}:{no}: generated protobuf name '
                               f'{g.group(0)} outside proto/')
    for rel in sources('tests'):
        if rel in GENERATED_OK:
            continue
        with open(os.path.join(ROOT, rel), encoding='utf-8') as f:
            for no, line in enumerate(f, 1):
                g = GENERATED.search(line)
                if g:
                    bad.append(f'{rel}:{no}: generated protobuf name '
                               f'{g.group(0)} outside proto/')
    return bad


PLANTED = {
    'daemon/model/m.c': '#include "s.h"\n#include <zmq.h>\n',
    'daemon/model/m.h': '',
    'daemon/store/s.h': '',
    'daemon/store/obsdb.c': '#include <lmdb.h>\n#include "l.h"\n',
    'daemon/store/store.c': '#include <lmdb.h>\n',
    'daemon/runtime/l.h': '',
    'daemon/repl/fsm/f.c': '#include "m.h"\n',
    'daemon/api/a.c': '#include "obsync.pb-c.h"\nObsync__V1__Hello h;\n',
    'client/lib/c.c': '#include "m.h"\n',
    'proto/p.c': '#include "obsync.pb-c.h"\n',
}
EXPECTED = [
    'daemon/model/m.c:1: includes "s.h"', 'daemon/model/m.c:2: includes <zmq.h>',
    'daemon/store/obsdb.c:1: includes <lmdb.h>',
    'daemon/store/obsdb.c:2: includes "l.h"', 'daemon/repl/fsm/f.c:1: includes "m.h"',
    'daemon/api/a.c:1: includes <obsync.pb-c.h>',
    'daemon/api/a.c:2: generated protobuf name', 'client/lib/c.c:1: includes "m.h"',
]


def self_test():
    import tempfile
    global ROOT
    with tempfile.TemporaryDirectory() as tmp:
        for rel, text in PLANTED.items():
            os.makedirs(os.path.dirname(os.path.join(tmp, rel)), exist_ok=True)
            with open(os.path.join(tmp, rel), 'w', encoding='utf-8') as f:
                f.write(text)
        os.makedirs(os.path.join(tmp, 'tests'))
        ROOT = tmp
        bad = check()
    missed = [e for e in EXPECTED if not any(b.startswith(e) for b in bad)]
    extra = [b for b in bad if not any(b.startswith(e) for e in EXPECTED)]
    for m in missed:
        print('self-test: not reported:', m)
    for x in extra:
        print('self-test: reported wrongly:', x)
    print(f'layering self-test: {len(missed)} missed, {len(extra)} wrong')
    return 1 if missed or extra else 0


def main():
    global ROOT
    if sys.argv[1:] == ['--self-test']:
        return self_test()
    if sys.argv[1:]:
        ROOT = os.path.abspath(sys.argv[1])
    bad = check()
    for b in bad:
        print(b)
    print(f'layering: {len(bad)} violation(s)')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
