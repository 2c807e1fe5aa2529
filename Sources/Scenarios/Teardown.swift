import Glibc
import Guests
import KVM
import VMM

/// Which goes first when a populated VM is torn down.
public enum TeardownOrder: String, CaseIterable, Sendable, Codable {
    /// Close the vCPU and VM fds (KVM destroys the VM and its MMU), then unmap the memory.
    case vmFirst = "vm-first"
    /// Unmap the memory while the VM lives (KVM zaps through the MMU notifier), then destroy the VM.
    case memoryFirst = "memory-first"
}

public struct TeardownConfig: Sendable {
    public var vcpus = Resources.onlineCPUs
    public var memory: UInt64 = 2 << 30
    public var backing: Backing = .anonymous
    public var orders: [TeardownOrder] = TeardownOrder.allCases
    /// The CPU the teardown thread and the probe share (default: the last online).
    public var cpu: Int?
    public var thresholdMicros: Double = 20
    /// Seconds of each baseline window (probe alone; probe beside a busy thread).
    public var baselineSeconds: Double = 0.5

    public init() {}
}

/// One step of a teardown and what it gave back.
public struct TeardownStep: Sendable {
    public let name: String
    public let seconds: Double
    /// Drop of the process's resident memory during the step.
    public let residentBytesFreed: Int64
    /// File descriptors the step closed.
    public let descriptorsClosed: Int
}

/// What the probe saw during one window.
public struct ProbeWindow: Sendable {
    public let name: String
    public let seconds: Double
    /// Every gap above the threshold that overlapped the window, in seconds.
    public let gaps: [Double]
}

public struct TeardownRun: Sendable {
    public let order: TeardownOrder
    public let populateSeconds: Double
    public let populateStats: StatsDelta?
    public let residentBytes: Int64
    public let steps: [TeardownStep]
    public let windows: [ProbeWindow]
    public let probeLoops: UInt64
    public let probeOverflowed: Bool
    public let problem: String?
}

public struct TeardownResult: Sendable {
    public let config: TeardownConfig
    public let cpu: Int
    public let runs: [TeardownRun]
    public let status: String
    public let problems: [String]
}

public enum TeardownScenario {
    public static func validate(_ config: TeardownConfig) throws {
        guard config.vcpus >= 1, config.vcpus <= 512 else { throw ConfigError("-v must be between 1 and 512") }
        let unit = config.backing.pageSize * UInt64(config.vcpus)
        guard config.memory >= unit, config.memory % unit == 0 else {
            throw ConfigError("--memory must be a positive multiple of \(config.vcpus) × \(Sizes.format(config.backing.pageSize)) for \(config.backing.rawValue)")
        }
        guard !config.orders.isEmpty else { throw ConfigError("--order needs at least one order") }
        try Resources.requireRAM(config.memory, for: "--memory", fix: "lower --memory")
        guard config.thresholdMicros > 0 else { throw ConfigError("--threshold must be positive") }
        guard config.baselineSeconds > 0, config.baselineSeconds <= 60 else { throw ConfigError("--baseline must be between 0 and 60 seconds") }
        if let cpu = config.cpu { try PinPlan.checkCPUs([cpu]) }
    }

    public static func run(_ config: TeardownConfig) throws -> TeardownResult {
        try validate(config)
        let device = try KVMDevice()
        let cpu = config.cpu ?? Resources.onlineCPUs - 1
        Interrupts.shared.install()
        var runs: [TeardownRun] = []
        var problems: [String] = []
        var interrupted = false
        for order in config.orders {
            if Interrupts.shared.requested { interrupted = true; break }
            let run = try run(order, config: config, cpu: cpu, device: device)
            runs.append(run)
            if let problem = run.problem {
                if problem == RunProblem.interrupted { interrupted = true; break }
                problems.append("\(order.rawValue): \(problem)")
            }
        }
        return TeardownResult(config: config, cpu: cpu, runs: runs, status: RunProblem.status(interrupted: interrupted, problems: problems), problems: problems)
    }

    /// What the teardown thread owns: the last references to the VM and its memory.
    final class Remains: @unchecked Sendable {
        var machine: Machine?
        var memory: GuestMemory?
        init(_ machine: Machine) {
            self.machine = machine
            memory = machine.test
        }
    }

    static func run(_ order: TeardownOrder, config: TeardownConfig, cpu: Int, device: KVMDevice) throws -> TeardownRun {
        // No local reference to the machine: the teardown thread must hold the last one.
        let remains = Remains(try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.memory, backing: config.backing), device: device))
        let populated = try populate(remains.machine!)
        let residentBytes = HostMemory.residentBytes()
        guard populated.problem == nil else {
            return TeardownRun(order: order, populateSeconds: populated.seconds, populateStats: populated.stats, residentBytes: residentBytes,
                               steps: [], windows: [], probeLoops: 0, probeOverflowed: false, problem: populated.problem)
        }

        let probe = GapProbe(thresholdNanos: UInt64(config.thresholdMicros * 1000))
        try probe.start(cpu: cpu)
        var steps: [TeardownStep] = []
        var windows: [(String, UInt64, UInt64)] = []
        let baseline = UInt64(config.baselineSeconds * 1e9)
        // Everything below runs on a thread pinned to the probe's CPU.
        let worker = try JoinableThread(pinTo: cpu) {
            func window(_ name: String, _ body: () -> Void) {
                let start = Stopwatch.now()
                body()
                windows.append((name, start, Stopwatch.now()))
            }
            func step(_ name: String, _ body: () -> Void) {
                let resident = HostMemory.residentBytes()
                let descriptors = HostMemory.openDescriptors()
                let clock = Stopwatch()
                body()
                let seconds = clock.seconds
                steps.append(TeardownStep(name: name, seconds: seconds, residentBytesFreed: resident - HostMemory.residentBytes(),
                                          descriptorsClosed: descriptors - HostMemory.openDescriptors()))
            }
            window("idle") { JitterScenario.sleepUntil(Stopwatch.now() + baseline) }
            window("busy") {
                let end = Stopwatch.now() + baseline
                while Stopwatch.now() < end {}
            }
            window("teardown") {
                switch order {
                case .vmFirst:
                    step("destroy VM (close vCPU and VM fds)") { remains.machine = nil }
                    step("unmap guest memory") { remains.memory?.unmap(); remains.memory = nil }
                case .memoryFirst:
                    step("unmap guest memory") { remains.memory?.unmap(); remains.memory = nil }
                    step("destroy VM (close vCPU and VM fds)") { remains.machine = nil }
                }
            }
        }
        worker.join()
        probe.stop()
        return TeardownRun(order: order, populateSeconds: populated.seconds, populateStats: populated.stats, residentBytes: residentBytes,
                           steps: steps,
                           windows: windows.map { ProbeWindow(name: $0.0, seconds: Double($0.2 - $0.1) / 1e9, gaps: probe.gaps(from: $0.1, to: $0.2).map { Double($0) / 1e9 }) },
                           probeLoops: probe.loopCount, probeOverflowed: probe.overflowed, problem: nil)
    }

    /// Every vCPU writes every page of its share once; the vCPU threads have
    /// ended when this returns.
    static func populate(_ machine: Machine) throws -> (seconds: Double, stats: StatsDelta?, problem: String?) {
        try machine.load(GuestImage.builtin("passes")!)
        let runner = VCPURunner(machine: machine) { _, _ in .finish }
        let driver = PassDriver(machine: machine, runner: runner)
        let probe = try? StatsProbe(machine: machine)
        let before = try? probe?.sample()
        let clock = Stopwatch()
        try runner.start()
        var healthy = true
        for index in machine.vcpus.indices {
            let region = machine.region(of: index)
            driver.begin(index, Pass(op: PASS_WRITE, gpa: region.gpa, pages: region.size / GuestLayout.pageSize, stamp: 0))
        }
        for index in machine.vcpus.indices where driver.wait(index, timeout: 300) == nil { healthy = false; break }
        let seconds = clock.seconds
        let after = try? probe?.sample()
        let problem = driver.finish(known: nil, complete: healthy)
        return (seconds, StatsDelta.between(before, after), problem)
    }
}

/// The process's own footprint, from /proc/self.
enum HostMemory {
    static func residentBytes() -> Int64 {
        guard let text = HostFiles.read("/proc/self/statm") else { return 0 }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int64(fields[1]) else { return 0 }
        return pages * Int64(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func openDescriptors() -> Int {
        guard let directory = opendir("/proc/self/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while readdir(directory) != nil { count += 1 }
        return count
    }
}
