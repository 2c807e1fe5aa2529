import Guests
import VMM

/// `kvmlab exit-latency`: the cost of one userspace exit round trip
/// (guest `out` -> KVM_RUN returns -> host handles it -> KVM_RUN again).
public struct ExitLatencyConfig: Sendable {
    /// The vCPU counts this experiment takes (its command bounds -v with it).
    public static let vcpuLimit = 1...1024

    public var vcpus = 1
    public var exits = 100_000
    public var cpl: PrivilegeLevel = .user
    public var pin: [Int] = []
    public var timeout: Double = 120

    public init() {}
}

public struct ExitLatencyResult: Sendable {
    public let config: ExitLatencyConfig
    /// Seconds from VM creation until every vCPU thread was started.
    public let setupSeconds: Double
    /// Wall time of the measured loop, all vCPUs together.
    public let seconds: Double
    /// Every round trip of every vCPU, in seconds (host clock between exits).
    public let roundTrips: [Double]
    /// Exits each vCPU counted in its mailbox (guest side).
    public let guestExits: [UInt64]
    public let outcomes: [VCPUOutcome]

    public var totalExits: Int { roundTrips.count + config.vcpus }
}

extension ExitLatencyResult: ExperimentResult {
    public var experiment: Experiment {
        let metrics = [
            Metric("round_trip_seconds", "One exit round trip, host clock between exits (value: median)", unit: .seconds, better: .lower,
                   distribution: Distribution(samples: roundTrips)),
            Metric("seconds_per_exit", "Wall time divided by exits per vCPU", unit: .seconds, better: .lower, value: seconds / Double(config.exits)),
            Metric("exits_per_second", "Exit round trips per second, all vCPUs", unit: .perSecond, better: .higher, value: Double(totalExits) / max(seconds, 1e-9)),
            Metric("setup_seconds", "VM creation until every vCPU thread was started", unit: .seconds, better: .lower, value: setupSeconds),
        ]
        let checks = guestExits.enumerated().map { vcpu, exits in
            CheckRecord.equal("vCPU \(vcpu) made every exit it was asked for", expected: UInt64(config.exits), observed: exits)
        }
        return Experiment(.exitLatency, config: ["vcpus": "\(config.vcpus)", "exits": "\(config.exits)", "cpl": "\(config.cpl.rawValue)"],
                          metrics: metrics, phases: [PhaseRecord(name: "exits", seconds: seconds, stats: nil)], checks: outcomes.worst == .finished ? checks : [],
                          problems: [outcomes.runProblem].compactMap { $0 }, interrupted: outcomes.worst == .interrupted)
    }
}

public enum ExitLatencyScenario: Scenario {
    public static let kind = ExperimentKind.exitLatency

    public static func validate(_ config: ExitLatencyConfig) throws {
        try PinPlan.checkCPUs(config.pin)
        guard config.exits >= 2, config.exits <= 50_000_000 else { throw ConfigError("\(field: "exits") must be between 2 and 50000000") }
        guard ExitLatencyConfig.vcpuLimit.contains(config.vcpus) else { throw ConfigError.vcpus(config.vcpus, ExitLatencyConfig.vcpuLimit) }
        // The round-trip buffers: 8 bytes per exit per vCPU, twice (stamps, then trips).
        let (bytes, overflow) = UInt64(config.exits).multipliedReportingOverflow(by: UInt64(config.vcpus) * 16)
        try Resources.requireRAM(overflow ? .max : bytes, for: "round-trip buffers for \(config.vcpus) vCPUs × \(config.exits) exits", fix: "lower \(field: "vcpus") or \(field: "exits")")
    }

    public static func run(_ config: ExitLatencyConfig) throws -> ExitLatencyResult {
        try validate(config)
        let setup = Stopwatch()
        let machine = try Machine(MachineConfig(vcpus: config.vcpus, cpl: config.cpl))
        try machine.load(GuestImage.builtin("ping")!)
        // One preallocated buffer per vCPU: the hot path only stores a time.
        let stamps = (0..<config.vcpus).map { _ in UnsafeMutableBufferPointer<UInt64>.allocate(capacity: config.exits) }
        defer { stamps.forEach { $0.deallocate() } }
        let counts = UnsafeMutableBufferPointer<Int>.allocate(capacity: config.vcpus)
        counts.initialize(repeating: 0)
        defer { counts.deallocate() }
        let box = UncheckedBuffers(stamps: stamps, counts: counts)
        let limit = config.exits
        let runner = VCPURunner(machine: machine) { vcpu, _ in
            let n = box.counts[vcpu]
            box.stamps[vcpu][n] = Stopwatch.now()
            box.counts[vcpu] = n + 1
            return n + 1 >= limit ? .finish : .resume
        }
        let clock = Stopwatch()
        try runner.start(pin: config.pin)
        let setupSeconds = setup.seconds - clock.seconds
        let outcomes = runner.wait(timeout: config.timeout)
        let seconds = clock.seconds
        var trips: [Double] = []
        trips.reserveCapacity(config.vcpus * config.exits)
        for vcpu in 0..<config.vcpus {
            let n = counts[vcpu]
            if n > 1 { for i in 1..<n { trips.append(Double(stamps[vcpu][i] - stamps[vcpu][i - 1]) / 1e9) } }
        }
        return ExitLatencyResult(config: config, setupSeconds: setupSeconds, seconds: seconds, roundTrips: trips,
                                 guestExits: machine.vcpus.indices.map { machine.mailbox($0)[MB_DONE_ITERATION] },
                                 outcomes: outcomes)
    }
}

/// Per-vCPU buffers each written by exactly one vCPU thread.
private struct UncheckedBuffers: @unchecked Sendable {
    // @unchecked: vCPU i's thread is the only writer of stamps[i] and counts[i]; the host reads them after join.
    let stamps: [UnsafeMutableBufferPointer<UInt64>]
    let counts: UnsafeMutableBufferPointer<Int>
}
