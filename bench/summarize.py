"""Turns bench/out/raw.jsonl (exit round trips) or bench/out/vm-start.jsonl
(VM start) into the medians and ratios `make bench` prints: RAW OUT.JSON."""
import json
import statistics
import sys

from quartiles import quartiles

raw_path, out_path = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw_path)]
by_case = {}
for row in rows:
    by_case.setdefault(row["case"], []).append(row["data"])


def per_exit_us(case):
    values = []
    for data in by_case.get(case, []):
        if "us_per_exit" in data:
            values.append(data["us_per_exit"])
        else:
            values.append(data["detail"]["secondsPerExit"] * 1e6)
    return values


results = {"exit_round_trip": {}, "vm_start": {}}
if any(case.startswith("kvmlab_cpl") for case in by_case):
    print()
    print(f"{'exit round trip':<16} {'C µs/exit':>10} {'kvmlab µs/exit':>15} {'kvmlab/C':>9} {'kvmlab p50 µs':>14} {'p99 µs':>8}")
for cpl in ("cpl3", "cpl0"):
    c, k = per_exit_us(f"c_{cpl}"), per_exit_us(f"kvmlab_{cpl}")
    if not c or not k:
        continue
    ratios = [kv / cv for kv, cv in zip(k, c)]
    p50 = statistics.median(d["detail"]["roundTripSeconds"]["p50"] * 1e6 for d in by_case[f"kvmlab_{cpl}"])
    p99 = statistics.median(d["detail"]["roundTripSeconds"]["p99"] * 1e6 for d in by_case[f"kvmlab_{cpl}"])
    entry = {
        "c_us_per_exit_median": statistics.median(c),
        "kvmlab_us_per_exit_median": statistics.median(k),
        "ratio_median_of_pairs": statistics.median(ratios),
        "kvmlab_round_trip_p50_us": p50,
        "kvmlab_round_trip_p99_us": p99,
        "rounds": len(c),
    }
    results["exit_round_trip"][cpl] = entry
    print(f"{cpl.upper():<16} {entry['c_us_per_exit_median']:>10.2f} {entry['kvmlab_us_per_exit_median']:>15.2f}"
          f" {entry['ratio_median_of_pairs']:>9.3f} {p50:>14.2f} {p99:>8.2f}")

if any(case.startswith("start_") for case in by_case):
    print()
    print(f"{'VM start (ms)':<14} {'C create':>9} {'C run':>7} {'C total':>8} {'k create':>9} {'k run':>7} {'k total':>8}"
          f" {'kvmlab/C':>9} {'pair ratios q1-q3':>18}")
for vcpus in (1, 64, 256, 1024):
    data = by_case.get(f"start_{vcpus}", [])
    reference = by_case.get(f"c_start_{vcpus}", [])
    if not data or not reference:
        continue
    k_create = [d["detail"]["setupSeconds"] for d in data]
    k_run = [d["detail"]["seconds"] for d in data]
    k_total = [a + b for a, b in zip(k_create, k_run)]
    c_create = [d["create_seconds"] for d in reference]
    c_run = [d["seconds"] for d in reference]
    c_total = [a + b for a, b in zip(c_create, c_run)]
    # Rounds pair up in order (each round ran both, ABBA): the spread of the
    # pairs' ratios says whether a gap between the medians is real.
    q1, _, q3 = quartiles([k / c for k, c in zip(k_total, c_total)])
    med = statistics.median
    entry = {"create_seconds": med(k_create), "run_seconds": med(k_run), "total_seconds": med(k_total),
             "c_create_seconds": med(c_create), "c_run_seconds": med(c_run), "c_total_seconds": med(c_total),
             "ratio": med(k_total) / med(c_total), "pair_ratio_q1": q1, "pair_ratio_q3": q3, "rounds": len(data)}
    results["vm_start"][str(vcpus)] = entry
    print(f"{str(vcpus) + ' vCPUs':<14} {med(c_create) * 1e3:>9.2f} {med(c_run) * 1e3:>7.2f} {med(c_total) * 1e3:>8.2f}"
          f" {med(k_create) * 1e3:>9.2f} {med(k_run) * 1e3:>7.2f} {med(k_total) * 1e3:>8.2f}"
          f" {entry['ratio']:>9.3f} {q1:>9.3f}-{q3:<8.3f}")

json.dump(results, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
