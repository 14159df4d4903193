"""Small shared helpers for the offline training tools: safetensors read/write, PNG write,
the byte-level BPE encoder (the same algorithm as src/text/tokenizer.c, for ASCII task text),
and the numpy image preprocessing of docs/qwen3-vl-moe.md section 3 (no resize: our images are multiples of 32).

Only the Python standard library and numpy are used here (Debian's python3-numpy)."""
import json
import re
import struct
import zlib

import numpy as np

# ---------------------------------------------------------------------------------------------
# safetensors

_DT = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "U8": np.uint8, "F16": np.float16}


def st_save(path, tensors, metadata=None):
    """tensors: dict name -> numpy array, or (raw_bytes, dtype_str, shape) for bf16."""
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        v = tensors[name]
        if isinstance(v, tuple):
            raw, dt, shape = v
        else:
            a = np.ascontiguousarray(v)
            dt = {np.dtype(np.float32): "F32", np.dtype(np.int64): "I64", np.dtype(np.int32): "I32",
                  np.dtype(np.uint8): "U8", np.dtype(np.float64): "F64", np.dtype(np.float16): "F16"}[a.dtype]
            raw, shape = a.tobytes(), list(a.shape)
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def st_load(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = data[base + a:base + b]
        if info["dtype"] == "BF16":
            u = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            arr = u.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=_DT[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out


def bf16_round(a):
    """fp32 -> bf16 bits (round to nearest even) as uint16, and the widened fp32 values."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return r, (r.astype(np.uint32) << 16).view(np.float32)


# ---------------------------------------------------------------------------------------------
# PNG (palette, 8 bit, zlib level 9, filter 0): small files, written without PIL.

def png_write_palette(path, idx, palette):
    """idx: [H, W] uint8 palette indices; palette: list of (r, g, b)."""
    h, w = idx.shape

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + idx[y].tobytes() for y in range(h))
    plte = b"".join(bytes(c) for c in palette)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)))
        f.write(chunk(b"PLTE", plte))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def png_read(path):
    """Reads the PNGs written above (palette, 8 bit, filter 0 only) back to [H, W, 3] uint8."""
    with open(path, "rb") as f:
        data = f.read()
    pos, idat, plte = 8, b"", None
    while pos < len(data):
        n = struct.unpack(">I", data[pos:pos + 4])[0]
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if tag == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and ctype == 3
        elif tag == b"PLTE":
            plte = np.frombuffer(body, dtype=np.uint8).reshape(-1, 3)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, w + 1)
    assert (raw[:, 0] == 0).all()
    return plte[raw[:, 1:]]


# ---------------------------------------------------------------------------------------------
# Byte-level BPE (docs/qwen3-vl-moe.md section 2.3). The task text is ASCII, so the Qwen pre-tokenizer regex is
# written here with ASCII classes (\p{L} -> [A-Za-z], \p{N} -> [0-9]); identical on ASCII input.

PRETOK = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|'S|'T|'RE|'VE|'M|'LL|'D|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]"
                    r"| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
            "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
            "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]


class Tokenizer:
    def __init__(self, path):
        t = json.load(open(path))
        self.vocab = t["model"]["vocab"]
        self.ranks = {tuple(m): i for i, m in enumerate(t["model"]["merges"])}
        self.special = {a["content"]: a["id"] for a in t["added_tokens"]}
        self.inv = {v: k for k, v in self.vocab.items()}
        self.inv.update({v: k for k, v in self.special.items()})
        self.b2u = bytes_to_unicode()
        self.u2b = {v: k for k, v in self.b2u.items()}
        self.cache = {}
        self.split_re = re.compile("(" + "|".join(re.escape(s) for s in sorted(self.special, key=len, reverse=True)) + ")")

    def _bpe(self, word):
        if word in self.cache:
            return self.cache[word]
        parts = [self.b2u[b] for b in word.encode("utf-8")]
        while len(parts) > 1:
            best, bi = None, -1
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best):
                    best, bi = r, i
            if best is None:
                break
            parts = parts[:bi] + [parts[bi] + parts[bi + 1]] + parts[bi + 2:]
        ids = [self.vocab[p] for p in parts]
        self.cache[word] = ids
        return ids

    def encode(self, text):
        ids = []
        for seg in self.split_re.split(text):
            if not seg:
                continue
            if seg in self.special:
                ids.append(self.special[seg])
                continue
            for w in PRETOK.findall(seg):
                ids.extend(self._bpe(w))
        return ids

    def decode(self, ids):
        s = "".join(self.inv[i] for i in ids)
        out = bytearray()
        for ch in s:
            out.extend(self.u2b[ch].to_bytes(1, "little") if ch in self.u2b else ch.encode())
        return out.decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# Image preprocessing (docs/qwen3-vl-moe.md section 3, steps 4-7; no resize since sides are multiples of 32).

def preprocess(img, patch=16, tps=2, merge=2):
    """img: [H, W, 3] uint8 -> pixel_values [N, 3*tps*patch*patch] f32, grid (1, gh, gw)."""
    h, w, _ = img.shape
    assert h % (patch * merge) == 0 and w % (patch * merge) == 0
    x = img.astype(np.float32).transpose(2, 0, 1)  # C,H,W
    x = (x * np.float32(1 / 255) - np.float32(0.5)) / np.float32(0.5)
    x = np.stack([x] * tps, 0)  # T,C,H,W
    gh, gw = h // patch, w // patch
    x = x.reshape(1, tps, 3, gh // merge, merge, patch, gw // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return np.ascontiguousarray(x.reshape(gh * gw, 3 * tps * patch * patch)), (1, gh, gw)
