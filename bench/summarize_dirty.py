"""Medians per configuration of kvmlab dirty-log and dirty_log_perf_test."""
import json
import statistics
import sys

from dirty_phases import kvmlab_phases

raw_path, out_path = sys.argv[1], sys.argv[2]
rows = [json.loads(line) for line in open(raw_path)]


def size(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1].upper() in units else int(text)


def page_writes(config):
    """Guest page writes a run makes: populate plus every iteration, on every vCPU."""
    words = config.split()
    flag = lambda name, default: words[words.index(name) + 1] if name in words else default
    return int(flag("-v", "1")) * size(flag("-b", "1G")) // 4096 * (int(flag("-i", "2")) + 1)


def insn_per_page(row):
    """kvm:kvm_emulate_insn over the whole run per guest page write, if counted."""
    return row["emulated"] / page_writes(row["config"]) if row.get("emulated", -1) >= 0 else None


summary = {}
for config in dict.fromkeys(r["config"] for r in rows):
    entry = {}
    for tool in ("selftest", "kvmlab", "kvmlab_cpl0"):
        runs = [r for r in rows if r["config"] == config and r["tool"] == tool]
        ok = [r for r in runs if r["status"] == 0]
        if not runs:
            continue
        if not ok:
            entry[tool] = {"failed": len(runs), "failure": runs[0].get("failure") or runs[0].get("data", {}).get("experiment", {}).get("problems")}
            continue
        phases = [{**(r["phases"] if tool == "selftest" else kvmlab_phases(r["data"])), "insn_per_page": insn_per_page(r)} for r in ok]
        entry[tool] = {name: statistics.median(values) for name in phases[0]
                       if (values := [p[name] for p in phases if p.get(name) is not None])}
        entry[tool]["wall"] = statistics.median(r["wall"] for r in ok)
        entry[tool]["runs"] = len(ok)
    summary[config] = entry

print()
for config, entry in summary.items():
    print(f"== {config}")
    c, k3, k0 = entry.get("selftest", {}), entry.get("kvmlab", {}), entry.get("kvmlab_cpl0", {})
    if "failed" in c:
        print(f"   dirty_log_perf_test failed {c['failed']}x: {c['failure']}")
    print(f"   {'phase':<13} {'selftest s':>11} {'kvmlab CPL3 s':>14} {'CPL3/C':>7} {'kvmlab CPL0 s':>14} {'CPL0/C':>7}")
    for name in ("populate", "enable", "dirty_total", "get_total", "clear_total", "disable", "wall", "insn_per_page"):
        cv = c.get(name) if "failed" not in c else None
        cells = []
        for k in (k3, k0):
            kv = k.get(name) if "failed" not in k else None
            cells.append((f"{kv:14.6f}" if isinstance(kv, float) else f"{'-':>14}",
                          f"{kv / cv:7.3f}" if isinstance(kv, float) and cv else f"{'-':>7}"))
        ctext = f"{cv:11.6f}" if isinstance(cv, float) else f"{'-':>11}"
        print(f"   {name:<13} {ctext} {cells[0][0]} {cells[0][1]} {cells[1][0]} {cells[1][1]}")
json.dump(summary, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
