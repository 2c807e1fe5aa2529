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
    /// The vCPU counts this experiment takes (its command bounds -v with it).
    public static let vcpuLimit = 1...512

    public var vcpus = Resources.onlineCPUs
    public var memory: UInt64 = 2 << 30
    public var backing: Backing = .anonymous
    public var orders: [TeardownOrder] = TeardownOrder.allCases
    /// The CPU the teardown thread and the probe share (default: the last online).
    public var cpu: Int?
    public var thresholdMicros: Double = 20
    /// Seconds of each baseline window (probe alone; probe beside a busy thread).
    public var baselineSeconds: Double = 0.5
    /// What shares the CPU with the teardown: the probe, a TCP flow, or both.
    public var victim: VictimKind = .probe
    /// A second TCP flow on this CPU, as a control (with a TCP victim).
    public var controlCPU: Int?

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

/// One order's run: populating, the timed steps and what the victims saw.
public struct TeardownOrderResult: Sendable {
    public let order: TeardownOrder
    public let populateSeconds: Double
    public let populateStats: StatsDelta?
    public let populateTracepoints: [String: Int64]?
    public let residentBytes: Int64
    public let steps: [TeardownStep]
    /// The probe's gaps per window (empty without a probe).
    public let windows: [ProbeWindow]
    /// The TCP flows (victim, control) per window; empty without a TCP victim.
    public let flows: [FlowRecord]
    /// Why there is no TCP victim where one was asked for.
    public let victimNote: String?
    public let probeLoops: UInt64
    public let probeOverflowed: Bool
    public let problem: String?
    public let interrupted: Bool

    public var teardownSeconds: Double { steps.map(\.seconds).reduce(0, +) }
}

public struct TeardownResult: Sendable {
    public let config: TeardownConfig
    public let cpu: Int
    public let runs: [TeardownOrderResult]
    public let interrupted: Bool
    public let problems: [String]
}

public enum TeardownScenario: Scenario {
    public static let kind = ExperimentKind.teardown

    public static func validate(_ config: TeardownConfig) throws {
        guard TeardownConfig.vcpuLimit.contains(config.vcpus) else { throw ConfigError.vcpus(config.vcpus, TeardownConfig.vcpuLimit) }
        let unit = config.backing.pageSize * UInt64(config.vcpus)
        guard config.memory >= unit, config.memory % unit == 0 else {
            throw ConfigError("\(field: "memory") must be a positive multiple of \(config.vcpus) × \(Sizes.format(config.backing.pageSize)) for \(config.backing.rawValue)")
        }
        guard !config.orders.isEmpty else { throw ConfigError("\(field: "orders") needs at least one order") }
        try Resources.requireRAM(config.memory, for: "\(field: "memory")", fix: "lower \(field: "memory")")
        guard config.thresholdMicros > 0 else { throw ConfigError("\(field: "thresholdMicros") must be positive") }
        guard config.baselineSeconds > 0, config.baselineSeconds <= 60 else { throw ConfigError("\(field: "baselineSeconds") must be between 0 and 60 seconds") }
        try PinPlan.checkCPUs([config.cpu].compactMap { $0 }, field: "cpu")
        try PinPlan.checkCPUs([config.controlCPU].compactMap { $0 }, field: "controlCPU")
        if config.controlCPU != nil && !config.victim.tcp { throw ConfigError("\(field: "controlCPU") runs a second TCP flow: it needs \(field: "victim") tcp or both") }
        if let control = config.controlCPU, control == config.cpu ?? Resources.onlineCPUs - 1 {
            throw ConfigError("\(field: "controlCPU") \(control) is the CPU under test; give another")
        }
    }

    public static func run(_ config: TeardownConfig) throws -> TeardownResult {
        try validate(config)
        let device = try KVMDevice()
        let cpu = config.cpu ?? Resources.onlineCPUs - 1
        var runs: [TeardownOrderResult] = []
        let interrupted = try eachUntilInterrupted(config.orders) { order in
            let run = try TeardownRun(order, config: config, cpu: cpu, device: device).execute()
            runs.append(run)
            return run.problem == nil && !run.interrupted
        }
        return TeardownResult(config: config, cpu: cpu, runs: runs, interrupted: interrupted || runs.contains(where: \.interrupted),
                              problems: runs.compactMap { run in run.problem.map { "\(run.order.rawValue): \($0)" } })
    }
}

/// One order's run: the VM populated, two baseline windows of the probe,
/// then the teardown on the probe's CPU.
final class TeardownRun {
    /// What the teardown thread owns: the last references to the VM and its
    /// memory, and what it records. @unchecked: only the teardown thread
    /// touches it between its start and join (join orders the reads after).
    final class Remains: @unchecked Sendable {
        var machine: Machine?
        var memory: GuestMemory?
        var steps: [TeardownStep] = []
        var windows: [(name: String, start: UInt64, end: UInt64)] = []
        init(_ machine: Machine) {
            self.machine = machine
            memory = machine.test
        }

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

        func destroyVM() { step(TeardownRun.destroyStep) { machine = nil } }
        func unmapMemory() { step(TeardownRun.unmapStep) { memory?.unmap(); memory = nil } }
    }

    static let destroyStep = "destroy VM (close vCPU and VM fds)"
    static let unmapStep = "unmap guest memory"

    let order: TeardownOrder
    let config: TeardownConfig
    let cpu: Int
    /// No other reference to the machine: the teardown thread must drop the last one.
    let remains: Remains

    init(_ order: TeardownOrder, config: TeardownConfig, cpu: Int, device: KVMDevice) throws {
        self.order = order
        self.config = config
        self.cpu = cpu
        remains = Remains(try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.memory, backing: config.backing), device: device))
    }

    func execute() throws -> TeardownOrderResult {
        let remains = remains
        let order = order
        let populated = try TeardownRun.populate(remains.machine!)
        let residentBytes = HostMemory.residentBytes()
        guard populated.ending.problem == nil, !populated.ending.interrupted else {
            return TeardownOrderResult(order: order, populateSeconds: populated.seconds, populateStats: populated.stats, populateTracepoints: populated.tracepoints, residentBytes: residentBytes,
                               steps: [], windows: [], flows: [], victimNote: nil, probeLoops: 0, probeOverflowed: false,
                               problem: populated.ending.problem, interrupted: populated.ending.interrupted)
        }
        // The flows start before the windows; the teardown's length is not known, so their slots cover ten minutes.
        let flows = VictimFlows(kind: config.victim, cpu: cpu, controlCPU: config.controlCPU, seconds: 2 * config.baselineSeconds + 600)
        // Without loopback TCP the run goes on with the probe.
        let probe = config.victim.probe || flows.note != nil ? GapProbe(threshold: UInt64(config.thresholdMicros * 1000)) { Stopwatch.now() } : nil
        try probe?.start(cpu: cpu)
        try TeardownRun.windows(remains, order: order, flows: flows, baseline: UInt64(config.baselineSeconds * 1e9), cpu: cpu)
        probe?.stop()
        return TeardownOrderResult(order: order, populateSeconds: populated.seconds, populateStats: populated.stats, populateTracepoints: populated.tracepoints, residentBytes: residentBytes,
                           steps: remains.steps,
                           windows: probe.map { probe in remains.windows.map { ProbeWindow(name: $0.name, seconds: Double($0.end - $0.start) / 1e9,
                                                                                          gaps: probe.gaps(from: $0.start, to: $0.end).map { Double($0.length) / 1e9 }) } } ?? [],
                           flows: flows.records(remains.windows), victimNote: flows.note,
                           probeLoops: probe?.loopCount ?? 0, probeOverflowed: probe?.overflowed ?? false, problem: nil, interrupted: false)
    }

    /// On a thread pinned to the probe's CPU: an idle window, a busy one
    /// (a user-space spin), then the teardown in `order`.
    static func windows(_ remains: Remains, order: TeardownOrder, flows: VictimFlows, baseline: UInt64, cpu: Int) throws {
        let worker = try JoinableThread(pinTo: cpu) {
            remains.window("idle") { Stopwatch.sleep(until: Stopwatch.now() + baseline) }
            remains.window("busy") {
                let end = Stopwatch.now() + baseline
                while Stopwatch.now() < end {}
            }
            remains.window("teardown") {
                if InjectedFault.on(.victimStopsCounting) { flows.ignore(true) }
                switch order {
                case .vmFirst: remains.destroyVM(); remains.unmapMemory()
                case .memoryFirst: remains.unmapMemory(); remains.destroyVM()
                }
                flows.ignore(false)
            }
        }
        worker.join()
    }

    /// Every vCPU writes every page of its share once; the vCPU threads have
    /// ended when this returns.
    static func populate(_ machine: Machine) throws -> (seconds: Double, stats: StatsDelta?, tracepoints: [String: Int64]?, ending: RunEnding) {
        let driver = try PassDriver.load(on: machine)
        let runner = driver.runner
        let timer = PhaseTimer(machine: machine)
        let (healthy, phase) = try timer.measure("populate") { () throws -> Bool in
            try runner.start()
            for index in machine.vcpus.indices {
                let region = machine.region(of: index)
                driver.begin(index, Pass(op: PASS_WRITE, gpa: region.gpa, pages: region.size / GuestLayout.pageSize, stamp: 0))
            }
            return machine.vcpus.indices.allSatisfy { driver.wait($0, timeout: 300) != nil }
        }
        return (phase.seconds ?? 0, phase.stats, phase.tracepoints, driver.finish(known: nil, complete: healthy))
    }
}

extension TeardownResult: ExperimentResult {
    public var experiment: Experiment {
        var metrics: [Metric] = []
        var checks: [CheckRecord] = []
        var phases: [PhaseRecord] = []
        for run in runs {
            let order = run.order.rawValue
            phases.append(PhaseRecord(name: "\(order) populate", seconds: run.populateSeconds, stats: run.populateStats, tracepoints: run.populateTracepoints))
            guard !run.steps.isEmpty else { continue }
            metrics.append(Metric("teardown_seconds", "Both teardown steps", unit: .seconds, better: .lower, labels: ["order": order], value: run.teardownSeconds))
            for step in run.steps {
                let labels = ["order": order, "step": step.name == destroyStepName ? "destroy_vm" : "unmap_memory"]
                metrics.append(Metric("step_seconds", "One teardown step", unit: .seconds, better: .lower, labels: labels, value: step.seconds))
                metrics.append(Metric("step_freed_bytes", "Resident memory the step gave back", unit: .bytes, better: .neither, labels: labels, value: Double(step.residentBytesFreed)))
                phases.append(PhaseRecord(name: "\(order) \(step.name)", seconds: step.seconds, stats: nil))
            }
            for window in run.windows {
                metrics.append(Metric("probe_gap_seconds", "Gaps of a probe thread on the teardown's CPU (value: median)", unit: .seconds, better: .lower,
                                      labels: ["order": order, "window": window.name], distribution: Distribution(samples: window.gaps)))
            }
            for flow in run.flows {
                metrics += flow.metrics(["order": order])
                checks += flow.checks("\(order): ")
            }
            checks += descriptorChecks(run)
        }
        return Experiment(.teardown, config: [
            "vcpus": "\(config.vcpus)", "memory_bytes": "\(config.memory)", "backing": config.backing.rawValue,
            "threshold_seconds": "\(config.thresholdMicros / 1e6)", "orders": config.orders.map(\.rawValue).joined(separator: ","),
            "victim": config.victim.rawValue,
        ], metrics: metrics, phases: phases, checks: checks, problems: problems, interrupted: interrupted)
    }

    private var destroyStepName: String { TeardownRun.destroyStep }

    /// Destroying the VM closes one fd per vCPU and the VM's; unmapping closes none.
    private func descriptorChecks(_ run: TeardownOrderResult) -> [CheckRecord] {
        run.steps.map { step in
            step.name == destroyStepName
                ? CheckRecord("\(run.order.rawValue): destroying the VM closes its vCPU and VM fds", passed: step.descriptorsClosed >= config.vcpus + 1,
                              expected: "≥ \(config.vcpus + 1)", observed: "\(step.descriptorsClosed)")
                : .equal("\(run.order.rawValue): unmapping memory closes no fd", expected: 0, observed: step.descriptorsClosed)
        }
    }
}
