#!/bin/bash
# modes preprocess: the written tensors are byte for byte the reference processor's (the resize
# reproduces torchvision's integer arithmetic), and bad input exits 1 with one line naming the file.
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
REF=$SHARED/ref/qwen3vlmoe-tiny-a
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }

# tensor_bytes FILE NAME: the raw data of one tensor of a safetensors file, on stdout.
tensor_bytes() {
    local f=$1 name=$2 hl header range begin end
    hl=$(od -An -t u8 -N8 "$f" | tr -d ' ')
    header=$(head -c $((8 + hl)) "$f" | tail -c "$hl")
    range=$(printf '%s' "$header" | grep -o "\"$name\": *{[^}]*}" | grep -o '"data_offsets": *\[[0-9]*, *[0-9]*\]' |
        grep -o '[0-9][0-9]*, *[0-9][0-9]*' | tr -d ' ')
    begin=${range%,*}
    end=${range#*,}
    [ -n "$range" ] || return 1
    tail -c +$((8 + hl + begin + 1)) "$f" | head -c $((end - begin))
}

same_tensor() { # same_tensor LABEL FILE NAME REFFILE REFNAME
    if tensor_bytes "$2" "$3" >"$TMP/a" && tensor_bytes "$4" "$5" >"$TMP/b" && [ -s "$TMP/a" ] &&
        cmp -s "$TMP/a" "$TMP/b"; then
        ok
    else
        bad "$1: $3 differs from $5 of $4"
    fi
}

# Not resized (min_pixels 1024 in the case's preprocessor_config.json).
if "$BIN" preprocess -m "$REF" --image "$REF/image_64x96.png" -o "$TMP/small.safetensors"; then
    ok
    same_tensor small "$TMP/small.safetensors" pixel_values "$REF/image_small.safetensors" pixel_values
    same_tensor small "$TMP/small.safetensors" image_grid_thw "$REF/image_small.safetensors" image_grid_thw
else
    bad "preprocess of image_64x96.png failed"
fi

# Default settings (the model folder has no preprocessor_config.json, and no -m at all): resized.
for m in "-m $REF/model" ""; do
    # shellcheck disable=SC2086
    if "$BIN" preprocess $m --image "$REF/image_64x96.png" -o "$TMP/default.safetensors"; then
        ok
        same_tensor "default ($m)" "$TMP/default.safetensors" pixel_values "$REF/preproc_default.safetensors" \
            pixel_values_torchvision
        same_tensor "default ($m)" "$TMP/default.safetensors" image_grid_thw "$REF/preproc_default.safetensors" \
            image_grid_thw
    else
        bad "preprocess with defaults failed"
    fi
    rm -f "$TMP/default.safetensors"
done

"$BIN" preprocess --help | grep -q "usage: modes preprocess" && ok || bad "--help"

expect_error() { # expect_error NEEDLE COMMAND...
    local needle=$1
    shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$? lines
    lines=$(wc -l <"$TMP/err")
    if [ "$rc" -eq 1 ] && [ "$lines" -eq 1 ] && grep -qF -- "$needle" "$TMP/err"; then
        ok
    else
        bad "(rc=$rc, $lines lines, want '$needle'): $*"
        cat "$TMP/err" >&2
    fi
    [ ! -e "$TMP/o.safetensors" ] || bad "output left behind: $*"
}

head -c 5000 "$REF/image_64x96.png" >"$TMP/cut.png"
expect_error "cut.png" "$BIN" preprocess --image "$TMP/cut.png" -o "$TMP/o.safetensors"
printf 'GIF89a\001\000\001\000\000\000\000;' >"$TMP/a.gif"
expect_error "a.gif" "$BIN" preprocess --image "$TMP/a.gif" -o "$TMP/o.safetensors"
expect_error "missing.png" "$BIN" preprocess --image "$TMP/missing.png" -o "$TMP/o.safetensors"
mkdir "$TMP/cfg"
echo '{"patch_size": 0}' >"$TMP/cfg/preprocessor_config.json"
expect_error "patch_size" "$BIN" preprocess -m "$TMP/cfg" --image "$REF/image_64x96.png" -o "$TMP/o.safetensors"
expect_error "nope.json" "$BIN" preprocess -m "$TMP/nope.json" --image "$REF/image_64x96.png" -o "$TMP/o.safetensors"
# An image too elongated for the reference (aspect ratio over 200): a 201 x 1 PNG.
THIN=${MODES_TESTS:-tests}/data/images/thin_201x1.png
expect_error "aspect ratio" "$BIN" preprocess --image "$THIN" -o "$TMP/o.safetensors"
expect_error "thin_201x1.png" "$BIN" preprocess --image "$THIN" -o "$TMP/o.safetensors"
expect_error "required" "$BIN" preprocess --image "$REF/image_64x96.png"
expect_error "unknown option" "$BIN" preprocess --image "$REF/image_64x96.png" -o "$TMP/o.safetensors" --frob

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
