#!/usr/bin/env bash
# scripts/check.sh (`make check`) ends with one line of totals and fails when any phase fails. The
# phases are played by a stand-in make (CHECK_MAKE) printing what ctest and fuzz-smoke print, so the
# real suite is not run again from inside itself.
set -u
root=$(cd "${MODES_TESTS:-tests}/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}
targets=$(find "$root/tests/fuzz" -maxdepth 1 -name 'fuzz_*.c' | wc -l)

# FAKE_TEST / FAKE_ASAN: "FAILED TOTAL" for ctest's line, or "build" for a build that stops first;
# FAKE_FUZZ: how many targets pass (the rest print FAIL). Each call is logged to $tmp/calls.
cat >"$tmp/make" <<'SH'
#!/usr/bin/env bash
echo "$1" >>"$FAKE_CALLS"
ctest_like() {
    if [ "$1" = build ]; then echo "ninja: build stopped: subcommand failed."; exit 2; fi
    set -- $1
    echo "$(( ($2 - $1) * 100 / $2 ))% tests passed, $1 tests failed out of $2"
    echo "Total Test time (real) = 1.00 sec"
    [ "$1" -eq 0 ] || exit 2
}
case $1 in
test) ctest_like "$FAKE_TEST" ;;
asan) ctest_like "$FAKE_ASAN" ;;
fuzz-smoke)
    i=0
    for f in "$FAKE_ROOT"/tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        if [ $i -lt "$FAKE_FUZZ" ]; then printf 'fuzz %-16s ok   %9s runs  %6s/s\n' "${t#fuzz_}" 100 10
        else printf 'fuzz %-16s FAIL (log below)\n' "${t#fuzz_}"; fi
        i=$((i + 1))
    done
    echo "fuzz smoke: 3 s"
    [ "$FAKE_FUZZ" -eq "$(ls "$FAKE_ROOT"/tests/fuzz/fuzz_*.c | wc -l)" ] ;;
esac
SH
chmod +x "$tmp/make"

run_check() { # TEST ASAN FUZZ -> status in $rc, last line in $last, phases run in $calls
    : >"$tmp/calls"
    FAKE_CALLS=$tmp/calls FAKE_ROOT=$root FAKE_TEST=$1 FAKE_ASAN=$2 FAKE_FUZZ=$3 CHECK_MAKE=$tmp/make \
        "$root/scripts/check.sh" >"$tmp/out" 2>&1
    rc=$?
    last=$(tail -n 1 "$tmp/out")
    calls=$(tr '\n' ' ' <"$tmp/calls")
}

run_check "0 36" "0 36" "$targets"
[ $rc -eq 0 ] && [ "$last" = "check: $((72 + targets)) passed, 0 failed (release 36/36, asan 36/36, fuzz $targets/$targets targets)" ] &&
    [ "$calls" = "test asan fuzz-smoke " ]
check "all pass: exit 0, totals last ($last)" $?

run_check "2 36" "0 36" "$targets"
[ $rc -ne 0 ] && [ "$last" = "check: 34 passed, 2 failed (release 34/36, asan not run, fuzz not run)" ] && [ "$calls" = "test " ]
check "release failures: exit non-zero, later phases not run ($last)" $?

run_check "0 36" "1 36" "$targets"
[ $rc -ne 0 ] && [ "$last" = "check: 71 passed, 1 failed (release 36/36, asan 35/36, fuzz not run)" ]
check "asan failure: exit non-zero ($last)" $?

run_check "0 36" "0 36" 1
[ $rc -ne 0 ] && [ "$last" = "check: 73 passed, $((targets - 1)) failed (release 36/36, asan 36/36, fuzz 1/$targets targets)" ]
check "fuzz target failures: exit non-zero ($last)" $?

run_check build "0 36" "$targets"
[ $rc -ne 0 ] && [ "$last" = "check: 0 passed, 1 failed (release stopped before its tests ran (exit 2), asan not run, fuzz not run)" ]
check "a build that stops: exit non-zero, says so ($last)" $?

# make check goes through scripts/check.sh (CI's .ci/run calls make check).
grep -qE '^check:' "$root/Makefile" && grep -A2 -E '^check:' "$root/Makefile" | grep -q 'scripts/check.sh'
check "make check runs scripts/check.sh" $?
exit $fail
