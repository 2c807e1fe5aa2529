import Glibc
import Guests
import KVM
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
}

public struct RootReloadResult: Sendable {
    public let config: RootReloadConfig
    public let emulatedKernelMode: Bool
    public let mmuMode: String
    public let baseline: RootReloadPhase
    public let toggling: RootReloadPhase?
    public let status: String
    public let problems: [String]
}

/// MMU context resets forced from inside the guest: vCPU 0 runs at CPL0 and
/// flips CR0.WP in a loop (each flip makes KVM reset the vCPU's MMU context,
/// which on some kernels meant a root reload); the other vCPUs dirty their
/// working sets at CPL3 throughout, so the cost to them shows too.
public enum RootReloadScenario {
    static let toggler = 0

    public static func validate(_ config: RootReloadConfig) throws {
        guard config.dirtiers >= 0, config.dirtiers <= 1023 else { throw ConfigError("--dirtiers must be between 0 and 1023") }
        guard config.workingSet >= GuestLayout.pageSize, config.workingSet % GuestLayout.pageSize == 0 else {
            throw ConfigError("--working-set must be a positive multiple of 4 KiB")
        }
        guard config.duration > 0, config.duration <= 3600 else { throw ConfigError("--duration must be between 0 and 3600 seconds") }
        try Resources.requireRAM(config.workingSet * UInt64(config.dirtiers), for: "\(config.dirtiers) dirtiers × \(Sizes.format(config.workingSet))", fix: "lower --dirtiers or --working-set")
        _ = try PinPlan(config.pin, vcpus: config.dirtiers + 1)
    }

    public static func run(_ config: RootReloadConfig) throws -> RootReloadResult {
        try validate(config)
        let machine = try Machine(MachineConfig(vcpus: config.dirtiers + 1, testMemory: config.workingSet * UInt64(config.dirtiers)))
        try machine.load(GuestImage.builtin("crwp")!) { $0 == toggler ? .kernel : .user }
        machine.mailbox(toggler)[MB_OP] = UInt64(ROLE_TOGGLE_WP)
        let dirtiers = Array(1..<machine.vcpus.count)
        let togglerProbe = try? StatsProbe(machine: machine, vcpus: [toggler])
        let dirtierProbe = dirtiers.isEmpty ? nil : try? StatsProbe(machine: machine, vcpus: dirtiers)
        let pins = try PinPlan(config.pin, vcpus: machine.vcpus.count)
        if let main = pins.main { JoinableThread.pinCurrent(to: main) }

        // The toggler reports ready, then waits outside the guest until released.
        let gate = IterationGate()
        let runner = VCPURunner(machine: machine) { _, event in
            guard event == .iteration else { return .finish }
            return gate.wait(after: 0) == nil ? .finish : .resume
        }
        runner.onStop { gate.cancel() }
        let driver = PassDriver(machine: machine, runner: runner)
        let pagesPerPass = config.workingSet / GuestLayout.pageSize
        for index in dirtiers {
            driver.begin(index, Pass(op: PASS_WRITE_LOOP, gpa: GuestLayout.testMemoryBase + UInt64(index - 1) * config.workingSet,
                                     pages: pagesPerPass, stamp: UInt64(index) << 40))
        }
        try runner.start(pin: pins.vcpus)

        func running() -> Bool { runner.endedCount == 0 && runner.stopRequested == nil }
        func measure(_ name: String, toggling: Bool) -> RootReloadPhase {
            let togglerBefore = try? togglerProbe?.sample()
            let dirtierBefore = try? dirtierProbe?.sample()
            let passesBefore = dirtiers.map { driver.passes($0) }
            let togglesBefore = machine.mailbox(toggler)[MB_LOOPS]
            let clock = Stopwatch()
            if toggling { gate.open(1) }
            while running() && clock.seconds < config.duration { JitterScenario.sleepUntil(Stopwatch.now() + 10_000_000) }
            let seconds = clock.seconds
            let toggles = machine.mailbox(toggler)[MB_LOOPS] &- togglesBefore
            let passes = zip(dirtiers.map { driver.passes($0) }, passesBefore).map { $0 &- $1 }.reduce(0, +)
            let togglerAfter = try? togglerProbe?.sample()
            let dirtierAfter = try? dirtierProbe?.sample()
            return RootReloadPhase(name: name, seconds: seconds, toggles: toggles, dirtierPasses: passes, pagesDirtied: passes * pagesPerPass,
                                   togglerStats: StatsDelta.between(togglerBefore, togglerAfter),
                                   dirtierStats: StatsDelta.between(dirtierBefore, dirtierAfter))
        }
        // Let the dirtiers fault their working sets in before the baseline.
        let warm = Stopwatch()
        while running() && dirtiers.contains(where: { driver.passes($0) < 2 }) && warm.seconds < 30 { JitterScenario.sleepUntil(Stopwatch.now() + 5_000_000) }
        let baseline = measure("baseline", toggling: false)
        let toggling = running() ? measure("toggling", toggling: true) : nil
        let outcomes = driver.finish()
        var problems: [String] = []
        let status = LaunchScenario.status(of: outcomes)
        if status != .finished && status != .interrupted {
            problems.append(outcomes.lazy.compactMap { LaunchScenario.problem($0) }.first ?? "a vCPU did not finish")
        }
        if let toggling, toggling.toggles == 0, status == .finished { problems.append("the CPL0 vCPU toggled CR0.WP no times") }
        let host = HostFingerprint.current()
        return RootReloadResult(config: config, emulatedKernelMode: host.emulatesKernelMode,
                                mmuMode: host.mmuMode, baseline: baseline, toggling: toggling,
                                status: RunProblem.status(interrupted: status == .interrupted, problems: problems), problems: problems)
    }
}
