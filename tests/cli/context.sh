#!/bin/bash
# The context's limits through the CLI, on the embedded model (models/shapes-vqa, 4096 positions):
# - bench refuses a prompt and generation longer than the model's context before any pass (it once
#   wrote past the KV cache: ASan reported a heap-buffer-overflow, at 4097 tokens nothing did).
set -u
BIN=${MODES_BIN:-build/modes}
M=${MODES_TESTS:-tests}/../models/shapes-vqa
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*" >&2; fi; }

# expect_refused NEEDLE COMMAND...: exit 1, one line on stderr naming the problem, nothing on stdout.
expect_refused() {
    local needle=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -eq 1 ] && [ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -qF -- "$needle" "$TMP/err" && [ ! -s "$TMP/out" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL (rc=$rc, want '$needle'): $*" >&2
        cat "$TMP/err" >&2
    fi
}

expect_refused "do not fit in the model's context of 4096 tokens" "$BIN" bench -m "$M" --prompt-tokens 5000 -r 1
expect_refused "do not fit in the model's context of 4096 tokens" "$BIN" bench -m "$M" --prompt-tokens 4097 --gen-tokens 0 -r 1
expect_refused "do not fit in the model's context of 4096 tokens" "$BIN" bench -m "$M" --prompt-tokens 4090 --gen-tokens 7 -r 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
