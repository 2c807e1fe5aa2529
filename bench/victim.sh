#!/usr/bin/env bash
# The TCP victim (issue 26), in one sitting:
#  1. Is it a fair flow? Its idle throughput (kvmlab teardown --victim tcp,
#     the idle window: nothing else on the CPU) against iperf3's single
#     stream over loopback with both ends pinned to the same CPU, ROUNDS
#     times each, interleaved. Target: within 0.8-1.2x of iperf3.
#  2. What a teardown does to it: 2 GiB and 8 GiB, 4 KiB and THP, both
#     orders: the flow's throughput in the teardown window against idle.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 5 1 1000
setting CPU $(( $(nproc) - 1 )) 0 4095
fresh_out victim
command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }

echo "== 1. idle throughput on CPU $CPU: kvmlab's victim against iperf3 (single stream, both ends on CPU $CPU)"
for round in $(seq 1 "$ROUNDS"); do
    iperf3 -s -1 -A "$CPU" -p 5299 > /dev/null 2>&1 &
    server=$!
    sleep 0.3
    iperf3 -c 127.0.0.1 -p 5299 -A "$CPU" -t 3 -J > "$OUT/iperf3-$round.json"
    wait "$server" || true
    "$KVMLAB" teardown -v 1 --memory 64m --cpu "$CPU" --baseline 3 --order vm-first --victim tcp --json --quiet > "$OUT/kvmlab-$round.json"
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ratios, iperf, kvm = [], [], []
for r in range(1, rounds + 1):
    i = json.load(open(f"{out}/iperf3-{r}.json"))["end"]["sum_received"]["bits_per_second"]
    metrics = json.load(open(f"{out}/kvmlab-{r}.json"))["experiment"]["metrics"]
    # The idle window's throughput: bytes over time, from its slots (median of the slots as a cross-check).
    run = json.load(open(f"{out}/kvmlab-{r}.json"))["detail"]["runs"][0]["flows"][0]["windows"][0]
    k = sum(run["slotBytes"]) * 8 / (run["slotSeconds"] * len(run["slotBytes"]))
    iperf.append(i); kvm.append(k); ratios.append(k / i)
    print(f"  round {r}: iperf3 {i / 1e9:6.2f} Gbit/s   kvmlab idle {k / 1e9:6.2f} Gbit/s   ratio {k / i:.3f}")
print(f"  median: iperf3 {statistics.median(iperf) / 1e9:.2f} Gbit/s, kvmlab {statistics.median(kvm) / 1e9:.2f} Gbit/s, ratio {statistics.median(ratios):.3f}")
PY

echo "== 2. the victim through a teardown (mean throughput of each window; vs idle)"
for memory in 2g 8g; do
    for backing in anonymous anonymous_thp; do
        "$KVMLAB" teardown --memory "$memory" -s "$backing" --cpu "$CPU" --victim tcp --baseline 1 --quiet > "$OUT/teardown-$memory-$backing.txt"
        echo "-- $memory $backing"
        sed -n '/TCP over loopback/,/^$/p;/Teardown steps/,/^$/p' "$OUT/teardown-$memory-$backing.txt"
    done
done
