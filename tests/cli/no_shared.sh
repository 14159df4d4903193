#!/usr/bin/env bash
# Without the reference data (../shared, or $MODES_SHARED), every test that reads it says where it
# looked and fails cleanly: exit 1, no crash, no silent exit. The tests are found by what they use
# (shared_path in C, MODES_SHARED in fuzz targets, lib/shared.sh in shell), so a new one is covered too.
set -u
tests=${MODES_TESTS:-tests}
build=${MODES_BUILD:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
nowhere=$tmp/nowhere
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
expect_clean_failure() { # NAME COMMAND...
    local name=$1
    shift
    MODES_SHARED=$nowhere "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    local rc=$?
    [ $rc -eq 1 ] && grep -qxF "shared/ not found (looked in $nowhere)" "$tmp/err"
    local s=$?
    [ $s -eq 0 ] || { echo "  exit $rc, stderr:"; head -n 5 "$tmp/err"; }
    check "$name without shared/: exit 1 and says where it looked" $s
}

n=0
for src in $(grep -l 'shared_path(' "$tests"/test_*.c); do
    name=$(basename "$src" .c)
    expect_clean_failure "$name" "$build/tests/$name"
    n=$((n + 1))
done
# Fuzz targets replay their seeds as tests; those that read shared/ fail the same way.
for src in $(grep -l 'MODES_SHARED' "$tests"/fuzz/fuzz_*.c); do
    name=$(basename "$src" .c)
    seed=$(find "$tests/fuzz/corpus/${name#fuzz_}" -type f | head -n 1)
    expect_clean_failure "$name" "$build/fuzz/$name" "$seed"
    n=$((n + 1))
done
for script in $(grep -l 'lib/shared.sh' "$tests"/cli/*.sh); do
    [ "$script" -ef "${BASH_SOURCE[0]}" ] && continue
    expect_clean_failure "cli/$(basename "$script")" bash "$script"
    n=$((n + 1))
done
# a script that reads the reference data without lib/shared.sh would fail unclearly without it
unguarded=$(grep -l 'ref/' "$tests"/cli/*.sh | xargs grep -L 'lib/shared.sh' | tr '\n' ' ')
[ -z "$unguarded" ]
check "every CLI test reading ref/ sources lib/shared.sh${unguarded:+ (not: $unguarded)}" $?
grep -q 'shared_path(' "$tests/test_golden.c" && grep -q 'shared_path(' "$tests/test_model.c" && [ $n -ge 10 ]
check "$n tests checked, test_golden and test_model among them" $?
exit $fail
