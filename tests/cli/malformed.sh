#!/bin/bash
# Malformed input through the real commands, one input kind at a time: a model folder (config.json,
# generation_config.json, preprocessor_config.json, model.safetensors and its index, tokenizer.json,
# tokenizer_config.json), a case file, images, a policy, data files, stdin of `tokenize`, and prompts.
# Each hand-made bad file (truncated, lying sizes, wrong types, huge claims, deep nesting, NaN or inf
# where a number belongs, text that is not UTF-8) must make the command exit 1 with exactly one line
# on stderr that names the problem (a data file's unusable examples are listed all at once, one line
# each and then their count: $STDERR_LINES lines), and must leave any output file as it was: a good
# file stays byte for byte, a missing one stays missing, and no temporary file is left beside it.
set -u
BIN=${MODES_BIN:-build/modes}
. "$(dirname "${BASH_SOURCE[0]}")/lib/shared.sh"
REF=$SHARED/ref/qwen3vlmoe-tiny-a
TESTS=${MODES_TESTS:-tests}
PY=/usr/bin/python3
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
pass=0
fail=0
IMG=$TESTS/data/calib-tiny/red_square.png
GOOD="a good output from an earlier run"

# expect_error NEEDLE COMMAND...: exit 1, one stderr line holding NEEDLE (fixed string), and the
# output file $OUT (when set) untouched: still "$GOOD" if it existed, still absent if not. Standard
# input is $IN (default: nothing).
OUT=""
IN=/dev/null
expect_error() {
    local needle=$1
    shift
    local had=0
    [ -n "$OUT" ] && [ -e "$OUT" ] && had=1
    timeout 120 "$@" >"$TMP/stdout" 2>"$TMP/stderr" <"$IN"
    local rc=$? lines why=""
    lines=$(wc -l <"$TMP/stderr")
    [ "$rc" -eq 1 ] || why="exit status $rc"
    [ "$lines" -eq "${STDERR_LINES:-1}" ] || why="$why; $lines lines on stderr"
    grep -qF -- "$needle" "$TMP/stderr" || why="$why; message lacks '$needle'"
    if [ -n "$OUT" ]; then
        if [ "$had" -eq 1 ]; then
            [ "$(cat "$OUT" 2>/dev/null)" = "$GOOD" ] || why="$why; $OUT was changed"
        else
            [ ! -e "$OUT" ] || why="$why; $OUT was left behind"
        fi
        ls -a "$(dirname "$OUT")" | grep -q '\.tmp-' && why="$why; a temporary file was left behind"
    fi
    if [ -z "$why" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL ($why): $*" >&2
        head -c 2000 "$TMP/stderr" >&2
    fi
}

# good_out PATH: an output path that already holds a good file.
good_out() {
    mkdir -p "$(dirname "$1")"
    printf '%s' "$GOOD" >"$1"
    OUT=$1
}

# model NAME: a fresh folder linking to the tiny model's files; replace a file with put.
model() {
    local d="$TMP/m/$1"
    mkdir -p "$d"
    for f in "$REF/model/"*; do ln -s "$(readlink -f "$f")" "$d/"; done
    echo "$d"
}
# put FILE: stdin becomes FILE (the link is removed first: never write through it).
put() {
    rm -f "$1"
    cat >"$1"
}

# st_edit IN OUT PYTHON: rewrites a safetensors header. The Python code sees h (the header dict),
# may set raw (header text to write instead of json.dumps(h)), hlen (the length prefix to write) and
# data (the data area, bytes).
st_edit() {
    "$PY" - "$@" <<'EOF'
import json, struct, sys
src, dst, code = sys.argv[1], sys.argv[2], sys.argv[3]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
data = b[8 + n:]
env = {'h': h, 'raw': None, 'hlen': None, 'data': data, 'json': json}
exec(code, env)
raw = env['raw'] if env['raw'] is not None else json.dumps(env['h'])
raw = raw.encode('utf-8', 'surrogateescape') if isinstance(raw, str) else raw
hlen = env['hlen'] if env['hlen'] is not None else len(raw)
open(dst, 'wb').write(struct.pack('<Q', hlen) + raw + env['data'])
EOF
}

E=model.language_model.embed_tokens.weight
ST=$REF/model/model.safetensors
CASE=$REF/text.safetensors

# ---- config.json -------------------------------------------------------------------------------
cfg_case() { # cfg_case NEEDLE PYTHON: config.json rewritten by PYTHON (c: the parsed config; or set raw)
    local needle=$1 d
    d=$(model "cfg$pass$fail")
    "$PY" - "$REF/model/config.json" "$2" >"$TMP/config.json" <<'EOF'
import json, sys
c = json.load(open(sys.argv[1]))
env = {'c': c, 'raw': None, 'json': json}
exec(sys.argv[2], env)
sys.stdout.buffer.write(env['raw'] if isinstance(env['raw'], bytes) else (env['raw'] or json.dumps(env['c'])).encode())
EOF
    put "$d/config.json" <"$TMP/config.json"
    OUT=""
    expect_error "$needle" "$BIN" run -m "$d" -p hi -n 1
    expect_error "$needle" "$BIN" inspect "$d"
}
cfg_case "config.json" "raw = json.dumps(c)[:200]"                                            # truncated
cfg_case "config.json" "raw = b''"                                                            # empty
cfg_case "config.json" "raw = json.dumps(c).replace('\"hidden_size\": 64', '\"hidden_size\": NaN')"
cfg_case "number out of range" "raw = json.dumps(c).replace('\"rope_theta\": 5000000.0', '\"rope_theta\": 1e999')"
cfg_case "config.json" "raw = json.dumps(c).replace('\"rms_norm_eps\": 1e-06', '\"rms_norm_eps\": Infinity')"
cfg_case "nesting deeper" "c['x'] = json.loads('[' * 40 + ']' * 40)"
cfg_case "hidden_size" "c['text_config']['hidden_size'] = '64'"                                # wrong type
cfg_case "num_hidden_layers" "c['text_config']['num_hidden_layers'] = 10**9"                   # huge claim
cfg_case "vocab_size" "c['text_config']['vocab_size'] = 2**40"
cfg_case "num_experts_per_tok" "c['text_config']['num_experts_per_tok'] = 1.5"
cfg_case "eos_token_id" "c['text_config']['eos_token_id'] = 77777777777"                      # over int32
cfg_case "mrope_section" "c['text_config']['rope_scaling']['mrope_section'] = [6, 5]"
cfg_case "invalid UTF-8" "raw = json.dumps(c).replace('\"qwen3_vl_moe_text\"', '\"qwen3\\\\u00e9').encode().replace(b'\\\\u00e9', b'\\xe9\\xff\"')"
cfg_case "model_type" "c['model_type'] = 'llama'"
cfg_case "not a JSON object" "raw = '[1, 2, 3]'"
cfg_case "deepstack_visual_indexes" "c['vision_config']['deepstack_visual_indexes'] = list(range(100))"
cfg_case "num_position_embeddings" "c['vision_config']['num_position_embeddings'] = 65"

d=$(model gencfg)
printf '{"eos_token_id": [2, -5]}' | put "$d/generation_config.json"
expect_error "generation_config.json" "$BIN" run -m "$d" -p hi -n 1
printf '{"eos_token_id": 2' | put "$d/generation_config.json"
expect_error "generation_config.json" "$BIN" inspect "$d"

# ---- model.safetensors ---------------------------------------------------------------------------
st_case() { # st_case NEEDLE PYTHON: model.safetensors rewritten by st_edit
    local needle=$1 d
    d=$(model "st$pass$fail")
    rm -f "$d/model.safetensors"
    st_edit "$ST" "$d/model.safetensors" "$2" || { fail=$((fail + 1)); echo "FAIL: st_edit $2" >&2; return; }
    good_out "$TMP/out/st.safetensors"
    expect_error "$needle" "$BIN" forward -m "$d" --input "$CASE" -o "$OUT"
    OUT=""
    expect_error "$needle" "$BIN" inspect "$d" # inspect checks as loading does
}
st_case "runs past the end of the file" "hlen = 10**7"                                        # lying header size
st_case "over the limit" "hlen = 2**40"                                                        # huge claim
st_case "too small" "hlen = 1"
st_case "model.safetensors" "data = data[:len(data) // 2]"                                      # truncated data
st_case "invalid JSON" "raw = json.dumps(h).replace('[512, 64]', '[NaN, 64]', 1)"
st_case "number out of range" "raw = json.dumps(h).replace('[0, 131072]', '[0, 1e999]', 1)"
st_case "nesting deeper" "h['__metadata__']['x'] = 'y'; raw = json.dumps(h).replace('\"x\": \"y\"', '\"x\": ' + '[' * 20 + ']' * 20)"
st_case "invalid UTF-8" "raw = json.dumps(h).encode().replace(b'lm_head.weight', b'lm_head.\\xff\\xfeight', 1)"
st_case "\"dtype\" must be a string" "h['$E']['dtype'] = 5"
st_case "unsupported dtype" "h['$E']['dtype'] = 'F8_E4M3'"
st_case "do not match shape" "h['$E']['dtype'] = 'BF16'"                                      # dtype lies
st_case "do not match shape" "h['$E']['shape'] = [513, 64]"                                   # shape lies
st_case "non-negative integer" "h['$E']['shape'] = [-512, -64]"
st_case "non-negative integer" "h['$E']['shape'] = [512, 64.5]"
st_case "too many elements" "h['$E']['shape'] = [2**53, 2**53, 0 + 1]"
st_case "run past the end of the data area" "h['$E']['data_offsets'] = [131072, 2**52]"
st_case "overlap" "h['$E']['data_offsets'] = [0, 131072]"
st_case "data_offsets" "h['$E']['data_offsets'] = '131072'"
st_case "$E" "h['$E']['shape'] = [256, 128]"                                                  # consistent, wrong for the config
st_case "header must be a JSON object" "raw = '[' + ' ' * 100 + ']'"

d=$(model index)
rm -f "$d/model.safetensors"
ln -s "$(readlink -f "$ST")" "$d/model-00001-of-00001.safetensors"
printf '{"weight_map": {"lm_head.weight": "../model-00001-of-00001.safetensors"}}' | put "$d/model.safetensors.index.json"
expect_error "not a plain file name" "$BIN" inspect "$d"
printf '{"weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors"}}' | put "$d/model.safetensors.index.json"
expect_error "model-00002-of-00002.safetensors" "$BIN" inspect "$d"
printf '{"weight_map": {"lm_head.weight": 7}}' | put "$d/model.safetensors.index.json"
expect_error "must map to a file name" "$BIN" inspect "$d"
printf '{"weight_map": {"lm_head.weight": "model-00001-of-00001.safetensors"' | put "$d/model.safetensors.index.json"
expect_error "model.safetensors.index.json" "$BIN" run -m "$d" -p hi -n 1

# ---- tokenizer.json and tokenizer_config.json ------------------------------------------------------
tok_case() { # tok_case NEEDLE PYTHON: tokenizer.json rewritten (t: the parsed file; or set raw)
    local needle=$1 d
    d=$(model "tok$pass$fail")
    "$PY" - "$REF/model/tokenizer.json" "$2" >"$TMP/tok.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
env = {'t': t, 'raw': None, 'json': json}
exec(sys.argv[2], env)
sys.stdout.buffer.write(env['raw'] if isinstance(env['raw'], bytes) else (env['raw'] or json.dumps(env['t'])).encode())
EOF
    put "$d/tokenizer.json" <"$TMP/tok.json"
    OUT=""
    expect_error "$needle" "$BIN" run -m "$d" -p hi -n 1
    printf '{"text": "hi"}\n' >"$TMP/in.jsonl"
    IN=$TMP/in.jsonl
    expect_error "$needle" "$BIN" tokenize -m "$d/tokenizer.json"
    IN=/dev/null
}
tok_case "tokenizer.json" "raw = json.dumps(t)[:5000]"
tok_case "invalid UTF-8" "raw = json.dumps(t, ensure_ascii=False).encode().replace(b'<|im_end|>', b'<|im\\xc3(end|>')"
tok_case "nesting deeper" "t['x'] = json.loads('[' * 80 + ']' * 80)"
tok_case "id must be an integer" "t['model']['vocab']['zz'] = 1e300"
tok_case "invalid JSON" "t['model']['vocab']['zz'] = float('nan')"
tok_case "id must be an integer" "t['added_tokens'][0]['id'] = 2**40"
tok_case "not in model.vocab" "t['model']['merges'].append('qq zz')"
tok_case "does not compile" "t['pre_tokenizer']['pretokenizers'][0]['pattern']['Regex'] = '(unclosed'"
tok_case "not supported" "t['model']['type'] = 'Unigram'"
tok_case "added_tokens" "t['added_tokens'] = {'not': 'a list'}"
tok_case "content" "t['added_tokens'][0]['content'] = 5"

d=$(model tokcfg)
printf '{"eos_token": "<|im_end|>", "chat_template": ' | put "$d/tokenizer_config.json"
expect_error "tokenizer_config.json" "$BIN" run -m "$d" -p hi -n 1

# ---- preprocessor_config.json ----------------------------------------------------------------------
pre_case() { # pre_case NEEDLE TEXT
    local d
    d=$(model "pre$pass$fail")
    printf '%s' "$2" | put "$d/preprocessor_config.json"
    good_out "$TMP/out/pre.safetensors"
    expect_error "$1" "$BIN" preprocess -m "$d" --image "$IMG" -o "$OUT"
    OUT=""
    expect_error "$1" "$BIN" run -m "$d" -p hi -n 1 --image "$IMG"
}
pre_case "patch_size" '{"patch_size": 0}'
pre_case "image_std" '{"image_std": [0.5, 0.0, 0.5]}'
pre_case "preprocessor_config.json" '{"image_mean": [NaN, 0.5, 0.5]}'
pre_case "preprocessor_config.json" '{"rescale_factor": -Infinity}'
pre_case "max_pixels" '{"max_pixels": 1e30}'
pre_case "max_pixels" '{"max_pixels": 1099511627776}'                 # 2^40: a huge claim sizes allocations
pre_case "shortest_edge" '{"size": {"shortest_edge": 4294967296, "longest_edge": 8589934592}}'
pre_case "min_pixels" '{"min_pixels": 100000, "max_pixels": 1000}'
pre_case "preprocessor_config.json" '{"size": {"shortest_edge": 1'

# ---- case files (forward / generate --input) ------------------------------------------------------------
case_file() { # case_file OUT PYTHON (h/data of text.safetensors)
    st_edit "$CASE" "$1" "$2"
}
case_file "$TMP/ids_f32.safetensors" "h['input_ids']['dtype'] = 'F32'; h['input_ids']['data_offsets'] = [h['input_ids']['data_offsets'][0], h['input_ids']['data_offsets'][0] + (h['input_ids']['data_offsets'][1] - h['input_ids']['data_offsets'][0]) // 2]; h['input_ids']['shape'] = [h['input_ids']['shape'][-1]]"
good_out "$TMP/out/fwd.safetensors"
expect_error "input_ids" "$BIN" forward -m "$REF/model" --input "$TMP/ids_f32.safetensors" -o "$OUT"
"$PY" - "$TMP/big_ids.safetensors" <<'EOF'
import json, struct, sys
ids = [1, 2, 999999, 3]
hdr = json.dumps({"input_ids": {"dtype": "I64", "shape": [1, 4], "data_offsets": [0, 32]}}).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + struct.pack('<4q', *ids))
EOF
expect_error "big_ids.safetensors: 'input_ids' holds token id 999999" "$BIN" forward -m "$REF/model" --input "$TMP/big_ids.safetensors" -o "$OUT"
OUT=""
expect_error "999999" "$BIN" generate -m "$REF/model" --input "$TMP/big_ids.safetensors" -n 2
"$PY" - "$TMP/neg_ids.safetensors" <<'EOF'
import json, struct, sys
hdr = json.dumps({"input_ids": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + struct.pack('<2q', 5, -7))
EOF
expect_error "input_ids" "$BIN" generate -m "$REF/model" --input "$TMP/neg_ids.safetensors" -n 2
# Image cases: pixel rows of the wrong length, and a grid whose product overflows 64 bits.
"$PY" - "$TMP" <<'EOF'
import json, struct, sys
def case(name, rows, row, grid):
    ids = [1, 506, 508, 508, 508, 508, 507, 5]
    pv = struct.pack('<%df' % (rows * row), *([0.5] * (rows * row)))
    parts = [('input_ids', 'I64', [1, len(ids)], struct.pack('<%dq' % len(ids), *ids)),
             ('pixel_values', 'F32', [rows, row], pv),
             ('image_grid_thw', 'I64', [1, 3], struct.pack('<3q', *grid))]
    hdr, off, data = {}, 0, b''
    for n, dt, shape, b in parts:
        hdr[n] = {'dtype': dt, 'shape': shape, 'data_offsets': [off, off + len(b)]}
        off += len(b)
        data += b
    h = json.dumps(hdr).encode()
    open(sys.argv[1] + '/' + name, 'wb').write(struct.pack('<Q', len(h)) + h + data)
case('short_rows.safetensors', 16, 4, [1, 4, 4])
case('huge_grid.safetensors', 16, 1536, [2**40, 2**40, 2**40])
case('grid_rows.safetensors', 16, 1536, [1, 4, 8])
EOF
good_out "$TMP/out/fwd.safetensors"
expect_error "do not fit the model" "$BIN" forward -m "$REF/model" --input "$TMP/short_rows.safetensors" -o "$OUT"
expect_error "image_grid_thw" "$BIN" forward -m "$REF/model" --input "$TMP/huge_grid.safetensors" -o "$OUT"
expect_error "image_grid_thw" "$BIN" forward -m "$REF/model" --input "$TMP/grid_rows.safetensors" -o "$OUT"
OUT=""
expect_error "do not fit the model" "$BIN" generate -m "$REF/model" --input "$TMP/short_rows.safetensors" -n 2
"$PY" - "$TMP/long_ids.safetensors" <<'EOF'
import json, struct, sys
n = 5000  # the tiny model's context is 4096
hdr = json.dumps({"input_ids": {"dtype": "I32", "shape": [n], "data_offsets": [0, 4 * n]}}).encode()
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hdr)) + hdr + struct.pack('<%di' % n, *([5] * n)))
EOF
expect_error "more than the model's context" "$BIN" generate -m "$REF/model" --input "$TMP/long_ids.safetensors" -n 2
head -c 40 "$CASE" >"$TMP/trunc_case.safetensors"
expect_error "trunc_case.safetensors" "$BIN" generate -m "$REF/model" --input "$TMP/trunc_case.safetensors" -n 2

# ---- images -------------------------------------------------------------------------------------------------
mkdir -p "$TMP/img"
head -c 60 "$IMG" >"$TMP/img/truncated.png"
: >"$TMP/img/empty.png"
printf 'this is not a picture\n' >"$TMP/img/text.png"
printf 'GIF89a\001\000\001\000\000\000\000;' >"$TMP/img/anim.gif"
# A PNG whose header claims 100000 x 100000 pixels (and a valid CRC): refused before decoding.
"$PY" - "$IMG" "$TMP/img/huge.png" <<'EOF'
import struct, sys, zlib
b = bytearray(open(sys.argv[1], 'rb').read())
b[16:24] = struct.pack('>II', 100000, 100000)
b[29:33] = struct.pack('>I', zlib.crc32(bytes(b[12:29])))
open(sys.argv[2], 'wb').write(b)
EOF
# A PNG whose data stops half-way through the pixels (IDAT cut, no IEND).
"$PY" - "$TESTS/data/calib-tiny/gradient.png" "$TMP/img/cut.png" <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read()
open(sys.argv[2], 'wb').write(b[:len(b) * 2 // 3])
EOF
printf '\377\330\377\340\000\020JFIF\000\001\001\000\000\001\000\001\000\000\377\300\000\021\010\377\377\377\377\003\001\042\000' >"$TMP/img/bad.jpg"
printf 'RIFF\044\000\000\000WEBPVP8 \030\000\000\000\060\001\000\235\001\052\377\377\377\377' >"$TMP/img/bad.webp"
for f in truncated.png empty.png text.png anim.gif huge.png cut.png bad.jpg bad.webp; do
    good_out "$TMP/out/img.safetensors"
    expect_error "$f" "$BIN" preprocess -m "$REF" --image "$TMP/img/$f" -o "$OUT"
    OUT=""
    expect_error "$f" "$BIN" run -m "$REF/model" -p "what is it?" -n 1 --image "$TMP/img/$f"
done
expect_error "over the decode limit" "$BIN" preprocess -m "$REF" --image "$TMP/img/huge.png" -o "$TMP/out/x.safetensors"
expect_error "aspect ratio" "$BIN" run -m "$REF/model" -p "what is it?" -n 1 --image "$TESTS/data/images/thin_201x1.png"
args=()
for i in $(seq 65); do args+=(--image "$IMG"); done
expect_error "at most" "$BIN" run -m "$REF/model" -p hi -n 1 "${args[@]}"

# ---- prompts ------------------------------------------------------------------------------------------
long=$(head -c 30000 /dev/zero | tr '\0' 'a' | sed 's/a\{6\}/word /g')
expect_error "tokens" "$BIN" run -m "$REF/model" -p "$long" -n 1                   # longer than the context
expect_error "UTF-8" "$BIN" run -m "$REF/model" -p "$(printf 'caf\351')" -n 1       # not UTF-8
printf '{"text": "ok"}\n{"text": "caf\\u00e9 \351"}\n' >"$TMP/bad.jsonl"
IN=$TMP/bad.jsonl expect_error "line 2" "$BIN" tokenize -m "$REF/model"
printf '{"text": NaN}\n' >"$TMP/nan.jsonl"
IN=$TMP/nan.jsonl expect_error "line 1" "$BIN" tokenize -m "$REF/model"
{ printf '{"text": "ok"}\n'; head -c $((65 << 20)) /dev/zero | tr '\0' 'a'; } >"$TMP/long.jsonl" # not buffered whole
IN=$TMP/long.jsonl expect_error "line 2: longer than" "$BIN" tokenize -m "$REF/model"
rm -f "$TMP/long.jsonl"
printf '{"text": %s"x"%s}\n' "$(printf '[%.0s' $(seq 30))" "$(printf ']%.0s' $(seq 30))" >"$TMP/deep.jsonl"
IN=$TMP/deep.jsonl expect_error "nesting deeper" "$BIN" tokenize -m "$REF/model"

# ---- policy files -----------------------------------------------------------------------------------------
POL=$TMP/policy
mkdir -p "$POL"
SHA=$(sha256sum "$REF/model/config.json" | cut -d' ' -f1)
policy() { # policy NAME JSON-FRAGMENT: a policy for the tiny model (3 MoE layers) with FRAGMENT added
    printf '{"format": "modes-policy", "version": 1, "model": {"moe_layers": 3, "config_sha256": "%s"}, %s}' "$SHA" "$2" >"$POL/$1"
}
policy nan.json '"method": "modes", "alpha": {"text": [NaN, 1, 1], "vision": [1, 1, 1]}, "tau": 0.1'
policy inf.json '"method": "modes", "alpha": {"text": [1, 1, 1], "vision": [1, 1e999, 1]}, "tau": 0.1'
policy layers.json '"method": "modes", "alpha": {"text": [1, 1], "vision": [1, 1]}, "tau": 0.1'
policy type.json '"method": "threshold", "tau": "0.1"'
policy k.json '"method": "topk", "k": 1e12'
policy method.json '"method": "magic"'
policy deep.json "\"method\": \"none\", \"x\": $(printf '[%.0s' $(seq 40))$(printf ']%.0s' $(seq 40))"
printf '{"format": "modes-policy", "version": 1, "model": {"moe_layers": 3}, "method": "th\377reshold"}' >"$POL/utf8.json"
policy truncated.json '"method": "none"'
head -c 60 "$POL/truncated.json" >"$POL/t" && mv "$POL/t" "$POL/truncated.json"
printf '{"format": "modes-policy", "version": 1, "model": {"moe_layers": 3, "config_sha256": "%s"}, "method": "none"}' \
    "0000000000000000000000000000000000000000000000000000000000000000" >"$POL/other.json"
D=$TESTS/data/calib-tiny/calib.jsonl
for p in nan inf layers type k method deep utf8 truncated other; do
    OUT=""
    expect_error "$p.json" "$BIN" run -m "$REF/model" -p hi -n 1 --policy "$POL/$p.json"
    good_out "$TMP/out/results.json"
    expect_error "$p.json" "$BIN" eval -m "$REF/model" --bench "$D" --policy "$POL/$p.json" -o "$OUT" --limit 1 -n 1
    good_out "$TMP/out/searched.json"
    expect_error "$p.json" "$BIN" search -m "$REF/model" --data "$D" --alphas "$POL/$p.json" --target 0.3 -o "$OUT"
done

# ---- data files (calibrate, search, eval) -------------------------------------------------------------------
DATA=$TESTS/data/calib-tiny
data_case() { # data_case NEEDLE LINES: a data file beside the tiny calibration images
    local f="$TMP/data$pass$fail.jsonl"
    printf '%s' "$2" >"$f"
    for img in "$DATA"/*.png; do ln -sf "$(readlink -f "$img")" "$TMP/"; done
    good_out "$TMP/out/calib.json"
    expect_error "$1" "$BIN" calibrate -m "$REF/model" --data "$f" -o "$OUT"
    good_out "$TMP/out/results.json"
    expect_error "$1" "$BIN" eval -m "$REF/model" --bench "$f" -o "$OUT" -n 1
}
Q='"question": "What colour?", "answer": "red"'
data_case "line 2" "{\"image\": \"red_square.png\", $Q}
{\"image\": \"red_square.png\", $Q"                                                       # truncated line
data_case "line 1" "[1, 2, 3]"                                                           # not an object
data_case "answer" "{\"question\": \"What?\"}"                                            # missing field
data_case "question" "{\"question\": 42, \"answer\": \"x\"}"                               # wrong type
data_case "line 1" "{\"question\": NaN, \"answer\": \"x\"}"                                 # NaN
data_case "line 1" "{\"id\": 1e999, $Q}"                                                  # inf
data_case "nesting deeper" "{$Q, \"x\": $(printf '[%.0s' $(seq 20))$(printf ']%.0s' $(seq 20))}"
data_case "line 1" "$(printf '{"question": "caf\351", "answer": "x"}')"                      # not UTF-8
data_case "more than 64" "{$Q, \"image\": [$(printf '"red_square.png",%.0s' $(seq 64))\"red_square.png\"]}"
data_case "no examples" "

"
data_case "metric" "{$Q, \"metric\": \"fuzzy\"}"
data_case "choices" "{$Q, \"metric\": \"choice\"}"
STDERR_LINES=2 data_case "missing.png" "{$Q, \"image\": \"missing.png\"}"  # names a file that is not there
STDERR_LINES=2 data_case "cut.png" "{$Q, \"image\": \"$TMP/img/cut.png\"}"  # a broken image
policy good.json '"method": "modes", "alpha": {"text": [1, 2, 1], "vision": [1, 1, 1]}, "tau": 0.1'
printf '{"image": "red_square.png", %s}\n{"question": "x"' "$Q" >"$TMP/bad_search.jsonl"
good_out "$TMP/out/search.json"
expect_error "bad_search.jsonl" "$BIN" search -m "$REF/model" --data "$TMP/bad_search.jsonl" --alphas "$POL/good.json" \
    --target 0.3 -o "$OUT"

# ---- well-formed files built to be slow ----------------------------------------------------------------------
# 100000 added tokens sharing a first byte, in the order that made loading quadratic (about 15 s;
# now a fraction of a second).
"$PY" - "$REF/model/tokenizer.json" "$TMP/many_added.json" <<'EOF'
import json, sys
t = json.load(open(sys.argv[1]))
t['added_tokens'] += [{"id": 512 + i, "content": "x" * (1 + i // 500) + "%d" % i} for i in range(100000)]
json.dump(t, open(sys.argv[2], 'w'), separators=(',', ':'))
EOF
printf '{"text": "xx1 <|im_end|>"}\n' >"$TMP/in.jsonl"
if timeout 10 "$BIN" tokenize -m "$TMP/many_added.json" <"$TMP/in.jsonl" >/dev/null; then pass=$((pass + 1)); else
    fail=$((fail + 1)); echo "FAIL: a tokenizer with 100000 added tokens did not load within 10 s" >&2; fi

# ---- interrupted and failed writes ----------------------------------------------------------------------
# Outputs are written to a temporary file renamed over the target when complete. A run killed while
# writing (here by the file-size limit: SIGXFSZ) leaves a good file where it was; with the signal
# ignored, the write fails instead (EFBIG): exit 1 naming the file, and the temporary file removed.
LIMITED=(bash -c 'trap "" XFSZ; ulimit -f 1; exec "$@"' _)
for cmd in "forward -m $REF/model --input $CASE -o" "preprocess -m $REF --image $IMG -o"; do
    good_out "$TMP/out/w.safetensors"
    # shellcheck disable=SC2086
    { (ulimit -f 1; exec "$BIN" $cmd "$OUT") >/dev/null 2>&1; rc=$?; } 2>/dev/null
    if [ "$rc" -ne 0 ] && [ "$(cat "$OUT")" = "$GOOD" ]; then pass=$((pass + 1)); else
        fail=$((fail + 1)); echo "FAIL (killed while writing, rc=$rc): $OUT was changed by $cmd" >&2; fi
    rm -f "$TMP"/out/*.tmp-* # what a killed process cannot clean up
    # shellcheck disable=SC2086
    expect_error "write failed" "${LIMITED[@]}" "$BIN" $cmd "$OUT"
done
good_out "$TMP/out/plot.svg"
expect_error "plot.svg" "${LIMITED[@]}" "$BIN" eval -m "$REF/model" --bench "$D" -n 1 --limit 2 --plot "$OUT"
OUT=""

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
