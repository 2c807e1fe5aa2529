#!/usr/bin/env bash
# VM creation and start (part of make bench): `kvmlab exit-latency -v N -n 2`
# against `bench/exit_loop.c 2 3 N` for 1, 64, 256 and 1024 vCPUs, C and
# kvmlab in ABBA order, START_ROUNDS rounds (short and noisy: many rounds).
# Medians and ratios in bench/out/vm-start.json. Needs /dev/kvm (root).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting START_ROUNDS 15 1 1000
build_c exit_loop -pthread

raw="$OUT/vm-start.jsonl"
: > "$raw"
c_start() { python3 bench/record.py "$raw" "$("$OUT/exit_loop" 2 3 "$1")" case="c_start_$1" round="$2"; }
# Through a file, not a pipe: python3 starting beside kvmlab took a CPU from
# it (256 vCPUs: 85 instead of 73 ms), and C's run has no such neighbour.
# Not an argument either: 1024 vCPUs' document is too large for one.
k_start() {
    "$KVMLAB" exit-latency -v "$1" -n 2 --json --quiet > "$OUT/vm-start-run.json"
    python3 bench/record.py "$raw" - case="start_$1" round="$2" < "$OUT/vm-start-run.json"
}
echo "VM create and start: 1, 64, 256, 1024 vCPUs, C and kvmlab in ABBA order, $START_ROUNDS rounds each"
for round in $(seq 1 "$START_ROUNDS"); do
    for vcpus in 1 64 256 1024; do
        if (( round % 2 )); then c_start "$vcpus" "$round"; k_start "$vcpus" "$round"
        else k_start "$vcpus" "$round"; c_start "$vcpus" "$round"; fi
    done
done
python3 bench/summarize.py "$raw" "$OUT/vm-start.json"
