"""Medians and quartiles of the host-side dirty-logging phases, kvmlab at
CPL0 (vCPU threads asleep or spinning between passes) against
dirty_log_perf_test, from bench/dirty-ioctls.sh's raw lines."""
import json
import statistics
import sys

from dirty_phases import kvmlab_phases
from quartiles import quartiles

raw_path, out_path = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw_path)]
PHASES = ("enable", "get_total", "clear_total", "disable")
TOOLS = ("kvmlab_cpl0_sleep", "kvmlab_cpl0_spin")


def text(q):
    return " ".join(f"{v * 1e6:7.1f}" for v in q)


summary = {}
print(f"{'config':<32} {'phase':<12} {'selftest µs (q1 med q3)':>23}"
      + "".join(f" {tool.removeprefix('kvmlab_cpl0_') + ' µs (q1 med q3)':>23} {'ratio':>6}" for tool in TOOLS) + "  runs")
for config in dict.fromkeys(r["config"] for r in rows):
    c = [r["phases"] for r in rows if r["config"] == config and r["tool"] == "selftest" and r["status"] == 0]
    k = {tool: [kvmlab_phases(r["data"]) for r in rows if r["config"] == config and r["tool"] == tool and r["status"] == 0]
         for tool in TOOLS}
    if not c or not all(k.values()):
        print(f"{config:<32} no successful runs of {'the selftest' if not c else 'kvmlab'}")
        continue
    entry = summary[config] = {}
    for phase in PHASES:
        cq = quartiles([p[phase] for p in c])
        entry[phase] = {"selftest": cq, "runs": {"selftest": len(c)}}
        line = f"{config:<32} {phase:<12} {text(cq):>23}"
        for tool in TOOLS:
            kq = quartiles([p[phase] for p in k[tool]])
            entry[phase][tool] = kq
            entry[phase][f"{tool}_ratio_of_medians"] = kq[1] / cq[1]
            entry[phase]["runs"][tool] = len(k[tool])
            line += f" {text(kq):>23} {kq[1] / cq[1]:6.3f}"
        print(line + f"  {len(c)}/{'/'.join(str(len(k[t])) for t in TOOLS)}")
json.dump(summary, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
