import Glibc
import Synchronization
import KVM
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

    public init() {}
}

/// How the run ended, from the most to the least severe vCPU outcome.
public enum LaunchStatus: String, Sendable, Codable {
    case finished, failed, faulted, timedOut = "timed_out", interrupted, error
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
    public let status: LaunchStatus
    public let seconds: Double
    public let vcpuResults: [VCPUResult]
    public let passes: [Pass]
    public let serialLines: Int
    public let statsDelta: StatsDelta?
    public let firstProblem: String?
}

public enum LaunchScenario {
    public static func run(_ config: LaunchConfig, console: SerialConsole.Sink? = nil) throws -> LaunchResult {
        try PinPlan.checkCPUs(config.pin)
        let image: GuestImage
        if let path = config.imagePath {
            image = try GuestImage.load(path: path)
        } else if let builtin = GuestImage.builtin(config.guest) {
            image = builtin
        } else {
            throw ConfigError("unknown guest '\(config.guest)'; built-in guests are \(GuestImage.builtins.keys.sorted().joined(separator: ", "))")
        }
        let machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.memory, backing: config.backing, cpl: config.cpl))
        let lines = LineCounter(sink: console ?? SerialConsole.standardOutput)
        let serial = SerialConsole(sink: lines.sink)
        let probe = try? StatsProbe(machine: machine)
        let before = try? probe?.sample()
        let clock = Stopwatch()
        var passes: [LaunchResult.Pass] = []
        let outcomes: [VCPUOutcome]
        if image.name == "memstress" && config.imagePath == nil {
            let driver = try MemstressDriver(machine: machine, params: MemstressParams(writePercent: config.writePercent, random: config.random), console: serial)
            try driver.start(pin: config.pin)
            let deadline = clock.seconds + config.timeout
            for _ in 0..<config.iterations {
                let passClock = Stopwatch()
                guard let reports = driver.runIteration(timeout: max(0.001, deadline - clock.seconds)) else { break }
                let seconds = passClock.seconds
                passes.append(.init(iteration: driver.iteration, seconds: seconds,
                                    pagesWritten: reports.reduce(0) { $0 + $1.writes }, pagesRead: reports.reduce(0) { $0 + $1.reads },
                                    pagesVerified: machine.vcpus.indices.reduce(0) { $0 + driver.pagesStamped(vcpu: $1, iteration: driver.iteration) }))
            }
            outcomes = driver.runner.stopRequested == nil ? driver.finish(timeout: max(1, deadline - clock.seconds)) : driver.runner.wait()
        } else {
            try machine.load(image)
            // Other guests' iteration events: each vCPU ends after `iterations` of them.
            let events = Mutex([Int](repeating: 0, count: config.vcpus))
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
            outcomes = runner.wait(timeout: config.timeout)
        }
        let seconds = clock.seconds
        let after = try? probe?.sample()
        let delta = StatsDelta.between(before, after)
        return LaunchResult(
            guest: image.name, vcpus: config.vcpus, memoryBytes: config.memory, backing: config.backing, cpl: config.cpl.rawValue,
            status: status(of: outcomes), seconds: seconds,
            vcpuResults: outcomes.enumerated().map { describe($1, vcpu: $0) },
            passes: passes, serialLines: lines.count, statsDelta: delta,
            firstProblem: outcomes.lazy.compactMap { problem($0) }.first)
    }

    public static func status(of outcomes: [VCPUOutcome]) -> LaunchStatus {
        var status = LaunchStatus.finished
        func rank(_ s: LaunchStatus) -> Int { [.finished, .interrupted, .timedOut, .failed, .faulted, .error].firstIndex(of: s)! }
        for outcome in outcomes {
            let this: LaunchStatus
            switch outcome {
            case .finished: this = .finished
            case .failed: this = .failed
            case .exception, .crashed: this = .faulted
            case .stopped(.timeout): this = .timedOut
            case .stopped(.interrupted): this = .interrupted
            case .stopped: this = .finished
            case .error: this = .error
            }
            if rank(this) > rank(status) { status = this }
        }
        return status
    }

    public static func problem(_ outcome: VCPUOutcome) -> String? {
        switch outcome {
        case .finished, .stopped(.host): return nil
        case .failed(let status): return "guest reported failure, status \(status)"
        case .exception(let report): return report.description
        case .crashed(let text), .error(let text): return text
        case .stopped(let reason): return "stopped: \(reason.rawValue)"
        }
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
