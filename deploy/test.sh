#!/usr/bin/env bash
# The whole test suite, as CI runs it: dependencies, format check, the dev
# build (gcc, -Werror) with every test (unit, component, layering, fuzz
# replays, integration), every fuzz target under libFuzzer (ASan + UBSan)
# for OBSYNC_FUZZ_SECONDS each (default 12, 0 skips), clang-tidy, the
# threaded module's tests under ThreadSanitizer, then the asan build (clang,
# ASan + UBSan) with every test. The last thing printed is ctest's summary.
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

# Every tests/fuzz/fuzz_X.c runs under libFuzzer for fuzz_secs, $jobs at a
# time, from its committed corpus (tests/fuzz/corpus/X, only read). What it
# finds goes to build/fuzz/corpus/X, never the source tree. A crash, leak,
# timeout or OOM fails the run with the reproducer's path; to keep it, copy
# it into tests/fuzz/corpus/X once fixed.
fuzz_secs=${OBSYNC_FUZZ_SECONDS:-12}
if [ "$fuzz_secs" -gt 0 ]; then
    echo "== fuzz (libFuzzer, ASan + UBSan, ${fuzz_secs} s per target)"
    fuzz_names=() fuzz_targets=()
    for f in tests/fuzz/fuzz_*.c; do
        n=${f##*/fuzz_}
        fuzz_names+=("${n%.c}")
        fuzz_targets+=("fuzz_${n%.c}")
    done
    cmake --preset fuzz -DOBSYNC_WERROR=ON >/dev/null
    cmake --build build/fuzz -j"$jobs" --target "${fuzz_targets[@]}" >/dev/null
    fuzz_one() { # name seconds: one line, or the failure and its reproducer
        local n=$1 out=build/fuzz/runs/$1 seeds=() msg
        rm -rf "$out"
        mkdir -p "$out/artifacts" "build/fuzz/corpus/$n"
        [ -d "tests/fuzz/corpus/$n" ] && seeds=("tests/fuzz/corpus/$n")
        if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            "build/fuzz/tests/fuzz_$n" -max_total_time="$2" -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$out/artifacts/" \
            "build/fuzz/corpus/$n" "${seeds[@]}" >"$out/log" 2>&1; then
            printf 'fuzz_%s: %s, build corpus %s\n' "$n" \
                "$(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$out/log")" \
                "$(find "build/fuzz/corpus/$n" -type f | wc -l)"
            return 0
        fi
        msg=$(tail -n 40 "$out/log")
        for a in "$out"/artifacts/*; do
            [ -e "$a" ] && msg+=$(printf '\nreproducer: %s (replay: %s %s)' \
                "$a" "build/fuzz/tests/fuzz_$n" "$a")
        done
        printf '%s\nfuzz_%s: FAILED (log: %s)\n' "$msg" "$n" "$out/log"
        return 1
    }
    export -f fuzz_one
    # shellcheck disable=SC2016 # $1 and $2 are fuzz_one's, in the child
    if ! printf '%s\n' "${fuzz_names[@]}" |
        xargs -P"$jobs" -I{} bash -c 'fuzz_one "$1" "$2"' _ {} "$fuzz_secs"; then
        echo "fuzz: failed; reproducers:"
        find build/fuzz/runs -path '*/artifacts/*' -type f
        exit 1
    fi
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
