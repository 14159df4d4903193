#!/bin/sh
# Same-run speed comparison of two modes binaries on the bench: runs OLD, NEW, OLD, NEW, ...
# (ROUNDS of each, same options) and reports per-round ratios NEW/OLD of prefill and decode tok/s
# for every policy, with their medians. On a shared, noisy machine absolute speeds wander between
# minutes; the ratio of two neighbouring runs is what can be compared.
#   bench/redesign/compare.sh OLD_BIN NEW_BIN ROUNDS [modes bench options...]
#   OUT=FILE.json (default: redesign.json) receives every run and the ratios.
set -eu
if [ $# -lt 3 ]; then
    echo "usage: $0 OLD_BIN NEW_BIN ROUNDS [modes bench options...]" >&2
    exit 2
fi
old=$1 new=$2 rounds=$3
shift 3
out=${OUT:-redesign.json}
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
round=1
while [ "$round" -le "$rounds" ]; do
    for side in old new; do
        if [ "$side" = old ]; then bin=$old; else bin=$new; fi
        echo "round $round/$rounds: $side ($bin)" >&2
        "$bin" bench "$@" --json > "$runs/$round-$side.json"
    done
    round=$((round + 1))
done
/usr/bin/python3 - "$runs" "$rounds" "$out" "$old" "$new" "$*" <<'PY'
import json, statistics, sys
runs_dir, rounds, out, old_bin, new_bin, options = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
load = lambda r, s: json.load(open(f"{runs_dir}/{r}-{s}.json"))
rounds_data = [{"old": load(r, "old"), "new": load(r, "new")} for r in range(1, rounds + 1)]
# Policies are matched by position: modes@R labels carry a tau that may print differently.
labels = [run["skip"] for run in rounds_data[0]["new"]["runs"]]
ratios = {}
for i, label in enumerate(labels):
    for metric in ("prefill_tokens_per_s", "decode_tokens_per_s"):
        ratios[(label, metric)] = [d["new"]["runs"][i][metric] / d["old"]["runs"][i][metric]
                                   for d in rounds_data]
print(f"{'policy':28} {'metric':8} " + " ".join(f"{'r%d old' % (r + 1):>9} {'new':>7} {'ratio':>6}"
                                                for r in range(rounds)) + f" {'median':>7}")
summary = []
for i, label in enumerate(labels):
    for metric, name in (("prefill_tokens_per_s", "prefill"), ("decode_tokens_per_s", "decode")):
        cells = " ".join(f"{d['old']['runs'][i][metric]:9.2f} {d['new']['runs'][i][metric]:7.2f} "
                         f"{rt:6.3f}" for d, rt in zip(rounds_data, ratios[(label, metric)]))
        med = statistics.median(ratios[(label, metric)])
        print(f"{label[:28]:28} {name:8} {cells} {med:7.3f}")
        summary.append({"policy": label, "metric": metric, "ratios": ratios[(label, metric)],
                        "median_ratio": med})
json.dump({"old_bin": old_bin, "new_bin": new_bin, "options": options, "rounds": rounds_data,
           "ratios_new_over_old": summary}, open(out, "w"), indent=1)
print(f"wrote {out}")
PY
