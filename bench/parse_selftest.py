"""Reads dirty_log_perf_test's text output (stdin) into one JSON line."""
import json
import re
import sys

from selftest_time import seconds

config, round_, status, wall = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
emulated = int(sys.argv[5]) if len(sys.argv) > 5 else -1  # kvm:kvm_emulate_insn over the run, -1 uncounted
text = sys.stdin.read()
phases = {}
patterns = {
    "populate": r"Populate memory time: (\d+)\.(\d+)s",
    "enable": r"Enabling dirty logging time: (\d+)\.(\d+)s",
    "get_total": r"Get dirty log over \d+ iterations took (\d+)\.(\d+)s",
    "clear_total": r"Clear dirty log over \d+ iterations took (\d+)\.(\d+)s",
    "disable": r"Disabling dirty logging time: (\d+)\.(\d+)s",
}
for name, pattern in patterns.items():
    match = re.search(pattern, text)
    if match:
        phases[name] = seconds(match.group(1), match.group(2))
dirty = [seconds(s, ns) for s, ns in re.findall(r"Iteration \d+ dirty memory time: (\d+)\.(\d+)s", text)]
if dirty:
    phases["dirty_total"] = sum(dirty)
last = [line for line in text.strip().splitlines() if line.strip()][-1:] or [""]
lines = [l.strip() for l in text.splitlines()]
failure = None if status == 0 else next((l for l in lines if "exit_reason" in l), next((l for l in lines if "Assertion" in l), last[0]))
print(json.dumps({"tool": "selftest", "config": config, "round": round_, "status": status, "wall": wall,
                  "emulated": emulated, "phases": phases, "failure": failure}))
