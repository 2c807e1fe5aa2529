import Guests
import VMM

public struct RootReloadConfig: Sendable {
    /// vCPUs dirtying memory beside the toggling one.
    public var dirtiers = max(0, Resources.onlineCPUs - 1)
    public var workingSet: UInt64 = 64 << 20
    /// Seconds of the baseline (dirtiers alone), and again of toggling.
    public var duration: Double = 2
    public var pin: [Int] = []

    public init() {}
}

/// One phase: what the toggler and the dirtiers did, and what KVM counted.
public struct RootReloadPhase: Sendable {
    public let name: String
    public let seconds: Double
    public let toggles: UInt64
    public let dirtierPasses: UInt64
    public let pagesDirtied: UInt64
    /// KVM stats of the VM plus the toggling vCPU, and of the dirtiers summed.
    public let togglerStats: StatsDelta?
    public let dirtierStats: StatsDelta?
    /// Kernel tracepoint counts that moved during it, process-wide (nil when none were counted).
    public let tracepoints: [String: Int64]?
}

public struct RootReloadResult: Sendable {
    public let config: RootReloadConfig
    public let emulatedKernelMode: Bool
    public let mmuMode: String
    public let baseline: RootReloadPhase
    public let toggling: RootReloadPhase?
    public let interrupted: Bool
    public let problems: [String]
}

/// MMU context resets forced from inside the guest: vCPU 0 runs at CPL0 and
/// flips CR0.WP in a loop (each flip makes KVM reset the vCPU's MMU context,
/// which on some kernels meant a root reload); the other vCPUs dirty their
/// working sets at CPL3 throughout, so the cost to them shows too.
public enum RootReloadScenario: Scenario {
    public static let kind = ExperimentKind.rootReload

    public static func validate(_ config: RootReloadConfig) throws {
        guard config.dirtiers >= 0, config.dirtiers <= 1023 else { throw ConfigError("\(field: "dirtiers") must be between 0 and 1023") }
        guard config.workingSet >= GuestLayout.pageSize, config.workingSet % GuestLayout.pageSize == 0 else {
            throw ConfigError("\(field: "workingSet") must be a positive multiple of 4 KiB")
        }
        guard config.duration > 0, config.duration <= 3600 else { throw ConfigError("\(field: "duration") must be between 0 and 3600 seconds") }
        try Resources.requireRAM(config.workingSet * UInt64(config.dirtiers), for: "\(config.dirtiers) dirtiers × \(Sizes.format(config.workingSet))", fix: "lower \(field: "dirtiers") or \(field: "workingSet")")
        _ = try PinPlan(config.pin, vcpus: config.dirtiers + 1)
    }

    public static func run(_ config: RootReloadConfig) throws -> RootReloadResult {
        try validate(config)
        return try RootReloadRun(config: config).execute()
    }
}

/// One root-reload run: the toggler held at its gate while the dirtiers
/// warm up and a baseline is measured, then released for the toggling phase.
final class RootReloadRun {
    static let toggler = 0
    let config: RootReloadConfig
    let machine: Machine
    let dirtiers: [Int]
    let togglerTimer: PhaseTimer
    let dirtierTimer: PhaseTimer
    let pins: PinPlan
    /// The toggler reports ready, then waits outside the guest until released.
    let gate = IterationGate()
    let runner: VCPURunner
    let driver: PassDriver
    let pagesPerPass: UInt64

    init(config: RootReloadConfig) throws {
        self.config = config
        machine = try Machine(MachineConfig(vcpus: config.dirtiers + 1, testMemory: config.workingSet * UInt64(config.dirtiers)))
        try machine.load(GuestImage.builtin("crwp")!) { $0 == RootReloadRun.toggler ? .kernel : .user }
        machine.mailbox(Self.toggler)[MB_OP] = UInt64(ROLE_TOGGLE_WP)
        // CR0.ET (bit 4) reads back 1 whatever is written: a flip of it never sticks.
        machine.mailbox(Self.toggler)[MB_TOGGLE_MASK] = InjectedFault.on(.cr0FlipThatNeverSticks) ? 0x10 : UInt64(CR0_WP)
        dirtiers = Array(1..<machine.vcpus.count)
        togglerTimer = PhaseTimer(machine: machine, vcpus: [Self.toggler])
        dirtierTimer = PhaseTimer(probe: dirtiers.isEmpty ? nil : try? StatsProbe(machine: machine, vcpus: dirtiers))
        pins = try PinPlan(config.pin, vcpus: machine.vcpus.count)
        let gate = gate
        runner = VCPURunner(machine: machine) { _, event in
            guard event == .iteration else { return .finish }
            return gate.wait(after: 0) == nil ? .finish : .resume
        }
        runner.onStop { gate.cancel() }
        driver = PassDriver(machine: machine, runner: runner)
        pagesPerPass = config.workingSet / GuestLayout.pageSize
    }

    func execute() throws -> RootReloadResult {
        if let main = pins.main { JoinableThread.pinCurrent(to: main) }
        for index in dirtiers {
            driver.begin(index, Pass(op: PASS_WRITE_LOOP, gpa: GuestLayout.testMemoryBase + UInt64(index - 1) * config.workingSet,
                                     pages: pagesPerPass, stamp: Stamp(tag: UInt16(index), sequence: 0).base))
        }
        try runner.start(pin: pins.vcpus)
        // Let the dirtiers fault their working sets in before the baseline.
        let warm = Stopwatch()
        while running && dirtiers.contains(where: { driver.passes($0) < 2 }) && warm.seconds < 30 { Stopwatch.sleep(seconds: 0.005) }
        let baseline = measure("baseline", toggling: false)
        let toggling = running ? measure("toggling", toggling: true) : nil
        let outcomes = driver.finish()
        let host = HostFingerprint.current()
        return RootReloadResult(config: config, emulatedKernelMode: host.emulatesKernelMode,
                                mmuMode: host.mmuMode, baseline: baseline, toggling: toggling,
                                interrupted: outcomes.worst == .interrupted, problems: [outcomes.runProblem].compactMap { $0 })
    }

    private var running: Bool { runner.endedCount == 0 && runner.stopRequested == nil }

    /// One phase of `config.duration` seconds, the toggler released or not.
    private func measure(_ name: String, toggling: Bool) -> RootReloadPhase {
        let togglerBefore = togglerTimer.begin(name)
        let dirtierBefore = dirtierTimer.begin(name, progress: false)
        let passesBefore = dirtiers.map { driver.passes($0) }
        let togglesBefore = machine.mailbox(Self.toggler)[MB_LOOPS]
        let clock = Stopwatch()
        if toggling { gate.open(1) }
        while running && clock.seconds < config.duration { Stopwatch.sleep(seconds: 0.01) }
        let seconds = clock.seconds
        let toggles = machine.mailbox(Self.toggler)[MB_LOOPS] &- togglesBefore
        let passes = zip(dirtiers.map { driver.passes($0) }, passesBefore).map { $0 &- $1 }.reduce(0, +)
        let toggler = togglerTimer.end(name, since: togglerBefore, seconds: seconds)
        return RootReloadPhase(name: name, seconds: seconds, toggles: toggles, dirtierPasses: passes, pagesDirtied: passes * pagesPerPass,
                               togglerStats: toggler.stats, dirtierStats: dirtierTimer.end(name, since: dirtierBefore, seconds: seconds).stats,
                               tracepoints: toggler.tracepoints)
    }
}

extension RootReloadResult: ExperimentResult {
    public var experiment: Experiment {
        var metrics: [Metric] = []
        for phase in [baseline, toggling].compactMap({ $0 }) {
            let labels = ["phase": phase.name]
            metrics.append(Metric("pages_dirtied_per_second", "Pages the CPL3 vCPUs dirtied per second", unit: .pagesPerSecond, better: .higher,
                                  labels: labels, value: Double(phase.pagesDirtied) / max(phase.seconds, 1e-9)))
        }
        if let toggling {
            metrics.append(Metric("toggles_per_second", "CR0.WP toggles per second", unit: .perSecond, better: .higher, value: Double(toggling.toggles) / max(toggling.seconds, 1e-9)))
            metrics.append(Metric("seconds_per_toggle", "The cost of one CR0.WP toggle", unit: .seconds, better: .lower,
                                  value: toggling.toggles > 0 ? toggling.seconds / Double(toggling.toggles) : nil))
            if baseline.pagesDirtied > 0 {
                let ratio = (Double(toggling.pagesDirtied) / max(toggling.seconds, 1e-9)) / (Double(baseline.pagesDirtied) / max(baseline.seconds, 1e-9))
                metrics.append(Metric("dirtier_throughput_ratio", "Dirtying rate while toggling, as a fraction of the baseline's", unit: .ratio, better: .higher, value: ratio))
            }
        }
        // The guest reads CR0 back after every flip and fails the vCPU if
        // WP did not change, so a toggle counted is a toggle read back.
        let checks = toggling.map { [CheckRecord("the CPL0 vCPU toggled CR0.WP (each read back by the guest)", passed: $0.toggles > 0,
                                                 expected: "> 0 toggles", observed: "\($0.toggles)")] } ?? []
        let phases = [baseline, toggling].compactMap { $0 }.map { PhaseRecord(name: $0.name, seconds: $0.seconds, stats: $0.togglerStats, tracepoints: $0.tracepoints) }
        return Experiment(.rootReload, config: [
            "dirtiers": "\(config.dirtiers)", "working_set_bytes": "\(config.workingSet)", "duration_seconds": "\(config.duration)",
        ], metrics: metrics, phases: phases, checks: checks, problems: problems, interrupted: interrupted)
    }
}
