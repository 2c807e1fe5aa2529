import KVM
import VMM

/// The HELLO frame: what the destination needs to build the same VM, and
/// the kernel struct sizes both ends must share.
struct MigrationHello: Equatable {
    var vcpus: Int
    var slots: Int
    var testMemory: UInt64
    var systemSize: UInt64
    var backing: Backing
    var tscKHz: UInt64
    var afterSeconds: Double
    var digest: Bool
    var bootID: String
    var structSizes: [UInt64]

    static var localStructSizes: [UInt64] { VCPUState.structSizes }

    func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.raw(MigrationWire.magic)
        writer.u32(MigrationWire.version)
        writer.u64(UInt64(vcpus))
        writer.u64(UInt64(slots))
        writer.u64(testMemory)
        writer.u64(systemSize)
        writer.string(backing.rawValue)
        writer.u64(tscKHz)
        writer.f64(afterSeconds)
        writer.u8(digest ? 1 : 0)
        writer.string(bootID)
        writer.u64(UInt64(structSizes.count))
        for size in structSizes { writer.u64(size) }
        return writer.bytes
    }

    /// Decodes and checks a HELLO against this host's limits: any field out
    /// of bounds is a one-line refusal.
    static func decode(_ bytes: [UInt8]) throws(MigrationWireError) -> MigrationHello {
        var reader = WireReader(bytes)
        guard Array(try reader.raw(MigrationWire.magic.count)) == MigrationWire.magic else {
            throw MigrationWireError("bad magic: this is not a kvmlab migration stream")
        }
        let version = try reader.u32()
        guard version == MigrationWire.version else {
            throw MigrationWireError("stream version \(version); this kvmlab speaks version \(MigrationWire.version)")
        }
        let vcpus = try reader.count(max: 512, of: "vCPUs")
        let slots = try reader.count(max: 509, of: "memslots")
        let testMemory = try reader.u64()
        let systemSize = try reader.u64()
        let backingName = try reader.string(max: 64)
        guard let backing = Backing(rawValue: backingName) else { throw MigrationWireError("unknown backing '\(backingName)'") }
        let hello = MigrationHello(vcpus: vcpus, slots: slots, testMemory: testMemory, systemSize: systemSize, backing: backing,
                                   tscKHz: try reader.u64(), afterSeconds: try reader.f64(), digest: try reader.u8() != 0,
                                   bootID: try reader.string(max: 64),
                                   structSizes: try (0..<reader.count(max: 16, of: "struct sizes")).map { _ throws(MigrationWireError) in try reader.u64() })
        guard vcpus >= 1, slots >= 1, testMemory >= 4096, testMemory % 4096 == 0, testMemory <= 1 << 40 else {
            throw MigrationWireError("the source's VM (\(vcpus) vCPUs, \(slots) slots, \(testMemory) bytes) is not one kvmlab builds")
        }
        guard hello.tscKHz >= 1, hello.tscKHz <= 10_000_000 else {
            throw MigrationWireError("a guest TSC of \(hello.tscKHz) kHz from the source (1 kHz to 10 GHz)")
        }
        guard hello.afterSeconds.isFinite, hello.afterSeconds >= 0, hello.afterSeconds <= 3600 else {
            throw MigrationWireError("--after \(hello.afterSeconds) from the source is outside 0-3600 s")
        }
        guard hello.structSizes == localStructSizes else {
            throw MigrationWireError("the source's KVM structs have sizes \(hello.structSizes), this host's \(localStructSizes): different KVM ABIs")
        }
        return hello
    }
}

/// The STATE frame: every vCPU's state and how to carry the guest's TSC.
struct SwitchoverState {
    var vcpus: [VCPUState]
    /// guest TSC - host TSC on the source at the stop.
    var tscOffset: Int64
    /// The guest's TSC when the source stopped, and the wall clock then
    /// (another host continues the TSC from them).
    var stopGuestTSC: UInt64
    var stopUnixNanos: UInt64
    /// CLOCK_MONOTONIC at the stop (same host: the downtime's start).
    var stopMonotonicNanos: UInt64

    func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.i64(tscOffset)
        writer.u64(stopGuestTSC)
        writer.u64(stopUnixNanos)
        writer.u64(stopMonotonicNanos)
        writer.u64(UInt64(vcpus.count))
        for state in vcpus { state.encode(into: &writer) }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8], vcpus expected: Int) throws(MigrationWireError) -> SwitchoverState {
        var reader = WireReader(bytes)
        let offset = try reader.i64()
        let stopTSC = try reader.u64()
        let unix = try reader.u64()
        let monotonic = try reader.u64()
        let count = try reader.count(max: 512, of: "vCPU states")
        guard count == expected else { throw MigrationWireError("\(count) vCPU states for a VM of \(expected) vCPUs") }
        var states: [VCPUState] = []
        for _ in 0..<count { states.append(try VCPUState.decode(from: &reader)) }
        return SwitchoverState(vcpus: states, tscOffset: offset, stopGuestTSC: stopTSC, stopUnixNanos: unix, stopMonotonicNanos: monotonic)
    }
}

/// The DIGEST frame: the source's view of its stopped memory.
struct MemoryDigest: Equatable {
    var digest: UInt64
    /// Word 0 of every test page: the migrator's write counter.
    var counters: [UInt64]

    func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(digest)
        writer.u64(UInt64(counters.count))
        for counter in counters { writer.u64(counter) }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8], pages: Int) throws(MigrationWireError) -> MemoryDigest {
        var reader = WireReader(bytes)
        let digest = try reader.u64()
        let count = try reader.count(max: pages, of: "page counters")
        guard count == pages else { throw MigrationWireError("\(count) page counters for \(pages) pages") }
        return MemoryDigest(digest: digest, counters: try (0..<count).map { _ throws(MigrationWireError) in try reader.u64() })
    }

    /// Of the whole test memory: its digest and every page's counter.
    static func of(_ memory: GuestSpan) -> MemoryDigest {
        let pages = memory.bytes / MigrationWire.pageBytes
        return MemoryDigest(digest: memory.digest(), counters: (0..<pages).map { memory.word(at: $0 * MigrationWire.pageBytes) })
    }
}

/// What the destination measured and checked, sent back to the source
/// (RESULT frame) so that one command reports the whole migration.
public struct DestinationReport: Sendable, Equatable {
    /// The guest TSC when the destination's vCPUs started, and when they were told to verify.
    public var resumeTSC: UInt64 = 0
    public var endTSC: UInt64 = 0
    /// Source stop → destination running, by CLOCK_MONOTONIC (same host only; else 0).
    public var resumeMonotonicNanos: UInt64 = 0
    public var loadSeconds = 0.0
    /// Seconds populating guest memory before READY (--prealloc), else 0.
    public var preallocSeconds = 0.0
    public var digestSeconds = 0.0
    public var tscMethod = ""
    /// MSRs this KVM would not load (each stays as a new vCPU has it).
    public var msrsRefused: [UInt32] = []
    public var backing = ""
    public var pagesReceived: UInt64 = 0
    public var digestEqual = false
    public var digestChecked = false
    /// Pages whose counter differs from the source's at switchover: (page, source, destination).
    public var mismatchedPages = 0
    public var examples: [[UInt64]] = []
    public var vcpus: [VCPUVerdict] = []
    public var timelines: [GuestTimeline] = []
    /// A failure on the destination, in one line ("" when none).
    public var problem = ""

    public struct VCPUVerdict: Sendable, Equatable {
        public var writes: UInt64
        public var counterSum: UInt64
        public var mismatches: UInt64
        public var firstBad: UInt64
        public var tscBackwards: UInt64
        public var outcome: String
    }

    func encode() -> [UInt8] {
        var writer = WireWriter()
        for value in [resumeTSC, endTSC, resumeMonotonicNanos, pagesReceived, UInt64(mismatchedPages)] { writer.u64(value) }
        writer.u64(UInt64(msrsRefused.count))
        for msr in msrsRefused { writer.u32(msr) }
        writer.f64(loadSeconds)
        writer.f64(preallocSeconds)
        writer.f64(digestSeconds)
        writer.u8((digestEqual ? 1 : 0) | (digestChecked ? 2 : 0))
        writer.string(tscMethod)
        writer.string(backing)
        writer.string(problem)
        writer.u64(UInt64(examples.count))
        for example in examples { for value in example.prefix(3) { writer.u64(value) } }
        writer.u64(UInt64(vcpus.count))
        for verdict in vcpus {
            for value in [verdict.writes, verdict.counterSum, verdict.mismatches, verdict.firstBad, verdict.tscBackwards] { writer.u64(value) }
            writer.string(verdict.outcome)
        }
        writer.u64(UInt64(timelines.count))
        for timeline in timelines {
            writer.u64(timeline.firstSlot)
            writer.u64(timeline.stallsLost)
            writer.u64(UInt64(timeline.work.count))
            for work in timeline.work { writer.u32(work) }
            writer.u64(UInt64(timeline.stalls.count))
            for stall in timeline.stalls {
                writer.u64(stall.endTSC)
                writer.u64(stall.cycles)
            }
        }
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(MigrationWireError) -> DestinationReport {
        var reader = WireReader(bytes)
        var report = DestinationReport()
        report.resumeTSC = try reader.u64()
        report.endTSC = try reader.u64()
        report.resumeMonotonicNanos = try reader.u64()
        report.pagesReceived = try reader.u64()
        report.mismatchedPages = Int(min(try reader.u64(), 1 << 40))
        report.msrsRefused = try (0..<reader.count(max: 4096, of: "refused MSRs")).map { _ throws(MigrationWireError) in try reader.u32() }
        report.loadSeconds = try reader.f64()
        report.preallocSeconds = try reader.f64()
        report.digestSeconds = try reader.f64()
        let flags = try reader.u8()
        report.digestEqual = flags & 1 != 0
        report.digestChecked = flags & 2 != 0
        report.tscMethod = try reader.string()
        report.backing = try reader.string()
        report.problem = try reader.string()
        let examples = try reader.count(max: 64, of: "examples")
        for _ in 0..<examples { report.examples.append([try reader.u64(), try reader.u64(), try reader.u64()]) }
        let vcpus = try reader.count(max: 512, of: "vCPU verdicts")
        for _ in 0..<vcpus {
            report.vcpus.append(VCPUVerdict(writes: try reader.u64(), counterSum: try reader.u64(), mismatches: try reader.u64(),
                                            firstBad: try reader.u64(), tscBackwards: try reader.u64(), outcome: try reader.string()))
        }
        let timelines = try reader.count(max: 512, of: "timelines")
        for _ in 0..<timelines {
            var timeline = GuestTimeline(firstSlot: try reader.u64(), stallsLost: try reader.u64())
            let slots = try reader.count(max: 1 << 24, of: "timeline slots")
            timeline.work = try (0..<slots).map { _ throws(MigrationWireError) in try reader.u32() }
            let stalls = try reader.count(max: 1 << 24, of: "stalls")
            timeline.stalls = try (0..<stalls).map { _ throws(MigrationWireError) in GuestTimeline.Stall(endTSC: try reader.u64(), cycles: try reader.u64()) }
            report.timelines.append(timeline)
        }
        return report
    }
}

/// The RESUMED frame: when the destination's vCPUs started.
struct ResumeNotice: Equatable {
    var monotonicNanos: UInt64
    var guestTSC: UInt64

    func encode() -> [UInt8] {
        var writer = WireWriter()
        writer.u64(monotonicNanos)
        writer.u64(guestTSC)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(MigrationWireError) -> ResumeNotice {
        var reader = WireReader(bytes)
        return ResumeNotice(monotonicNanos: try reader.u64(), guestTSC: try reader.u64())
    }
}
