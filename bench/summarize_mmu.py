"""Medians of the memslot, teardown, populate and root-reload runs, and the
reference memslot_perf_test's figures where it produced any."""
import json
import re
import statistics
import sys

from selftest_time import seconds

raw_path, reference_path, out_path = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(line) for line in open(raw_path)]


def results(case):
    return [r["data"]["detail"] for r in rows if r["case"] == case and r["data"]]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def us(value):
    return f"{value * 1e6:10.1f}" if value is not None else "         -"


summary = {"memslot": {}, "teardown": {}, "populate": {}, "root_reload": {}}
print(f"\nmemslot (medians of {len(results('memslot'))} invocations; µs)")
print(f"{'test':<14} {'iter p50':>10} {'iter p99':>10} {'best mean':>10} {'op p50':>10} {'op p99':>10} {'setup ms':>9} {'mismatch':>8}")
tests = [e["test"] for e in (results("memslot") or [{"experiments": []}])[0]["experiments"]]
for test in tests:
    runs = [e for r in results("memslot") for e in r["experiments"] if e["test"] == test]
    entry = {
        "iteration_p50": med((e.get("iterationSeconds") or {}).get("p50") for e in runs),
        "iteration_p99": med((e.get("iterationSeconds") or {}).get("p99") for e in runs),
        "best_mean_iteration": med(e.get("bestMeanIterationSeconds") for e in runs),
        "operation_p50": med((e.get("operationSeconds") or {}).get("p50") for e in runs),
        "operation_p99": med((e.get("operationSeconds") or {}).get("p99") for e in runs),
        "slot_setup": med(e.get("bestSlotSetupSeconds") for e in runs),
        "mismatches": sum(run.get("measured", run)["mismatches"] for e in runs for run in e["runs"]),
    }
    summary["memslot"][test] = entry
    print(f"{test:<14} {us(entry['iteration_p50'])} {us(entry['iteration_p99'])} {us(entry['best_mean_iteration'])}"
          f" {us(entry['operation_p50'])} {us(entry['operation_p99'])} {entry['slot_setup'] * 1e3:9.1f} {entry['mismatches']:8d}")

# memslot_perf_test: per test, the best mean iteration and best slot setup of each invocation.
reference = open(reference_path).read()
names = {"map": "map", "unmap": "unmap", "unmap chunked": "unmap-chunked", "move active area": "move-active",
         "move inactive area": "move-inactive", "RW": "rw"}
sections = re.split(r"^Testing (.+?) performance with .*$", reference, flags=re.M)
best = {}
for name, body in zip(sections[1::2], sections[2::2]):
    test = names.get(name, name)
    runtime = re.search(r"Best runtime result was (\d+)\.(\d+)s per iteration", body)
    # "Best slot setup time" is printed once per invocation; each run's own line is per test.
    setups = re.finditer(r"^Test took (\d+)\.(\d+)s for slot setup", body, re.M)
    entry = best.setdefault(test, {"best_mean_iteration": [], "slot_setup": []})
    if runtime:
        entry["best_mean_iteration"].append(seconds(*runtime.groups()))
    if setup_times := [seconds(*m.groups()) for m in setups]:
        entry["slot_setup"].append(min(setup_times))
summary["memslot_perf_test"] = {test: {k: med(v) for k, v in entry.items()} for test, entry in best.items()}
summary["memslot_perf_test_failures"] = re.findall(r"^ *memslot_perf_test\.c:\d+: .*$", reference, re.M)[:3]
if best:
    print(f"\nmemslot against memslot_perf_test (medians of invocations' best mean iteration and best slot setup)")
    print(f"{'test':<14} {'selftest µs':>12} {'kvmlab µs':>10} {'kvmlab/C':>9} {'setup ms C':>11} {'setup ms':>9} {'ratio':>6}")
    for test, entry in summary["memslot_perf_test"].items():
        mine = summary["memslot"].get(test, {})
        c, k = entry.get("best_mean_iteration"), mine.get("best_mean_iteration")
        cs, ks = entry.get("slot_setup"), mine.get("slot_setup")
        ratio = f"{k / c:9.3f}" if c and k else f"{'-':>9}"
        setup_ratio = f"{ks / cs:6.3f}" if cs and ks else f"{'-':>6}"
        print(f"{test:<14} {us(c)}   {us(k)} {ratio} {cs * 1e3 if cs else float('nan'):11.1f} {ks * 1e3 if ks else float('nan'):9.1f} {setup_ratio}")
else:
    print("\nmemslot_perf_test: no result; " + "; ".join(summary["memslot_perf_test_failures"][:1]))

print("\nteardown (medians; s)")
for order in ("vm-first", "memory-first"):
    runs = [run for r in results("teardown") for run in r["runs"] if run["order"] == order]
    if not runs:
        continue
    entry = {"populate": med(run["populateSeconds"] for run in runs), "teardown": med(run["teardownSeconds"] for run in runs)}
    for step in ("destroy", "unmap"):
        entry[step] = med(s["seconds"] for run in runs for s in run["steps"] if s["name"].startswith(step))
    for window in ("idle", "busy", "teardown"):
        ws = [w for run in runs for w in run["windows"] if w["name"] == window]
        entry[f"{window}_gap_max"] = med((w.get("gapSeconds") or {}).get("max") for w in ws)
        entry[f"{window}_gap_p50"] = med((w.get("gapSeconds") or {}).get("p50") for w in ws)
        entry[f"{window}_off_cpu"] = med(w["offCPUFraction"] for w in ws)
    summary["teardown"][order] = entry
    print(f"{order:<13} populate {entry['populate']:.3f}  destroy {entry['destroy']:.4f}  unmap {entry['unmap']:.4f}  total {entry['teardown']:.4f}"
          f"  gap max idle/busy/teardown {us(entry['idle_gap_max'])} {us(entry['busy_gap_max'])} {us(entry['teardown_gap_max'])} µs"
          f"  off-CPU busy {entry['busy_off_cpu'] * 100:.1f}% teardown {entry['teardown_off_cpu'] * 100:.1f}%")

print("\npopulate (medians; s)")
for mode in ("demand", "host-populate", "prefault-vcpu", "kvm-prefault"):
    modes = [m for r in results("populate") for m in r["modes"] if m["mode"] == mode]
    if not modes:
        continue
    if modes[0].get("unsupported"):
        summary["populate"][mode] = {"unsupported": modes[0]["unsupported"]}
        print(f"{mode:<14} {modes[0]['unsupported']}")
        continue
    entry = {k: med((m.get(k) or {}).get("seconds") for m in modes) for k in ("population", "firstPass", "secondPass")}
    entry["ready"] = med(m.get("readySeconds") for m in modes)
    entry["first_pass_pf_fixed"] = med(((m.get("firstPass") or {}).get("stats") or {}).get("vcpus", {}).get("pf_fixed") for m in modes)
    summary["populate"][mode] = entry
    print(f"{mode:<14} population {entry['population']:.3f}  first pass {entry['firstPass']:.3f}  ready {entry['ready']:.3f}"
          f"  second pass {entry['secondPass']:.4f}  first-pass pf_fixed {entry['first_pass_pf_fixed']:.0f}")

print("\nroot-reload (medians)")
runs = results("root_reload")
if runs:
    toggling = [r["phases"][1] for r in runs if len(r["phases"]) > 1]
    entry = {"toggles_per_second": med(p["togglesPerSecond"] for p in toggling),
             "seconds_per_toggle": med(p.get("secondsPerToggle") for p in toggling),
             "dirtier_ratio": med(r.get("dirtierThroughputRatio") for r in runs),
             "emulated": runs[0]["emulatedKernelMode"]}
    summary["root_reload"] = entry
    print(f"toggles/s {entry['toggles_per_second']:.0f}  µs/toggle {entry['seconds_per_toggle'] * 1e6:.2f}"
          f"  dirtiers at {(entry['dirtier_ratio'] or 0) * 100:.1f}% of baseline  (CPL0 emulated: {entry['emulated']})")
json.dump(summary, open(out_path, "w"), indent=2, sort_keys=True)
print(f"\nwritten: {out_path}")
