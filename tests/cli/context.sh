#!/bin/bash
# The context's limits through the CLI, on the embedded model (models/shapes-vqa, 4096 positions):
# - bench refuses a prompt and generation longer than the model's context before any pass (it once
#   wrote past the KV cache: ASan reported a heap-buffer-overflow, at 4097 tokens nothing did);
# - run stops cleanly when the context is full (exit 0, a note on stderr, "stop_reason": "context"
#   with --json) where it used to fail with exit 1 and, with --json, print nothing;
# - run -c/--ctx-size sets the context; one that cannot hold the prompt, or above the model's, is refused.
set -u
BIN=${MODES_BIN:-build/modes}
M=${MODES_TESTS:-tests}/../models/shapes-vqa
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"

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

STORY="Tell me a long story about a dragon."
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
# -n far beyond a 32-token context, at a temperature that rarely picks the end of the turn: each seed
# ends at the context's end or at a stop id, never in an error; most at the context's end.
reached=0
for seed in 1 2 3 4; do
    "$BIN" run -m "$M" -p "$STORY" -n 100000 -c 32 --temp 8 --seed $seed --json >"$TMP/r$seed.json" 2>"$TMP/r$seed.err"
    ok test $? -eq 0
    ok test "$(field "$TMP/r$seed.json" "d['n_ctx']")" = "32"
    why=$(field "$TMP/r$seed.json" "d['stop_reason']")
    if [ "$why" = context ]; then
        reached=$((reached + 1))
        ok test "$(field "$TMP/r$seed.json" "d['prompt_tokens'] + d['new_tokens']")" = "32"
        ok grep -q "stopped: context full (32 tokens)" "$TMP/r$seed.err"
    else
        ok test "$why" = eos
    fi
done
ok test "$reached" -gt 0
# The long form, and the text output: the answer on stdout, the note on stderr.
"$BIN" run --model "$M" -p "$STORY" --n-predict 100000 --ctx-size=32 --temp 8 --seed 2 >"$TMP/out" 2>"$TMP/err"
ok test $? -eq 0
ok test -s "$TMP/out"
# -n within the context: the answer ends at -n or at a stop id.
"$BIN" run -m "$M" -p "$STORY" -n 2 --temp 8 --seed 1 --json >"$TMP/n2.json"
ok test $? -eq 0
ok test "$(field "$TMP/n2.json" "d['stop_reason'] == ('length' if d['new_tokens'] == 2 else 'eos')")" = "True"
ok test "$(field "$TMP/n2.json" "d['n_ctx'] == d['prompt_tokens'] + 2")" = "True"
"$BIN" run -m "$M" -p "$STORY" -c 0 -n 1 --json >"$TMP/c0.json"
ok test "$(field "$TMP/c0.json" "d['n_ctx']")" = "4096"

expect_refused "-c 5 cannot hold the prompt of" "$BIN" run -m "$M" -p "$STORY" -c 5
expect_refused "-c 5000 is more than the model's context of 4096 tokens" "$BIN" run -m "$M" -p "$STORY" -c 5000

ok_done
