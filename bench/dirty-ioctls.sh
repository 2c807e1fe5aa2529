#!/usr/bin/env bash
# make bench, part 2b: the host-side dirty-logging ioctls (enable, get,
# clear, disable) of kvmlab dirty-log --cpl 0 against dirty_log_perf_test,
# where both ask the kernel for identical work. Each phase is one to a few
# ioctls of 10-300 µs whose kernel time is bimodal here (an SRCU grace
# period either waits or not), so small memory and many rounds, ABBA order;
# medians and quartiles in bench/out/dirty-ioctls.json. Both tools pinned
# alike (-c VCPU...,MAIN): where the calling thread runs, and whether the
# other CPU idles, decide what a memslot update costs here (BENCHMARKS.md),
# so each placement is its own configuration, and kvmlab runs twice: its
# threads asleep between passes (its default) and spinning as the
# selftest's do (--wait spin).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 15 1 1000
raw="$OUT/dirty-ioctls.jsonl"
: > "$raw"
selftest=$(bash bench/build-selftest.sh 2>"$OUT/build-selftest.log") || { echo "dirty_log_perf_test could not be built: see $OUT/build-selftest.log"; exit 1; }

configs=("-v 1 -b 128M -i 3 -c 1,0" "-v 1 -b 128M -i 3 -c 0,1" "-v 2 -b 128M -i 3"
         "-v 1 -b 128M -i 3 -x 4 -c 1,0" "-v 1 -b 128M -i 3 -x 4 -c 0,1")
[ -n "${CONFIGS:-}" ] && IFS=';' read -r -a configs <<<"$CONFIGS"
reference() {
    # shellcheck disable=SC2086
    text=$(timeout 300 "$selftest" $1 2>&1) && status=0 || status=$?
    python3 bench/parse_selftest.py "$1" "$2" "$status" 0 <<<"$text" >> "$raw"
}
mine() {
    for wait in sleep spin; do
        # shellcheck disable=SC2086
        "$KVMLAB" dirty-log $1 --cpl 0 --wait $wait --json --quiet > "$OUT/dirty-ioctls-run.json" && status=0 || status=$?
        python3 bench/record.py "$raw" - tool="kvmlab_cpl0_$wait" config="$1" round="$2" status="$status" < "$OUT/dirty-ioctls-run.json"
    done
}
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round of $ROUNDS" >&2
    for config in "${configs[@]}"; do
        if (( round % 2 )); then reference "$config" "$round"; mine "$config" "$round"
        else mine "$config" "$round"; reference "$config" "$round"; fi
    done
done
python3 bench/summarize_ioctls.py "$raw" "$OUT/dirty-ioctls.json"
