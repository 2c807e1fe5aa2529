#!/usr/bin/env bash
# make bench: first touch of guest memory against the kernel's
# demand_paging_test (no userfaultfd: its vCPUs write one word per page
# once). Its guest runs at CPL0, which kvm_pvm emulates, so the matching
# kvmlab work is dirty-log --cpl 0's populate phase (one write per page at
# CPL0); populate --mode demand is kvmlab's native figure (CPL3: real
# shadow-MMU faults), shown beside it, not as a ratio. ABBA order, ROUNDS
# rounds; emulated instructions counted through perf for every run.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 5 1 1000
setting VCPUS 1 1 4096
setting MIB 512 1 1048576
raw="$OUT/demand.jsonl"
: > "$raw"
selftest=$(bash bench/build-selftest.sh demand_paging_test 2>"$OUT/build-demand-selftest.log" || true)
source bench/emulated.sh

reference() {
    [ -x "$selftest" ] || return 0
    local text="$OUT/demand_paging_test.txt"
    "${counted[@]}" "$selftest" -v "$VCPUS" -b "${MIB}M" > "$text" 2>&1 || { echo "demand_paging_test failed: $(tail -1 "$text")" >&2; return 0; }
    python3 - "$raw" "$1" "$(emulated)" "$text" <<'PY'
import json, re, sys
sys.path.insert(0, "bench")
from selftest_time import seconds
text = open(sys.argv[4]).read()
total = re.search(r"Total guest execution time:\s+(\d+)\.(\d+)s", text)
with open(sys.argv[1], "a") as out:
    out.write(json.dumps({"tool": "selftest", "round": int(sys.argv[2]), "emulated": int(sys.argv[3]),
                          "seconds": seconds(*total.groups())}) + "\n")
PY
}
kvmlab_cpl0() {
    "${counted[@]}" "$KVMLAB" dirty-log -v "$VCPUS" -b "${MIB}m" -i 1 --cpl 0 --json --quiet > "$OUT/demand-run.json"
    python3 bench/record.py "$raw" - tool=kvmlab_cpl0 round="$1" emulated="$(emulated)" < "$OUT/demand-run.json"
}
kvmlab_cpl3() {
    "$KVMLAB" populate -v "$VCPUS" -b "${MIB}m" --mode demand --json --quiet > "$OUT/demand-run.json"
    python3 bench/record.py "$raw" - tool=kvmlab_cpl3 round="$1" < "$OUT/demand-run.json"
}
for round in $(seq 1 "$ROUNDS"); do
    if (( round % 2 )); then reference "$round"; kvmlab_cpl0 "$round"; kvmlab_cpl3 "$round"
    else kvmlab_cpl3 "$round"; kvmlab_cpl0 "$round"; reference "$round"; fi
done
python3 - "$raw" "$VCPUS" "$MIB" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
pages = int(sys.argv[2]) * int(sys.argv[3]) * 256
def seconds(row):
    if row["tool"] == "selftest":
        return row["seconds"]
    detail = row["data"]["detail"]
    if row["tool"] == "kvmlab_cpl0":
        return detail["populate"]["seconds"]
    return next(m for m in detail["modes"] if m["mode"] == "demand")["firstPass"]["seconds"]
def per_page(row):
    """Emulated instructions per page write: kvmlab's count covers its
    populate and the one dirty pass after it (-i 1), two writes a page."""
    writes = pages * (2 if row["tool"] == "kvmlab_cpl0" else 1)
    return row["emulated"] / writes if row.get("emulated", -1) >= 0 else None
print(f"\nfirst touch of {pages} pages ({sys.argv[2]} vCPU(s) x {sys.argv[3]} MiB), medians of ABBA rounds")
print(f"{'':<34} {'s':>9} {'µs/page':>8} {'emulated/write':>14} {'/selftest':>10}")
base = None
for tool, label in (("selftest", "demand_paging_test (CPL0)"), ("kvmlab_cpl0", "kvmlab dirty-log --cpl 0 populate"),
                    ("kvmlab_cpl3", "kvmlab populate demand (CPL3)")):
    runs = [r for r in rows if r["tool"] == tool]
    if not runs:
        print(f"{label:<34} not run")
        continue
    s = statistics.median(seconds(r) for r in runs)
    insn = [v for r in runs if (v := per_page(r)) is not None]
    base = s if tool == "selftest" else base
    ratio = f"{s / base:10.3f}" if base and tool == "kvmlab_cpl0" else f"{'-':>10}"
    print(f"{label:<34} {s:9.4f} {s / pages * 1e6:8.2f} {statistics.median(insn) if insn else float('nan'):14.2f} {ratio}")
PY
