"""Trains the embedded shapes-vqa model (a Qwen3VLMoeForConditionalGeneration, ~3 M parameters) on CPU
and writes the Hugging Face folder, the data splits and the golden file.

  /usr/bin/python3 tools/train/train.py --out models/shapes-vqa

Resumable: checkpoints go to tools/train/ckpt/ (every --ckpt-minutes); rerunning the same command
continues from the last one. The data of step s comes from random.Random(seed * 1000003 + s), so a
resumed run sees the same batches. Logs (loss, aux loss, held-out accuracy, expert usage) go to
stdout and tools/train/ckpt/train.log.
"""
import os

# One thread per BLAS/OpenMP pool: on a shared 2-core machine, 2 threads that wait on each other at
# every kernel were 4-6x slower than 1 (measured under load from other jobs); see README.md.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, os.environ.get("TRAIN_THREADS", "1"))

import argparse  # noqa: E402
import collections
import json
import math
import random
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from batching import Encoder, collate, run  # noqa: E402
from common import Tokenizer, png_read, preprocess  # noqa: E402
import export  # noqa: E402
import make_data  # noqa: E402
import make_tokenizer  # noqa: E402
from model import Model, aux_loss, default_config  # noqa: E402

# training mixture (relative weights per family); hard families get more
TRAIN_MIX = {"attribute": 1.0, "count": 1.6, "exist": 1.0, "spatial": 1.6, "size": 1.0, "arith": 0.7,
             "sequence": 0.7, "word": 0.6}


def log(msg, f):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    f.write(line + "\n")
    f.flush()


_DESC = re.compile(r"\b(%s) (%s)\b" % ("|".join(make_data.COLOUR_NAMES), "|".join(make_data.SHAPES)))


def focus_objects(question, scene):
    """The objects a question names, as the answer position should find them: ([first], [second]),
    or None when no single place answers it (counting, a "no" to an existence question)."""
    objs = scene["objs"]
    pairs = _DESC.findall(question)
    if pairs:  # exist, spatial, size: "the <colour> <shape>", one or two of them
        found = [[o for o in objs if (o["colour"], o["shape"]) == p] for p in pairs]
        if not all(found):
            return None
        return found[0], found[-1]
    m = re.match(r"What color is the (\w+)\?", question) or re.match(r"What shape is the (\w+) object\?", question)
    if not m:
        return None
    key = "shape" if m.group(1) in make_data.SHAPES else "colour"
    found = [o for o in objs if o[key] == m.group(1)]
    return (found, found) if found else None


def make_batch(enc, step, seed, bs, per_image=3, text_frac=0.25, max_objs=6):
    """bs rows: about text_frac text-only questions; the rest asks per_image questions about each
    scene of at most max_objs objects (the vision tower runs once per scene)."""
    rng = random.Random(seed * 1000003 + step)
    sides = (rng.choice(make_data.SIDES), rng.choice(make_data.SIDES))
    tf = make_data.TEXT_FAMILIES
    items = []
    n_text = int(round(bs * text_frac))
    for _ in range(n_text):
        f = rng.choices(tf, weights=[TRAIN_MIX[x] for x in tf])[0]
        items.append(enc.example(make_data.make_example(rng, f)))
    img_items, labels, focus, rel = [], [], [], []
    first_pad = 1 + len(enc.user) + 1  # <|im_start|> user\n <|vision_start|>
    while len(img_items) < bs - n_text:
        s, qs = make_data.scene_questions(rng, sides, per_image, TRAIN_MIX, max_objs)
        pix, grid = preprocess(make_data.render_rgb(s))
        labels.append(make_data.cell_labels(s))
        gw = s["w"] // make_data.CELL
        for ex in qs[:bs - n_text - len(img_items)]:
            it = enc.with_image(ex, pix, grid)
            it["image_key"] = len(labels)
            f = focus_objects(ex["question"], s)
            if f:
                focus.append((len(img_items), it["prompt_len"] - 1,
                              [[first_pad + o["cy"] * gw + o["cx"] for o in objs] for objs in f]))
                if len(f[0]) == 1 and len(f[1]) == 1 and f[0][0] is not f[1][0]:
                    a, c = f[0][0], f[1][0]
                    rel.append((len(img_items), it["prompt_len"] - 1, a["cx"] - c["cx"], a["cy"] - c["cy"]))
            img_items.append(it)
    items = img_items + items
    # image rows first (image embeddings fill image-pad positions in row order)
    b = collate(items)
    b["probe_labels"] = torch.from_numpy(np.stack(labels))
    if focus:
        T = b["ids"].shape[1]
        m = torch.zeros(len(focus), 2, T)
        for i, (_, _, heads) in enumerate(focus):
            for h, cols in enumerate(heads):
                m[i, h, cols] = 1.0
        b["focus"] = (torch.tensor([r for r, _, _ in focus]), torch.tensor([t for _, t, _ in focus]), m)
    if rel:
        scale = make_data.PROBE_GROUPS[3][1] - 1  # the value probes' (row, column) scale
        b["relation"] = (torch.tensor([r[0] for r in rel]), torch.tensor([r[1] for r in rel]),
                         torch.tensor([[r[2] / scale, r[3] / scale] for r in rel]))
    return b


def attention_loss(model, layers, focus):
    """Training-only hint: at the position that predicts the answer, head 0 (head 1) of each layer in
    `layers` should put its attention on the image token of the first (second) object the question
    names. Mean of -log(attention mass on those tokens)."""
    rows, t, m = focus
    total = 0.0
    for li in layers:
        p = model.model.language_model.layers[li].self_attn.probs[rows, :2, t]  # [R, 2, T]
        total = total - torch.log((p * m).sum(-1) + 1e-6).mean()
    return total / len(layers)


def value_probe_loss(model, layers, probes, b):
    """Training-only: the values of KV head 0 (read by the hinted heads 0 and 1) at every image token
    of each hinted layer must carry the cell's colour, shape, size, row and column (linear probes,
    not exported). Without it the hinted heads found the named object, but the values they brought
    back carried its colour only (a probe on them read shape 52%, column 38%), and questions about
    shape, position and size stayed at chance."""
    ids, rows = b["ids"], b["image_rows"]
    lab = b["probe_labels"]
    if "image_index" in b:
        lab = lab[b["image_index"]]
    mask = ids[rows] == model.cfg["image_token_id"]  # [R, T], rows x image tokens in raster order
    feats = [model.model.language_model.layers[li].self_attn.values[rows, 0][mask] for li in layers]
    loss = probe_loss(probes[:len(layers)], feats, lab)
    # Row and column also as numbers read by one linear map: "left or right of" then compares two
    # projections. With the classes alone the values carried positions as unordered codes, and
    # spatial questions stayed at chance while attribute and size questions were learnt.
    rc = lab.reshape(-1, lab.shape[-1])[:, 3:5].float() / (make_data.PROBE_GROUPS[3][1] - 1)
    for head, f in zip(probes[len(layers):], feats):
        loss = loss + 10.0 * F.mse_loss(head(f), rc) / len(feats)
    return loss


def relation_loss(taps, layer, heads, rel):
    """Training-only hint for "left or right of" / "above or below": at the position that predicts the
    answer, the residual after `layer` must carry (column, row) of the first named object minus those
    of the second as numbers (a linear regression), and the residual after the next layer their signs
    (a 3-way classifier per axis). The hinted heads already fetch both objects' positions; without
    this, spatial questions stayed at 0.55-0.66 while every family that reads one object was at 0.96+."""
    rows, t, diff = rel

    def at(name):  # RMS-normalised as the next layer's norm sees it: the raw residual is in the hundreds
        x = taps[name][rows, t]
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)

    loss = 10.0 * F.mse_loss(heads[0](at(f"text.layer{layer}.out")), diff)
    nxt = f"text.layer{layer + 1}.out"
    if nxt in taps:
        sign = (torch.sign(diff) + 1).long()  # 0: less, 1: equal, 2: greater
        lg = heads[1](at(nxt)).view(-1, 2, 3)
        loss = loss + F.cross_entropy(lg.reshape(-1, 3), sign.reshape(-1))
    return loss


def probe_loss(probes, feats, labels):
    """Mean over the injected features of the summed cross-entropies of the probe groups."""
    total = 0.0
    for head, f in zip(probes, feats):
        logits = head(f).reshape(-1, head.out_features)
        lab = labels.reshape(-1, len(make_data.PROBE_GROUPS))
        c0 = 0
        for g, (_, n) in enumerate(make_data.PROBE_GROUPS):
            total = total + F.cross_entropy(logits[:, c0:c0 + n], lab[:, g])
            c0 += n
    return total / len(feats)


def val_split(n):
    """n validation examples in the test split's proportions, from their own seed, rendered in memory."""
    total = sum(make_data.TEST_COUNTS.values())
    counts = {f: max(1, round(c * n / total)) for f, c in make_data.TEST_COUNTS.items()}
    return [({"question": e["question"], "answer": e["answer"], "family": e["family"]},
             make_data.render_rgb(e["scene"]) if e["scene"] else None) for e in make_data.make_split("val", counts)]


def load_split(path):
    d = os.path.dirname(path)
    out = []
    for line in open(path):
        r = json.loads(line)
        img = png_read(os.path.join(d, r["image"])) if "image" in r else None
        out.append((r, img))
    return out


def score(model, enc, split, bs=32):
    """Teacher-forced exact match: the answer is right iff every answer token and the final <|im_end|>
    is the argmax (equivalent to greedy decoding). -> {family: (right, total)}"""
    groups = collections.defaultdict(list)
    for r, img in split:
        ex = {"question": r["question"], "answer": r["answer"], "scene": None}
        it = enc.example(ex, img)
        it["family"] = r["family"]
        groups[it["grid"]].append(it)
    res = collections.defaultdict(lambda: [0, 0])
    model.eval()
    with torch.no_grad():
        for g, its in groups.items():
            for i in range(0, len(its), bs):
                chunk = its[i:i + bs]
                b = collate(chunk)
                lg, _ = run(model, b)
                ok = (lg.argmax(-1) == b["target"]).numpy()
                j = 0
                for it in chunk:
                    n = len(it["target"])
                    res[it["family"]][0] += int(ok[j:j + n].all())
                    res[it["family"]][1] += 1
                    j += n
    model.train()
    return dict(res)


def fmt_scores(res):
    r = sum(v[0] for v in res.values())
    n = sum(v[1] for v in res.values())
    parts = " ".join(f"{f}={res[f][0] / res[f][1]:.3f}" for f in make_data.FAMILIES if f in res)
    return r / max(n, 1), f"acc {r / max(n, 1):.4f} ({r}/{n}) " + parts


def usage_entropy(model, enc, split, n=96):
    """Per layer: entropy (bits) of the fraction of top-k slots per expert over n examples."""
    counts = None
    items = []
    for r, img in split[:n]:
        it = enc.example({"question": r["question"], "answer": r["answer"], "scene": None}, img)
        items.append(it)
    model.eval()
    with torch.no_grad():
        for it in items:
            b = collate([it])
            _, routing = run(model, b)
            E = routing[0][0].shape[1]
            c = np.stack([np.bincount(tk.reshape(-1).numpy(), minlength=E) for _, tk in routing])
            counts = c if counts is None else counts + c
    model.train()
    p = counts / counts.sum(1, keepdims=True)
    ent = -(np.where(p > 0, p * np.log2(np.maximum(p, 1e-12)), 0)).sum(1)
    return ent, p


def config_from_args(args):
    """model.default_config with the experiment flags applied."""
    base = default_config()
    if args.hidden:  # the merger writes into the text stream, so its output width follows
        base["text_config"]["hidden_size"] = base["vision_config"]["out_hidden_size"] = args.hidden
        base["text_config"]["intermediate_size"] = 2 * args.hidden
    if args.head_dim:
        tcfg = base["text_config"]
        sec = tcfg["rope_scaling"]["mrope_section"]
        if args.head_dim % tcfg["head_dim"]:
            sys.exit(f"--head-dim {args.head_dim}: must be a multiple of {tcfg['head_dim']} (mrope_section scales with it)")
        scale = args.head_dim // tcfg["head_dim"]
        tcfg["head_dim"] = args.head_dim
        tcfg["rope_scaling"]["mrope_section"] = [x * scale for x in sec]
    if args.rope_theta:
        base["text_config"]["rope_theta"] = args.rope_theta
    if args.moe_inter:
        base["text_config"]["moe_intermediate_size"] = args.moe_inter
    if args.layers:
        base["text_config"]["num_hidden_layers"] = args.layers
    if args.experts:
        if args.experts < base["text_config"]["num_experts_per_tok"]:
            sys.exit(f"--experts {args.experts}: fewer than the {base['text_config']['num_experts_per_tok']} "
                     f"experts per token")
        base["text_config"]["num_experts"] = args.experts
    return base


def hinted_layers(spec, n_layers):
    """The text layers that get the attention hint and the value probes (the relation hint reads
    after the last of them and after the next one). Default: layer n_layers // 4, i.e. layer 1 of the
    shipped 4-layer model (its recipe) and layer 3 of a 12-layer one: a quarter of the depth in, after
    both DeepStack injections (text layers 0 and 1), with the question read by the layers before it and
    three quarters of the network left to use what the hinted heads fetched."""
    layers = [int(x) for x in spec.split(",")] if spec else [max(1, n_layers // 4)]
    bad = [li for li in layers if not 0 <= li < n_layers]
    if bad:
        sys.exit(f"--attn-layers {spec}: layer {bad[0]} does not exist in a {n_layers}-layer model")
    return layers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/shapes-vqa")
    ap.add_argument("--ckpt", default=os.path.join(HERE, "ckpt"))
    ap.add_argument("--steps", type=int, default=1500, help="length of the run in steps (without --minutes)")
    ap.add_argument("--minutes", type=float, default=0, help="length of the run in training minutes instead")
    ap.add_argument("--bs", type=int, default=32)
    ap.add_argument("--per-image", type=int, default=3, help="questions per training scene")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--aux", type=float, default=0.01, help="load-balancing loss coefficient")
    ap.add_argument("--probe", type=float, default=0.5, help="vision probe loss coefficient")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("TRAIN_THREADS", "1")))
    ap.add_argument("--eval-minutes", type=float, default=8.0)
    ap.add_argument("--eval-n", type=int, default=300)
    ap.add_argument("--ckpt-minutes", type=float, default=4.0)
    ap.add_argument("--bench", type=int, default=0, help="time N steps and exit")
    ap.add_argument("--curriculum", type=int, default=1500,
                    help="steps over which the most objects per training scene grows from 1 to 6 (0: none)")
    ap.add_argument("--hidden", type=int, default=0, help="text hidden size (default: model.default_config)")
    ap.add_argument("--head-dim", type=int, default=0,
                    help="attention head width; mrope_section is rescaled to it (default: model.default_config)")
    ap.add_argument("--rope-theta", type=float, default=0, help="RoPE base (default: model.default_config)")
    ap.add_argument("--moe-inter", type=int, default=0, help="expert intermediate size (default: model.default_config)")
    ap.add_argument("--layers", type=int, default=0, help="text decoder layers, all MoE (default: model.default_config)")
    ap.add_argument("--experts", type=int, default=0,
                    help="routed experts per layer; 8 per token as before (default: model.default_config)")
    ap.add_argument("--attn-sup", type=float, default=0.5,
                    help="coefficient of the attention hint (attention_loss; 0: none)")
    ap.add_argument("--attn-layers", default="",
                    help="text layers whose heads 0 and 1 get the attention hint, comma-separated "
                         "(default: layers // 4, layer 1 of the 4-layer model; see hinted_layers)")
    ap.add_argument("--value-probe", type=float, default=0.5,
                    help="coefficient of the value probes on the hinted layers (value_probe_loss; 0: none)")
    ap.add_argument("--relation-hint", type=float, default=0.5,
                    help="coefficient of the position-difference hint after the hinted layer (relation_loss; 0: none)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    os.makedirs(args.ckpt, exist_ok=True)
    logf = open(os.path.join(args.ckpt, "train.log"), "a")

    # data and tokenizer (deterministic; skipped when present)
    if not os.path.exists(os.path.join(args.out, "tokenizer.json")):
        make_tokenizer.write(args.out, make_tokenizer.train(make_tokenizer.corpus(), 1000))
    if not os.path.exists(os.path.join(args.out, "data", "test.jsonl")):
        d = os.path.join(args.out, "data")
        make_data.write_split(d, "calib", make_data.make_split("calib", make_data.CALIB_COUNTS))
        make_data.write_split(d, "test", make_data.make_split("test", make_data.TEST_COUNTS))
    tok = Tokenizer(os.path.join(args.out, "tokenizer.json"))
    cfg = export.full_config(config_from_args(args), tok.special)
    model = Model(cfg)
    model.init_weights(seed=args.seed)
    nparam = sum(p.numel() for p in model.parameters())
    enc = Encoder(tok, cfg)
    tc = cfg["text_config"]
    E, K = tc["num_experts"], tc["num_experts_per_tok"]
    attn_layers = hinted_layers(args.attn_layers, tc["num_hidden_layers"]) if args.attn_sup else []
    for li in attn_layers:
        model.model.language_model.layers[li].self_attn.keep_probs = True

    # Training-only probes (not exported): from each merged image token, and from each DeepStack
    # feature, read the object in its 32x32 cell (colour, shape, size, each with an "empty" class) and
    # the cell's row and column. Without a probe the vision tower gets almost no gradient while the
    # text side cannot use it yet, and Adam's normalised steps let its weights drift until the image
    # embeddings are a huge constant (a first run: std 209, chance on every image family). A second
    # run probed only the main embeddings with one joint class (colour x shape x size): the probe was
    # perfect but the DeepStack features (std 6-14, no direct gradient) were added on top unchecked,
    # and the text side stayed near chance on attribute/spatial/size after 5800 steps (train-set
    # accuracy equal to held-out: underfitting). Factorised targets make each property, and the
    # position that spatial questions need, linearly readable from every injected feature.
    n_feat = 1 + len(cfg["vision_config"]["deepstack_visual_indexes"])
    n_cls = sum(c for _, c in make_data.PROBE_GROUPS)
    probe = torch.nn.ModuleList([torch.nn.Linear(tc["hidden_size"], n_cls) for _ in range(n_feat)])
    params = list(model.named_parameters()) + [("probe." + n, p) for n, p in probe.named_parameters()]
    decay = [p for n, p in params if p.dim() > 1]
    nodecay = [p for n, p in params if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": nodecay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.98), eps=1e-8)
    # value probes: one classifier per hinted layer, then one (row, column) regression per hinted layer
    vprobe = torch.nn.ModuleList([torch.nn.Linear(tc["head_dim"], n_cls) for _ in attn_layers] +
                                 [torch.nn.Linear(tc["head_dim"], 2) for _ in attn_layers])
    vopt = torch.optim.AdamW(vprobe.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    # relation hint: a (column, row) difference regression and a sign classifier (relation_loss)
    rprobe = torch.nn.ModuleList([torch.nn.Linear(tc["hidden_size"], 2), torch.nn.Linear(tc["hidden_size"], 6)])
    ropt = torch.optim.AdamW(rprobe.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=0.01)
    step, elapsed, start, before = 0, 0.0, 0, 0.0
    ck = os.path.join(args.ckpt, "last.pt")
    if os.path.exists(ck) and not args.bench:
        s = torch.load(ck)
        if s.get("text_config", tc) != tc:  # e.g. a 4-layer checkpoint under a --layers 12 command
            sys.exit(f"{ck}: a checkpoint of another text model (layers, experts or widths differ from "
                     f"this command's); give another --ckpt")
        model.load_state_dict(s["model"])
        step, elapsed = s["step"], s["elapsed"]
        if s.get("probe_version") == 2:
            probe.load_state_dict(s["probe"])
            opt.load_state_dict(s["opt"])
            if "vprobe" in s and args.value_probe:  # a checkpoint from before the regressions: those start fresh
                strict = all(k in s["vprobe"] for k in vprobe.state_dict())
                vprobe.load_state_dict(s["vprobe"], strict=strict)
                if strict:
                    vopt.load_state_dict(s["vopt"])
            if "rprobe" in s and args.relation_hint:
                rprobe.load_state_dict(s["rprobe"])
                ropt.load_state_dict(s["ropt"])
            start, before = s["start"], s["before"]
            log(f"resumed from {ck} at step {step} ({(before + elapsed) / 60:.1f} min trained)", logf)
        else:  # a checkpoint of the joint-class probe: keep the weights, new probes and optimiser
            start, before, elapsed = step, elapsed, 0.0
            log(f"restarted from the weights of {ck} (step {step}, {before / 60:.1f} min trained) "
                f"with factorised probes and a new schedule", logf)
    else:
        log(f"new run: {nparam} parameters, args {vars(args)}", logf)

    test = load_split(os.path.join(args.out, "data", "test.jsonl"))
    held = val_split(args.eval_n)  # progress is watched on a split of its own, not on test

    def progress():
        # with --minutes the schedule follows the training time spent (resumable: elapsed is saved)
        if args.minutes:
            return elapsed / (args.minutes * 60)
        return step / args.steps

    def lr_at(s):
        if s - start < args.warmup:
            return args.lr * (s - start + 1) / args.warmup
        t = progress()
        return args.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    def finished():
        return progress() >= 1.0

    def max_objs_at(s):
        # a curriculum: with one object in the scene, "the triangle" has a single place to attend to,
        # so the text side learns to read the image before it must pick one object among several
        if not args.curriculum:
            return 6
        return min(6, 1 + (5 * s) // args.curriculum)

    def save():
        tmp = ck + ".tmp"
        torch.save({"model": model.state_dict(), "probe": probe.state_dict(), "opt": opt.state_dict(), "step": step, "elapsed": elapsed,
                    "probe_version": 2, "start": start, "before": before, "text_config": tc,
                    **({"vprobe": vprobe.state_dict(), "vopt": vopt.state_dict()} if args.value_probe else {}),
                    **({"rprobe": rprobe.state_dict(), "ropt": ropt.state_dict()} if args.relation_hint else {})}, tmp)
        os.replace(tmp, ck)

    model.train()
    t_ck = time.time()
    t0 = time.time()
    run_loss, run_aux, run_probe, run_attn, run_vprobe, run_rel, run_n = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0
    t_ev = time.time()
    while (step < args.bench) if args.bench else not finished():
        ts = time.time()
        b = make_batch(enc, step, args.seed, args.bs, args.per_image, max_objs=max_objs_at(step))
        for g in opt.param_groups + vopt.param_groups + ropt.param_groups:
            g["lr"] = lr_at(step)
        taps = {} if args.relation_hint else None  # layer outputs, read only by the relation hint
        lg, routing = run(model, b, taps=taps)
        ce = F.cross_entropy(lg, b["target"])
        al = aux_loss(routing, E, K)
        pl = probe_loss(probe, model.last_image_embeds, b["probe_labels"])
        loss = ce + args.aux * al + args.probe * pl
        if attn_layers and "focus" in b:
            at = attention_loss(model, attn_layers, b["focus"])
            loss = loss + args.attn_sup * at
            run_attn += float(at)
        if attn_layers and args.value_probe and "image_rows" in b:
            vl = value_probe_loss(model, attn_layers, vprobe, b)
            loss = loss + args.value_probe * vl
            run_vprobe += float(vl)
        if attn_layers and args.relation_hint and "relation" in b:
            rl = relation_loss(taps, attn_layers[-1], rprobe, b["relation"])
            loss = loss + args.relation_hint * rl
            run_rel += float(rl)
        opt.zero_grad(set_to_none=True)
        vopt.zero_grad(set_to_none=True)
        ropt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        vopt.step()
        ropt.step()
        step += 1
        elapsed += time.time() - ts
        run_loss += float(ce)
        run_aux += float(al)
        run_probe += float(pl)
        run_n += 1
        if args.bench:
            print(f"step {step} {time.time() - ts:.2f}s ce {float(ce):.3f} aux {float(al):.3f} T {b['ids'].shape}")
            continue
        if step % 25 == 0:
            log(f"step {step} ce {run_loss / run_n:.4f} aux {run_aux / run_n:.4f} probe {run_probe / run_n:.4f} "
                f"attn {run_attn / run_n:.4f} vprobe {run_vprobe / run_n:.4f} rel {run_rel / run_n:.4f} "
                f"lr {lr_at(step):.2e} "
                f"{elapsed / max(step - start, 1):.2f} s/step, {(before + elapsed) / 60:.1f} min", logf)
            run_loss, run_aux, run_probe, run_attn, run_vprobe, run_rel, run_n = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0
        if time.time() - t_ev > args.eval_minutes * 60 or finished():
            acc, s = fmt_scores(score(model, enc, held))
            log(f"step {step} held-out {s}", logf)
            t_ev = time.time()
        if time.time() - t_ck > args.ckpt_minutes * 60 or finished():
            save()
            t_ck = time.time()
    if args.bench:
        print(f"{(time.time() - t0) / args.bench:.2f} s/step")
        return

    # final: full test and calibration scores (fp32), then bf16 export and scores with bf16 weights
    log(f"training done: {step} steps, {(before + elapsed) / 60:.1f} min", logf)
    export.bf16_weights_(model)
    acc, s = fmt_scores(score(model, enc, test))
    log(f"test (bf16 weights, PyTorch) {s}", logf)
    ent, p = usage_entropy(model, enc, test)
    log("expert usage entropy per layer (bits, max %.2f): %s" % (math.log2(E), " ".join(f"{e:.2f}" for e in ent)),
        logf)
    log("max expert share per layer: %s" % " ".join(f"{m:.3f}" for m in p.max(1)), logf)
    export.write_folder(args.out, model, cfg, tok.special, dtype="bf16")
    import golden
    golden.write(model, enc, args.out)
    log(f"wrote {args.out}", logf)


if __name__ == "__main__":
    main()
