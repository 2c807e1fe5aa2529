"""Medians per configuration of kvmlab dirty-log and dirty_log_perf_test."""
import json
import statistics
import sys

raw_path, out_path = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw_path)]


def kvmlab_phases(data):
    result = data["detail"]
    its = result["iterations"]
    return {
        "populate": result["populate"]["seconds"],
        "enable": result["enable"]["seconds"],
        "dirty_total": sum(i["dirtyMemorySeconds"] for i in its),
        "get_total": sum(i["getSeconds"] for i in its),
        "clear_total": sum(i.get("clearSeconds") or 0 for i in its),
        "disable": (result.get("disable") or {}).get("seconds", 0.0),
    }


summary = {}
for config in dict.fromkeys(r["config"] for r in rows):
    entry = {}
    for tool in ("selftest", "kvmlab"):
        runs = [r for r in rows if r["config"] == config and r["tool"] == tool]
        ok = [r for r in runs if r["status"] == 0]
        if not runs:
            continue
        if not ok:
            entry[tool] = {"failed": len(runs), "failure": runs[0].get("failure") or runs[0].get("data", {}).get("experiment", {}).get("problems")}
            continue
        phases = [r["phases"] if tool == "selftest" else kvmlab_phases(r["data"]) for r in ok]
        entry[tool] = {name: statistics.median(p[name] for p in phases if name in p) for name in phases[0]}
        entry[tool]["wall"] = statistics.median(r["wall"] for r in ok)
        entry[tool]["runs"] = len(ok)
    summary[config] = entry

print()
for config, entry in summary.items():
    print(f"== {config}")
    k, c = entry.get("kvmlab", {}), entry.get("selftest", {})
    if "failed" in c:
        print(f"   dirty_log_perf_test failed {c['failed']}x: {c['failure']}")
    print(f"   {'phase':<12} {'selftest s':>11} {'kvmlab s':>10} {'kvmlab/C':>9}")
    for name in ("populate", "enable", "dirty_total", "get_total", "clear_total", "disable", "wall"):
        kv, cv = k.get(name), c.get(name) if "failed" not in c else None
        ratio = f"{kv / cv:9.3f}" if kv is not None and cv else "        -"
        print(f"   {name:<12} {cv if cv is not None else '-':>11} {kv if kv is not None else '-':>10} {ratio}"
              if not isinstance(cv, float) and not isinstance(kv, float) else
              f"   {name:<12} {('%.6f' % cv) if cv is not None else '-':>11} {('%.6f' % kv) if kv is not None else '-':>10} {ratio}")
json.dump(summary, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
