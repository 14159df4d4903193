"""Without transformers on this machine, the nearest check that a trained folder loads in the Hugging
Face implementation: its tensor names (layer numbers aside), tensor ranks and config keys must be
exactly those of a folder that implementation wrote (the reference tiny model in ../shared/ref).

  /usr/bin/python3 tools/train/check_hf_layout.py models/shapes-vqa [../shared/ref/qwen3vlmoe-tiny-a/model]
Exit 0 when they agree, 1 with the differences otherwise."""
import glob
import json
import os
import re
import struct
import sys


def tensors(folder):
    out = {}
    for p in glob.glob(os.path.join(folder, "*.safetensors")):
        if os.path.basename(p) == "golden.safetensors":
            continue
        with open(p, "rb") as f:
            h = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
        h.pop("__metadata__", None)
        out.update({re.sub(r"\.\d+\.", ".N.", k): len(v["shape"]) for k, v in h.items()})
    return out


def keys(d, pre=""):
    out = set()
    for k, v in d.items():
        out.add(pre + k)
        if isinstance(v, dict):
            out |= keys(v, pre + k + ".")
    return out


def main():
    ours = sys.argv[1]
    ref = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../../shared/ref/qwen3vlmoe-tiny-a/model")
    t_o, t_r = tensors(ours), tensors(ref)
    c_o = keys(json.load(open(os.path.join(ours, "config.json"))))
    c_r = keys(json.load(open(os.path.join(ref, "config.json"))))
    diffs = [f"tensor only in {ours}: {k}" for k in sorted(set(t_o) - set(t_r))]
    diffs += [f"tensor only in {ref}: {k}" for k in sorted(set(t_r) - set(t_o))]
    diffs += [f"rank of {k}: {t_o[k]} vs {t_r[k]}" for k in sorted(set(t_o) & set(t_r)) if t_o[k] != t_r[k]]
    diffs += [f"config key only in {ours}: {k}" for k in sorted(c_o - c_r)]
    diffs += [f"config key only in {ref}: {k}" for k in sorted(c_r - c_o)]
    for d in diffs:
        print(d)
    print(f"{len(t_o)} tensor names and {len(c_o)} config keys compared: {'same' if not diffs else 'DIFFERENT'}")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
