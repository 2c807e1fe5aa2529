"""Turns bench/out/raw.jsonl into the medians and ratios `make bench` prints."""
import json
import statistics
import sys

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

print()
print(f"{'VM start':<16} {'C total s':>10} {'kvmlab create s':>16} {'kvmlab run s':>13} {'kvmlab total s':>15} {'kvmlab/C':>9}")
for vcpus in (1, 64, 256, 1024):
    data = by_case.get(f"start_{vcpus}", [])
    reference = by_case.get(f"c_start_{vcpus}", [])
    if not data:
        continue
    create = statistics.median(d["detail"]["setupSeconds"] for d in data)
    start = statistics.median(d["detail"]["seconds"] for d in data)
    total = statistics.median(d["detail"]["setupSeconds"] + d["detail"]["seconds"] for d in data)
    c_total = statistics.median(d["create_seconds"] + d["seconds"] for d in reference) if reference else None
    entry = {"create_seconds": create, "run_seconds": start, "total_seconds": total, "rounds": len(data)}
    if c_total:
        entry["c_total_seconds"] = c_total
        entry["ratio"] = total / c_total
    results["vm_start"][str(vcpus)] = entry
    ratio = f"{total / c_total:>9.3f}" if c_total else "        -"
    c_text = f"{c_total:>10.4f}" if c_total else "         -"
    print(f"{str(vcpus) + ' vCPUs':<16} {c_text} {create:>16.4f} {start:>13.4f} {total:>15.4f} {ratio}")

json.dump(results, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
