#!/usr/bin/env bash
# The issue-5 experiments with their defaults, ROUNDS times each in one
# sitting, medians in bench/out/mmu.json; and the kernel's
# memslot_perf_test (built from linux-source by bench/build-selftest.sh) on
# the same experiments, for the ratio wherever it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
KVMLAB=${KVMLAB:-.build/release/kvmlab}
OUT=bench/out
mkdir -p "$OUT"
raw="$OUT/mmu.jsonl"
: > "$raw"
# measure CASE ROUND ARGS...: one run's JSON document (a failing run still
# prints one; keep it and go on), piped: it can exceed an argument's size.
measure() {
    local case=$1 round=$2
    shift 2
    { "$KVMLAB" "$@" --json || true; } | python3 bench/record.py "$raw" - case="$case" round="$round"
}

for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS: memslot, teardown, populate, root-reload (defaults)"
    measure memslot "$round" memslot
    measure teardown "$round" teardown
    measure populate "$round" populate
    measure root_reload "$round" root-reload
done

# The reference: memslot_perf_test with the same slot count, 1 s per test.
selftest=$(bash bench/build-selftest.sh memslot_perf_test 2>"$OUT/build-memslot-selftest.log" || true)
reference="$OUT/memslot_perf_test.txt"
: > "$reference"
if [ -x "$selftest" ]; then
    for round in $(seq 1 "$ROUNDS"); do
        echo "== round $round" >> "$reference"
        timeout 300 "$selftest" -s 4097 -l 1 -r 3 >> "$reference" 2>&1 || echo "exit status $?" >> "$reference"
    done
else
    echo "memslot_perf_test could not be built; see $OUT/build-memslot-selftest.log" >> "$reference"
fi
python3 bench/summarize_mmu.py "$raw" "$reference" "$OUT/mmu.json"
