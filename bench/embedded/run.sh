#!/bin/bash
# Accuracy against skip ratio on the embedded model (issue 5, item 6): calibrate and search on the
# calibration split, then evaluate every method at every target on the test split, in one eval run.
#   bench/embedded/run.sh [MODEL_DIR] [OUT_DIR]
# Writes OUT_DIR/{alphas.json, policies/*.json, eval.json, eval.txt, accuracy.svg, report.md}.
# Nothing here looks at the test split before the final eval.
set -euo pipefail
MODEL=${1:-models/shapes-vqa}
OUT=${2:-bench/embedded/results}
BIN=${MODES_BIN:-build/modes}
CALIB=${CALIB:-$MODEL/data/calib.jsonl}
TEST=${TEST:-$MODEL/data/test.jsonl}
TARGETS=${TARGETS:-"0.5 0.63 0.75 0.83 0.88"}
GRID=${GRID:-100}
CAPS=${CAPS:-"--cap-text 1 --cap-vision 1"}
LIMIT=${LIMIT:-0}              # examples of each split (0: all)
SEARCH_LIMIT=${SEARCH_LIMIT:-$LIMIT} # calibration examples for the threshold searches
mkdir -p "$OUT/policies"
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

log "calibrate on $CALIB"
"$BIN" calibrate -m "$MODEL" --data "$CALIB" --limit "$LIMIT" -o "$OUT/alphas.json"
runs=()
for t in $TARGETS; do
    for method in modes gmlg-threshold dmt threshold naee; do
        p="$OUT/policies/$method-$t.json"
        log "search $method for $t"
        if "$BIN" search -m "$MODEL" --data "$CALIB" --limit "$SEARCH_LIMIT" --alphas "$OUT/alphas.json" --target "$t" \
            --grid "$GRID" $CAPS --method "$method" -o "$p" 2>>"$OUT/search.log"; then
            runs+=(--policy "$p")
        else
            log "  $method cannot reach $t (see search.log)"
        fi
    done
done
# top-k reduction is discrete: k' of k gives (k - k')/k of the slots.
K=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['text_config']['num_experts_per_tok'])" "$MODEL/config.json")
for ((k = K / 2; k >= 1; k--)); do runs+=(--skip "topk:$k"); done

log "eval on $TEST with ${#runs[@]} / 2 policies"
"$BIN" eval -m "$MODEL" --bench "$TEST" --limit "$LIMIT" "${runs[@]}" -o "$OUT/eval.json" --plot "$OUT/accuracy.svg" \
    | tee "$OUT/eval.txt"
/usr/bin/python3 "$(dirname "$0")/report.py" "$OUT" > "$OUT/report.md"
log "report: $OUT/report.md"
