"""Checks our PyTorch model against the C engine (`modes forward`) on a few examples, and our numpy
preprocessing against `modes preprocess`.

  /usr/bin/python3 tools/train/check_engine.py --random      # random init, fp32 weights (layout check)
  /usr/bin/python3 tools/train/check_engine.py --model DIR   # a trained folder (bf16 weights)
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from batching import Encoder, all_logits  # noqa: E402
from common import Tokenizer, png_read, st_load, st_save  # noqa: E402
import export  # noqa: E402
import make_data  # noqa: E402
from model import Model, default_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
MODES = os.environ.get("MODES_BIN", os.path.join(ROOT, "build", "modes"))


def engine_logits(mdir, it, tmp):
    case = {"input_ids": np.array([it["ids"]], np.int64)}
    if it["pix"] is not None:
        case["pixel_values"] = it["pix"]
        case["image_grid_thw"] = np.array([it["grid"]], np.int64)
    cin, cout = os.path.join(tmp, "case.safetensors"), os.path.join(tmp, "out.safetensors")
    st_save(cin, case)
    subprocess.run([MODES, "forward", "-m", mdir, "--input", cin, "-o", cout], check=True,
                   stdout=subprocess.DEVNULL)
    return st_load(cout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--random", action="store_true")
    ap.add_argument("--model")
    ap.add_argument("--tokenizer-dir", default=os.path.join(ROOT, "models", "shapes-vqa"))
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    if args.random:
        tdir = args.tokenizer_dir
        tok = Tokenizer(os.path.join(tdir, "tokenizer.json"))
        cfg = export.full_config(default_config(), tok.special)
        cfg["dtype"] = "float32"
        model = Model(cfg)
        model.init_weights(seed=1)
        # larger random weights than the training init so that the check is not dominated by tiny values
        with torch.no_grad():
            for n, p in model.named_parameters():
                if p.dim() > 1:
                    p.mul_(5.0)
                else:
                    p.add_(torch.randn(p.shape) * 0.1)
        mdir = os.path.join(tmp, "model")
        export.write_folder(mdir, model, cfg, tok.special, dtype="f32")
        for f in ("tokenizer.json", "tokenizer_config.json"):
            shutil.copy(os.path.join(tdir, f), mdir)
    else:
        mdir = args.model
        tok = Tokenizer(os.path.join(mdir, "tokenizer.json"))
        cfg = json.load(open(os.path.join(mdir, "config.json")))
        model = Model(cfg)
        sd = {k: torch.from_numpy(v) for k, v in st_load(os.path.join(mdir, "model.safetensors")).items()}
        model.load_state_dict(sd)
    model.eval()
    enc = Encoder(tok, cfg)
    rng = random.Random(5)
    worst = 0.0
    for fam in ["count", "spatial", "arith", "attribute", "word"]:
        ex = make_data.make_example(rng, fam)
        img = None
        if ex["scene"] is not None:
            p = os.path.join(tmp, "img.png")
            idx, pal = make_data.render(ex["scene"])
            from common import png_write_palette
            png_write_palette(p, idx, pal)
            img = png_read(p)
            # preprocessing: ours vs the engine's
            pout = os.path.join(tmp, "pre.safetensors")
            subprocess.run([MODES, "preprocess", "-m", mdir, "--image", p, "-o", pout], check=True,
                           stdout=subprocess.DEVNULL)
            pe = st_load(pout)
            it0 = enc.example(ex, img)
            d = np.abs(pe["pixel_values"] - it0["pix"]).max()
            print(f"  preprocess {img.shape}: grid {pe['image_grid_thw'].tolist()} vs {it0['grid']}, "
                  f"max diff {d:.2e}")
        it = enc.example(ex, img)
        a = all_logits(model, it).numpy()
        e = engine_logits(mdir, it, tmp)["logits"][0]
        d = np.abs(a - e).max()
        rel = d / np.abs(a).max()
        worst = max(worst, rel)
        print(f"{fam:10s} T={len(it['ids']):4d} max|logit| {np.abs(a).max():.3f} max diff {d:.3e} rel {rel:.2e} "
              f"argmax equal {np.mean(a.argmax(-1) == e.argmax(-1)):.3f}")
    print("worst relative diff", worst)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
