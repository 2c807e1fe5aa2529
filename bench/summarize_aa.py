"""compare-aa.sh's summary: false calls in the A/A compares, calls in the effect compares."""
import glob
import json
import os
import sys

CALLS = {"faster", "slower", "better", "worse", "higher", "lower"}


def rows(path):
    with open(path) as f:
        return json.load(f)["detail"]["comparison"]["metrics"]


folder = sys.argv[1]
experiments = sorted({os.path.basename(p).split("-", 1)[1].rsplit("-", 1)[0] for p in glob.glob(f"{folder}/aa-*.json")})
total_rows = total_calls = total_tables = tables_with_call = 0
print("A/A (identical variants): a call is a false verdict")
print(f"{'experiment':<12} {'compares':>8} {'verdicts':>9} {'false calls':>12} {'tables with any':>16}  examples")
for name in experiments:
    verdicts = calls = tables = with_call = 0
    examples = []
    for path in sorted(glob.glob(f"{folder}/aa-{name}-*.json")):
        try:
            metrics = rows(path)
        except (OSError, ValueError, KeyError):
            continue
        tested = [m for m in metrics if m["verdict"] not in ("not measured",)]
        called = [m for m in tested if m["verdict"] in CALLS]
        verdicts += len(tested)
        calls += len(called)
        tables += 1
        with_call += bool(called)
        examples += [f"{m['key']} {m['verdict']} {m['ratio']:.3f}" for m in called if m.get("ratio") is not None][:2]
    total_rows += verdicts
    total_calls += calls
    total_tables += tables
    tables_with_call += with_call
    share = 100 * calls / verdicts if verdicts else 0
    print(f"{name:<12} {tables:>8} {verdicts:>9} {calls:>5} ({share:4.1f}%) {with_call:>9} of {tables:<3}  {'; '.join(examples[:3])}")
if total_rows:
    print(f"{'all':<12} {total_tables:>8} {total_rows:>9} {total_calls:>5} ({100 * total_calls / total_rows:4.1f}%) {tables_with_call:>9} of {total_tables:<3}")

effects = sorted(glob.glob(f"{folder}/effect-*.json"))
if effects:
    print("\nEffect (jitter, SLOT_ZAP_ALL on against --no-zap-all): the churn metrics called")
    for path in effects:
        try:
            metrics = rows(path)
        except (OSError, ValueError, KeyError):
            print(f"  {os.path.basename(path)}: no comparison")
            continue
        churn = [m for m in metrics if m["labels"].get("phase") == "churn"]
        called = [f"{m['key']} {m['verdict']} {m['ratio']:.3f}" for m in churn if m["verdict"] in CALLS and m.get("ratio") is not None]
        print(f"  {os.path.basename(path)}: {len(called)} of {len(churn)} churn metrics called: {'; '.join(called)}")
