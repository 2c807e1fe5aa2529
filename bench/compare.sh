#!/usr/bin/env bash
# compare's worked example and its overhead (issue 10), in one sitting:
#  1. the eager-split pair (param:kvm.eager_page_split N vs Y) with THP;
#  2. an A/A comparison (identical variants): every verdict must be
#     "no significant change" - compare must not invent differences;
#  3. ROUNDS direct runs against compare's own rounds of the same command,
#     interleaved, compared offline: a variant's figures equal a direct run's.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/common.sh
setting ROUNDS 5 1 1000
OUT=bench/out/compare
rm -rf "$OUT" && mkdir -p "$OUT/direct" "$OUT/via-compare"
CONFIG=(dirty-log -v 2 -b 256m -i 3 -s anonymous_thp)

echo "== 1. eager page splitting off vs on (THP backing)"
"$KVMLAB" compare "${CONFIG[@]}" --rounds "$ROUNDS" \
    --a 'param:kvm.eager_page_split=N' --b 'param:kvm.eager_page_split=Y' 2>&1 | tee "$OUT/eager-split.txt" || true

echo "== 2. A/A: the same flags on both sides, $ROUNDS rounds each"
"$KVMLAB" compare "${CONFIG[@]}" --rounds "$ROUNDS" --a '' --b '' --json > "$OUT/aa.json"
"$KVMLAB" compare "${CONFIG[@]}" --rounds "$ROUNDS" --a '' --b '' | tee "$OUT/aa.txt"

echo "== 3. direct runs against compare's rounds, interleaved"
for round in $(seq 1 "$ROUNDS"); do
    "$KVMLAB" "${CONFIG[@]}" --json --quiet > "$OUT/direct/$round.json"
    "$KVMLAB" compare "${CONFIG[@]}" --rounds 1 --a '' --b '' --json > "$OUT/round-$round.json"
    python3 - "$OUT/round-$round.json" "$OUT/via-compare/$round.json" <<'PY'
import json, sys
document = json.load(open(sys.argv[1]))
experiment = document["detail"]["rounds"]["A"][0]
json.dump({"schema": document["schema"], "command": experiment["experiment"], "host": document["host"],
           "experiment": experiment, "detail": {}}, open(sys.argv[2], "w"))
PY
done
"$KVMLAB" compare "$OUT/direct" "$OUT/via-compare" | tee "$OUT/overhead.txt"
