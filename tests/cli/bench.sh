#!/bin/bash
# modes bench, kept small: the synthetic 30B-A3B shapes with one layer, the tiny model folder with an
# image, and the embedded model with policy files and nothing decoded. Checks the JSON fields, the
# achieved ratios, the labels (file names, never cut paths), what was not measured ("-", null, no
# decode panel), the plot's titles and legend (eval's plot too), --help on "ideal", and that progress
# shows on a terminal only. Speed itself is not tested (benchmarks, not timed tests).
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
M=$SHARED/ref/qwen3vlmoe-tiny-a/model
IMG=${MODES_TESTS:-tests}/data/calib-tiny/red_square.png
E=${MODES_TESTS:-tests}/../models/shapes-vqa
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"

ok "$BIN" bench --synthetic qwen3-vl-30b-a3b --layers 1 --expert-gb 0.2 --prompt-tokens 64 --gen-tokens 2 -r 1 \
    --skip topk:1 --skip modes@0.5 --skip topk:4 -o "$TMP/s.json" --plot "$TMP/s.svg" 2>"$TMP/s.err"
ok test ! -s "$TMP/s.err" # progress only on a terminal
ok test "$(field "$TMP/s.json" "len(d['runs'])")" = "4"
ok test "$(field "$TMP/s.json" "d['runs'][0]['skip_ratio']")" = "0"
# topk:1 of 8: 7/8 of the slots of text and vision tokens; the prompt's special tokens keep theirs.
ok test "$(field "$TMP/s.json" "0.8 < d['runs'][1]['skip_ratio'] <= 0.875")" = "True"
ok test "$(field "$TMP/s.json" "abs(d['runs'][2]['skip_ratio'] - 0.5) < 0.05")" = "True"
ok test "$(field "$TMP/s.json" "d['runs'][1]['weight_bytes_per_decoded_token'] < d['runs'][0]['weight_bytes_per_decoded_token']")" = "True"
ok test "$(field "$TMP/s.json" "all(k in d['machine'] for k in ('read_bandwidth_gbs', 'peak_gflops_f32_fma', 'threads'))")" = "True"
ok test "$(field "$TMP/s.json" "all(r['read_bandwidth_sustained_gbs'] > 0 and r['bandwidth_fraction_sustained'] > 0 and r['bandwidth_fraction_paired'] > 0 for r in d['runs'])")" = "True"
ok grep -q "</svg>" "$TMP/s.svg"
ok grep -q ">qwen3-vl-30b-a3b: speed-up vs skip ratio, prompt 64 tokens, 2 decoded, median of 1 repetition<" "$TMP/s.svg"
ok grep -q ">decode<" "$TMP/s.svg"
# one legend entry per method (topk:4 and topk:1 share one), each its own marker
ok test "$(grep -c ">topk<" "$TMP/s.svg")" = "1"
ok test "$(grep -c ">modes@R<" "$TMP/s.svg")" = "1"
ok grep -q "class='m0'" "$TMP/s.svg"
ok grep -q "class='m1'" "$TMP/s.svg"
ok grep -q ">ideal<" "$TMP/s.svg"

ok "$BIN" bench -m "$M" --image "$IMG" --gen-tokens 2 -r 1 --skip topk:1 --json -o "$TMP/m.json"
ok test "$(field "$TMP/m.json" "d['runs'][1]['skip_ratio_vision']")" = "0.5"

# Policy files are labelled by name; two of the same name by their folders as well. Nothing decoded:
# the decode columns are "-" in the table and null in JSON, and the plot has no decode panel. Run on
# a terminal where there is one (script), the progress line shows.
mkdir -p "$TMP/a" "$TMP/b"
cp "$E/policy-88.json" "$TMP/a/policy-88.json"
cp "$E/policy-88.json" "$TMP/b/policy-88.json"
cp "$E/policy-88.json" "$TMP/policy-75.json"
cmd="'$BIN' bench -m '$E' --prompt-tokens 16 --gen-tokens 0 -r 1 --policy '$TMP/a/policy-88.json' \
    --policy '$TMP/b/policy-88.json' --policy '$TMP/policy-75.json' --skip topk:1 -o '$TMP/g.json' \
    --plot '$TMP/g.svg' >'$TMP/g.txt'"
if command -v script >/dev/null; then
    script -qec "$cmd" /dev/null >"$TMP/tty.txt"
    ok test $? -eq 0
    ok grep -q "repetition 1/1" "$TMP/tty.txt"
else
    ok bash -c "$cmd"
fi
ok test "$(field "$TMP/g.json" "[r['skip'] for r in d['runs']]")" = "['none', 'a/policy-88', 'b/policy-88', 'policy-75', 'topk:1']"
ok test "$(field "$TMP/g.json" "d['runs'][3]['policy'].endswith('/policy-75.json')")" = "True"
ok test "$(field "$TMP/g.json" "all(r[k] is None for r in d['runs'] for k in ('decode_tokens_per_s', 'decode_speedup', 'ideal_decode_speedup', 'bandwidth_fraction_paired'))")" = "True"
ok test "$(field "$TMP/g.json" "all(r['prefill_tokens_per_s'] > 0 and r['ideal_prefill_speedup'] > 0 for r in d['runs'])")" = "True"
ok grep -Eq "^b/policy-88 +[0-9.]+ +- " "$TMP/g.txt"
ok grep -q ">shapes-vqa: speed-up vs skip ratio, prompt 16 tokens, 0 decoded, median of 1 repetition<" "$TMP/g.svg"
ok grep -q ">a/policy-88<" "$TMP/g.svg"
ok grep -q ">prefill<" "$TMP/g.svg"
ok test "$(grep -c ">decode<" "$TMP/g.svg")" = "0"

"$BIN" bench --help >"$TMP/help.txt"
ok grep -q "ideal: the speed-up if time were proportional" "$TMP/help.txt"

# eval's plot names the model and the number of examples
ok "$BIN" eval -m "$E" --bench "$E/data/test.jsonl" --limit 3 -n 2 --skip topk:1 --plot "$TMP/e.svg" -o "$TMP/e.json"
ok grep -q ">shapes-vqa: accuracy vs skip ratio, 3 examples<" "$TMP/e.svg"

"$BIN" bench --synthetic nope 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "unknown model" "$TMP/err"
ok_done
