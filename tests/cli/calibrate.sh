#!/bin/bash
# calibrate -> search -> run on the tiny golden model and tests/data/calib-tiny:
# the policy files are valid and deterministic, the frontier answer equals the exhaustive one,
# the frozen-routing search agrees, the achieved ratio meets the target, an unreachable target
# fails cleanly, and the policy drives `run`.
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
M=$SHARED/ref/qwen3vlmoe-tiny-a/model
D=${MODES_TESTS:-tests}/data/calib-tiny/calib.jsonl
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"

ok "$BIN" calibrate -m "$M" --data "$D" -o "$TMP/a.json"
ok "$BIN" calibrate -m "$M" --data "$D" -o "$TMP/b.json"
ok cmp -s "$TMP/a.json" "$TMP/b.json"
ok test "$(field "$TMP/a.json" "round(sum(d['alpha']['text']), 5)")" = "1.0"
ok test "$(field "$TMP/a.json" "d['calibration']['examples']")" = "6"

S="--alphas $TMP/a.json --target 0.4 --grid 12 --cap-text 1 --cap-vision 1"
ok "$BIN" search -m "$M" --data "$D" $S -o "$TMP/f.json"
ok "$BIN" search -m "$M" --data "$D" $S --exhaustive -o "$TMP/e.json"
ok "$BIN" search -m "$M" --data "$D" $S --frozen -o "$TMP/z.json"
ok test "$(field "$TMP/f.json" "d['tau']")" = "$(field "$TMP/e.json" "d['tau']")"
ok test "$(field "$TMP/f.json" "d['tau']")" = "$(field "$TMP/z.json" "d['tau']")"
ok test "$(field "$TMP/f.json" "d['achieved']['skip'] >= 0.4")" = "True"
ok test "$(field "$TMP/f.json" "d['search']['real_passes'] <= 3 * 12 + 1")" = "True"
ok test "$(field "$TMP/e.json" "d['search']['real_passes']")" = "145"
for m in threshold naee dmt; do
    ok "$BIN" search -m "$M" --data "$D" $S --method $m -o "$TMP/$m.json"
    ok test "$(field "$TMP/$m.json" "d['method'] == '$m' and d['achieved']['skip'] >= 0.4")" = "True"
done

"$BIN" search -m "$M" --data "$D" --alphas "$TMP/a.json" --target 0.99 -o "$TMP/x.json" 2>"$TMP/err"
ok test $? -eq 1
ok grep -q unreachable "$TMP/err"
ok test ! -e "$TMP/x.json"

ok "$BIN" run -m "$M" -p "What colour is the square?" --image "$(dirname "$D")/red_square.png" --policy "$TMP/f.json" -n 4 --json
"$BIN" run -m "$M" -p "What colour is the square?" --image "$(dirname "$D")/red_square.png" --policy "$TMP/f.json" -n 4 --json >"$TMP/run.json"
ok test "$(field "$TMP/run.json" "d['skip_ratio_vision'] > 0")" = "True"

ok_done
