#!/usr/bin/env bash
# make bench, part 2: kvmlab dirty-log against the kernel's dirty_log_perf_test
# (built from Debian's linux-source by bench/build-selftest.sh), same
# configurations, interleaved. A reference that fails on this host is
# recorded as failed, with its last line, and kvmlab is still measured.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
KVMLAB=${KVMLAB:-.build/release/kvmlab}
OUT=bench/out
raw="$OUT/dirty-log.jsonl"
: > "$raw"
selftest=$(bash bench/build-selftest.sh 2>"$OUT/build-selftest.log" || true)

# Seconds since a `date +%s%N` stamp, with ns precision.
seconds_since() {
    local ns=$(( $(date +%s%N) - $1 ))
    printf '%d.%09d' $((ns / 1000000000)) $((ns % 1000000000))
}

configs=("-v 1 -b 1G -i 3" "-v 2 -b 1G -i 3" "-v 64 -b 32M -i 3" "-v 2 -b 1G -i 3 -s anonymous_thp")
for round in $(seq 1 "$ROUNDS"); do
    for config in "${configs[@]}"; do
        echo "round $round: $config" >&2
        if [ -n "$selftest" ]; then
            start=$(date +%s%N)
            # shellcheck disable=SC2086
            text=$(timeout 600 "$selftest" $config 2>&1) && status=0 || status=$?
            wall=$(seconds_since "$start")
            python3 bench/parse_selftest.py "$config" "$round" "$status" "$wall" <<<"$text" >> "$raw"
        fi
        start=$(date +%s%N)
        # shellcheck disable=SC2086
        json=$("$KVMLAB" dirty-log $config --json) && status=0 || status=$?
        python3 bench/record.py "$raw" "$json" tool=kvmlab config="$config" round="$round" status="$status" wall="$(seconds_since "$start")"
    done
done
python3 bench/summarize_dirty.py "$raw" "$OUT/dirty-log.json"
