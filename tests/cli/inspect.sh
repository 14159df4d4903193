#!/usr/bin/env bash
# modes inspect [-m] DIR [--json] on the embedded model, and on broken copies of it (a tensor
# missing, of the wrong dtype or shape, a config that implies other shapes, a tokenizer that cannot
# encode): inspect must refuse each with exit 1 and the very message `modes run` gives, since a
# folder inspect calls fine must load.
set -u
bin=${MODES_BIN:-build/modes}
root=$(cd "${MODES_TESTS:-tests}/.." && pwd)
model=$root/models/shapes-vqa
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# ---- a good folder ------------------------------------------------------------------------------
"$bin" inspect "$model" >"$tmp/pos" 2>"$tmp/err"
s=$?
[ $s -eq 0 ] && grep -q '^tensors  *[0-9]' "$tmp/pos" && [ ! -s "$tmp/err" ]
check "inspect DIR: exit 0, a report" $?
"$bin" inspect -m "$model" >"$tmp/opt" && cmp -s "$tmp/pos" "$tmp/opt"
check "inspect -m DIR: the same report" $?
"$bin" inspect --model="$model" >"$tmp/opt" && cmp -s "$tmp/pos" "$tmp/opt"
check "inspect --model=DIR: the same report" $?
"$bin" inspect --json -m "$model" >"$tmp/json"
s=$?
n_text=$(sed -n 's/^tensors *\([0-9]*\):.*/\1/p' "$tmp/pos")
"$PY" - "$tmp/json" "$n_text" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["tensors"] == int(sys.argv[2]), r["tensors"]
assert r["text"]["layers"] >= 1 and r["tokenizer"]["tokens"] >= 1 and r["parameters"] > 0
assert sum(p["parameters"] for p in r["parts"].values()) == r["parameters"]
PYEOF
[ $s -eq 0 ] && [ $? -eq 0 ]
check "inspect --json: one JSON object agreeing with the text report" $?
"$bin" inspect "$model" "$model" >/dev/null 2>&1
[ $? -eq 1 ]
check "two folders: usage error, exit 1" $?
"$bin" inspect --help | grep -qF 'modes inspect [-m] DIR [--json]' &&
    grep -qE 'modes inspect +\[-m\] DIR \[--json\]' "$root/README.md"
check "--help and README show modes inspect [-m] DIR [--json]" $?

# ---- broken folders ------------------------------------------------------------------------------
# A copy of the model whose files are links, but for the one a case rewrites.
copy() { # NAME -> folder
    local d=$tmp/$1
    mkdir -p "$d"
    for f in "$model"/*; do ln -s "$f" "$d/"; done
    echo "$d"
}
# st_edit DIR PYTHON: rewrites DIR's model.safetensors header; the code edits h (the header dict).
st_edit() {
    rm -f "$1/model.safetensors"
    "$PY" - "$model/model.safetensors" "$1/model.safetensors" "$2" <<'PYEOF'
import json, struct, sys
src, dst, code = sys.argv[1:4]
b = open(src, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
exec(code, {'h': h})
raw = json.dumps(h).encode()
open(dst, 'wb').write(struct.pack('<Q', len(raw)) + raw + b[8 + n:])
PYEOF
}
# same_refusal NAME NEEDLE DIR: run and inspect both exit 1 with one identical message naming NEEDLE.
same_refusal() {
    "$bin" run -m "$3" -p hi -n 1 >/dev/null 2>"$tmp/run.err"
    local rrc=$?
    "$bin" inspect "$3" >"$tmp/insp.out" 2>"$tmp/insp.err"
    local irc=$?
    local rmsg imsg
    rmsg=$(sed 's/^modes run: //' "$tmp/run.err")
    imsg=$(sed 's/^modes inspect: //' "$tmp/insp.err")
    [ $rrc -eq 1 ] && [ $irc -eq 1 ] && [ -n "$rmsg" ] && [ "$rmsg" = "$imsg" ] && [[ $imsg == *"$2"* ]] &&
        [ "$(wc -l <"$tmp/insp.err")" -eq 1 ]
    local s=$?
    [ $s -eq 0 ] || echo "  run (exit $rrc): $rmsg | inspect (exit $irc): $imsg"
    check "$1: inspect exits 1 with run's message ($imsg)" $s
}

L=model.language_model.layers.1
d=$(copy missing)
st_edit "$d" "h['$L.self_attn.k_norm.weightX'] = h.pop('$L.self_attn.k_norm.weight')"
same_refusal "a missing tensor" "'$L.self_attn.k_norm.weight' is missing" "$d"

d=$(copy dtype)
st_edit "$d" "h['$L.self_attn.q_norm.weight']['dtype'] = 'I16'"
same_refusal "a tensor of the wrong dtype" "has dtype I16" "$d"

d=$(copy shape)
st_edit "$d" "h['$L.self_attn.o_proj.weight']['shape'] = [256, 128]"
same_refusal "a tensor of the wrong shape" "'$L.self_attn.o_proj.weight' has shape [256, 128]" "$d"

d=$(copy experts)
st_edit "$d" "t = h['$L.mlp.experts.down_proj']; t['shape'] = [t['shape'][0], t['shape'][2], t['shape'][1]] if t['shape'][1] != t['shape'][2] else [1, 1, 1]"
same_refusal "fused experts of the wrong shape" "$L.mlp.experts.down_proj" "$d"

d=$(copy config)
rm "$d/config.json"
"$PY" -c "
import json, sys
c = json.load(open(sys.argv[1]))
t = c.get('text_config', c)
t['moe_intermediate_size'] = t['moe_intermediate_size'] * 2
json.dump(c, open(sys.argv[2], 'w'), indent=2)" "$model/config.json" "$d/config.json"
same_refusal "a config that implies other shapes" "experts" "$d"

d=$(copy vision)
st_edit "$d" "h.pop('model.visual.merger.linear_fc2.bias')"
same_refusal "a vision tensor missing" "'model.visual.merger.linear_fc2.bias' is missing" "$d"

d=$(copy tokenizer)
rm "$d/tokenizer.json"
"$PY" -c "
import json, sys
t = json.load(open(sys.argv[1]))
t['model']['vocab'] = {}
t['model']['merges'] = []
json.dump(t, open(sys.argv[2], 'w'))" "$model/tokenizer.json" "$d/tokenizer.json"
same_refusal "a tokenizer with an empty vocabulary" "model.vocab is empty" "$d"

exit $fail
