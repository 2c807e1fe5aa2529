import Guests
import KVM
import VMM

/// The dirty ring's full path, driven the way the kernel's
/// `dirty_log_test -M dirty-ring` drives it: the vCPUs write distinct pages
/// and nobody harvests until KVM stops a vCPU with KVM_EXIT_DIRTY_RING_FULL;
/// then that vCPU's thread collects its ring and resets it, and the guest
/// goes on. Every page is written once per pass, so each pass must put
/// every page of a vCPU's region in its ring exactly once, but for one
/// kind of page: the one whose write fault filled the ring. KVM pushes
/// it, leaves to userspace before the write retires, and the reset
/// write-protects it again, so the retried write pushes it a second time.
/// That re-report is expected (dirty_log_test allows it too); any other
/// second entry is not.
///
/// What can go wrong in the kernel: KVM stops a vCPU once its ring holds
/// the ring's size less a reserve (64 entries, plus the CPU's dirty-log
/// buffer where there is one), checked between guest entries. A vCPU
/// whose instructions are emulated in batches (kvm_pvm at CPL0) can push
/// more than the reserve within one batch, wrap the ring, and overwrite
/// entries nobody collected: those pages are lost, and the collected ring
/// is completely full. KVM's own index then runs ahead of the entries it
/// published: every later exit finds nothing to collect and nothing to
/// reset, and the vCPU exits for ever. That is reported as soon as it is
/// certain (`stuckExits` empty exits in a row), not after a timeout.
public struct RingFillConfig: Sendable {
    public var vcpus = 1
    public var cpl: PrivilegeLevel = .kernel
    public var ringEntries = 256
    public var passes = 3
    /// Pages each vCPU writes per pass, in ring sizes: each pass fills the ring this many times.
    public var fillsPerPass = 4

    public init() {}

    public var pagesPerVCPU: UInt64 { UInt64(ringEntries) * UInt64(fillsPerPass) }
}

public struct RingFillResult: Sendable {
    public let config: RingFillConfig
    /// Ring-full exits, and the entries each found (fewest, most).
    public let fullExits: Int
    public let entriesAtExit: (fewest: Int, most: Int)?
    /// Exits whose ring held every entry: KVM went past its reserve.
    public let overruns: Int
    /// Pages reported twice because their own write fault filled the ring (expected).
    public let reReported: Int
    /// Pages written (stamped in memory) and checked against the rings.
    public let pagesChecked: Int
    public let lost: Int
    public let duplicates: Int
    /// Entries for pages the pass did not write, or outside the vCPU's region.
    public let strays: Int
    /// KVM_RESET_DIRTY_RINGS calls that reset another count than the
    /// entries collected since the previous reset.
    public let resetMismatches: Int
    public let examples: [String]
    public let problems: [String]
    public let interrupted: Bool
}

public enum RingFillScenario {
    /// Ring-full exits in a row that find no entry: the ring's indices have
    /// parted (after an overrun); no harvest can let the vCPU go on.
    static let stuckExits = 100

    /// Ring-full exits whose ring held every entry: KVM kept no reserve, so
    /// it pushed past its soft limit (and may have wrapped).
    static func overruns(_ entriesAtExit: [Int], ringEntries: Int) -> Int { entriesAtExit.filter { $0 >= ringEntries }.count }

    public static func run(_ config: RingFillConfig) throws -> RingFillResult {
        let device = try KVMDevice()
        let limits = device.dirtyRingLimits
        guard limits.maxEntries > 0 else { throw HostLacks("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)") }
        guard config.ringEntries >= limits.minEntries, config.ringEntries <= limits.maxEntries, config.ringEntries & (config.ringEntries - 1) == 0 else {
            throw ConfigError("\(field: "ringEntries") must be a power of two from \(limits.minEntries) to \(limits.maxEntries), not \(config.ringEntries)")
        }
        let machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.pagesPerVCPU * GuestLayout.pageSize * UInt64(config.vcpus),
                                                cpl: config.cpl, dirtyRingEntries: config.ringEntries), device: device)
        try machine.load(GuestImage.builtin("passes")!)
        try machine.setTestSlotFlags(.logDirtyPages)
        return try RingFillRun(machine: machine, config: config).execute()
    }
}

final class RingFillRun: @unchecked Sendable {
    // @unchecked: everything vCPU threads reach is in `state`, behind its lock.
    let machine: Machine
    let config: RingFillConfig
    let runner: VCPURunner
    let driver: PassDriver

    /// The rings and what was collected from them: one lock for collecting
    /// and resetting, so that the count KVM_RESET_DIRTY_RINGS returns can be
    /// compared with the entries collected since the last reset.
    struct State {
        var rings: [DirtyRing]
        /// Per vCPU: (slot, page offset) of every entry collected this pass.
        var collected: [[(UInt32, UInt64)]]
        var collectedSinceReset = 0
        var entriesAtExit: [Int] = []
        var resetMismatches = 0
        var resetExamples: [String] = []
        var skippedReset = false
        /// The last entry each ring-full exit collected: its page may come again.
        var filledBy: Set<UInt64> = []
        var emptyExitsInARow: [Int]
    }
    private let state: Locked<State>

    init(machine: Machine, config: RingFillConfig) throws {
        self.machine = machine
        self.config = config
        state = Locked(State(rings: try machine.vcpus.map { try DirtyRing(vcpu: $0, entries: config.ringEntries) },
                             collected: Array(repeating: [], count: machine.vcpus.count),
                             emptyExitsInARow: Array(repeating: 0, count: machine.vcpus.count)))
        runner = VCPURunner(machine: machine) { _, _ in .resume }
        driver = PassDriver(machine: machine, runner: runner)
        runner.onDirtyRingFull = { [state] vcpu in try RingFillRun.collect(state, vcpu: vcpu, atFullExit: true, vm: machine.vm) }
    }

    /// Collects a vCPU's ring and resets. At a ring-full exit, also records
    /// how many entries the ring held (and, with the planted fault, drops one).
    static func collect(_ state: Locked<State>, vcpu: Int?, atFullExit: Bool, vm: VirtualMachine) throws {
        try state.withLock { state in
            for index in vcpu.map({ [$0] }) ?? Array(state.rings.indices) {
                var entries: [(UInt32, UInt64)] = []
                state.collectedSinceReset += state.rings[index].harvest { entries.append(($0, $1)) }
                if atFullExit {
                    state.entriesAtExit.append(entries.count)
                    if let last = entries.last { state.filledBy.insert(RingFillRun.key(last)) }
                    state.emptyExitsInARow[index] = entries.isEmpty ? state.emptyExitsInARow[index] + 1 : 0
                    if state.emptyExitsInARow[index] >= RingFillScenario.stuckExits {
                        throw HostError("\(RingFillScenario.stuckExits) ring-full exits in a row found no entry to collect: KVM's ring index ran ahead of "
                            + "the entries it published (it pushed past the end of the ring), so the vCPU can never run again")
                    }
                    if InjectedFault.on(.dropFullRingEntry), !entries.isEmpty { entries.removeFirst() }
                }
                state.collected[index] += entries
            }
            if InjectedFault.on(.skipRingReset), atFullExit, !state.skippedReset {
                state.skippedReset = true
                state.collectedSinceReset = 0
                return
            }
            let reset = try vm.resetDirtyRings()
            if reset != state.collectedSinceReset {
                state.resetMismatches += 1
                if state.resetExamples.count < 3 {
                    state.resetExamples.append("KVM_RESET_DIRTY_RINGS reset \(reset) entries where \(state.collectedSinceReset) were collected since the previous reset")
                }
            }
            state.collectedSinceReset = 0
        }
    }

    static func key(_ entry: (UInt32, UInt64)) -> UInt64 { UInt64(entry.0) << 48 | entry.1 }

    func execute() throws -> RingFillResult {
        try runner.start()
        var check = Tally()
        var known: String?
        var complete = true
        var verified = 0
        passes: for pass in 1...config.passes {
            for index in machine.vcpus.indices {
                let region = machine.region(of: index)
                driver.begin(index, Pass(op: PASS_WRITE, gpa: region.gpa, pages: config.pagesPerVCPU, stamp: Stamp(tag: UInt16(index + 1), sequence: pass).base))
            }
            for index in machine.vcpus.indices where driver.wait(index, timeout: 60) == nil {
                complete = false
                break passes
            }
            do {
                try RingFillRun.collect(state, vcpu: nil, atFullExit: false, vm: machine.vm)
            } catch {
                known = "collecting the rings after pass \(pass): \(error)"
                break
            }
            verify(pass: pass, into: &check)
            verified = pass
        }
        let ending = driver.finish(known: known, complete: complete)
        // A pass cut short still says which of the pages it wrote were lost.
        if verified < config.passes, !ending.interrupted {
            try? RingFillRun.collect(state, vcpu: nil, atFullExit: false, vm: machine.vm)
            verify(pass: verified + 1, into: &check)
        }
        let (exits, mismatches, mismatchExamples) = state.withLock { ($0.entriesAtExit, $0.resetMismatches, $0.resetExamples) }
        return RingFillResult(config: config, fullExits: exits.count, entriesAtExit: exits.min().map { ($0, exits.max()!) },
                              overruns: RingFillScenario.overruns(exits, ringEntries: config.ringEntries), reReported: check.reReported, pagesChecked: check.pages, lost: check.lost,
                              duplicates: check.duplicates, strays: check.strays, resetMismatches: mismatches,
                              examples: mismatchExamples + check.examples,
                              problems: ending.problem.map { [$0] } ?? [], interrupted: ending.interrupted)
    }

    struct Tally {
        var pages = 0, lost = 0, duplicates = 0, strays = 0, reReported = 0
        var examples: [String] = []

        mutating func example(_ text: String) { if examples.count < 5 { examples.append(text) } }

        /// One page: whether this pass wrote it, and how many ring entries named it
        /// (two are allowed where a ring-full exit re-reported it).
        mutating func count(written: Bool, entries: Int, mayRepeat: Bool, where page: String) {
            if written { pages += 1 }
            switch (written, entries) {
            case (true, 0):
                lost += 1
                example("\(page) written, in no ring entry")
            case (true, 1): break
            case (true, 2) where mayRepeat: reReported += 1
            case (true, let count):
                duplicates += count - 1
                example("\(page) in \(count) ring entries")
            case (false, 0): break
            case (false, _):
                strays += 1
                example("\(page) in the ring but not written this pass")
            }
        }
    }

    /// Every page of each vCPU's region carries this pass's stamp and is in
    /// the vCPU's collected entries exactly once; nothing else is there.
    private func verify(pass: Int, into tally: inout Tally) {
        let (collected, filledBy) = state.withLock { state in
            defer {
                state.collected = state.collected.map { _ in [] }
                state.filledBy = []
            }
            return (state.collected, state.filledBy)
        }
        let slots = Dictionary(uniqueKeysWithValues: machine.testSlots.map { ($0.slot, $0.guestPhysicalAddress) })
        for index in machine.vcpus.indices {
            let region = machine.region(of: index)
            let pages = Int(config.pagesPerVCPU)
            var seen = [Int](repeating: 0, count: pages)
            var mayRepeat = Set<Int>()
            for (slot, offset) in collected[index] {
                let gpa = (slots[slot] ?? 0) &+ offset &* GuestLayout.pageSize
                guard slots[slot] != nil, gpa >= region.gpa, gpa < region.gpa + UInt64(pages) * GuestLayout.pageSize else {
                    tally.strays += 1
                    tally.example("pass \(pass), vCPU \(index): an entry for slot \(slot) page \(offset), outside its region")
                    continue
                }
                let page = Int((gpa - region.gpa) / GuestLayout.pageSize)
                seen[page] += 1
                if filledBy.contains(RingFillRun.key((slot, offset))) { mayRepeat.insert(page) }
            }
            guard let memory = machine.memory(at: region.gpa, bytes: UInt64(pages) * GuestLayout.pageSize) else { continue }
            let stamp = Stamp(tag: UInt16(index + 1), sequence: pass)
            for page in 0..<pages {
                let written = memory.word(at: page * Int(GuestLayout.pageSize)) == stamp.word(page: page)
                tally.count(written: written, entries: seen[page], mayRepeat: mayRepeat.contains(page), where: "pass \(pass), vCPU \(index): page \(page)")
            }
        }
    }
}
