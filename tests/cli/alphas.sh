#!/bin/bash
# One flag, one meaning: --alphas FILE gives the layer importances (an alphas file from calibrate, or
# any policy file) in run, eval and search alike; --policy FILE applies a complete policy. A spec that
# needs importances without --alphas is refused naming --alphas, and search's old --policy points there.
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
M=$SHARED/ref/qwen3vlmoe-tiny-a/model
D=${MODES_TESTS:-tests}/data/calib-tiny/calib.jsonl
IMG=$(dirname "$D")/red_square.png
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"
refused() { # refused NEEDLE COMMAND...: exit 1, one line on stderr holding NEEDLE
    local needle=$1
    shift
    "$@" >/dev/null 2>"$TMP/err"
    local rc=$?
    ok test "$rc" -eq 1
    ok test "$(wc -l <"$TMP/err")" -eq 1
    ok grep -qF -- "$needle" "$TMP/err"
}

ok "$BIN" calibrate -m "$M" --data "$D" -o "$TMP/a.json"
# search takes --alphas, from the alphas file or from a policy holding the same alphas
S="--target 0.4 --grid 12 --cap-text 1 --cap-vision 1"
ok "$BIN" search -m "$M" --data "$D" --alphas "$TMP/a.json" $S -o "$TMP/p.json"
ok "$BIN" search -m "$M" --data "$D" --alphas "$TMP/p.json" $S -o "$TMP/q.json"
ok test "$(field "$TMP/p.json" "d['tau']")" = "$(field "$TMP/q.json" "d['tau']")"
refused "--alphas" "$BIN" search -m "$M" --data "$D" --policy "$TMP/a.json" $S -o "$TMP/x.json"
refused "--alphas FILE" "$BIN" search -m "$M" --data "$D" $S -o "$TMP/x.json"
ok test ! -e "$TMP/x.json"

# run: the same spec with the same importances gives the same answer and skip ratios from either file
SPEC=modes:0.05,0.05
R=(-m "$M" -p "What colour is the square?" --image "$IMG" -n 4 --json)
ok "$BIN" run "${R[@]}" --skip $SPEC --alphas "$TMP/a.json"
"$BIN" run "${R[@]}" --skip $SPEC --alphas "$TMP/a.json" >"$TMP/ra.json" 2>/dev/null
"$BIN" run "${R[@]}" --skip $SPEC --alphas "$TMP/p.json" >"$TMP/rp.json" 2>/dev/null
"$BIN" run "${R[@]}" >"$TMP/r0.json" 2>/dev/null
ok test "$(field "$TMP/ra.json" "d['skip_ratio']")" = "$(field "$TMP/rp.json" "d['skip_ratio']")"
ok test "$(field "$TMP/ra.json" "d['skip_ratio'] > 0")" = "True"
ok test "$(field "$TMP/ra.json" "d['ids']")" = "$(field "$TMP/rp.json" "d['ids']")"
refused "--alphas" "$BIN" run "${R[@]}" --skip $SPEC
refused "--alphas" "$BIN" run "${R[@]}" --skip gmlg-threshold:0.05
refused "--alphas" "$BIN" run "${R[@]}" --alphas "$TMP/a.json"
ok "$BIN" run "${R[@]}" --policy "$TMP/p.json"

# eval: the same meaning, on the same examples
E=(-m "$M" --bench "$D" --limit 2 -n 2 --json)
ok "$BIN" eval "${E[@]}" --skip $SPEC --alphas "$TMP/a.json" -o "$TMP/ea.json"
ok "$BIN" eval "${E[@]}" --skip $SPEC --alphas "$TMP/p.json" -o "$TMP/ep.json"
ok test "$(field "$TMP/ea.json" "d['runs'][1]['skip_ratio']")" = "$(field "$TMP/ep.json" "d['runs'][1]['skip_ratio']")"
ok test "$(field "$TMP/ea.json" "d['runs'][1]['skip_ratio'] > 0")" = "True"
refused "--alphas" "$BIN" eval "${E[@]}" --skip $SPEC -o "$TMP/x.json"
ok test ! -e "$TMP/x.json"

# chat: --alphas serves the /skip specs of the conversation as well
printf '/skip %s\nWhat colour is the square?\n/stats\n' "$SPEC" | "$BIN" chat -m "$M" -n 2 --alphas "$TMP/a.json" >"$TMP/chat.out" 2>&1
ok test $? -eq 0
ok grep -q "skipped: prefill" "$TMP/chat.out"
printf '/skip %s\nhi\n' "$SPEC" | "$BIN" chat -m "$M" -n 2 >"$TMP/chat.out" 2>&1
ok grep -q -- "--alphas" "$TMP/chat.out"

ok_done
