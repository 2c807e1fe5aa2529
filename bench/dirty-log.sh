#!/usr/bin/env bash
# make bench, part 2: kvmlab dirty-log (CPL3 and CPL0) against the kernel's
# dirty_log_perf_test (built from Debian's linux-source-6.12 by
# bench/build-selftest.sh), same configurations, interleaved. CONFIGS="a;b"
# replaces the configurations. A reference that fails on this host is
# recorded as failed, with its last line, and kvmlab is still measured.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 3 1 1000
raw="$OUT/dirty-log.jsonl"
: > "$raw"
selftest=$(bash bench/build-selftest.sh 2>"$OUT/build-selftest.log" || true)

# Seconds since a `date +%s%N` stamp, with ns precision.
seconds_since() {
    local ns=$(( $(date +%s%N) - $1 ))
    printf '%d.%09d' $((ns / 1000000000)) $((ns % 1000000000))
}

# Emulated instructions of every run: "${counted[@]}" and emulated.
source bench/emulated.sh

configs=("-v 1 -b 1G -i 3" "-v 2 -b 1G -i 3" "-v 64 -b 32M -i 3" "-v 2 -b 1G -i 3 -s anonymous_thp" "-v 1 -b 1G -i 3 -x 4")
[ -n "${CONFIGS:-}" ] && IFS=';' read -r -a configs <<<"$CONFIGS"
for round in $(seq 1 "$ROUNDS"); do
    for config in "${configs[@]}"; do
        echo "round $round: $config" >&2
        if [ -n "$selftest" ]; then
            start=$(date +%s%N)
            # shellcheck disable=SC2086
            text=$(timeout 600 "${counted[@]}" "$selftest" $config 2>&1) && status=0 || status=$?
            wall=$(seconds_since "$start")
            python3 bench/parse_selftest.py "$config" "$round" "$status" "$wall" "$(emulated)" <<<"$text" >> "$raw"
        fi
        # kvmlab at CPL3 (its default: native, real MMU faults) and at CPL0
        # (the selftest's guest privilege: emulated on kvm_pvm).
        for cpl in 3 0; do
            tool=kvmlab; [ "$cpl" = 0 ] && tool=kvmlab_cpl0
            start=$(date +%s%N)
            # shellcheck disable=SC2086
            "${counted[@]}" "$KVMLAB" dirty-log $config --cpl "$cpl" --json --quiet > "$OUT/dirty-log-run.json" && status=0 || status=$?
            python3 bench/record.py "$raw" - tool="$tool" config="$config" round="$round" status="$status" \
                wall="$(seconds_since "$start")" emulated="$(emulated)" < "$OUT/dirty-log-run.json"
        done
    done
done
python3 bench/summarize_dirty.py "$raw" "$OUT/dirty-log.json"
