import VMM

/// `kvmlab run`: boot a test VM with a built-in guest or a user's image.
public struct LaunchConfig: Sendable {
    public var vcpus = 1
    public var memory: UInt64 = 64 << 20
    public var backing: Backing = .anonymous
    public var guest: String = "hello"
    public var imagePath: String?
    public var cpl: PrivilegeLevel = .user
    public var timeout: Double = 30
    /// memstress: passes to run; other guests: iteration events (port 0xea,
    /// AL=1) before a vCPU is ended.
    public var iterations = 3
    public var writePercent = 100
    public var random = false
    public var pin: [Int] = []
    /// In-kernel interrupt controller: HLT blocks in KVM (halt_* stats move).
    public var inKernelIRQChip = false
    /// Where the guest's serial lines go (nil: standard output).
    public var console: SerialConsole.Sink?

    public init() {}
}

public struct LaunchResult: Sendable, Codable {
    public struct VCPUResult: Sendable, Codable {
        public let vcpu: Int
        public let outcome: String
        public let detail: String?
    }

    public struct Pass: Sendable, Codable {
        public let iteration: Int
        public let seconds: Double
        public let pagesWritten: UInt64
        public let pagesRead: UInt64
        /// Pages whose contents the host found carrying this pass's stamp.
        public let pagesVerified: Int
    }

    public let guest: String
    public let vcpus: Int
    public let memoryBytes: UInt64
    public let backing: Backing
    public let cpl: Int
    /// The most severe way any vCPU ended (it picks run's exit status).
    public let outcome: OutcomeKind
    public let seconds: Double
    public let vcpuResults: [VCPUResult]
    public let passes: [Pass]
    public let serialLines: Int
    public let statsDelta: StatsDelta?
    public let tracepoints: [String: Int64]?
    public let firstProblem: String?
}

public enum LaunchScenario: Scenario {
    public static let kind = ExperimentKind.run

    public static func validate(_ config: LaunchConfig) throws { _ = try validated(config) }

    public static func run(_ config: LaunchConfig) throws -> LaunchResult {
        let image = try validated(config)
        var machineConfig = MachineConfig(vcpus: config.vcpus, testMemory: config.memory, backing: config.backing, cpl: config.cpl)
        machineConfig.inKernelIRQChip = config.inKernelIRQChip
        let machine = try Machine(machineConfig)
        let lines = LineCounter(sink: config.console ?? SerialConsole.standardOutput)
        let serial = SerialConsole(sink: lines.sink)
        let timer = PhaseTimer(machine: machine)
        var passes: [LaunchResult.Pass] = []
        let (outcomes, phase) = try timer.measure("run") {
            image.name == "memstress" && config.imagePath == nil
                ? try runMemstress(machine, config: config, serial: serial, passes: &passes)
                : try runGuest(image, machine: machine, config: config, serial: serial)
        }
        return LaunchResult(
            guest: image.name, vcpus: config.vcpus, memoryBytes: config.memory, backing: config.backing, cpl: config.cpl.rawValue,
            outcome: outcomes.worst, seconds: phase.seconds ?? 0,
            vcpuResults: outcomes.enumerated().map { describe($1, vcpu: $0) },
            passes: passes, serialLines: lines.count, statsDelta: phase.stats, tracepoints: phase.tracepoints, firstProblem: outcomes.firstProblem)
    }

    /// The image to run, once the request is known to be runnable.
    static func validated(_ config: LaunchConfig) throws -> GuestImage {
        try PinPlan.checkCPUs(config.pin)
        return try image(config)
    }

    static func image(_ config: LaunchConfig) throws -> GuestImage {
        if let path = config.imagePath { return try GuestImage.load(path: path) }
        if let builtin = GuestImage.builtin(config.guest) { return builtin }
        throw ConfigError("\(field: "guest"): unknown guest '\(config.guest)'; built-in guests are \(GuestImage.builtins.keys.sorted().joined(separator: ", "))")
    }

    /// memstress: passes verified page by page until the iterations or the time are up.
    static func runMemstress(_ machine: Machine, config: LaunchConfig, serial: SerialConsole, passes: inout [LaunchResult.Pass]) throws -> [VCPUOutcome] {
        let driver = try MemstressDriver(machine: machine, params: MemstressParams(writePercent: config.writePercent, random: config.random), console: serial)
        try driver.start(pin: config.pin)
        let clock = Stopwatch()
        for _ in 0..<config.iterations {
            let passClock = Stopwatch()
            guard let reports = driver.runIteration(timeout: max(0.001, config.timeout - clock.seconds)) else { break }
            let seconds = passClock.seconds
            if InjectedFault.on(.corruptPage), let page = machine.memory(at: machine.region(of: 0).gpa, bytes: 8) { page.store(0, at: 0) }
            passes.append(.init(iteration: driver.iteration, seconds: seconds,
                                pagesWritten: reports.reduce(0) { $0 + $1.writes }, pagesRead: reports.reduce(0) { $0 + $1.reads },
                                pagesVerified: machine.vcpus.indices.reduce(0) { $0 + driver.pagesStamped(vcpu: $1, iteration: driver.iteration) }))
        }
        return driver.runner.stopRequested == nil ? driver.finish(timeout: max(1, config.timeout - clock.seconds)) : driver.runner.wait()
    }

    /// Other guests run until they finish; each vCPU ends after `iterations` iteration events.
    static func runGuest(_ image: GuestImage, machine: Machine, config: LaunchConfig, serial: SerialConsole) throws -> [VCPUOutcome] {
        try machine.load(image)
        let events = Locked([Int](repeating: 0, count: config.vcpus))
        let limit = config.iterations
        let runner = VCPURunner(machine: machine, console: serial) { vcpu, event in
            guard event == .iteration else { return .resume }
            let seen = events.withLock { counts in
                counts[vcpu] += 1
                return counts[vcpu]
            }
            return seen >= limit ? .finish : .resume
        }
        try runner.start(pin: config.pin)
        return runner.wait(timeout: config.timeout)
    }

    static func describe(_ outcome: VCPUOutcome, vcpu: Int) -> LaunchResult.VCPUResult {
        switch outcome {
        case .finished: return .init(vcpu: vcpu, outcome: "finished", detail: nil)
        case .failed(let status): return .init(vcpu: vcpu, outcome: "failed", detail: "status \(status)")
        case .exception(let report): return .init(vcpu: vcpu, outcome: "exception", detail: report.summary)
        case .crashed(let text): return .init(vcpu: vcpu, outcome: "crashed", detail: text)
        case .stopped(let reason): return .init(vcpu: vcpu, outcome: "stopped", detail: reason.rawValue)
        case .error(let text): return .init(vcpu: vcpu, outcome: "error", detail: text)
        }
    }
}

extension LaunchResult: ExperimentResult {
    public var experiment: Experiment {
        let pages = memoryBytes / GuestLayout.pageSize / UInt64(vcpus) * UInt64(vcpus)
        var metrics = [Metric("run_seconds", "Wall time from the first KVM_RUN to the last vCPU's end", unit: .seconds, better: .lower, value: seconds)]
        if !passes.isEmpty {
            metrics.append(Metric("pass_seconds", "memstress pass time, all vCPUs (value: median)", unit: .seconds, better: .lower,
                                  distribution: Distribution(samples: passes.map(\.seconds))))
        }
        let checks = passes.flatMap { pass in
            [CheckRecord.equal("pass \(pass.iteration) every page visited", expected: pages, observed: pass.pagesWritten + pass.pagesRead),
             CheckRecord.equal("pass \(pass.iteration) every written page holds its stamp", expected: Int(pass.pagesWritten), observed: pass.pagesVerified)]
        }
        let problem: [String]
        switch outcome {
        case .finished, .interrupted: problem = []
        default: problem = [firstProblem ?? "a vCPU did not finish"]
        }
        return Experiment(.run, config: ["guest": guest, "vcpus": "\(vcpus)", "memory_bytes": "\(memoryBytes)",
                                                      "backing": backing.rawValue, "cpl": "\(cpl)"],
                          metrics: metrics, phases: [PhaseRecord(name: "run", seconds: seconds, stats: statsDelta, tracepoints: tracepoints)],
                          checks: checks, problems: problem, interrupted: outcome == .interrupted)
    }
}
