#!/usr/bin/env bash
# The issue-5 experiments with their defaults, ROUNDS times each in one
# sitting, medians in bench/out/mmu.json; and the kernel's
# memslot_perf_test (built from linux-source by bench/build-selftest.sh) on
# the same experiments, for the ratio wherever it runs.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 3 1 1000
raw="$OUT/mmu.jsonl"
: > "$raw"
# measure CASE ROUND ARGS...: one run's JSON document (a failing run still
# prints one; keep it and go on), through a file: it can exceed an
# argument's size, and a pipe would start python3 beside the measured run.
measure() {
    local case=$1 round=$2
    shift 2
    "$KVMLAB" "$@" --json > "$OUT/mmu-run.json" || true
    python3 bench/record.py "$raw" - case="$case" round="$round" < "$OUT/mmu-run.json"
}

# The reference: memslot_perf_test on the same slot count (its -s counts
# slot 0 too), 1 s per run, 3 runs per test, like kvmlab memslot's defaults;
# interleaved with kvmlab memslot, alternating which goes first.
selftest=$(bash bench/build-selftest.sh memslot_perf_test 2>"$OUT/build-memslot-selftest.log" || true)
reference="$OUT/memslot_perf_test.txt"
: > "$reference"
[ -x "$selftest" ] || echo "memslot_perf_test could not be built; see $OUT/build-memslot-selftest.log" >> "$reference"
memslot_reference() {
    [ -x "$selftest" ] || return 0
    echo "== round $1" >> "$reference"
    timeout 300 "$selftest" -s 4097 -l 1 -r 3 >> "$reference" 2>&1 || echo "exit status $?" >> "$reference"
}

for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS: memslot and memslot_perf_test, teardown, populate, root-reload (defaults)"
    if (( round % 2 )); then measure memslot "$round" memslot; memslot_reference "$round"
    else memslot_reference "$round"; measure memslot "$round" memslot; fi
    measure teardown "$round" teardown
    measure populate "$round" populate
    measure root_reload "$round" root-reload
done

python3 bench/summarize_mmu.py "$raw" "$reference" "$OUT/mmu.json"
