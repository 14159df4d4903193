#!/bin/bash
# Short runs of the real commands on the tiny test model under valgrind (memcheck): no invalid read
# or write, no use of uninitialised memory, no definite or indirect leak. Skipped, with a message,
# for sanitizer builds (ASan and valgrind do not run together); those are checked by ASan instead.
set -u
BIN=${MODES_BIN:-build/modes}
BUILD=${MODES_BUILD:-$(dirname "$BIN")}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
REF=$SHARED/ref/qwen3vlmoe-tiny-a
TESTS=${MODES_TESTS:-tests}
if grep -qE '^MODES_(SANITIZE|FUZZ):BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
    echo "valgrind: skipped for a sanitizer build ($BUILD)"
    exit 0
fi
if ! command -v valgrind >/dev/null; then
    echo "valgrind: not installed (scripts/install-deps.sh installs it)" >&2
    exit 1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
IMG=$TESTS/data/calib-tiny/red_square.png

vg() { # vg LABEL COMMAND...: the command must succeed with a clean valgrind report
    local label=$1
    shift
    if valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
        --show-leak-kinds=definite,indirect "$@" >"$TMP/out" 2>"$TMP/err" <"${IN:-/dev/null}"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL (valgrind, $label): $*" >&2
        head -c 4000 "$TMP/err" >&2
    fi
}

vg "run, text" "$BIN" run -m "$REF/model" -p "What is a mixture of experts?" -n 4 -t 2
vg "run, image, stats" "$BIN" run -m "$REF/model" -p "What colour is the square?" --image "$IMG" -n 3 -t 2 --stats --json \
    --skip topk:1
vg "forward" "$BIN" forward -m "$REF/model" --input "$REF/text.safetensors" -o "$TMP/fwd.safetensors" -t 2
vg "preprocess" "$BIN" preprocess -m "$REF" --image "$REF/image_64x96.png" -o "$TMP/pre.safetensors"
printf '{"text": "Hello <|im_start|>caf\\u00e9 \\ud83d\\ude00"}\n' >"$TMP/in.jsonl"
IN=$TMP/in.jsonl vg "tokenize" "$BIN" tokenize -m "$REF/model"
# A failing command releases what it loaded too.
printf '{"model": {"type": "BPE", "vocab": {"a": 0}}, "pre_tokenizer": {"type": "Split"}}' >"$TMP/tokenizer.json"
IN=$TMP/in.jsonl valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    "$BIN" tokenize -m "$TMP/tokenizer.json" >/dev/null 2>"$TMP/err" <"$TMP/in.jsonl"
if [ $? -eq 1 ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL (valgrind, failing tokenize)" >&2; cat "$TMP/err" >&2; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
