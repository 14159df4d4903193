#!/usr/bin/python3
"""Formats the results of bench/embedded/run.sh as markdown (stdout) and draws the per-layer skip
rates of the MoDES policies as an SVG beside them. Offline tool: reads eval.json and the policies."""
import glob, json, os, sys

out = sys.argv[1]
ev = json.load(open(os.path.join(out, "eval.json")))
runs = ev["runs"]
base = runs[0]

def label(r):
    s = r["skip"]
    return os.path.basename(s)[:-5] if s.endswith(".json") else s

print("# Accuracy against experts skipped: the embedded model\n")
print(f"Unskipped accuracy on the test split: **{base['accuracy']:.4f}** over {base['examples']} examples.\n")
print("Per family (unskipped): " + ", ".join(f"{k} {v['accuracy']:.3f} ({v['examples']})"
                                             for k, v in base["per_family"].items()) + "\n")
print("| run | method | accuracy | retained | skip | text | vision |")
print("|---|---|---|---|---|---|---|")
for r in sorted(runs, key=lambda r: (r["method"], r["skip_ratio"])):
    print(f"| {label(r)} | {r['method']} | {r['accuracy']:.4f} | {100 * r['retained']:.1f}% | "
          f"{100 * r['skip_ratio']:.1f}% | {100 * r['skip_ratio_text']:.1f}% | {100 * r['skip_ratio_vision']:.1f}% |")

fams = list(base["per_family"].keys())
print("\n## Per family (accuracy)\n")
print("| run | " + " | ".join(fams) + " |")
print("|---|" + "---|" * len(fams))
for r in sorted(runs, key=lambda r: (r["method"], r["skip_ratio"])):
    print(f"| {label(r)} | " + " | ".join(f"{r['per_family'][f]['accuracy']:.3f}" for f in fams) + " |")

# Per-layer skip rates of the MoDES policies (calibration split), as an SVG line chart.
pols = sorted(glob.glob(os.path.join(out, "policies", "modes-*.json")))
series = []
for p in pols:
    d = json.load(open(p))
    pl = d.get("achieved", {}).get("per_layer")
    if pl:
        series.append((os.path.basename(p)[:-5], pl, d["alpha"]))
if series:
    W, H, ML, MB, MT, MR = 640, 360, 60, 45, 30, 150
    L = len(series[0][1])
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]
    px = lambda l: ML + (l + 0.5) / L * (W - ML - MR)
    py = lambda v: H - MB - v * (H - MT - MB)
    svg = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{H}' font-family='sans-serif' font-size='12'>",
           "<rect width='100%' height='100%' fill='white'/>",
           f"<rect x='{ML}' y='{MT}' width='{W - ML - MR}' height='{H - MT - MB}' fill='none' stroke='#444'/>",
           f"<text x='{(ML + W - MR) / 2}' y='20' text-anchor='middle' font-weight='bold'>Skip rate per MoE layer (MoDES, calibration split)</text>",
           f"<text x='{(ML + W - MR) / 2}' y='{H - 10}' text-anchor='middle'>MoE layer</text>"]
    for i in range(6):
        v = i / 5
        svg.append(f"<text x='{ML - 6}' y='{py(v) + 4:.1f}' text-anchor='end'>{100 * v:.0f}%</text>")
        svg.append(f"<line x1='{ML}' y1='{py(v):.1f}' x2='{W - MR}' y2='{py(v):.1f}' stroke='#ddd'/>")
    for l in range(L):
        svg.append(f"<text x='{px(l):.1f}' y='{H - MB + 16}' text-anchor='middle'>{l}</text>")
    for i, (name, pl, _) in enumerate(series):
        c = colours[i % len(colours)]
        pts = " ".join(f"{px(l):.1f},{py(v):.1f}" for l, v in enumerate(pl))
        svg.append(f"<polyline fill='none' stroke='{c}' stroke-width='2' points='{pts}'/>")
        svg.append(f"<text x='{W - MR + 10}' y='{MT + 14 + 18 * i}' fill='{c}'>{name}</text>")
    svg.append("</svg>")
    with open(os.path.join(out, "layers.svg"), "w") as f:
        f.write("\n".join(svg) + "\n")
    print("\n## Per-layer skip rates and layer importances (MoDES)\n")
    print("![per-layer skip rates](layers.svg)\n")
    print("| policy | " + " | ".join(f"L{l}" for l in range(L)) + " |")
    print("|---|" + "---|" * L)
    for name, pl, _ in series:
        print(f"| {name} | " + " | ".join(f"{100 * v:.0f}%" for v in pl) + " |")
    a = series[0][2]
    print(f"| alpha~ text | " + " | ".join(f"{v:.3f}" for v in a["text"]) + " |")
    print(f"| alpha~ vision | " + " | ".join(f"{v:.3f}" for v in a["vision"]) + " |")
print("\n![accuracy retained vs skip ratio](accuracy.svg)")
