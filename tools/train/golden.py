"""Writes OUT/golden.safetensors: a few test examples with the logits of our PyTorch model (the
exported bf16 weights, computed in fp32) for tests/test_embedded.c.

Per case i (metadata "cases" = count):
  case{i}.input_ids [1, T] I64      prompt (chat template) + answer + <|im_end|> (teacher forcing)
  case{i}.logits [1, T, V] F32      PyTorch logits at every position
  case{i}.answer_pos [n] I64        positions whose argmax must be the next answer token / <|im_end|>
  case{i}.answer_ids [n] I64        those tokens
metadata case{i}.question, case{i}.answer, case{i}.image (PNG path relative to the model folder, or "":
the engine preprocesses it itself; pixel values are not stored, to keep the file small - our numpy
preprocessing equals `modes preprocess` to 1.2e-7, see check_engine.py).

  /usr/bin/python3 tools/train/golden.py --model models/shapes-vqa   (rewrite from the folder)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from batching import Encoder, all_logits  # noqa: E402
from common import Tokenizer, png_read, st_load, st_save  # noqa: E402
from model import Model  # noqa: E402

# test-split families to take one example each from (image sizes vary with the example)
CASE_FAMILIES = ["count", "spatial", "attribute", "size", "exist", "arith", "word"]


def logits_of(model, enc, data, r):
    img = png_read(os.path.join(data, r["image"])) if "image" in r else None
    it = enc.example({"question": r["question"], "answer": r["answer"], "scene": None}, img)
    lg = all_logits(model, it)
    pos = list(range(it["prompt_len"] - 1, it["prompt_len"] - 1 + len(it["target"])))
    right = bool((lg[pos].argmax(-1) == torch.tensor(it["target"])).all())
    return it, lg, right


def write(model, enc, out_dir):
    """One case per family in CASE_FAMILIES: the first test example of that family (in file order)
    that the model answers correctly, so that the test can also require the right answer."""
    model.eval()
    data = os.path.join(out_dir, "data")
    tensors, meta = {}, {}
    recs = [json.loads(line) for line in open(os.path.join(data, "test.jsonl"))]
    i = 0
    for fam in CASE_FAMILIES:
        for r in [r for r in recs if r["family"] == fam][:50]:
            it, lg, right = logits_of(model, enc, data, r)
            if right:
                break
        else:
            print(f"golden: no correct {fam} example among the first 50; family left out")
            continue
        p = f"case{i}."
        i += 1
        tensors[p + "input_ids"] = np.array([it["ids"]], np.int64)
        tensors[p + "logits"] = lg.numpy()[None].astype(np.float32)
        n = len(it["target"])
        tensors[p + "answer_pos"] = np.arange(it["prompt_len"] - 1, it["prompt_len"] - 1 + n, dtype=np.int64)
        tensors[p + "answer_ids"] = np.array(it["target"], np.int64)
        meta[p + "question"] = r["question"]
        meta[p + "answer"] = r["answer"]
        meta[p + "image"] = ("data/" + r["image"]) if "image" in r else ""
        meta[p + "family"] = r["family"]
    meta["cases"] = str(i)
    st_save(os.path.join(out_dir, "golden.safetensors"), tensors, meta)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/shapes-vqa")
    args = ap.parse_args()
    torch.set_num_threads(2)
    tok = Tokenizer(os.path.join(args.model, "tokenizer.json"))
    cfg = json.load(open(os.path.join(args.model, "config.json")))
    model = Model(cfg)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in st_load(os.path.join(args.model,
                                                                                    "model.safetensors")).items()})
    write(model, Encoder(tok, cfg), args.model)
    print("wrote", os.path.join(args.model, "golden.safetensors"))


if __name__ == "__main__":
    main()
