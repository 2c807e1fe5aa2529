#!/usr/bin/env bash
# kvmlab migrate (issues 22, 23), in one sitting:
#  1. The speed limit. Round 1 (all memory, the guest dirtying 100 pages/s;
#     default, and with --prealloc and the vCPU pinned to the last CPU)
#     against iperf3's single loopback stream, idle and beside a VM whose one
#     vCPU spins (what round 1 shares its CPUs with); downtime against its
#     floor (the switchover's bytes at the measured bandwidth plus saving
#     and loading vCPU state); the dirty rate kvmlab measures against the
#     rate the guest was told (rounds 2 on, 100 MB/s cap so rounds last).
#  2. The published comparisons, each one `kvmlab compare migrate` table:
#     bitmap vs manual vs ring; auto-converge vs dirty-limit with a dirtying
#     and an idle vCPU under a bandwidth cap; 4 KiB vs THP; clear chunk 64 vs
#     4096 pages.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 7 2 1000
fresh_out migrate
command -v iperf3 >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }

iperf() {
    iperf3 -s -1 -p 5298 > /dev/null 2>&1 &
    local server=$!
    sleep 0.3
    iperf3 -c 127.0.0.1 -p 5298 -t 3 -J > "$1"
    wait "$server" || true
}

echo "== 1a. round 1 against iperf3 (ROUNDS=$ROUNDS, interleaved)"
for round in $(seq 1 "$ROUNDS"); do
    iperf "$OUT/iperf3-idle-$round.json"
    "$KVMLAB" run --guest spin -v 1 --timeout 6 --quiet > /dev/null 2>&1 &
    spinner=$!
    sleep 0.5
    iperf "$OUT/iperf3-spin-$round.json"
    kill -INT "$spinner" 2>/dev/null || true
    wait "$spinner" 2>/dev/null || true
    "$KVMLAB" migrate -v 1 -b 512m --dirty-rate 100 --baseline 0.1 --after 0.1 --no-digest --json --quiet > "$OUT/round1-$round.json"
    "$KVMLAB" migrate -v 1 -b 512m --dirty-rate 100 --baseline 0.1 --after 0.1 --no-digest --prealloc -c "$(( $(nproc) - 1 ))" --json --quiet > "$OUT/round1p-$round.json"
done
echo "== 1b. downtime against its floor, and the dirty rate measured against the one told (20000 pages/s)"
for round in $(seq 1 "$ROUNDS"); do
    "$KVMLAB" migrate -v 1 -b 256m --dirty-rate 20000 --bandwidth 100m --no-digest --baseline 0.1 --after 0.1 --json --quiet > "$OUT/floor-$round.json"
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
bps = lambda path: json.load(open(path))["end"]["sum_received"]["bits_per_second"] / 8
idle, spin, first, ratio_idle, ratio_spin, pre, ratio_pre = [], [], [], [], [], [], []
for r in range(1, rounds + 1):
    i, s = bps(f"{out}/iperf3-idle-{r}.json"), bps(f"{out}/iperf3-spin-{r}.json")
    d = json.load(open(f"{out}/round1-{r}.json"))["detail"]["rounds"][0]
    k = d["bytesSent"] / d["seconds"]
    p = json.load(open(f"{out}/round1p-{r}.json"))["detail"]["rounds"][0]
    kp = p["bytesSent"] / p["seconds"]
    idle.append(i); spin.append(s); first.append(k); ratio_idle.append(k / i); ratio_spin.append(k / s); pre.append(kp); ratio_pre.append(kp / s)
    print(f"  round {r}: iperf3 idle {i / 1e6:7.0f} MB/s, beside a spinning vCPU {s / 1e6:7.0f} MB/s; kvmlab round 1 {k / 1e6:6.0f} MB/s"
          f"  ratios {k / i:.3f} / {k / s:.3f}; prealloc + pinned vCPU {kp / 1e6:6.0f} MB/s, {kp / s:.3f} of iperf3 beside a spinning vCPU")
print(f"  median: iperf3 idle {statistics.median(idle) / 1e6:.0f} MB/s, beside a spinning vCPU {statistics.median(spin) / 1e6:.0f} MB/s,"
      f" round 1 {statistics.median(first) / 1e6:.0f} MB/s; ratio to idle {statistics.median(ratio_idle):.3f}, to spinning {statistics.median(ratio_spin):.3f};"
      f" with --prealloc and the vCPU pinned {statistics.median(pre) / 1e6:.0f} MB/s, {statistics.median(ratio_pre):.3f} of iperf3 beside a spinning vCPU")
excess, told = [], []
for r in range(1, rounds + 1):
    d = json.load(open(f"{out}/floor-{r}.json"))["detail"]
    down, floor = d["downtimeSeconds"], d["downtimeFloorSeconds"]
    rates = [x["pagesDirtied"] / x["harvestIntervalSeconds"] for x in d["rounds"][1:]]
    excess.append(down / (1.5 * floor + 0.001)); told += [x / 20000 for x in rates]
    print(f"  run {r}: downtime {down * 1e3:.2f} ms, floor {floor * 1e3:.2f} ms ({d['switchoverBytes'] / 1e6:.2f} MB, state {d['stateSaveSeconds'] * 1e3:.2f} + {d['stateLoadSeconds'] * 1e3:.2f} ms),"
          f" downtime / (1.5 floor + 1 ms) {down / (1.5 * floor + 0.001):.2f}; {len(rates)} rounds' dirty rate / told: "
          + " ".join(f"{x / 20000:.4f}" for x in rates))
print(f"  median downtime / (1.5 x floor + 1 ms): {statistics.median(excess):.2f} (target <= 1); dirty rate measured / told: median {statistics.median(told):.4f},"
      f" range {min(told):.4f}-{max(told):.4f} over {len(told)} rounds (target within 0.95-1.05)")
PY

common=(--baseline 0.2 --after 0.2 --rounds "$ROUNDS" --quiet)
echo "== 2a. dirty tracking: bitmap, manual, ring (2 vCPUs x 64 MiB, 20000 pages/s each, 200 MB/s cap)"
"$KVMLAB" compare migrate -v 2 -b 64m --bandwidth 200m "${common[@]}" \
    --variant bitmap='--dirty-track bitmap' --variant manual='--dirty-track manual' --variant ring='--dirty-track ring' | tee "$OUT/compare-track.txt"
echo "== 2b. auto-converge against dirty-limit: 1 dirtying (unlimited) and 1 idle vCPU, 20 MB/s"
"$KVMLAB" compare migrate -v 1 --idle-vcpus 1 -b 16m --dirty-rate 20000 --bandwidth 20m --max-rounds 12 "${common[@]}" \
    --a '--auto-converge' --b '--dirty-track ring --dirty-limit 1000' | tee "$OUT/compare-throttle.txt"
echo "== 2c. 4 KiB against THP backing (2 vCPUs x 256 MiB)"
"$KVMLAB" compare migrate -v 2 -b 256m --bandwidth 400m "${common[@]}" \
    --a '-s anonymous' --b '-s anonymous_thp --dest-backing anonymous_thp' | tee "$OUT/compare-thp.txt"
echo "== 2d. manual mode: clear chunk 64 against 4096 pages (2 vCPUs x 256 MiB)"
"$KVMLAB" compare migrate -v 2 -b 256m --bandwidth 400m --dirty-track manual "${common[@]}" \
    --a '--clear-chunk 64' --b '--clear-chunk 4096' | tee "$OUT/compare-chunk.txt"
