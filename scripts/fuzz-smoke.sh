#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz, clang + ASan + UBSan) in build-fuzz/ and fuzzes each for
# a short while, starting from its seed corpus and its committed crash reproducers. A crash, a
# sanitizer report, a leak, a timeout or an out-of-memory stops the run with status 1; the input
# that did it is left in build-fuzz/fuzz-artifacts/TARGET/ (commit it to tests/fuzz/regressions/TARGET/
# once fixed). Part of `make check`.
#
#   scripts/fuzz-smoke.sh [TARGET...]      (default: every tests/fuzz/fuzz_*.c)
#   FUZZ_SECONDS=15   seconds per target        FUZZ_BUILD=build-fuzz   build folder
#   FUZZ_CC=clang     the compiler              FUZZ_JOBS=$(nproc)      build jobs
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-15}
BUILD=${FUZZ_BUILD:-build-fuzz}
CC_FUZZ=${FUZZ_CC:-clang}
JOBS=${FUZZ_JOBS:-$(nproc)}

if ! command -v "$CC_FUZZ" >/dev/null 2>&1; then
    echo "fuzz-smoke: $CC_FUZZ not found (scripts/install-deps.sh installs clang and libclang-rt-14-dev)" >&2
    exit 1
fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_BUILD_TYPE=Release -DMODES_FUZZ=ON \
    -DMODES_SHARED_DIR="$(pwd)/../shared" >/dev/null
cmake --build "$BUILD" --target fuzz -j "$JOBS"

if [ $# -gt 0 ]; then
    TARGETS="$*"
else
    TARGETS=$(cd tests/fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//')
fi

# Longest input each target is given: enough for its seeds and a bit more, small enough to stay fast.
max_len() {
    case $1 in
    tokenizer_load) echo 20000 ;;
    image) echo 8192 ;;
    tokenizer | chat | st_index | policy) echo 2048 ;;
    *) echo 4096 ;;
    esac
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
status=0
total_start=$(date +%s)
for t in $TARGETS; do
    bin="$BUILD/fuzz/fuzz_$t"
    seeds="tests/fuzz/corpus/$t"
    [ -x "$bin" ] || { echo "fuzz-smoke: no target $bin" >&2; exit 1; }
    art="$BUILD/fuzz-artifacts/$t"
    mkdir -p "$WORK/$t" "$art"
    set -- "$WORK/$t" "$seeds"
    [ -d "tests/fuzz/regressions/$t" ] && set -- "$@" "tests/fuzz/regressions/$t"
    # New inputs go to the first folder (a scratch copy); seeds and reproducers are only read.
    if "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len "$t")" \
        -print_final_stats=1 -artifact_prefix="$art/" "$@" >"$WORK/$t.log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$WORK/$t.log")
        printf 'fuzz %-16s ok   %9s runs  %6s/s\n' "$t" "$runs" "$rate"
    else
        printf 'fuzz %-16s FAIL (log below; reproducer in %s)\n' "$t" "$art" >&2
        tail -n 60 "$WORK/$t.log" >&2
        status=1
    fi
done
echo "fuzz smoke: $(($(date +%s) - total_start)) s"
exit $status
