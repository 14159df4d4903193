#!/bin/bash
# calibrate, search and eval check their outputs and every example before the first pass over the
# data: all unusable examples (missing image, corrupt image, not an image, text over the context)
# are reported at once as FILE:LINE: example ID: why, with exit 1 and no output file; an unwritable
# output is refused before the model is even loaded; eval --skip-bad evaluates the rest and says
# in its results what it left out. Data are built here from tests/data/calib-tiny and the embedded
# model's own data.
set -u
BIN=${MODES_BIN:-build/modes}
TESTS=${MODES_TESTS:-tests}
M=$TESTS/../models/shapes-vqa
C=$TESTS/data/calib-tiny
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"
# Nothing but the named files in the folder: no output, no temporary left behind.
only() { test "$(cd "$1" && ls -A | sort | tr '\n' ' ')" = "$2"; }

D=$TMP/data
mkdir "$D"
cp "$C"/calib.jsonl "$C"/*.png "$D"/
head -c 100 "$C/red_square.png" >"$D/truncated.png"
echo "not a picture" >"$D/text.png"
# Good examples on lines 1-2, 4-6 and 8; bad ones on 3, 7, 9, 10 and 11 (the last one has no id).
/usr/bin/python3 - "$D" <<'EOF'
import json, sys
d = sys.argv[1]
good = open(d + "/calib.jsonl").read().splitlines()
ex = lambda **k: json.dumps(k)
lines = good[:2] + [ex(id="missing", image="nowhere.png", question="What colour?", answer="red")] + good[2:5] + \
    [ex(id="truncated", image=["red_square.png", "truncated.png"], question="Which?", answer="first")] + good[5:] + \
    [ex(id="text", image="text.png", question="What colour?", answer="red"),
     ex(id="long-question", question="word " * 5000, answer="x"),
     ex(question="What is 1 plus 1?", answer="2 " * 4100)]
open(d + "/bad.jsonl", "w").write("\n".join(lines) + "\n")
EOF
BAD=$D/bad.jsonl
"$BIN" calibrate -m "$M" --data "$D/calib.jsonl" -o "$TMP/alphas.json"
ok test $? -eq 0
mkdir "$TMP/out"

reports_all() { # the stderr file lists every bad example, then the count
    grep -q "^$BAD:3: example missing: .*nowhere.png" "$1" &&
        grep -q "^$BAD:7: example truncated: .*truncated.png: corrupt PNG" "$1" &&
        grep -q "^$BAD:9: example text: .*text.png: not a PNG" "$1" &&
        grep -q "^$BAD:10: example long-question: .*more than the model" "$1" &&
        grep -q "^$BAD:11: example #11: the prompt and answer take .* tokens, more than the model's context" "$1" &&
        grep -q "5 of 11 examples of $BAD cannot be used" "$1" && test "$(grep -c "^$BAD:" "$1")" = 5
}
"$BIN" calibrate -m "$M" --data "$BAD" -o "$TMP/out/a.json" 2>"$TMP/err"
ok test $? -eq 1
ok reports_all "$TMP/err"
"$BIN" search -m "$M" --data "$BAD" --alphas "$TMP/alphas.json" --target 0.5 -o "$TMP/out/s.json" 2>"$TMP/err"
ok test $? -eq 1
ok reports_all "$TMP/err"
"$BIN" eval -m "$M" --bench "$BAD" -o "$TMP/out/e.json" --plot "$TMP/out/e.svg" 2>"$TMP/err"
ok test $? -eq 1
ok reports_all "$TMP/err"
ok grep -q -- "--skip-bad" "$TMP/err"
ok only "$TMP/out" ""
# eval also needs room for its new tokens.
"$BIN" eval -m "$M" --bench "$C/calib.jsonl" -n 4090 -o "$TMP/out/e.json" 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "example c4: the prompt's .* tokens and 4090 new tokens do not fit" "$TMP/err"
ok only "$TMP/out" ""

# --skip-bad: the good examples are evaluated and written; the results say what was left out.
"$BIN" eval -m "$M" --bench "$BAD" --skip topk:4 -o "$TMP/out/e.json" --plot "$TMP/out/e.svg" --skip-bad \
    >"$TMP/table" 2>"$TMP/err"
ok test $? -eq 0
ok grep -q "warning: skipping 5 of 11 examples" "$TMP/err"
ok only "$TMP/out" "e.json e.svg "
ok test "$(field "$TMP/out/e.json" "[r['examples'] for r in d['runs']]")" = "[6, 6]"
ok test "$(field "$TMP/out/e.json" "[r['id'] for r in d['records']]")" = \
    "['c1', 'c2', 'c3', 'c4', 'c5', 'c6']"
ok test "$(field "$TMP/out/e.json" "d['skipped'], [(s['line'], s['id']) for s in d['skipped_examples']]")" = \
    "(5, [(3, 'missing'), (7, 'truncated'), (9, 'text'), (10, 'long-question'), (11, None)])"
ok grep -q "5 unusable examples were left out" "$TMP/table"
"$BIN" eval -m "$M" --bench "$BAD" --skip-bad --json >"$TMP/e.json" 2>/dev/null
ok test "$(field "$TMP/e.json" "d['skipped']")" = 5
# Nothing usable is still an error.
/usr/bin/python3 -c "import sys; print(''.join(l for l in open(sys.argv[1]) if 'nowhere' in l or 'text.png' in l), end='')" \
    "$BAD" >"$D/all-bad.jsonl"
"$BIN" eval -m "$M" --bench "$D/all-bad.jsonl" --skip-bad -o "$TMP/out/x.json" 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "none of the 2 examples" "$TMP/err"
ok test ! -e "$TMP/out/x.json"

# Outputs that cannot be written are refused first: before the model is loaded (a missing model
# folder is not what is reported), and on a long calibration set before any pass (4096 examples
# would take minutes).
for cmd in calibrate search eval; do
    case $cmd in
    calibrate) args=(--data "$D/calib.jsonl" -o "$TMP/no/such/dir/x.json") ;;
    search) args=(--data "$D/calib.jsonl" --alphas "$TMP/alphas.json" --target 0.5 -o "$TMP/no/such/dir/x.json") ;;
    eval) args=(--bench "$D/calib.jsonl" -o "$TMP/out/ok.json" --plot "$TMP/no/such/dir/x.svg") ;;
    esac
    "$BIN" $cmd -m "$TMP/no-model" "${args[@]}" 2>"$TMP/err"
    ok test $? -eq 1
    ok grep -q "modes $cmd: $TMP/no/such/dir/x.*: cannot create" "$TMP/err"
done
"$BIN" eval -m "$M" --bench "$D/calib.jsonl" -o "$TMP/out" 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "$TMP/out: is a folder" "$TMP/err"
for i in 1 2 3 4; do cat "$M/data/calib.jsonl"; done | sed "s#\"images/#\"$(cd "$M/data" && pwd)/images/#" >"$D/big.jsonl"
ok test "$(wc -l <"$D/big.jsonl")" -ge 4000
timeout 60 "$BIN" calibrate -m "$M" --data "$D/big.jsonl" -o "$TMP/no/such/dir/x.json" 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "cannot create" "$TMP/err"
ok only "$TMP/out" "e.json e.svg "

ok_done
