#!/bin/bash
# `make check`: the test suite on the release build, the same suite under ASan + UBSan, then the fuzz
# smoke run, each only after the one before has passed (a later phase is "not run"). Their output
# goes by as usual; the last line is the totals, e.g.
#   check: 84 passed, 0 failed (release 36/36, asan 36/36, fuzz 12/12 targets)
# and the exit status is 1 when anything failed or did not run.
#   CHECK_MAKE (default $MAKE or make) runs the phases: `$CHECK_MAKE test|asan|fuzz-smoke`.
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE_CMD=${CHECK_MAKE:-${MAKE:-make}}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

passed=0
failed=0
parts=()
ok=1

# Runs one make target with its output shown and kept in $log; its exit status is returned.
run_phase() {
    $MAKE_CMD "$1" 2>&1 | tee "$log"
    return "${PIPESTATUS[0]}"
}

# A ctest phase: counts from ctest's "N% tests passed, F tests failed out of T" line.
ctest_phase() { # NAME TARGET
    if [ $ok -eq 0 ]; then
        parts+=("$1 not run")
        return
    fi
    run_phase "$2"
    local rc=$? line total bad
    line=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        parts+=("$1 stopped before its tests ran (exit $rc)")
        failed=$((failed + 1))
        ok=0
        return
    fi
    total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$line")
    bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
    passed=$((passed + total - bad))
    failed=$((failed + bad))
    parts+=("$1 $((total - bad))/$total")
    [ "$rc" -eq 0 ] && [ "$bad" -eq 0 ] || ok=0
}

# The fuzz phase: one "fuzz NAME ok" line per target that passed; a target without one failed.
fuzz_phase() {
    local total
    total=$(find tests/fuzz -maxdepth 1 -name 'fuzz_*.c' | wc -l)
    if [ $ok -eq 0 ]; then
        parts+=("fuzz not run")
        return
    fi
    run_phase fuzz-smoke
    local rc=$? good
    good=$(grep -cE '^fuzz [^ ]+ +ok ' "$log")
    passed=$((passed + good))
    failed=$((failed + total - good))
    parts+=("fuzz $good/$total targets")
    [ "$rc" -eq 0 ] && [ "$good" -eq "$total" ] || ok=0
}

ctest_phase release test
ctest_phase asan asan
fuzz_phase
summary=$(IFS=,; echo "${parts[*]}")
echo "check: $passed passed, $failed failed (${summary//,/, })"
[ $ok -eq 1 ]
