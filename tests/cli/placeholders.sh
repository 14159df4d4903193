#!/bin/bash
# Sampling never picks the vision placeholders (image/video pads, vision start/end): at temperature 8
# the embedded model once sampled <|image_pad|> for this prompt and seed, and the run then failed
# with "the prompt holds image tokens but no image was given".
set -u
BIN=${MODES_BIN:-build/modes}
M=${MODES_TESTS:-tests}/../models/shapes-vqa
. "$(dirname "${BASH_SOURCE[0]}")/lib/ok.sh"

ok "$BIN" run -m "$M" -p "Tell me a long story about a dragon." -n 40 --temp 8 --seed 2 --json >"$TMP/out.json"
for seed in 1 3 4; do
    ok "$BIN" run -m "$M" -p "Tell me a long story about a dragon." -n 40 --temp 8 --seed $seed --json >"$TMP/out$seed.json"
done
# None of the answers' ids is a placeholder the config names.
ok /usr/bin/python3 - "$M/config.json" "$TMP"/out*.json <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
bad = {c[k] for k in ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")}
for p in sys.argv[2:]:
    ids = json.load(open(p))["ids"]
    assert ids and not bad & set(ids), (p, ids)
PY

ok_done
