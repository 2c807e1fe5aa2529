import Glibc

/// Deliberate faults in kvmlab's own host side, for proving that its checks
/// fail when they should (contributors' switch, see README "Fault
/// injection"). Set KVMLAB_INJECT_FAULT to one of the raw values; unset or
/// unknown means none. Never used by a normal run.
public enum InjectedFault: String, CaseIterable, Sendable {
    /// The harvester forgets the first dirty page of every harvest.
    case dropDirtyBit = "drop-dirty-bit"
    /// The harvester reports one page that was not written.
    case extraDirtyBit = "extra-dirty-bit"
    /// The harvester never re-protects (no KVM_CLEAR_DIRTY_LOG / ring reset).
    case skipClear = "skip-clear"
    /// One word of guest memory is overwritten behind the guest's back
    /// before the host reads memory back (memslot, populate, run).
    case corruptPage = "corrupt-page"
    /// At a ring-full exit, the first entry collected from the full ring is dropped.
    case dropFullRingEntry = "drop-full-ring-entry"
    /// The first reset after a ring-full exit is skipped, though the host counts it as done.
    case skipRingReset = "skip-ring-reset"
    /// The host "makes guest memory read-only" without calling mprotect.
    case skipMprotect = "skip-mprotect"
    /// root-reload's toggler flips CR0.ET, which always reads back 1, instead of CR0.WP.
    case cr0FlipThatNeverSticks = "cr0-flip-never-sticks"
    /// memslot rw: the host writes one wrong word where the guest then checks the host's writes.
    case corruptHostWrite = "corrupt-host-write"
    /// The host "punches a hole" in guest_memfd memory without calling fallocate.
    case skipHolePunch = "skip-hole-punch"
    /// The host deletes the vCPUs' memslot under their writes and never puts it back.
    case slotNotRestored = "slot-not-restored"
    /// teardown's TCP victim: the receiver stops counting during the teardown window.
    case victimStopsCounting = "victim-stops-counting"
    /// migrate: the first page the first harvest finds dirty is never sent
    /// again (rounds and switchover): the guest's later writes to it are lost.
    case migrateSkipPage = "migrate-skip-page"
    /// migrate: the destination does not carry the guest's TSC over: it starts from 0, as a new vCPU's.
    case tscNotCarried = "tsc-not-carried"

    public static let variable = "KVMLAB_INJECT_FAULT"

    /// The fault this process was started with, if any.
    public static let active: InjectedFault? = getenv(variable).flatMap { InjectedFault(rawValue: String(cString: $0)) }

    static func on(_ fault: InjectedFault) -> Bool { active == fault }
}
