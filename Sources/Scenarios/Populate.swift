import KVM
import VMM

/// Ways to make a VM's memory usable before its workload runs.
public enum PopulateMode: String, CaseIterable, Sendable, Codable {
    case demand
    case hostPopulate = "host-populate"
    case prefaultVCPU = "prefault-vcpu"
    case kvmPrefault = "kvm-prefault"

    public var summary: String {
        switch self {
        case .demand: return "nothing up front: the workload vCPUs fault everything in on their first pass"
        case .hostPopulate: return "the host populates its pages first (MADV_POPULATE_WRITE); KVM still maps them on first touch"
        case .prefaultVCPU: return "one extra vCPU touches every page first, so KVM maps everything before the workload runs"
        case .kvmPrefault: return "KVM_PRE_FAULT_MEMORY maps everything, one thread per vCPU, before any vCPU runs"
        }
    }
}

public struct PopulateConfig: Sendable {
    /// The vCPU counts this experiment takes (its command bounds -v with it).
    public static let vcpuLimit = 1...512

    public var vcpus = Resources.onlineCPUs
    /// Memory per workload vCPU.
    public var bytesPerVCPU: UInt64 = 512 << 20
    public var backing: Backing = .anonymous
    public var modes: [PopulateMode] = PopulateMode.allCases

    public init() {}

    /// 4 KiB pages the workload vCPUs cover together.
    var totalPages: UInt64 { bytesPerVCPU / GuestLayout.pageSize * UInt64(vcpus) }
}

/// One timed step and what KVM and the host counted during it.
public struct PopulateStep: Sendable {
    public let seconds: Double
    public let stats: StatsDelta?
    /// Kernel tracepoint counts that moved during it (nil when none were counted).
    public let tracepoints: [String: Int64]?
    /// Host pages (4 KiB units) of the test memory resident after the step.
    public let residentPages: Int
}

public struct PopulateModeResult: Sendable {
    public let mode: PopulateMode
    /// Nil where the mode is not supported on this host (see `unsupported`).
    public let population: PopulateStep?
    public let firstPass: PopulateStep?
    public let secondPass: PopulateStep?
    public let residentBefore: Int
    public let pages: UInt64
    /// Why this mode did not run here, in one line.
    public let unsupported: String?
    /// Pages the workload found not holding its stamp after the first pass.
    public let mismatches: UInt64
    public let problem: String?
    public let interrupted: Bool

    /// A mode that cannot run on this host, and why.
    static func skipped(_ mode: PopulateMode, pages: UInt64, reason: String) -> PopulateModeResult {
        PopulateModeResult(mode: mode, population: nil, firstPass: nil, secondPass: nil, residentBefore: 0, pages: pages,
                           unsupported: reason, mismatches: 0, problem: nil, interrupted: false)
    }

    /// Population plus the workload's first pass: when the memory was really usable.
    public var readySeconds: Double? {
        guard let population, let firstPass else { return nil }
        return population.seconds + firstPass.seconds
    }
}

public struct PopulateResult: Sendable {
    public let config: PopulateConfig
    public let modes: [PopulateModeResult]
    public let interrupted: Bool
    public let problems: [String]
}

public enum PopulateScenario: Scenario {
    public static let kind = ExperimentKind.populate

    public static func validate(_ config: PopulateConfig) throws {
        guard PopulateConfig.vcpuLimit.contains(config.vcpus) else { throw ConfigError.vcpus(config.vcpus, PopulateConfig.vcpuLimit) }
        guard config.bytesPerVCPU >= config.backing.pageSize, config.bytesPerVCPU % config.backing.pageSize == 0 else {
            throw ConfigError("\(field: "bytesPerVCPU") must be a positive multiple of \(Sizes.format(config.backing.pageSize)) for \(config.backing.rawValue)")
        }
        guard !config.modes.isEmpty else { throw ConfigError("\(field: "modes") needs at least one mode") }
        try Resources.requireRAM(config.bytesPerVCPU * UInt64(config.vcpus), for: "\(config.vcpus) vCPUs × \(Sizes.format(config.bytesPerVCPU))", fix: "lower \(field: "vcpus") or \(field: "bytesPerVCPU")")
    }

    public static func run(_ config: PopulateConfig) throws -> PopulateResult {
        try validate(config)
        let device = try KVMDevice()
        var results: [PopulateModeResult] = []
        let interrupted = try eachUntilInterrupted(config.modes) { mode in
            let result = try run(mode, config: config, device: device)
            results.append(result)
            return result.problem == nil && !result.interrupted
        }
        return PopulateResult(config: config, modes: results, interrupted: interrupted || results.contains(where: \.interrupted),
                              problems: results.compactMap { result in result.problem.map { "\(result.mode.rawValue): \($0)" } })
    }

    static func run(_ mode: PopulateMode, config: PopulateConfig, device: KVMDevice) throws -> PopulateModeResult {
        if mode == .kvmPrefault && device.check(.preFaultMemory) == 0 {
            return .skipped(mode, pages: config.totalPages, reason: "not supported on this host: KVM_CAP_PRE_FAULT_MEMORY is 0 (it needs Linux 6.11+ and the TDP MMU)")
        }
        let run = try PopulateRun(mode: mode, config: config, device: device)
        if mode == .kvmPrefault && run.machine.vm.check(.preFaultMemory) == 0 {
            return .skipped(mode, pages: config.totalPages, reason: "not supported on this host: the VM reports KVM_CAP_PRE_FAULT_MEMORY as 0")
        }
        return try run.execute()
    }

    /// KVM_PRE_FAULT_MEMORY on every workload vCPU's share, one host thread
    /// per vCPU, as a VMM would do it at boot.
    static func prefaultInParallel(_ machine: Machine, workers: Int, bytesPerVCPU: UInt64) throws {
        let failures = FirstError()
        var threads: [JoinableThread] = []
        for index in 0..<workers {
            let vcpu = machine.vcpus[index]
            threads.append(try JoinableThread {
                do throws(KVMError) {
                    try vcpu.preFault(gpa: GuestLayout.testMemoryBase + UInt64(index) * bytesPerVCPU, size: bytesPerVCPU)
                } catch {
                    failures.record(error)
                }
            })
        }
        for thread in threads { thread.join() }
        if let error = failures.first { throw error }
    }
}

/// The first error any of several threads hit.
final class FirstError: Sendable {
    private let error = Locked<KVMError?>(nil)

    func record(_ failure: KVMError) { error.withLock { if $0 == nil { $0 = failure } } }
    var first: KVMError? { error.withLock { $0 } }
}

extension PopulateResult: ExperimentResult {
    public var experiment: Experiment {
        var metrics: [Metric] = []
        var checks: [CheckRecord] = []
        var phases: [PhaseRecord] = []
        for mode in modes where mode.unsupported == nil {
            let labels = ["mode": mode.mode.rawValue]
            metrics += [
                Metric("population_seconds", "Time to populate before the workload runs", unit: .seconds, better: .lower, labels: labels, value: mode.population?.seconds),
                Metric("first_pass_seconds", "The workload's first pass (one write per page)", unit: .seconds, better: .lower, labels: labels, value: mode.firstPass?.seconds),
                Metric("second_pass_seconds", "The workload's second pass (reads every word back)", unit: .seconds, better: .lower, labels: labels, value: mode.secondPass?.seconds),
                Metric("ready_seconds", "Population plus first pass: when the memory was really usable", unit: .seconds, better: .lower, labels: labels, value: mode.readySeconds),
            ]
            if mode.secondPass != nil {
                checks.append(.equal("\(mode.mode.rawValue): every page holds what the first pass wrote", expected: UInt64(0), observed: mode.mismatches))
            }
            for (name, step) in [("population", mode.population), ("first pass", mode.firstPass), ("second pass", mode.secondPass)] {
                if let step { phases.append(PhaseRecord(name: "\(mode.mode.rawValue) \(name)", seconds: step.seconds, stats: step.stats, tracepoints: step.tracepoints)) }
            }
        }
        return Experiment(.populate, config: [
            "vcpus": "\(config.vcpus)", "bytes_per_vcpu": "\(config.bytesPerVCPU)", "backing": config.backing.rawValue,
            "modes": config.modes.map(\.rawValue).joined(separator: ","),
        ], metrics: metrics, phases: phases, checks: checks, problems: problems, interrupted: interrupted)
    }
}
