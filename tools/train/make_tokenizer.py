"""Trains a small byte-level BPE on the shapes-vqa task text and writes tokenizer.json and
tokenizer_config.json in the Hugging Face / Qwen2 format (same normaliser, pre-tokenizer and decoder
as Qwen3; the Qwen special-token strings as added tokens; the Qwen3-VL Instruct chat template).

Vocabulary: ids 0..255 the byte symbols (GPT-2 bytes_to_unicode order), then the merges, then the
special tokens. Deterministic: the corpus comes from fixed seeds, ties are broken by the pair text.
"""
import argparse
import collections
import json
import os
import random

from common import PRETOK, SPECIALS, bytes_to_unicode
import make_data

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(HERE, "chat_template_qwen3vl_instruct.jinja")


def corpus(n=30000, seed=7):
    rng = random.Random(seed)
    texts = ["user\n", "assistant\n", "system\n", "\n"] * 1000
    for i in range(n):
        fam = make_data.FAMILIES[i % len(make_data.FAMILIES)]
        ex = make_data.make_example(rng, fam, sides=(192, 192))
        texts.append(ex["question"])
        texts.append(ex["answer"])
    # every word the generator can produce, at least once
    texts += make_data.WORDS + make_data.DAYS + make_data.MONTHS + list(make_data.LETTERS)
    return texts


def train(texts, max_merges):
    b2u = bytes_to_unicode()
    freq = collections.Counter()
    for t in texts:
        for w in PRETOK.findall(t):
            freq[tuple(b2u[b] for b in w.encode())] += 1
    words = {w: c for w, c in freq.items()}
    merges = []
    while len(merges) < max_merges:
        pairs = collections.Counter()
        for w, c in words.items():
            for i in range(len(w) - 1):
                pairs[(w[i], w[i + 1])] += c
        if not pairs:
            break
        best = max(pairs.items(), key=lambda kv: (kv[1], tuple(-ord(ch) for ch in kv[0][0] + " " + kv[0][1])))
        if best[1] < 2:
            break
        a, b = best[0]
        merges.append((a, b))
        nw = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i < len(w) - 1 and w[i] == a and w[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            nw[tuple(out)] = nw.get(tuple(out), 0) + c
        words = nw
    return merges


def write(out_dir, merges):
    b2u = bytes_to_unicode()
    vocab = {}
    for b, u in b2u.items():
        vocab[u] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab) + len(added), "content": s, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|"
                                                   " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
             "behavior": "Isolated", "invert": False}, dict(bl)]},
        "post_processor": dict(bl), "decoder": dict(bl),
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in merges]},
    }
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    cfg = {
        "add_bos_token": False, "add_prefix_space": False,
        "added_tokens_decoder": {str(a["id"]): {k: a[k] for k in ("content", "lstrip", "normalized", "rstrip",
                                                                  "single_word", "special")} for a in added},
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
                                      "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>",
                                      "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>",
                                      "<|video_pad|>"],
        "bos_token": None,
        "chat_template": open(TEMPLATE, encoding="utf-8").read(),
        "clean_up_tokenization_spaces": False, "eos_token": "<|im_end|>", "errors": "replace",
        "model_max_length": 4096, "pad_token": "<|endoftext|>", "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer", "unk_token": None,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
    return {a["content"]: a["id"] for a in added}, len(vocab) + len(added)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="models/shapes-vqa")
    ap.add_argument("--max-merges", type=int, default=1000)
    args = ap.parse_args()
    merges = train(corpus(), args.max_merges)
    ids, n = write(args.out, merges)
    print(f"{len(merges)} merges, {n} tokens; specials {ids}")


if __name__ == "__main__":
    main()
