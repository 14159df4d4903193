#!/bin/bash
# The main job on the embedded default model: one question from its test split, answered once
# without skipping and once with the shipped MoDES policy (about 88% of routed experts skipped).
# The default is the first example of the test split; text-only examples (no "image") work too.
#   scripts/demo.sh [EXAMPLE_ID] [MODEL_DIR]
# DEMO_TOKENS (default 8) caps the new tokens of each answer; MODES_BIN picks the binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ID=${1:-test-00000}
MODEL=${2:-models/shapes-vqa}
BIN=${MODES_BIN:-build/modes}
TOKENS=${DEMO_TOKENS:-8}
line=$(grep -F "\"id\": \"$ID\"" "$MODEL/data/test.jsonl" | head -n 1 || true)
if [ -z "$line" ]; then
    echo "demo: $MODEL/data/test.jsonl: no example with id $ID" >&2
    exit 1
fi
# The string value of a top-level field of the example (empty when absent), JSON escapes decoded.
# The regex takes the first "KEY": "..." in the line, escaped quotes and backslashes included.
field() {
    local re="\"$1\"[[:space:]]*:[[:space:]]*\"(([^\"\\\\]|\\\\.)*)\""
    [[ $line =~ $re ]] || return 0
    local s=${BASH_REMATCH[1]}
    s=${s//\\\//\/}    # \/ is a JSON escape printf does not know
    s=${s//%/%%}
    printf "${s//\\\"/\"}"  # printf decodes \\ \n \t \uXXXX; the value has no format directives left
}
image=$(field image)
question=$(field question)
image_args=()
if [ -n "$image" ]; then
    image=$MODEL/data/$image
    image_args=(--image "$image")
    echo "image:    $image"
else
    echo "image:    none (a text-only example)"
fi
echo "question: $question"
echo "expected: $(field answer)"
echo
echo "== without skipping"
"$BIN" run -m "$MODEL" "${image_args[@]}" -p "$question" -n "$TOKENS" --stats 2>&1
echo
echo "== with the shipped MoDES policy ($MODEL/policy-88.json)"
"$BIN" run -m "$MODEL" "${image_args[@]}" -p "$question" -n "$TOKENS" --stats --policy "$MODEL/policy-88.json" 2>&1
