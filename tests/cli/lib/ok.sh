# Sourced by CLI tests that count their checks: TMP, a folder removed at exit; ok COMMAND... runs a
# check, counting a pass or printing FAIL; field FILE EXPR prints EXPR of the JSON in FILE (d);
# ok_done prints the totals and is the test's exit status.
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*" >&2; fi; }
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
ok_done() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
