#!/bin/bash
# Bad input through the CLI: every case must exit 1 with exactly one line on stderr that names the
# file or option at fault, and must not leave an output file behind.
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
REF=$SHARED/ref/qwen3vlmoe-tiny-a
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

expect_error() { # expect_error NEEDLE COMMAND...
    local needle=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$? lines
    lines=$(wc -l <"$TMP/err")
    if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -qF -- "$needle" "$TMP/err"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL (rc=$rc, $lines lines, want '$needle'): $*" >&2
        cat "$TMP/err" >&2
    fi
}

# A model folder with one file broken at a time.
broken() { # broken NAME -> a fresh copy of the tiny model folder
    local d="$TMP/$1"
    mkdir -p "$d"
    cp "$REF/model/"* "$d/"
    echo "$d"
}

d=$(broken truncated)
head -c 100000 "$REF/model/model.safetensors" >"$d/model.safetensors"
expect_error "model.safetensors" "$BIN" forward -m "$d" --input "$REF/text.safetensors" -o "$TMP/o1.safetensors"
test ! -e "$TMP/o1.safetensors" || { fail=$((fail + 1)); echo "FAIL: output left behind" >&2; }

d=$(broken badjson)
echo '{"model_type": "qwen3_vl_moe",' >"$d/config.json"
expect_error "config.json" "$BIN" run -m "$d" -p hi

d=$(broken badtok)
echo '{"model": {"type": "WordPiece"}}' >"$d/tokenizer.json"
expect_error "tokenizer.json" "$BIN" run -m "$d" -p hi

d=$(broken noconfig)
rm "$d/config.json"
expect_error "config.json" "$BIN" inspect "$d"

printf 'not a safetensors file at all' >"$TMP/case.safetensors"
expect_error "case.safetensors" "$BIN" forward -m "$REF/model" --input "$TMP/case.safetensors" -o "$TMP/o2.safetensors"
expect_error "nonexistent" "$BIN" generate -m "$REF/model" --input "$TMP/nonexistent.safetensors" -n 2
expect_error "/no/such/model" "$BIN" run -m /no/such/model -p hi
expect_error "-n" "$BIN" run -m "$REF/model" -p hi -n -3
expect_error "--temp" "$BIN" run -m "$REF/model" -p hi --temp abc
expect_error "skip spec 'bogus'" "$BIN" run -m "$REF/model" -p hi --skip bogus
expect_error "modes:0.1,0.1" "$BIN" run -m "$REF/model" -p hi --skip modes:0.1,0.1
expect_error "nope.json" "$BIN" run -m "$REF/model" -p hi --policy "$TMP/nope.json"
expect_error "unknown option" "$BIN" run -m "$REF/model" -p hi --frobnicate
expect_error "required" "$BIN" forward -m "$REF/model"
expect_error "unknown command" "$BIN" frobnicate

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
