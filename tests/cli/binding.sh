#!/bin/bash
# Policy binding on the embedded model: the shipped policies still load after config.json is merely
# reformatted (re-indented by Python's json), and a changed architecture field is refused with a
# message naming the field and both values.
set -u
BIN=${MODES_BIN:-build/modes}
SRC=$(realpath "${MODES_TESTS:-tests}/..")
M=$SRC/models/shapes-vqa
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"

copy() { # copy DIR PYTHON-EDIT: the model with config.json loaded, edited (c is the dict) and re-indented
    mkdir "$1"
    for f in "$M"/*; do [ "$(basename "$f")" = config.json ] || ln -s "$f" "$1/"; done
    /usr/bin/python3 -c "import json,sys; c=json.load(open(sys.argv[1])); $2; json.dump(c, open(sys.argv[2], 'w'), indent=4)" \
        "$M/config.json" "$1/config.json"
}
copy "$TMP/reformatted" "pass"
copy "$TMP/rope" "c['text_config']['rope_theta'] = 2e6"
ok test "$(cmp -s "$M/config.json" "$TMP/reformatted/config.json"; echo $?)" -ne 0
R=(-p "What is 2 plus 3?" -n 2)
for p in "$M"/policy-88.json "$SRC"/bench/embedded/results/alphas.json "$SRC"/bench/embedded/results/policies/*.json; do
    ok "$BIN" run -m "$TMP/reformatted" "${R[@]}" --policy "$p" >/dev/null
done
"$BIN" run -m "$TMP/rope" "${R[@]}" --policy "$M/policy-88.json" >/dev/null 2>"$TMP/err"
ok test $? -eq 1
ok grep -q "policy-88.json: made for a model with rope_theta=1000000, this model has 2000000" "$TMP/err"

ok_done
