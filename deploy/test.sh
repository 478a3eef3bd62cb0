#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format check, the dev
# build (gcc, -Werror) with every test (unit, component, layering, fuzz
# replays, integration), clang-tidy, the threaded module's tests under
# ThreadSanitizer, then the asan build (clang, ASan + UBSan) with every
# test. The last thing printed is ctest's summary.
# OBSYNC_CI_SLOW=1 adds a libFuzzer smoke run of every fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
jobs=$(nproc)

echo "== clang-format check"
git ls-files '*.c' '*.h' | xargs clang-format --dry-run -Werror

echo "== dev build (gcc, -Werror)"
cmake --preset dev -DOBSYNC_WERROR=ON >/dev/null
cmake --build build/dev -j"$jobs"
(cd build/dev && ctest --output-on-failure -j"$jobs") > build/dev-ctest.log 2>&1 || {
    cat build/dev-ctest.log; exit 1; }
tail -n 3 build/dev-ctest.log

if [ "${OBSYNC_CI_SLOW:-0}" = 1 ]; then
    echo "== fuzz smoke (libFuzzer, 30 s per target)"
    cmake --preset fuzz >/dev/null
    cmake --build build/fuzz -j"$jobs"
    for f in build/fuzz/tests/fuzz_*; do
        n=$(basename "$f" | sed 's/^fuzz_//')
        mkdir -p "build/fuzz/corpus/$n"
        "$f" -max_total_time=30 "build/fuzz/corpus/$n" "tests/fuzz/corpus/$n"
    done
fi

echo "== clang-tidy (.clang-tidy: STYLE.md §2.11)"
git ls-files 'daemon/*.c' 'proto/*.c' 'client/*.c' |
    xargs -P"$jobs" -n8 clang-tidy -p build/dev --quiet > build/tidy.log 2>&1 || {
    grep -E 'warning:|error:' build/tidy.log | head -50; exit 1; }
echo "clang-tidy: no findings"

# Only the hub's checking thread (hub_prep) shares memory between threads;
# its unit test runs under TSan (the daemons' other thread is libzmq's,
# which is not instrumented here).
echo "== tsan build (clang, ThreadSanitizer): unit.hub_prep"
cmake --preset tsan -DOBSYNC_WERROR=ON >/dev/null
cmake --build build/tsan -j"$jobs" --target test_hub_prep
(cd build/tsan && TSAN_OPTIONS=halt_on_error=1 ctest --output-on-failure \
    -R '^unit\.hub_prep$') > build/tsan-ctest.log 2>&1 || {
    cat build/tsan-ctest.log; exit 1; }
tail -n 3 build/tsan-ctest.log

echo "== asan build (clang, ASan + UBSan)"
cmake --preset asan -DOBSYNC_WERROR=ON >/dev/null
cmake --build build/asan -j"$jobs"
cd build/asan
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
# The sanitizer run hunts memory errors, not volume: the dev run above
# already moved the full 100,000-change loads through every daemon.
export OBSYNC_REPL_ROWS=${OBSYNC_REPL_ROWS:-20000}
export OBSYNC_KILL9_ROWS=${OBSYNC_KILL9_ROWS:-40000}
export OBSYNC_SANITIZED=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Without the tests that move a daemon's clock with libfaketime (label
# faketime: it hangs at an ASan binary's start) and those whose time is a
# slow line's (label slowlink): the dev run above ran them.
ctest --output-on-failure -j"$jobs" -LE "faketime|slowlink"
