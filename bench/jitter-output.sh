#!/usr/bin/env bash
# make bench: what jitter's --events and --svg cost, in bytes and seconds,
# for 2, 64 and 1024 vCPUs over 5 s and 60 s (DURATIONS, VCPUS override).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
OUT=bench/out/jitter-output
mkdir -p "$OUT"
echo "vcpus duration_s events_bytes events_s svg_bytes svg_s stalls"
for vcpus in ${VCPUS:-2 64 1024}; do
    for duration in ${DURATIONS:-5 60}; do
        "$KVMLAB" jitter -v "$vcpus" --duration "$duration" --warmup 1 --working-set 64k \
            --events "$OUT/j.csv" --svg "$OUT/j.svg" --json > "$OUT/j.json" 2> "$OUT/j.err" || true
        python3 - "$vcpus" "$duration" "$OUT" <<'PY'
import json, re, sys
vcpus, duration, out = sys.argv[1], sys.argv[2], sys.argv[3]
written = dict((path.rsplit(".", 1)[1], (int(b), float(s))) for path, b, s in re.findall(r"wrote (\S+) \((\d+) bytes in ([\d.]+) s\)", open(f"{out}/j.err").read()))
doc = json.load(open(f"{out}/j.json"))
stalls = sum(p["stalls"] for p in doc["detail"]["phases"])
csv, svg = written.get("csv", (0, 0)), written.get("svg", (0, 0))
print(vcpus, duration, csv[0], csv[1], svg[0], svg[1], stalls)
PY
    done
done
