"""Medians and quartiles of the host-side dirty-logging phases, kvmlab at
CPL0 against dirty_log_perf_test, from bench/dirty-ioctls.sh's raw lines."""
import json
import statistics
import sys

from dirty_phases import kvmlab_phases

raw_path, out_path = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw_path)]
PHASES = ("enable", "get_total", "clear_total", "disable")


def quartiles(values):
    if len(values) < 2:
        return values[0], values[0], values[0]
    q1, q2, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q2, q3


summary = {}
print(f"{'config':<24} {'phase':<12} {'selftest µs (q1 med q3)':>26} {'kvmlab µs (q1 med q3)':>26} {'ratio':>6} {'runs':>5}")
for config in dict.fromkeys(r["config"] for r in rows):
    c = [r["phases"] for r in rows if r["config"] == config and r["tool"] == "selftest" and r["status"] == 0]
    k = [kvmlab_phases(r["data"]) for r in rows if r["config"] == config and r["tool"] == "kvmlab_cpl0" and r["status"] == 0]
    if not c or not k:
        print(f"{config:<24} no successful runs of {'the selftest' if not c else 'kvmlab'}")
        continue
    entry = summary[config] = {}
    for phase in PHASES:
        cq, kq = quartiles([p[phase] for p in c]), quartiles([p[phase] for p in k])
        entry[phase] = {"selftest": cq, "kvmlab_cpl0": kq, "ratio_of_medians": kq[1] / cq[1], "runs": [len(c), len(k)]}
        text = lambda q: " ".join(f"{v * 1e6:8.1f}" for v in q)
        print(f"{config:<24} {phase:<12} {text(cq):>26} {text(kq):>26} {kq[1] / cq[1]:6.3f} {len(c):>2}/{len(k):<2}")
json.dump(summary, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
