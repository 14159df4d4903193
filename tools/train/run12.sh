#!/bin/sh
# Starts or resumes the 12-layer, 64-expert shapes-vqa run of issue 22 (README.md, "12-layer model
# (issue 22)"): the same command does both, train.py resumes from $CKPT/last.pt. In the background:
#   setsid nohup tools/train/run12.sh >> /work/train12/run.log 2>&1 < /dev/null &
# OUT and CKPT default to folders outside the repository; extra arguments go to train.py (e.g.
# --minutes 700 to stretch the schedule when resuming).
HERE=$(cd "$(dirname "$0")" && pwd)
SRC="$HERE/../../models/shapes-vqa"
OUT=${OUT:-/work/train12/shapes-vqa-12}
CKPT=${CKPT:-/work/train12/ckpt}
mkdir -p "$OUT" "$CKPT" || exit 1
# the tokenizer and the calibration/test splits of the 4-layer model, byte for byte, so results compare
[ -e "$OUT/tokenizer.json" ] || cp "$SRC/tokenizer.json" "$SRC/tokenizer_config.json" "$OUT/" || exit 1
[ -e "$OUT/data/test.jsonl" ] || cp -r "$SRC/data" "$OUT/" || exit 1
# one run per checkpoint folder: a second one would overwrite the first one's checkpoints
flock -n -E 75 "$CKPT/run.lock" nice -n 19 /usr/bin/python3 "$HERE/train.py" --out "$OUT" --ckpt "$CKPT" \
    --layers 12 --experts 64 --minutes 600 --threads 1 "$@"
rc=$?
[ $rc = 75 ] && echo "run12.sh: another run holds $CKPT/run.lock" >&2
exit $rc
