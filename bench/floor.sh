#!/usr/bin/env bash
# make bench: kvmlab's CPL3 populate and dirty-memory phases against the
# fault floor (bench/fault_floor.c: the same writes from the smallest C
# VMM), and VM start against exit_loop.c, interleaved, ROUNDS times.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
MIB=${MIB:-512}
KVMLAB=${KVMLAB:-.build/release/kvmlab}
OUT=bench/out
mkdir -p "$OUT"
cc -O2 -Wall -o "$OUT/fault_floor" bench/fault_floor.c
raw="$OUT/floor.jsonl"
: > "$raw"
for round in $(seq 1 "$ROUNDS"); do
    python3 bench/record.py "$raw" "$("$OUT/fault_floor" "$MIB")" tool=c round="$round"
    "$KVMLAB" dirty-log -v 1 -b "${MIB}m" -i 1 -g --json --quiet > "$OUT/floor-run.json"
    python3 bench/record.py "$raw" - tool=kvmlab round="$round" < "$OUT/floor-run.json"
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
print(f"\nfault floor, {c[0]['pages']} pages, medians of {len(c)} interleaved rounds")
print(f"{'phase':<14} {'C s':>10} {'kvmlab s':>10} {'kvmlab/C':>9}")
for name, (cs, ks) in pairs.items():
    print(f"{name:<14} {statistics.median(cs):10.6f} {statistics.median(ks):10.6f} {statistics.median(ks) / statistics.median(cs):9.3f}")
PY
