"""Turns task examples into model inputs in the exact prompt format the engine builds
(chat template, docs/qwen3-vl-moe.md section 2.1):
<|im_start|>user\\n[<|vision_start|><|image_pad|>*N<|vision_end|>]{question}
<|im_end|>\\n<|im_start|>assistant\\n, followed by the answer and <|im_end|> (teacher forcing)."""
import numpy as np
import torch

from common import preprocess
from make_data import render_rgb
from model import rope_index


class Encoder:
    def __init__(self, tok, cfg):
        self.tok = tok
        self.cfg = cfg
        s = tok.special
        self.im_start, self.im_end = s["<|im_start|>"], s["<|im_end|>"]
        self.vs, self.ve, self.pad = s["<|vision_start|>"], s["<|vision_end|>"], s["<|image_pad|>"]
        self.nl = tok.encode("\n")
        self.user = tok.encode("user\n")
        self.asst = tok.encode("assistant\n")

    def prompt_ids(self, question, n_image_tokens=0):
        ids = [self.im_start] + self.user
        if n_image_tokens:
            ids += [self.vs] + [self.pad] * n_image_tokens + [self.ve]
        ids += self.tok.encode(question) + [self.im_end] + self.nl + [self.im_start] + self.asst
        return ids

    def example(self, ex, img=None):
        """-> dict(ids, prompt_len, target (answer ids + im_end), pix, grid, pos)."""
        pix, grid = None, None
        if ex["scene"] is not None or img is not None:
            if img is None:
                img = render_rgb(ex["scene"])
            pix, grid = preprocess(img)
        return self.with_image(ex, pix, grid)

    def with_image(self, ex, pix, grid):
        n = grid[1] * grid[2] // 4 if grid else 0
        p = self.prompt_ids(ex["question"], n)
        tgt = self.tok.encode(ex["answer"]) + [self.im_end]
        ids = p + tgt
        pos, _ = rope_index(ids, self.pad, [grid] if grid else [])
        return {"ids": ids, "prompt_len": len(p), "target": tgt, "pix": pix, "grid": grid, "pos": pos}


def collate(items, teacher=True):
    """Right-padded batch. Examples with images must all have the same grid. teacher=True appends the
    targets (training / teacher-forced scoring); the logits wanted are those predicting the targets."""
    B = len(items)
    T = max(len(it["ids"]) for it in items)
    ids = np.zeros((B, T), np.int64)
    pos = np.zeros((3, B, T), np.int64)
    valid = np.zeros((B, T), bool)
    ob, ot, tgt = [], [], []
    rows, pix, grid, index, seen = [], [], None, [], {}
    for b, it in enumerate(items):
        L = len(it["ids"])
        ids[b, :L] = it["ids"]
        pos[:, b, :L] = np.array(it["pos"])
        valid[b, :L] = True
        for j, t in enumerate(it["target"]):
            ob.append(b)
            ot.append(it["prompt_len"] - 1 + j)
            tgt.append(t)
        if it["pix"] is not None:
            assert grid is None or grid == it["grid"]
            grid = it["grid"]
            rows.append(b)
            key = it.get("image_key", ("row", b))
            if key not in seen:
                seen[key] = len(pix)
                pix.append(it["pix"])
            index.append(seen[key])
    out = {"ids": torch.from_numpy(ids), "pos": torch.from_numpy(pos), "valid": torch.from_numpy(valid),
           "out_idx": (torch.tensor(ob), torch.tensor(ot)), "target": torch.tensor(tgt)}
    if pix:
        out["image_pix"] = torch.from_numpy(np.stack(pix))
        out["image_hw"] = (grid[1], grid[2])
        out["image_rows"] = torch.tensor(rows)
        if len(pix) < len(rows):
            out["image_index"] = torch.tensor(index)
    return out


def run(model, batch, **kw):
    return model(batch["ids"], batch["pos"], batch["valid"], batch.get("image_pix"), batch.get("image_hw"),
                 batch.get("image_rows"), batch["out_idx"], image_index=batch.get("image_index"), **kw)


def all_logits(model, it):
    """Logits at every position of one encoded example (the golden file and the engine check)."""
    b = collate([it])
    T = len(it["ids"])
    b["out_idx"] = (torch.zeros(T, dtype=torch.long), torch.arange(T))
    with torch.no_grad():
        lg, _ = run(model, b)
    return lg
