import KVM
import VMM

/// The memslot_perf_test experiments, by the names `kvmlab memslot --test` takes.
public enum MemslotTest: String, CaseIterable, Sendable, Codable {
    case map
    case unmap
    case unmapChunked = "unmap-chunked"
    case moveActive = "move-active"
    case moveInactive = "move-inactive"
    case rw

    public var summary: String {
        switch self {
        case .map: return "guest writes (maps) one half of 32 MiB while the host unmaps the other (MADV_DONTNEED)"
        case .unmap: return "host unmaps 64 MiB halves one 4 KiB page per madvise while the guest touches one page of the other"
        case .unmapChunked: return "as unmap, in 2 MiB chunks"
        case .moveActive: return "host moves the last slot away and back while the guest writes 50 pages straddling it"
        case .moveInactive: return "host moves the last slot away and back while the guest writes 50 pages just below it"
        case .rw: return "guest writes one word per page of the whole area while the host writes another, then each verifies the other's"
        }
    }

    /// Bytes of test memory this experiment spreads over the slots.
    func area(_ config: MemslotConfig) -> UInt64 {
        switch self {
        case .map: return 32 << 20
        case .unmap, .unmapChunked: return 128 << 20
        case .moveActive, .moveInactive, .rw: return config.memory
        }
    }

    /// What one timed host operation is.
    var operation: String {
        switch self {
        case .map, .unmap, .unmapChunked: return "madvise(MADV_DONTNEED)"
        case .moveActive, .moveInactive: return "KVM_SET_USER_MEMORY_REGION (move)"
        case .rw: return "guest pass, host-timed"
        }
    }
}

public struct MemslotConfig: Sendable {
    /// Test memslots; nil takes as many as KVM_CAP_NR_MEMSLOTS allows.
    public var slots: Int?
    /// Test memory of the move and rw experiments.
    public var memory: UInt64 = 512 << 20
    public var seconds: Double = 1
    public var runs = 3
    public var tests: [MemslotTest] = MemslotTest.allCases
    public var noZapAll = false

    public init() {}
}

/// One run of one experiment in a fresh VM. Its JSON leaves out the
/// operation times themselves (millions for unmap); reports give their
/// distribution instead.
public struct MemslotRepetition: Sendable, Encodable {
    public let test: MemslotTest
    public let run: Int
    public let slots: Int
    public let areaBytes: UInt64
    public let slotSetupSeconds: Double
    public let loopSeconds: Double
    public let iterationSeconds: [Double]
    public let operation: String
    public let operationSeconds: [Double]
    /// Pages whose contents were compared with what was written, and how many differed.
    public let pagesVerified: Int
    public let mismatches: Int
    /// Guest writes to the moved slot's old address while it was away (move-active).
    public let mmioExits: Int
    public let guestPasses: UInt64
    public let stats: StatsDelta?
    /// Kernel tracepoint counts that moved during it (nil when none were counted).
    public let tracepoints: [String: Int64]?
    public let problem: String?
    public let interrupted: Bool

    enum CodingKeys: String, CodingKey {
        case test, run, slots, areaBytes, slotSetupSeconds, loopSeconds, iterationSeconds, operation
        case pagesVerified, mismatches, mmioExits, guestPasses, stats, tracepoints, problem, interrupted
    }
}

public struct MemslotResult: Sendable {
    public let config: MemslotConfig
    public let maxSlots: Int
    public let zapAllQuirk: String
    public let runs: [MemslotRepetition]
    public let interrupted: Bool
    public let problems: [String]
}

public enum MemslotScenario: Scenario {
    public static let kind = ExperimentKind.memslot
    /// memslot_perf_test's move window: 50 pages.
    static let movePages: UInt64 = 50
    static let unmapChunkPages: UInt64 = 512

    public static func validate(_ config: MemslotConfig) throws { try validate(config, maxSlots: maxSlots(KVMDevice())) }

    /// Test memslots this host allows: KVM_CAP_NR_MEMSLOTS less the system slot.
    static func maxSlots(_ device: KVMDevice) -> Int { max(1, Int(device.check(.nrMemslots)) - 1) }

    static func validate(_ config: MemslotConfig, maxSlots: Int) throws {
        if let slots = config.slots {
            guard slots >= 1 else { throw ConfigError("\(field: "slots") must be at least 1") }
            guard slots <= maxSlots else {
                throw ConfigError("\(field: "slots") \(slots): this host's KVM allows \(maxSlots) test memslots (KVM_CAP_NR_MEMSLOTS less the system slot)")
            }
        }
        guard config.memory >= 1 << 20, config.memory % GuestLayout.pageSize == 0 else { throw ConfigError("\(field: "memory") must be a multiple of 4 KiB, at least 1 MiB") }
        try Resources.requireRAM(config.memory, for: "\(field: "memory")", fix: "lower \(field: "memory")")
        guard config.seconds > 0, config.seconds <= 3600 else { throw ConfigError("\(field: "seconds") must be between 0 and 3600") }
        guard config.runs >= 1, config.runs <= 1000 else { throw ConfigError("\(field: "runs") must be between 1 and 1000") }
        guard !config.tests.isEmpty else { throw ConfigError("\(field: "tests") needs at least one experiment") }
        for test in [MemslotTest.moveActive, .moveInactive] where config.tests.contains(test) {
            let slots = slotCount(for: test, config: config, maxSlots: maxSlots)
            let last = Machine.lastSlotSize(MachineConfig(testMemory: config.memory, slots: slots))
            let needed = test == .moveActive ? movePages / 2 : 1
            guard last / GuestLayout.pageSize >= needed, config.memory / GuestLayout.pageSize >= movePages + last / GuestLayout.pageSize else {
                throw ConfigError("\(test.rawValue): \(slots) slots leave the last slot \(last / 4096) pages of \(Sizes.format(config.memory)); it needs \(needed) with \(movePages) pages below it: lower \(field: "slots") or raise \(field: "memory")")
            }
        }
    }

    /// Slots an experiment uses: the request (or the host's limit), but no
    /// more than its area has pages.
    static func slotCount(for test: MemslotTest, config: MemslotConfig, maxSlots: Int) -> Int {
        min(config.slots ?? maxSlots, Int(test.area(config) / GuestLayout.pageSize))
    }

    public static func run(_ config: MemslotConfig) throws -> MemslotResult {
        let device = try KVMDevice()
        let maxSlots = maxSlots(device)
        try validate(config, maxSlots: maxSlots)
        if config.noZapAll { try Quirks.requireDisable(.slotZapAll, device: device) }
        var runs: [MemslotRepetition] = []
        let jobs = config.tests.flatMap { test in (1...config.runs).map { (test, $0) } }
        let interrupted = try eachUntilInterrupted(jobs) { test, index in
            let run = try MemslotRun(test: test, run: index, config: config, slots: slotCount(for: test, config: config, maxSlots: maxSlots), device: device).execute()
            runs.append(run)
            return run.problem == nil && !run.interrupted
        }
        return MemslotResult(config: config, maxSlots: maxSlots,
                             zapAllQuirk: config.noZapAll ? "disabled (--no-zap-all)" : "on (kernel default)",
                             runs: runs, interrupted: interrupted || runs.contains(where: \.interrupted),
                             problems: runs.compactMap { run in run.problem.map { "\(run.test.rawValue) run \(run.run): \($0)" } })
    }
}

extension MemslotResult: ExperimentResult {
    public var experiment: Experiment {
        var metrics: [Metric] = []
        var checks: [CheckRecord] = []
        for test in config.tests {
            let runs = self.runs.filter { $0.test == test }
            guard !runs.isEmpty else { continue }
            let labels = ["test": test.rawValue]
            let means = runs.filter { !$0.iterationSeconds.isEmpty }.map { $0.iterationSeconds.reduce(0, +) / Double($0.iterationSeconds.count) }
            metrics += [
                Metric("iteration_seconds", "Guest/host iteration time, all runs (value: median)", unit: .seconds, better: .lower,
                       labels: labels, distribution: Distribution(samples: runs.flatMap(\.iterationSeconds))),
                Metric("operation_seconds", "Host operation time: \(test.operation) (value: median)", unit: .seconds, better: .lower,
                       labels: labels, distribution: Distribution(samples: runs.flatMap(\.operationSeconds))),
                Metric("best_mean_iteration_seconds", "The best run's mean iteration (memslot_perf_test's figure)", unit: .seconds,
                       better: .lower, labels: labels, value: means.min()),
                Metric("slot_setup_seconds", "Best time to create the test memslots", unit: .seconds, better: .lower,
                       labels: labels, value: runs.map(\.slotSetupSeconds).min()),
            ]
            for run in runs {
                checks.append(CheckRecord.equal("\(test.rawValue) run \(run.run): everything written reads back (\(run.pagesVerified) pages)",
                                                expected: 0, observed: run.mismatches))
                // A move to the slot's own address is a no-op for KVM; a real
                // one zaps: every shadow page with SLOT_ZAP_ALL, else the slot's
                // own mappings, which exist only where the guest touches the
                // slot (move-active; while it is away those writes are MMIO).
                if test == .moveActive || (test == .moveInactive && !config.noZapAll), !run.iterationSeconds.isEmpty, let stats = run.stats {
                    let zaps = (stats["mmu_shadow_zapped"] ?? 0) + (stats["remote_tlb_flush"] ?? 0)
                    checks.append(CheckRecord("\(test.rawValue) run \(run.run): the slot really moved (KVM zapped or the guest hit MMIO)",
                                              passed: zaps > 0 || run.mmioExits > 0, expected: "zaps + TLB flushes + MMIO exits > 0",
                                              observed: "\(zaps) zaps/flushes, \(run.mmioExits) MMIO exits"))
                }
            }
        }
        return Experiment(.memslot, config: [
            "slots": config.slots.map(String.init) ?? "max", "memory_bytes": "\(config.memory)", "seconds": "\(config.seconds)",
            "zap_all": config.noZapAll ? "off" : "on", "tests": config.tests.map(\.rawValue).joined(separator: ","),
        ], metrics: metrics, phases: runs.map { PhaseRecord(name: "\($0.test.rawValue) run \($0.run)", seconds: $0.loopSeconds, stats: $0.stats, tracepoints: $0.tracepoints) },
           checks: checks, problems: problems, interrupted: interrupted)
    }
}
