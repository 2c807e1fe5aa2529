#!/usr/bin/env bash
# compare's error rate and power on this host, in one sitting (issue 27):
#  1. A/A: COMPARES compares each of jitter, memslot, teardown and dirty-log
#     with identical variants (--a '' --b ''), at compare's default rounds.
#     Every "faster/slower/better/worse/higher/lower" there is a false call:
#     per metric they must stay at or below 5%, and so must the share of
#     tables holding any (Holm's promise).
#  2. A real effect that must still be found: jitter with SLOT_ZAP_ALL on
#     against --no-zap-all, EFFECTS times.
# The experiments run short settings (seconds a round), not their defaults:
# the rounds and the statistics are what is under test.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting COMPARES 10 1 1000
setting EFFECTS 3 0 1000
fresh_out compare-aa

declare -A CONFIGS=(
    [jitter]="jitter -v 2 --duration 1 --warmup 0.3"
    [memslot]="memslot -l 0.2 -r 1 --test map --test move-active --test rw --memory 64m -s 256"
    [teardown]="teardown --memory 256m"
    [dirty-log]="dirty-log -v 2 -b 64m -i 3"
)
for name in jitter memslot teardown dirty-log; do
    read -r -a config <<< "${CONFIGS[$name]}"
    echo "== A/A $name (${config[*]}): $COMPARES compares"
    for i in $(seq 1 "$COMPARES"); do
        "$KVMLAB" compare "${config[@]}" --a '' --b '' --json --quiet > "$OUT/aa-$name-$i.json" || true
    done
done
read -r -a jitter <<< "${CONFIGS[jitter]}"
for i in $(seq 1 "$EFFECTS"); do
    echo "== effect: jitter SLOT_ZAP_ALL on against --no-zap-all ($i of $EFFECTS)"
    "$KVMLAB" compare "${jitter[@]}" --a '' --b '--no-zap-all' --json --quiet > "$OUT/effect-$i.json" || true
done
python3 bench/summarize_aa.py "$OUT" | tee "$OUT/summary.txt"
