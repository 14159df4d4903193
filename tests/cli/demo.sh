#!/usr/bin/env bash
# scripts/demo.sh on text-only and image examples of the embedded model, and on fields with quotes,
# backslashes and escapes (its JSON reading, checked through a stand-in binary that prints its args).
set -u
bin=${MODES_BIN:-build/modes}
root=$(cd "${MODES_TESTS:-tests}/.." && pwd)
demo=$root/scripts/demo.sh
model=$root/models/shapes-vqa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, condition status
    if [ "$2" -eq 0 ]; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi
}

# A text-only example (no "image" field) answers without an image, with and without the policy.
DEMO_TOKENS=2 MODES_BIN=$bin "$demo" test-00002 "$model" >"$tmp/out" 2>&1
s=$?
[ $s -eq 0 ] && grep -qx 'question: What is 7 plus 1?' "$tmp/out" && grep -q 'image:    none' "$tmp/out" &&
    [ "$(grep -c '^prompt ' "$tmp/out")" -eq 2 ]
s=$?
[ $s -eq 0 ] || cat "$tmp/out"
check "text-only example test-00002: exit 0, two answers" $s

DEMO_TOKENS=2 MODES_BIN=$bin "$demo" test-00000 "$model" >"$tmp/out" 2>&1
s=$?
[ $s -eq 0 ] && grep -q 'image:    .*/data/images/test-00000.png' "$tmp/out" && [ "$(grep -c '^prompt ' "$tmp/out")" -eq 2 ]
check "image example test-00000: exit 0, two answers" $?

# Fields with escaped quotes, backslashes, slashes and a percent sign reach the binary decoded.
mkdir -p "$tmp/m/data"
cat >"$tmp/m/data/test.jsonl" <<'JSONL'
{"id": "plain", "question": "x", "answer": "y"}
{"id": "odd", "question": "Is \"A\\B\" 50% of a/b\/c?", "answer": "it's \"yes\"", "image": "images/q \"1\".png"}
JSONL
cat >"$tmp/fake" <<'SH'
#!/usr/bin/env bash
for a in "$@"; do printf '<%s>\n' "$a"; done
SH
chmod +x "$tmp/fake"
MODES_BIN=$tmp/fake "$demo" odd "$tmp/m" >"$tmp/out" 2>&1
s=$?
[ $s -eq 0 ] && grep -qxF '<Is "A\B" 50% of a/b/c?>' "$tmp/out" && grep -qxF "expected: it's \"yes\"" "$tmp/out" &&
    grep -qxF "<$tmp/m/data/images/q \"1\".png>" "$tmp/out"
check "quotes, backslashes and escapes in fields are decoded" $?
MODES_BIN=$tmp/fake "$demo" plain "$tmp/m" >"$tmp/out" 2>&1
[ $? -eq 0 ] && ! grep -qF -- '<--image>' "$tmp/out"
check "an example without an image passes no --image" $?

MODES_BIN=$tmp/fake "$demo" missing "$tmp/m" >"$tmp/out" 2>&1
[ $? -eq 1 ] && grep -q 'no example with id missing' "$tmp/out"
check "unknown id: exit 1 with a message" $?

exit $fail
