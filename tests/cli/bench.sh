#!/bin/bash
# modes bench, kept small: the synthetic 30B-A3B shapes with one layer, and the tiny model folder
# with an image. Checks the JSON fields, the achieved ratios, and that the plot is written. Speed
# itself is not tested (benchmarks, not timed tests).
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
M=$SHARED/ref/qwen3vlmoe-tiny-a/model
IMG=${MODES_TESTS:-tests}/data/calib-tiny/red_square.png
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
ok() { if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $*" >&2; fi; }
field() { /usr/bin/python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

ok "$BIN" bench --synthetic qwen3-vl-30b-a3b --layers 1 --expert-gb 0.2 --prompt-tokens 64 --gen-tokens 2 -r 1 \
    --skip topk:1 --skip modes@0.5 -o "$TMP/s.json" --plot "$TMP/s.svg"
ok test "$(field "$TMP/s.json" "len(d['runs'])")" = "3"
ok test "$(field "$TMP/s.json" "d['runs'][0]['skip_ratio']")" = "0"
# topk:1 of 8: 7/8 of the slots of text and vision tokens; the prompt's special tokens keep theirs.
ok test "$(field "$TMP/s.json" "0.8 < d['runs'][1]['skip_ratio'] <= 0.875")" = "True"
ok test "$(field "$TMP/s.json" "abs(d['runs'][2]['skip_ratio'] - 0.5) < 0.05")" = "True"
ok test "$(field "$TMP/s.json" "d['runs'][1]['weight_bytes_per_decoded_token'] < d['runs'][0]['weight_bytes_per_decoded_token']")" = "True"
ok test "$(field "$TMP/s.json" "all(k in d['machine'] for k in ('read_bandwidth_gbs', 'peak_gflops_f32_fma', 'threads'))")" = "True"
ok test "$(field "$TMP/s.json" "all(r['read_bandwidth_sustained_gbs'] > 0 and r['bandwidth_fraction_sustained'] > 0 and r['bandwidth_fraction_paired'] > 0 for r in d['runs'])")" = "True"
ok grep -q "</svg>" "$TMP/s.svg"

ok "$BIN" bench -m "$M" --image "$IMG" --gen-tokens 2 -r 1 --skip topk:1 --json -o "$TMP/m.json"
ok test "$(field "$TMP/m.json" "d['runs'][1]['skip_ratio_vision']")" = "0.5"

"$BIN" bench --synthetic nope 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "unknown model" "$TMP/err"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
