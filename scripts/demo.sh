#!/bin/bash
# The main job on the embedded default model: one image question from its test split, answered once
# without skipping and once with the shipped MoDES policy (about 88% of routed experts skipped).
# The default is the first example of the test split.
#   scripts/demo.sh [EXAMPLE_ID] [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
ID=${1:-test-00000}
MODEL=${2:-models/shapes-vqa}
BIN=${MODES_BIN:-build/modes}
line=$(grep -F "\"id\": \"$ID\"" "$MODEL/data/test.jsonl" || true)
if [ -z "$line" ]; then
    echo "demo: $MODEL/data/test.jsonl: no example with id $ID" >&2
    exit 1
fi
field() { sed -n "s/.*\"$1\": \"\\([^\"]*\\)\".*/\\1/p" <<<"$line"; }
image=$MODEL/data/$(field image)
question=$(field question)
echo "image:    $image"
echo "question: $question"
echo "expected: $(field answer)"
echo
echo "== without skipping"
"$BIN" run -m "$MODEL" --image "$image" -p "$question" -n 8 --stats 2>&1
echo
echo "== with the shipped MoDES policy ($MODEL/policy-88.json)"
"$BIN" run -m "$MODEL" --image "$image" -p "$question" -n 8 --stats --policy "$MODEL/policy-88.json" 2>&1
