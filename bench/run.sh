#!/usr/bin/env bash
# make bench: kvmlab against a minimal C loop, interleaved in one sitting so
# that host noise hits both alike. Medians of ROUNDS runs; results also in
# bench/out/results.json. Needs /dev/kvm (run as root).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 5 1 1000
setting EXITS 100000 10 50000000  # a fifth of them at CPL0
build_c exit_loop -pthread

raw="$OUT/raw.jsonl"
: > "$raw"
# One line per measurement: {"case", "round", "data": the program's JSON}.
record() { python3 bench/record.py "$raw" "$3" case="$1" round="$2"; }

echo "exit round trip: $ROUNDS rounds of $EXITS exits (CPL3) and $((EXITS / 5)) (CPL0), C and kvmlab interleaved"
for round in $(seq 1 "$ROUNDS"); do
    record c_cpl3 "$round" "$("$OUT/exit_loop" "$EXITS" 3)"
    record kvmlab_cpl3 "$round" "$("$KVMLAB" exit-latency -n "$EXITS" --json)"
    record c_cpl0 "$round" "$("$OUT/exit_loop" $((EXITS / 5)) 0)"
    record kvmlab_cpl0 "$round" "$("$KVMLAB" exit-latency -n $((EXITS / 5)) --cpl 0 --json)"
done

python3 bench/summarize.py "$raw" "$OUT/results.json"

echo
bash bench/vm-start.sh

echo
echo "dirty logging: kvmlab dirty-log against dirty_log_perf_test"
bash bench/dirty-log.sh

echo
echo "dirty-logging ioctls at CPL0 against dirty_log_perf_test: many rounds, ABBA"
bash bench/dirty-ioctls.sh

echo
echo "jitter: 2, 8, 64 vCPUs, SLOT_ZAP_ALL on and off"
bash bench/jitter.sh

echo
echo "MMU experiments: memslot, teardown, populate, root-reload"
bash bench/mmu.sh

echo
echo "compare: the eager-split pair, an A/A comparison, and compare's overhead"
bash bench/compare.sh

echo
echo "fault floor: CPL3 populate and dirty memory against bench/fault_floor.c"
bash bench/floor.sh

echo
echo "first touch against demand_paging_test"
bash bench/demand.sh

echo
echo "compare's error rate (A/A) and power, at the default rounds"
bash bench/compare-aa.sh

echo
echo "kvmlab check against the kernel's dirty_log_test -M dirty-ring"
bash bench/check-reference.sh

echo
echo "what counting tracepoints costs"
bash bench/trace-overhead.sh

echo
echo "the TCP victim against iperf3, and through teardowns"
bash bench/victim.sh

echo
echo "jitter's output cost"
bash bench/jitter-output.sh

echo
echo "migrate: the speed limits and the published comparisons"
bash bench/migrate.sh
