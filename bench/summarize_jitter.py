"""Medians of kvmlab jitter runs: stall percentiles, baseline vs churn."""
import json
import statistics
import sys

raw_path, floor_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(raw_path)]
floor = json.load(open(floor_path))["median_gap_cycles_upper_bound"]
summary = {"host_rdtsc_loop_median_cycles_upper_bound": floor, "runs": {}}


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


print(f"\nhost rdtsc loop (bench/rdtsc_floor.c): median gap <= {floor} cycles")
print(f"{'vCPUs':>5} {'zap':>4} {'phase':<9} {'stalls':>7} {'p50 µs':>8} {'p90':>8} {'p99':>8} {'p99.9':>8} {'max':>9}"
      f" {'rate/s':>7} {'zapped':>8} {'floor cyc':>9}")
for key in sorted({(r["vcpus"], r["zap"]) for r in rows}):
    runs = [r["data"]["detail"] for r in rows if (r["vcpus"], r["zap"]) == key]
    entry = {}
    for index, name in enumerate(("baseline", "churn")):
        phases = [run["phases"][index] for run in runs]
        stall = lambda p, k: (p.get("stallSeconds") or {}).get(k)
        e = {
            "stalls": med(p["stalls"] for p in phases),
            **{k: med(stall(p, k) for p in phases) for k in ("p50", "p90", "p99", "p999", "max")},
            "rounds_per_second": med(p["roundsPerSecond"] for p in phases) if name == "churn" else None,
            "mmu_shadow_zapped": med((p.get("stats") or {}).get("vm", {}).get("mmu_shadow_zapped") for p in phases),
            "median_gap_cycles": med(p.get("medianGapCycles") for p in phases),
            "runs": len(phases),
        }
        entry[name] = e
        us = lambda v: f"{v * 1e6:8.1f}" if v is not None else "       -"
        print(f"{key[0]:>5} {key[1]:>4} {name:<9} {e['stalls']:>7.0f} {us(e['p50'])} {us(e['p90'])} {us(e['p99'])} {us(e['p999'])}"
              f" {(e['max'] or 0) * 1e6:9.1f} {e['rounds_per_second'] or 0:7.1f} {e['mmu_shadow_zapped'] or 0:8.0f} {e['median_gap_cycles'] or 0:9.0f}")
    summary["runs"][f"v{key[0]}_zap_{key[1]}"] = entry
json.dump(summary, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
