#!/usr/bin/env bash
# make bench: kvmlab's CPL3 populate and dirty-memory phases against the
# fault floor (bench/fault_floor.c: the same writes from the smallest C
# VMM), in ABBA order, ROUNDS rounds of each. ABBA because first touches of
# host memory are noisy here (this host is itself a guest: a page the L0
# hypervisor has not backed yet costs extra) and the noise depends on which
# process ran just before.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 5 1 1000
setting MIB 512 1 1048576
build_c fault_floor
raw="$OUT/floor.jsonl"
: > "$raw"
c() { python3 bench/record.py "$raw" "$("$OUT/fault_floor" "$MIB")" tool=c round="$1"; }
k() {
    "$KVMLAB" dirty-log -v 1 -b "${MIB}m" -i 1 -g --json --quiet > "$OUT/floor-run.json"
    python3 bench/record.py "$raw" - tool=kvmlab round="$1" < "$OUT/floor-run.json"
}
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then c "$round"; k "$round"; else k "$round"; c "$round"; fi
done
python3 - "$raw" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
c = [r["data"] for r in rows if r["tool"] == "c"]
k = [r["data"] for r in rows if r["tool"] == "kvmlab"]
def phase(doc, name):
    return next(p["seconds"] for p in doc["experiment"]["phases"] if p["name"] == name)
pairs = {
    "populate": ([d["populate_seconds"] for d in c], [phase(d, "populate") for d in k]),
    "dirty memory": ([d["dirty_seconds"] for d in c], [phase(d, "iteration 1 dirty memory") for d in k]),
}
print(f"\nfault floor, {c[0]['pages']} pages, {len(c)} rounds in ABBA order: medians (and minima)")
print(f"{'phase':<14} {'C s':>10} {'kvmlab s':>10} {'kvmlab/C':>9} {'C min':>10} {'kvmlab min':>10} {'min ratio':>9}")
for name, (cs, ks) in pairs.items():
    cm, km = statistics.median(cs), statistics.median(ks)
    print(f"{name:<14} {cm:10.6f} {km:10.6f} {km / cm:9.3f} {min(cs):10.6f} {min(ks):10.6f} {min(ks) / min(cs):9.3f}")
PY
