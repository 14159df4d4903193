"""Writes a Hugging Face model folder from our PyTorch model: config.json (Hub key style, as
Qwen/Qwen3-VL-30B-A3B-Instruct ships it), generation_config.json, preprocessor_config.json and
model.safetensors (bf16 by default; fp32 for the layout checks). The tokenizer files are written by
make_tokenizer.py into the same folder."""
import copy
import json
import os

import numpy as np

from common import bf16_round, st_save

# Images are generated with sides that are multiples of 32 in [192, 320], so the processor keeps
# them unchanged; other images are resized into 36..100 merged tokens.
MIN_PIXELS = 192 * 192
MAX_PIXELS = 320 * 320


def full_config(cfg, special):
    c = copy.deepcopy(cfg)
    c["image_token_id"] = special["<|image_pad|>"]
    c["video_token_id"] = special["<|video_pad|>"]
    c["vision_start_token_id"] = special["<|vision_start|>"]
    c["vision_end_token_id"] = special["<|vision_end|>"]
    c["text_config"]["bos_token_id"] = special["<|endoftext|>"]
    c["text_config"]["eos_token_id"] = special["<|im_end|>"]
    c["transformers_version"] = "4.57.0"
    return c


def write_folder(out_dir, model, cfg, special, dtype="bf16"):
    os.makedirs(out_dir, exist_ok=True)
    c = dict(cfg)
    c["dtype"] = "bfloat16" if dtype == "bf16" else "float32"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)
    gen = {"bos_token_id": special["<|endoftext|>"], "do_sample": False,
           "eos_token_id": [special["<|im_end|>"], special["<|endoftext|>"]],
           "pad_token_id": special["<|endoftext|>"], "transformers_version": "4.57.0"}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gen, f, indent=2)
    vc = cfg["vision_config"]
    pre = {"do_convert_rgb": True, "do_normalize": True, "do_rescale": True, "do_resize": True,
           "image_mean": [0.5, 0.5, 0.5], "image_processor_type": "Qwen2VLImageProcessorFast",
           "image_std": [0.5, 0.5, 0.5], "merge_size": vc["spatial_merge_size"], "patch_size": vc["patch_size"],
           "processor_class": "Qwen3VLProcessor", "resample": 3, "rescale_factor": 0.00392156862745098,
           "size": {"longest_edge": MAX_PIXELS, "shortest_edge": MIN_PIXELS},
           "temporal_patch_size": vc["temporal_patch_size"]}
    with open(os.path.join(out_dir, "preprocessor_config.json"), "w") as f:
        json.dump(pre, f, indent=2)
    tensors = {}
    for name, p in model.state_dict().items():
        a = p.detach().cpu().float().numpy()
        if dtype == "bf16":
            bits, _ = bf16_round(a)
            tensors[name] = (bits.tobytes(), "BF16", list(a.shape))
        else:
            tensors[name] = a.astype(np.float32)
    st_save(os.path.join(out_dir, "model.safetensors"), tensors, {"format": "pt"})


def bf16_weights_(model):
    """Rounds the model's weights to bf16 in place (so PyTorch computes with the shipped weights)."""
    import torch
    with torch.no_grad():
        for p in model.parameters():
            _, r = bf16_round(p.detach().numpy())
            p.copy_(torch.from_numpy(r))
