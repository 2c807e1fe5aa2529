#!/usr/bin/env bash
# Does `kvmlab check` see what the kernel's own dirty-ring test sees on this
# kernel? In one sitting, ROUNDS times each, interleaved:
#   the 6.12 selftest `dirty_log_test -M dirty-ring` (built by
#   bench/build-selftest.sh; kvmlab never needs it at run time), and
#   kvmlab's ring checks: the ring filled to KVM_EXIT_DIRTY_RING_FULL at
#   CPL0 and CPL3, and the concurrent harvest of the smallest ring at CPL0.
# Prints each verdict per round and how often each failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 5 1 1000
fresh_out check-reference
SELFTEST=$(bash bench/build-selftest.sh dirty_log_test)
CHECKS=(dirty_ring_full_cpl0 dirty_ring_full_cpl3 concurrent_harvest_ring_smallest_cpl0)

declare -A failed=()
for round in $(seq 1 "$ROUNDS"); do
    line="round $round:"
    if timeout 300 "$SELFTEST" -M dirty-ring > "$OUT/selftest-$round.txt" 2>&1; then
        line+=" selftest ok;"
    else
        failed[selftest]=$(( ${failed[selftest]:-0} + 1 ))
        why=$(grep -m1 -oE 'Page [0-9]+ should have its dirty bit set.*' "$OUT/selftest-$round.txt" || grep -m1 -oE 'Test Assertion Failure' "$OUT/selftest-$round.txt" || echo "no assertion")
        line+=" selftest FAIL ($why);"
    fi
    args=()
    for check in "${CHECKS[@]}"; do args+=(--only "$check"); done
    "$KVMLAB" check "${args[@]}" --quiet > "$OUT/kvmlab-$round.txt" 2>&1 || true
    for check in "${CHECKS[@]}"; do
        if grep -q "^ok [0-9]* $check\$" "$OUT/kvmlab-$round.txt"; then
            line+=" $check ok;"
        else
            failed[$check]=$(( ${failed[$check]:-0} + 1 ))
            line+=" $check FAIL;"
        fi
    done
    echo "$line"
done
echo
echo "failed runs of $ROUNDS ($(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)):"
printf '  %-40s %s\n' "dirty_log_test -M dirty-ring (6.12)" "${failed[selftest]:-0}"
for check in "${CHECKS[@]}"; do printf '  %-40s %s\n' "kvmlab check $check" "${failed[$check]:-0}"; done
