# Sourced by the bench scripts that compare against the selftests: counts
# the emulated instructions of a run the same way for both tools, through
# the kvm:kvm_emulate_insn tracepoint (the selftests' own KVM stats are in
# debugfs, which these hosts refuse). Run a program as
# `"${counted[@]}" PROGRAM ...`, then `$(emulated)` is its count, or -1
# where perf cannot count it (the prefix is then empty). Needs $OUT.
counted=()
if perf stat -e kvm:kvm_emulate_insn -x, -o /dev/null true 2>/dev/null; then
    counted=(perf stat -x, -e kvm:kvm_emulate_insn -o "$OUT/emulated.csv" --)
fi
emulated() { [ ${#counted[@]} -gt 0 ] && awk -F, '/kvm_emulate_insn/ {print $1}' "$OUT/emulated.csv" || echo -1; }
