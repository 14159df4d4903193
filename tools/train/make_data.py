"""Deterministic generator of the shapes-vqa task (synthetic visual and text question answering).

Scenes: 1-6 objects (shape, colour, size) on a background (solid, stripes or checks), drawn on a
W x H canvas with W, H in {192, ..., 320}, multiples of 32, so the Qwen3-VL processor (patch 16,
merge 2) keeps the image as it is and gives (W/32)*(H/32) = 36..100 vision tokens. Each object sits
in its own 32x32 cell (one merged vision token), with a small jitter.

Question families (one-word or number answers):
  image: attribute, count, exist, spatial, size
  text : arith, sequence, word

Everything random comes from Python's random.Random with fixed seeds (stable across versions), so
`make_data.py --out models/shapes-vqa` regenerates data/calib.jsonl, data/test.jsonl and the PNGs
bit-identically (PNGs are written by common.png_write_palette with zlib level 9).
"""
import argparse
import json
import os
import random

import numpy as np

from common import png_write_palette

SHAPES = ["circle", "square", "triangle", "diamond"]
COLOURS = {"red": (220, 40, 40), "green": (30, 160, 60), "blue": (40, 90, 230), "yellow": (245, 205, 30),
           "purple": (150, 60, 190)}
COLOUR_NAMES = list(COLOURS)
SIZES = ["small", "large"]
BACKGROUNDS = [((250, 250, 250), (232, 232, 232)), ((236, 228, 210), (222, 212, 190)),
               ((215, 230, 240), (200, 218, 232)), ((222, 240, 222), (205, 228, 205)),
               ((70, 70, 70), (55, 55, 55)), ((35, 40, 60), (50, 55, 78))]
PATTERNS = ["solid", "hstripes", "vstripes", "checks"]
SIDES = [192, 224, 256, 288, 320]
CELL = 32

IMAGE_FAMILIES = ["attribute", "count", "exist", "spatial", "size"]
TEXT_FAMILIES = ["arith", "sequence", "word"]
FAMILIES = IMAGE_FAMILIES + TEXT_FAMILIES

WORDS = ["apple", "tree", "house", "river", "stone", "cloud", "bird", "fish", "horse", "chair", "table", "lamp",
         "book", "door", "window", "garden", "bread", "milk", "paper", "pencil", "sun", "moon", "star", "rain",
         "snow", "wind", "boat", "train", "road", "bridge", "cat", "dog", "mouse", "lion", "tiger", "bear"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


# ---------------------------------------------------------------------------------------------
# scenes

def make_scene(rng, n=None, sides=None):
    w, h = sides if sides else (rng.choice(SIDES), rng.choice(SIDES))
    if n is None:
        n = rng.randint(1, 6)
    cells = [(cx, cy) for cy in range(h // CELL) for cx in range(w // CELL)]
    objs = []
    for (cx, cy) in rng.sample(cells, n):
        size = rng.choice(SIZES)
        # Small objects are 18 px across and stay near the cell centre: at 14 px with a jitter of 7
        # (the first version) the vision tower told their shapes apart only 54-58% of the time
        # (98.5% for large ones), which capped every question that names a shape.
        half = 13 if size == "large" else 9
        jit = 2 if size == "large" else 4
        objs.append({"shape": rng.choice(SHAPES), "colour": rng.choice(COLOUR_NAMES), "size": size,
                     "cx": cx, "cy": cy, "x": cx * CELL + 16 + rng.randint(-jit, jit),
                     "y": cy * CELL + 16 + rng.randint(-jit, jit), "half": half})
    bg = rng.randrange(len(BACKGROUNDS))
    pat = rng.choice(PATTERNS)
    period = rng.choice([8, 16, 24])
    return {"w": w, "h": h, "objs": objs, "bg": bg, "pattern": pat, "period": period}


def render(scene):
    """-> palette indices [H, W] uint8 and the palette. Index 0, 1: background tones; 2..: colours."""
    w, h = scene["w"], scene["h"]
    yy, xx = np.mgrid[0:h, 0:w]
    p = scene["period"]
    if scene["pattern"] == "solid":
        img = np.zeros((h, w), np.uint8)
    elif scene["pattern"] == "hstripes":
        img = ((yy // p) % 2).astype(np.uint8)
    elif scene["pattern"] == "vstripes":
        img = ((xx // p) % 2).astype(np.uint8)
    else:
        img = (((yy // p) + (xx // p)) % 2).astype(np.uint8)
    for o in scene["objs"]:
        dx, dy, r = xx - o["x"] + 0.5, yy - o["y"] + 0.5, o["half"]
        if o["shape"] == "circle":
            m = dx * dx + dy * dy <= r * r
        elif o["shape"] == "square":
            m = (np.abs(dx) <= r * 0.85) & (np.abs(dy) <= r * 0.85)
        elif o["shape"] == "diamond":
            m = np.abs(dx) + np.abs(dy) <= r
        else:  # triangle, apex up
            m = (dy >= -r) & (dy <= r * 0.8) & (np.abs(dx) <= (dy + r) * 0.6)
        img[m] = 2 + COLOUR_NAMES.index(o["colour"])
    palette = list(BACKGROUNDS[scene["bg"]]) + [COLOURS[c] for c in COLOUR_NAMES]
    return img, palette


def render_rgb(scene):
    idx, pal = render(scene)
    return np.array(pal, np.uint8)[idx]


def desc(o):
    return f"{o['colour']} {o['shape']}"


def plural(shape):
    return shape + "s"


# ---------------------------------------------------------------------------------------------
# questions (return (question, answer) or None when the scene does not allow this family)

def q_attribute(rng, s):
    objs = s["objs"]
    if rng.random() < 0.5:
        cands = [o for o in objs if sum(p["shape"] == o["shape"] for p in objs) == 1]
        if not cands:
            return None
        o = rng.choice(cands)
        return f"What color is the {o['shape']}?", o["colour"]
    cands = [o for o in objs if sum(p["colour"] == o["colour"] for p in objs) == 1]
    if not cands:
        return None
    o = rng.choice(cands)
    return f"What shape is the {o['colour']} object?", o["shape"]


def q_count(rng, s):
    objs = s["objs"]
    r = rng.random()
    if r < 0.4:
        return "How many objects are there?", str(len(objs))
    if r < 0.7:
        c = rng.choice([o["colour"] for o in objs] + [rng.choice(COLOUR_NAMES)])
        return f"How many {c} objects are there?", str(sum(o["colour"] == c for o in objs))
    sh = rng.choice([o["shape"] for o in objs] + [rng.choice(SHAPES)])
    return f"How many {plural(sh)} are there?", str(sum(o["shape"] == sh for o in objs))


def q_exist(rng, s):
    objs = s["objs"]
    present = {(o["colour"], o["shape"]) for o in objs}
    if rng.random() < 0.5:
        c, sh = rng.choice(sorted(present))
        ans = "yes"
    else:
        absent = [(c, sh) for c in COLOUR_NAMES for sh in SHAPES if (c, sh) not in present]
        # prefer near misses (a colour or a shape that is in the scene) so both must be checked
        near = [p for p in absent if any(p[0] == o["colour"] or p[1] == o["shape"] for o in objs)]
        c, sh = rng.choice(near if near and rng.random() < 0.8 else absent)
        ans = "no"
    return f"Is there a {c} {sh}?", ans


def unique_objs(objs):
    return [o for o in objs if sum(desc(p) == desc(o) for p in objs) == 1]


def q_spatial(rng, s):
    u = unique_objs(s["objs"])
    if rng.random() < 0.5:
        pairs = [(a, b) for a in u for b in u if a is not b and a["cx"] != b["cx"]]
        if not pairs:
            return None
        a, b = rng.choice(pairs)
        return f"Is the {desc(a)} left or right of the {desc(b)}?", "left" if a["cx"] < b["cx"] else "right"
    pairs = [(a, b) for a in u for b in u if a is not b and a["cy"] != b["cy"]]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    return f"Is the {desc(a)} above or below the {desc(b)}?", "above" if a["cy"] < b["cy"] else "below"


def q_size(rng, s):
    u = unique_objs(s["objs"])
    pairs = [(a, b) for a in u for b in u if a is not b and a["size"] != b["size"]]
    if not pairs:
        if u and rng.random() < 0.3:
            o = rng.choice(u)
            return f"Is the {desc(o)} small or large?", o["size"]
        return None
    a, b = rng.choice(pairs)
    return f"Is the {desc(a)} bigger or smaller than the {desc(b)}?", "bigger" if a["size"] == "large" else "smaller"


IMAGE_Q = {"attribute": q_attribute, "count": q_count, "exist": q_exist, "spatial": q_spatial, "size": q_size}
# object count per family: counting uses 1..6 uniformly; relations need at least two objects
NOBJ = {"attribute": (1, 6), "count": (1, 6), "exist": (1, 6), "spatial": (2, 6), "size": (2, 6)}


def q_arith(rng):
    if rng.random() < 0.5:
        a, b = rng.randint(0, 9), rng.randint(0, 9)
        return f"What is {a} plus {b}?", str(a + b)
    a = rng.randint(0, 18)
    b = rng.randint(0, min(a, 9))
    return f"What is {a} minus {b}?", str(a - b)


def q_sequence(rng):
    r = rng.random()
    after = rng.random() < 0.5
    word = "after" if after else "before"
    if r < 0.4:
        n = rng.randint(0, 98) if after else rng.randint(1, 99)
        return f"What number comes {word} {n}?", str(n + 1 if after else n - 1)
    if r < 0.65:
        i = rng.randint(0, 24) if after else rng.randint(1, 25)
        return f"What letter comes {word} {LETTERS[i]}?", LETTERS[i + 1 if after else i - 1]
    if r < 0.85:
        i = rng.randrange(7)
        return f"What day comes {word} {DAYS[i]}?", DAYS[(i + (1 if after else -1)) % 7]
    i = rng.randrange(12)
    return f"What month comes {word} {MONTHS[i]}?", MONTHS[(i + (1 if after else -1)) % 12]


ORD = ["first", "second", "third", "fourth", "fifth"]


def q_word(rng):
    n = rng.randint(3, 5)
    ws = rng.sample(WORDS, n)
    if rng.random() < 0.3:
        return f"What is the last word in: {' '.join(ws)}?", ws[-1]
    k = rng.randrange(min(n, 3))
    return f"What is the {ORD[k]} word in: {' '.join(ws)}?", ws[k]


TEXT_Q = {"arith": q_arith, "sequence": q_sequence, "word": q_word}


def make_example(rng, family, sides=None):
    """-> dict(family, question, answer, scene or None)."""
    if family in TEXT_Q:
        q, a = TEXT_Q[family](rng)
        return {"family": family, "question": q, "answer": a, "scene": None}
    lo, hi = NOBJ[family]
    while True:
        s = make_scene(rng, rng.randint(lo, hi), sides)
        qa = IMAGE_Q[family](rng, s)
        if qa:
            return {"family": family, "question": qa[0], "answer": qa[1], "scene": s}


def scene_questions(rng, sides, k, weights, max_objs=6):
    """Training: one scene and k questions about it (families drawn by weight among those the scene
    allows), so the vision tower runs once for k examples."""
    s = make_scene(rng, rng.randint(1, max_objs), sides)
    fams = [f for f in IMAGE_FAMILIES if len(s["objs"]) >= NOBJ[f][0]]
    out, tries = [], 0
    while len(out) < k and tries < 10 * k:
        tries += 1
        f = rng.choices(fams, weights=[weights[x] for x in fams])[0]
        qa = IMAGE_Q[f](rng, s)
        if qa and all(qa[0] != o["question"] for o in out):
            out.append({"family": f, "question": qa[0], "answer": qa[1], "scene": s})
    return s, out


# Training-only probe targets, factorised so that each property is linearly readable on its own
# (a query for "the triangle" must match a key on shape alone): (name, classes) per group.
PROBE_GROUPS = [("colour", 1 + len(COLOUR_NAMES)), ("shape", 1 + len(SHAPES)), ("size", 1 + len(SIZES)),
                ("row", max(SIDES) // CELL), ("col", max(SIDES) // CELL)]


def cell_labels(scene):
    """One row per merged vision token (32x32 cell, raster order): colour, shape, size (0 for an empty
    cell, else 1 + index) and the cell's row and column."""
    gw, gh = scene["w"] // CELL, scene["h"] // CELL
    lab = np.zeros((gh * gw, len(PROBE_GROUPS)), np.int64)
    lab[:, 3] = np.repeat(np.arange(gh), gw)
    lab[:, 4] = np.tile(np.arange(gw), gh)
    for o in scene["objs"]:
        lab[o["cy"] * gw + o["cx"], :3] = (1 + COLOUR_NAMES.index(o["colour"]), 1 + SHAPES.index(o["shape"]),
                                           1 + SIZES.index(o["size"]))
    return lab


# Split sizes per family (test >= 1000, calibration 1024) and seeds.
TEST_COUNTS = {"attribute": 200, "count": 200, "exist": 160, "spatial": 200, "size": 160, "arith": 100,
               "sequence": 100, "word": 80}
CALIB_COUNTS = {"attribute": 170, "count": 170, "exist": 140, "spatial": 170, "size": 140, "arith": 84,
                "sequence": 84, "word": 66}
SEEDS = {"test": 20261124, "calib": 20261125, "val": 20261126}  # val: training logs only, never written


def make_split(name, counts):
    rng = random.Random(SEEDS[name])
    fam = [f for f in FAMILIES for _ in range(counts[f])]
    rng.shuffle(fam)
    return [make_example(rng, f) for f in fam]


def write_split(out_dir, name, examples):
    img_dir = os.path.join(out_dir, "images")
    os.makedirs(img_dir, exist_ok=True)
    lines = []
    for i, ex in enumerate(examples):
        eid = f"{name}-{i:05d}"
        rec = {"id": eid}
        if ex["scene"] is not None:
            idx, pal = render(ex["scene"])
            png_write_palette(os.path.join(img_dir, eid + ".png"), idx, pal)
            rec["image"] = f"images/{eid}.png"
        rec.update({"question": ex["question"], "answer": ex["answer"], "metric": "exact", "family": ex["family"]})
        lines.append(json.dumps(rec))
    with open(os.path.join(out_dir, f"{name}.jsonl"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/shapes-vqa", help="model folder; writes OUT/data/")
    args = ap.parse_args()
    d = os.path.join(args.out, "data")
    write_split(d, "calib", make_split("calib", CALIB_COUNTS))
    write_split(d, "test", make_split("test", TEST_COUNTS))
    print("wrote", d)


if __name__ == "__main__":
    main()
