#!/usr/bin/env bash
# make mutants: is the test suite good enough to notice a plausible slip?
# Each Tests/Mutants/NN-name.patch is one small fault (its first line says
# which slip it models). In a scratch worktree of HEAD (the working tree is
# never touched), each is applied alone, built, and the whole suite run with
# a time limit: a failing suite caught it, a passing one let it survive, one
# past the limit hung (the per-test time limits should turn loops into
# failures first). The tree is restored between mutants. Results go to
# Tests/Mutants/RESULTS.md with the date, the score and the survivors.
#   MUTANTS=03,17 make mutants      only these numbers
#   MUTANT_TIMEOUT=900              seconds per suite run (default 900)
#   MUTANTS_WORK, MUTANTS_RESULTS   the scratch worktree and the results file (two runs at once)
# Needs what `make test` needs (root, /dev/kvm); takes minutes per mutant.
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
WORK=${MUTANTS_WORK:-/tmp/kvmlab-mutants}
LIMIT=${MUTANT_TIMEOUT:-900}
ONLY=${MUTANTS:-}
RESULTS=${MUTANTS_RESULTS:-Tests/Mutants/RESULTS.md}
LOGS=$WORK-logs

if ! [[ $LIMIT =~ ^[0-9]{1,6}$ ]] || (( LIMIT < 10 )); then
    echo "mutants: MUTANT_TIMEOUT=$LIMIT: a whole number of seconds, at least 10" >&2
    exit 2
fi
COMMIT=$(git rev-parse --short=12 HEAD)
PLANTED=$(ls Tests/Mutants/[0-9]*.patch | wc -l)
git worktree remove --force "$WORK" 2>/dev/null || rm -rf "$WORK"
git worktree prune
git worktree add --detach --quiet "$WORK" HEAD || exit 1
trap 'git -C "$ROOT" worktree remove --force "$WORK" >/dev/null 2>&1' EXIT
rm -rf "$LOGS" && mkdir -p "$LOGS"

echo "mutants: building the unmutated tree in $WORK"
if ! (cd "$WORK" && swift build --build-tests > "$LOGS/baseline-build.txt" 2>&1); then
    echo "mutants: the unmutated tree does not build (see $LOGS/baseline-build.txt)" >&2
    exit 1
fi

report() {
    counted=$((caught + survived + hung))
    score=$(( counted > 0 ? (100 * (caught + hung)) / counted : 0 ))
    {
        echo "# Mutation results"
        echo
        echo "\`make mutants\` ($( [ -n "$ONLY" ] && echo "MUTANTS=$ONLY, " )MUTANT_TIMEOUT=$LIMIT) on $(date -u +%Y-%m-%d), commit $COMMIT, kernel $(uname -r): $((counted + stillborn)) of the $PLANTED planted faults run."
        echo
        echo "**$((caught + hung)) of $counted caught ($score%)**: $caught by a failing test, $hung by the time limit; $survived survived; $stillborn did not apply or build (not counted)."
        echo
        echo "| mutant | slip | outcome |"
        echo "|---|---|---|"
        printf '%s\n' "${rows[@]}"
        if [ ${#survivors[@]} -gt 0 ]; then
            echo
            echo "Survivors (each needs a test that fails on it, or the reason none can):"
            printf -- '- %s\n' "${survivors[@]}"
        fi
    } > "$RESULTS"
}

rows=()
caught=0 survived=0 hung=0 stillborn=0
survivors=()
for patch in Tests/Mutants/[0-9]*.patch; do
    number=$(basename "$patch" | cut -d- -f1)
    if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$number,"* ]]; then continue; fi
    name=$(basename "$patch" .patch)
    slip=$(sed -n '1s/^# slip: //p' "$patch")
    git -C "$WORK" checkout --quiet -- .
    if ! git -C "$WORK" apply "$ROOT/$patch" 2> "$LOGS/$name.apply.txt"; then
        outcome="does not apply"
        stillborn=$((stillborn + 1))
    elif ! (cd "$WORK" && swift build --build-tests > "$LOGS/$name.build.txt" 2>&1); then
        outcome="does not build"
        stillborn=$((stillborn + 1))
    else
        start=$(date +%s)
        (cd "$WORK" && timeout --kill-after=30 "$LIMIT" swift test --skip-build --disable-xctest --no-parallel > "$LOGS/$name.test.txt" 2>&1)
        status=$?
        seconds=$(( $(date +%s) - start ))
        if [ "$status" -eq 0 ]; then
            outcome="SURVIVED"
            survived=$((survived + 1))
            survivors+=("$name: $slip")
        elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            outcome="hung (past ${LIMIT} s)"
            hung=$((hung + 1))
        else
            failing=$(grep -oE '✘ Test [A-Za-z0-9_]+\(' "$LOGS/$name.test.txt" | sed 's/✘ Test //; s/($//' | sort -u | head -3 | paste -sd, -)
            outcome="caught in ${seconds} s by ${failing:-a failing build of the tests}"
            caught=$((caught + 1))
        fi
    fi
    git -C "$WORK" checkout --quiet -- .
    echo "mutants: $name: $outcome"
    rows+=("| $name | $slip | $outcome |")
    # Written after every mutant, so a run cut short still leaves its results.
    report
done

report
echo "mutants: $((caught + hung)) of $counted caught ($score%); $survived survived; $stillborn stillborn; see $RESULTS and $LOGS"
