"""Scores a model folder on a data file with OUR engine: `modes run` (chat template, tokenizer,
preprocessing from the PNG, greedy decoding until <|im_end|>) per example; exact match after
stripping whitespace, case-insensitive; accuracy per family.

  /usr/bin/python3 tools/train/eval_engine.py --model models/shapes-vqa [--data .../test.jsonl] [--limit N]
"""
import argparse
import collections
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from make_data import FAMILIES  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "shapes-vqa"))
    ap.add_argument("--data")
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--bin", default=os.environ.get("MODES_BIN", os.path.join(ROOT, "build", "modes")))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=2, help="`modes run` processes at a time")
    ap.add_argument("--extra", default="", help="more `modes run` options, e.g. '--skip topk:4'")
    ap.add_argument("--errors", type=int, default=10, help="print this many wrong answers")
    args = ap.parse_args()
    data = args.data or os.path.join(args.model, "data", "test.jsonl")
    recs = [json.loads(line) for line in open(data)]
    if args.limit:
        recs = recs[:args.limit]
    res = collections.defaultdict(lambda: [0, 0])
    wrong = []
    t0 = time.time()
    def answer(r):
        cmd = [args.bin, "run", "-m", args.model, "-p", r["question"], "-n", "8", "-t", str(args.threads)]
        if "image" in r:
            cmd += ["--image", os.path.join(os.path.dirname(data), r["image"])]
        cmd += args.extra.split()
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout

    with ThreadPoolExecutor(args.jobs) as ex:
        outs = list(ex.map(answer, recs))
    for r, out in zip(recs, outs):
        ok = out.strip().lower() == r["answer"].strip().lower()
        fam = r.get("family", "all")
        res[fam][0] += ok
        res[fam][1] += 1
        if not ok:
            wrong.append((r["id"], r["question"], r["answer"], out.strip()))
    n = sum(v[1] for v in res.values())
    right = sum(v[0] for v in res.values())
    print(f"{data}: {right}/{n} = {right / n:.4f} ({time.time() - t0:.0f} s)")
    for f in FAMILIES + sorted(set(res) - set(FAMILIES)):
        if f in res:
            print(f"  {f:10s} {res[f][0]:4d}/{res[f][1]:4d} = {res[f][0] / res[f][1]:.4f}")
    for w in wrong[:args.errors]:
        print("  wrong:", w)
    json.dump({"accuracy": right / n, "per_family": {f: v[0] / v[1] for f, v in res.items()}, "n": n},
              sys.stderr)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()
