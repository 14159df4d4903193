#!/usr/bin/python3
"""Writes the calibration fixture for the tiny golden model: three small PNGs and calib.jsonl.
Deterministic; the committed files are its output. The answers need not be meaningful: the tiny
model has random weights, and calibration only needs fixed teacher-forced examples."""
import json, struct, zlib, os

HERE = os.path.dirname(os.path.abspath(__file__))

def png(path, w, h, pixel):
    rows = b"".join(b"\x00" + bytes(c for x in range(w) for c in pixel(x, y)) for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)

png(os.path.join(HERE, "red_square.png"), 64, 64,
    lambda x, y: (220, 30, 30) if 16 <= x < 48 and 16 <= y < 48 else (240, 240, 240))
png(os.path.join(HERE, "gradient.png"), 96, 32, lambda x, y: (x * 2, y * 6, 128))
png(os.path.join(HERE, "two_dots.png"), 48, 64,
    lambda x, y: (20, 20, 200) if (x - 12) ** 2 + (y - 16) ** 2 < 40 or (x - 36) ** 2 + (y - 48) ** 2 < 40 else (250, 250, 200))

examples = [
    {"id": "c1", "image": "red_square.png", "question": "What colour is the square?", "answer": "red"},
    {"id": "c2", "image": "two_dots.png", "question": "How many dots are there?", "answer": "2"},
    {"id": "c3", "image": "gradient.png", "question": "Is the picture dark on the left?", "answer": "yes", "metric": "yesno"},
    {"id": "c4", "question": "What is 3 plus 4?", "answer": "7"},
    {"id": "c5", "question": "Which comes after Monday?", "answer": "Tuesday"},
    {"id": "c6", "image": ["red_square.png", "two_dots.png"], "question": "Which picture has dots?", "answer": "second",
     "choices": ["first", "second"]},
]
with open(os.path.join(HERE, "calib.jsonl"), "w") as f:
    for e in examples:
        f.write(json.dumps(e) + "\n")
