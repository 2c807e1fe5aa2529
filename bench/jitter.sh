#!/usr/bin/env bash
# make bench, part 3: kvmlab jitter for 2, 8 and 64 vCPUs with the
# SLOT_ZAP_ALL quirk on and off, ROUNDS rounds interleaved; plus the host's
# own rdtsc-loop floor to compare the probe's baseline median with.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 3 1 1000
setting DURATION 5 1 3600
raw="$OUT/jitter.jsonl"
: > "$raw"
build_c rdtsc_floor
"$OUT/rdtsc_floor" > "$OUT/rdtsc_floor.json"
zap_modes=("")
if "$KVMLAB" info --json | python3 -c 'import json, sys; sys.exit(0 if json.load(sys.stdin)["result"]["slotZapAllDisableable"] else 1)'; then
    zap_modes+=("--no-zap-all")
fi
for round in $(seq 1 "$ROUNDS"); do
    for vcpus in 2 8 64; do
        for zap in "${zap_modes[@]}"; do
            echo "round $round: -v $vcpus $zap" >&2
            # shellcheck disable=SC2086
            json=$("$KVMLAB" jitter -v "$vcpus" --duration "$DURATION" --warmup 1 $zap --json)
            python3 bench/record.py "$raw" "$json" vcpus="$vcpus" zap="$([ -n "$zap" ] && echo off || echo on)" round="$round"
        done
    done
done
python3 bench/summarize_jitter.py "$raw" "$OUT/rdtsc_floor.json" "$OUT/jitter.json"
