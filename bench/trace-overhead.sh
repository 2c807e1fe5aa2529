#!/usr/bin/env bash
# Does counting kernel tracepoints change what kvmlab measures? (issue 24)
# In one sitting, through compare (ABBA, ROUNDS rounds a side, a fresh
# process per round): the exit round trip and a dirty-log run with the
# default tracepoints counted (B) against --no-trace (A). Target: every
# timing's B/A within 1.05 (and no verdict of "slower").
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 7 2 1000
fresh_out trace-overhead
echo "== exit round trip (CPL3), --no-trace against the default tracepoints"
"$KVMLAB" compare exit-latency -n 100000 --rounds "$ROUNDS" --a '--no-trace' --b '' --quiet | tee "$OUT/exit-latency.txt"
echo "== exit round trip (CPL0: every emulated instruction fires kvm_emulate_insn)"
"$KVMLAB" compare exit-latency -n 20000 --cpl 0 --rounds "$ROUNDS" --a '--no-trace' --b '' --quiet | tee "$OUT/exit-latency-cpl0.txt"
echo "== dirty-log -v 2 -b 256m -i 3"
"$KVMLAB" compare dirty-log -v 2 -b 256m -i 3 --rounds "$ROUNDS" --a '--no-trace' --b '' --quiet | tee "$OUT/dirty-log.txt"
echo "== dirty-log -v 2 -b 256m -i 3, --no-trace against --trace faults (the per-fault events, not default)"
"$KVMLAB" compare dirty-log -v 2 -b 256m -i 3 --rounds "$ROUNDS" --a '--no-trace' --b '--trace faults' --quiet | tee "$OUT/dirty-log-faults.txt"
