import Guests
import KVM
import VMM

/// What the main thread does to the memslots during the churn phase.
public enum JitterOperation: String, CaseIterable, Sendable, Codable {
    case deleteCreate = "delete-create"
    case toggleDirtyLog = "toggle-dirty-log"
    case move
    case flags
    case manySlots = "many-slots"

    public var summary: String {
        switch self {
        case .deleteCreate: return "delete and re-create an unrelated 2 MiB memslot"
        case .toggleDirtyLog: return "toggle dirty logging on the vCPUs' working-set slot"
        case .move: return "move an unrelated 2 MiB memslot between two addresses"
        case .flags: return "toggle KVM_MEM_LOG_DIRTY_PAGES on an unrelated 2 MiB memslot"
        case .manySlots: return "add, then delete, \(JitterConfig.manySlotsBatch) small memslots"
        }
    }
}

public struct JitterConfig: Sendable {
    /// The vCPU counts this experiment takes (its command bounds -v with it).
    public static let vcpuLimit = 1...1024

    public static let manySlotsBatch = 16

    public var vcpus = Resources.onlineCPUs
    public var workingSet: UInt64 = 2 << 20
    public var warmup: Double = 2
    /// Seconds of the baseline, and again of the churn phase.
    public var duration: Double = 8
    /// Operations per second during churn.
    public var rate: Double = 100
    public var operation: JitterOperation = .deleteCreate
    /// Gaps longer than this are recorded individually as stalls.
    public var thresholdMicros: Double = 10
    public var noZapAll = false
    /// vCPU pins, round robin, and (if one longer than vcpus) the main thread last.
    public var pin: [Int] = []
    public var realtime = false
    /// A stall is attributed to the latest operation that started before it
    /// ended and ended no more than this long before it began.
    public var windowMicros: Double = 1000
    public var eventCapacity = 2048
    /// Also probe the host: a thread pinned to this CPU records its own
    /// scheduling gaps (the "other tasks" memslot changes disturb).
    public var hostProbeCPU: Int?
    /// probe: the host probe where one is asked for (--host-probe); tcp: a
    /// bulk TCP flow over loopback on vCPU 0's CPU; both: the two.
    public var victim: VictimKind = .probe
    /// With a TCP victim: a second flow on this CPU, as a control.
    public var controlCPU: Int?

    public init() {}

    /// The CPU the TCP victim shares: vCPU 0's (the first of the pin list).
    public var victimCPU: Int? { pin.first }
}

/// A gap the probe recorded: host TSC at its end, and its length in cycles.
public struct JitterStall: Sendable, Equatable {
    public let vcpu: Int
    public let endTSC: UInt64
    public let cycles: UInt64

    public init(vcpu: Int, endTSC: UInt64, cycles: UInt64) {
        self.vcpu = vcpu
        self.endTSC = endTSC
        self.cycles = cycles
    }
}

/// One host memslot ioctl, timed with the host TSC.
public struct JitterOp: Sendable, Equatable {
    public let kind: String
    public let startTSC: UInt64
    public let endTSC: UInt64

    public init(kind: String, startTSC: UInt64, endTSC: UInt64) {
        self.kind = kind
        self.startTSC = startTSC
        self.endTSC = endTSC
    }
}

public struct JitterPhase: Sendable {
    public let name: String
    public let startTSC: UInt64
    public let endTSC: UInt64
    /// log2 gap buckets per vCPU (MB_BUCKET_COUNT each), counted in this phase.
    public let buckets: [[UInt64]]
    public let loops: [UInt64]
    public let stalls: [JitterStall]
    /// The host probe's gaps above the threshold (vcpu -1), host TSC.
    public let hostStalls: [JitterStall]
    public let ops: [JitterOp]
    /// Operation rounds started (one round may be several ioctls).
    public let rounds: Int
    public let stats: StatsDelta?
    /// Kernel tracepoint counts that moved during it (nil when none were counted).
    public let tracepoints: [String: Int64]?
}

public struct JitterResult: Sendable {
    public let config: JitterConfig
    public let tscKHz: Int
    public let tscSource: String
    /// Worst bound on the guest-host TSC offset, in cycles.
    public let offsetUncertainty: UInt64
    public let thresholdCycles: UInt64
    public let zapAllQuirk: String
    public let realtime: String
    public let baseline: JitterPhase
    public let churn: JitterPhase?
    /// Events that the guests' rings overwrote before the host read them.
    public let lostStalls: Int
    public let interrupted: Bool
    public let problems: [String]
    /// Every vCPU's final loop count, bucket sum and working-set touches (all equal).
    public let finalLoops: [UInt64]
    public let finalBucketSums: [UInt64]
    public let finalTouches: [UInt64]

    public var phases: [JitterPhase] { [baseline, churn].compactMap { $0 } }
    /// The TCP flows per phase (victim, control), and why there is none where one was asked for.
    public let flows: [FlowRecord]
    public let victimNote: String?
}

public enum JitterScenario: Scenario {
    public static let kind = ExperimentKind.jitter

    public static func validate(_ config: JitterConfig) throws {
        guard JitterConfig.vcpuLimit.contains(config.vcpus) else { throw ConfigError.vcpus(config.vcpus, JitterConfig.vcpuLimit) }
        guard config.workingSet >= 4096, config.workingSet % 4096 == 0, config.workingSet <= 1 << 30 else {
            throw ConfigError("\(field: "workingSet") must be a multiple of 4 KiB from 4 KiB to 1 GiB")
        }
        try Resources.requireRAM(config.workingSet * UInt64(config.vcpus), for: "\(config.vcpus) vCPUs × \(Sizes.format(config.workingSet))", fix: "lower \(field: "vcpus") or \(field: "workingSet")")
        guard config.eventCapacity >= 16, config.eventCapacity <= Int(MB_EVENTS_MAX), config.eventCapacity & (config.eventCapacity - 1) == 0 else {
            throw ConfigError("\(field: "eventCapacity"): the event ring takes a power of two from 16 to \(MB_EVENTS_MAX)")
        }
        _ = try PinPlan(config.pin, vcpus: config.vcpus)
        if let cpu = config.hostProbeCPU { try PinPlan.checkCPUs([cpu], field: "hostProbeCPU") }
        if config.victim.tcp && config.victimCPU == nil {
            throw ConfigError("\(field: "victim") \(config.victim.rawValue) runs its TCP flow on vCPU 0's CPU: pin the vCPUs (\(field: "pin"))")
        }
        if config.victim == .both && config.hostProbeCPU == nil { throw ConfigError("\(field: "victim") both needs a CPU for the probe (\(field: "hostProbeCPU"))") }
        if config.controlCPU != nil && !config.victim.tcp { throw ConfigError("\(field: "controlCPU") runs a second TCP flow: it needs \(field: "victim") tcp or both") }
        if let control = config.controlCPU {
            try PinPlan.checkCPUs([control], field: "controlCPU")
            if control == config.victimCPU { throw ConfigError("\(field: "controlCPU") \(control) is the CPU under test (vCPU 0's); give another") }
        }
    }

    public static func run(_ config: JitterConfig) throws -> JitterResult {
        try validate(config)
        let device = try KVMDevice()
        if config.noZapAll { try Quirks.requireDisable(.slotZapAll, device: device) }
        return try JitterRun(config: config, device: device).execute()
    }
}

/// One jitter run: warm-up, a quiet baseline, then churn.
final class JitterRun {
    let config: JitterConfig
    let machine: Machine
    let runner: VCPURunner
    let collector: StallCollector
    let churner: SlotChurner
    let timer: PhaseTimer
    let pins: PinPlan
    let tscKHz: Int
    let tscSource: String
    let thresholdCycles: UInt64
    let offsetUncertainty: UInt64
    let hostProbe: GapProbe?

    init(config: JitterConfig, device: KVMDevice) throws {
        self.config = config
        pins = try PinPlan(config.pin, vcpus: config.vcpus)
        machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.workingSet * UInt64(config.vcpus),
                                            disabledQuirks: config.noZapAll ? [.slotZapAll] : []), device: device)
        try machine.load(GuestImage.builtin("jitter")!)
        guard let khz = machine.vcpus[0].tscKHz ?? HostTSC.cpuinfoKHz() else { throw HostError("cannot tell the TSC rate (no KVM_GET_TSC_KHZ, no cpuinfo)") }
        tscKHz = khz
        tscSource = machine.vcpus[0].tscKHz != nil ? "KVM_GET_TSC_KHZ" : "/proc/cpuinfo"
        thresholdCycles = UInt64(config.thresholdMicros * Double(khz) / 1000)
        var offsets: [Int64] = []
        var uncertainty: UInt64 = 0
        for (index, vcpu) in machine.vcpus.enumerated() {
            let measured = try vcpu.guestTSCOffset()
            offsets.append(measured.offset)
            uncertainty = max(uncertainty, measured.uncertainty)
            let mailbox = machine.mailbox(index)
            let region = machine.region(of: index)
            mailbox[MB_REGION] = region.gpa
            mailbox[MB_PAGES] = region.size / GuestLayout.pageSize
            mailbox[MB_THRESHOLD] = thresholdCycles
            mailbox[MB_EVENT_CAPACITY] = UInt64(config.eventCapacity)
        }
        offsetUncertainty = uncertainty
        churner = try SlotChurner(machine: machine, operation: config.operation)
        timer = PhaseTimer(machine: machine)
        collector = StallCollector(machine: machine, offsets: offsets, capacity: config.eventCapacity)
        runner = VCPURunner(machine: machine) { _, _ in .resume }
        let threshold = thresholdCycles
        hostProbe = config.hostProbeCPU.map { _ in GapProbe(threshold: threshold) { HostTSC.now() } }
    }

    var running: Bool { runner.endedCount == 0 && runner.stopRequested == nil }

    func execute() throws -> JitterResult {
        if let main = pins.main { JoinableThread.pinCurrent(to: main) }
        let realtime = config.realtime ? Realtime.enable() : "off"
        defer { if config.realtime { Realtime.disable() } }
        if let probe = hostProbe, let cpu = config.hostProbeCPU { try probe.start(cpu: cpu) }
        defer { hostProbe?.stop() }
        try runner.start(pin: pins.vcpus)
        // The victim flows start before the phases and stop after them.
        let flows = VictimFlows(kind: config.victim, cpu: config.victimCPU ?? 0, controlCPU: config.controlCPU,
                                seconds: config.warmup + 2 * config.duration + 60)
        defer { flows.stop() }
        warmUp()
        let baseline = measure("baseline", churn: false)
        let churn = running ? measure("churn", churn: true) : nil
        let flowRecords = flows.records(windows)
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_COMMAND] = 1 }
        let outcomes = runner.wait(timeout: 30)
        var problems = [outcomes.runProblem, churner.failure].compactMap { $0 }
        if churn == nil && outcomes.worst == .finished { problems.append("the vCPUs stopped during the baseline") }
        return JitterResult(
            config: config, tscKHz: tscKHz, tscSource: tscSource, offsetUncertainty: offsetUncertainty, thresholdCycles: thresholdCycles,
            zapAllQuirk: config.noZapAll ? "disabled (--no-zap-all)" : "on (kernel default)", realtime: realtime,
            baseline: baseline, churn: churn, lostStalls: collector.lost, interrupted: outcomes.worst == .interrupted, problems: problems,
            finalLoops: collector.loops(), finalBucketSums: collector.buckets().map { $0.reduce(0, &+) },
            finalTouches: machine.vcpus.indices.map(collector.touches), flows: flowRecords, victimNote: flows.note)
    }

    /// Each phase's span in Stopwatch.now() nanoseconds, for the victim flows.
    private var windows: [(name: String, start: UInt64, end: UInt64)] = []

    /// Every vCPU faults its working set in and settles.
    private func warmUp() {
        let end = Stopwatch.now() + UInt64(config.warmup * 1e9)
        while running && Stopwatch.now() < end {
            Stopwatch.sleep(until: min(end, Stopwatch.now() + 20_000_000))
            collector.drain()
        }
    }

    private func measure(_ name: String, churn: Bool) -> JitterPhase {
        collector.drain()
        let before = timer.begin(name)
        let bucketsBefore = collector.buckets(), loopsBefore = collector.loops()
        let start = HostTSC.now()
        let startNanos = Stopwatch.now()
        let end = startNanos + UInt64(config.duration * 1e9)
        var ops: [JitterOp] = []
        var rounds = 0
        var next = startNanos
        while running {
            let now = Stopwatch.now()
            if now >= end { break }
            if churn && now >= next {
                ops += churner.round()
                rounds += 1
                // Fixed schedule: a late round does not shift the ones after it.
                next = startNanos + UInt64(Double(rounds) * 1e9 / config.rate)
                continue
            }
            collector.drain()
            Stopwatch.sleep(until: min(end, churn ? next : now + 20_000_000))
        }
        let stop = HostTSC.now()
        windows.append((name, startNanos, Stopwatch.now()))
        collector.drain()
        let seconds = Double(Stopwatch.now() - startNanos) / 1e9
        let record = timer.end(name, since: before, seconds: seconds)
        return JitterPhase(name: name, startTSC: start, endTSC: stop,
                           buckets: zip(collector.buckets(), bucketsBefore).map { zip($0, $1).map { $0 &- $1 } },
                           loops: zip(collector.loops(), loopsBefore).map { $0 &- $1 },
                           stalls: collector.stalls(from: start, to: stop),
                           hostStalls: (hostProbe?.gaps(from: start, to: stop) ?? []).filter { $0.end >= start && $0.end < stop }
                               .map { JitterStall(vcpu: -1, endTSC: $0.end, cycles: $0.length) },
                           ops: ops, rounds: rounds, stats: record.stats, tracepoints: record.tracepoints)
    }
}

extension JitterResult: ExperimentResult {
    public var experiment: Experiment {
        let analysis = JitterAnalysis(self)
        var metrics = phases.flatMap { phase in
            stallMetrics(phase, analysis) + (config.hostProbeCPU != nil ? hostMetrics(phase, analysis) : []) + (phase.rounds > 0 ? churnMetrics(phase, analysis) : [])
        }
        let checks = [
            CheckRecord("probe loops equal log2 bucket counts", passed: finalLoops == finalBucketSums,
                        expected: "\(finalLoops.reduce(0, &+))", observed: "\(finalBucketSums.reduce(0, &+))"),
            CheckRecord("working-set touches equal probe loops", passed: finalLoops == finalTouches,
                        expected: "\(finalLoops.reduce(0, &+))", observed: "\(finalTouches.reduce(0, &+))"),
            CheckRecord.equal("no stall lost from the guests' rings", expected: 0, observed: lostStalls),
        ] + flows.flatMap { $0.checks("") }
        metrics += flows.flatMap { $0.metrics([:]) }
        return Experiment(.jitter, config: [
            "vcpus": "\(config.vcpus)", "working_set_bytes": "\(config.workingSet)", "duration_seconds": "\(config.duration)",
            "rate": "\(config.rate)", "op": config.operation.rawValue, "threshold_seconds": "\(config.thresholdMicros / 1e6)",
            "zap_all": config.noZapAll ? "off" : "on", "window_seconds": "\(config.windowMicros / 1e6)",
            "host_probe_cpu": config.hostProbeCPU.map(String.init) ?? "none", "victim": config.victim.rawValue,
        ], metrics: metrics, phases: phases.map { PhaseRecord(name: $0.name, seconds: analysis.seconds($0.endTSC &- $0.startTSC), stats: $0.stats, tracepoints: $0.tracepoints) },
           checks: checks, problems: problems, interrupted: interrupted)
    }

    /// The vCPUs' stalls and the probe's gaps in one phase.
    private func stallMetrics(_ phase: JitterPhase, _ analysis: JitterAnalysis) -> [Metric] {
        let labels = ["phase": phase.name]
        let distribution = Distribution(samples: phase.stalls.map { analysis.seconds($0.cycles) })
        return [
            Metric("stall_seconds", "vCPU stalls above the threshold, all vCPUs (value: median)", unit: .seconds, better: .lower,
                   labels: labels, distribution: distribution),
            Metric("stall_p99_seconds", "99th percentile vCPU stall", unit: .seconds, better: .lower, labels: labels, value: distribution.percentiles?.p99 ?? 0),
            Metric("stall_max_seconds", "Longest vCPU stall", unit: .seconds, better: .lower, labels: labels, value: distribution.percentiles?.max ?? 0),
            Metric("stalls", "vCPU stalls above the threshold", unit: .count, better: .lower, labels: labels, value: Double(phase.stalls.count)),
            Metric("gap_seconds", "Every gap between probe loops (log2 buckets below the threshold, exact above; value: median)",
                   unit: .seconds, better: .lower, labels: labels, distribution: analysis.gapDistribution(phase)),
        ]
    }

    /// The host probe's gaps in one phase, and those an operation explains.
    private func hostMetrics(_ phase: JitterPhase, _ analysis: JitterAnalysis) -> [Metric] {
        let labels = ["phase": phase.name]
        let host = Distribution(samples: phase.hostStalls.map { analysis.seconds($0.cycles) })
        var metrics = [
            Metric("host_stall_seconds", "Gaps of a host thread pinned beside the vCPUs (value: median)", unit: .seconds, better: .lower,
                   labels: labels, distribution: host),
            Metric("host_stalls", "Host probe gaps above the threshold", unit: .count, better: .lower, labels: labels, value: Double(host.count)),
        ]
        if phase.rounds > 0 {
            let attributed = phase.hostStalls.filter { analysis.attribute($0, ops: phase.ops) != nil }.count
            metrics.append(Metric("host_stalls_per_round", "Host probe gaps attributed to an operation, per round", unit: .ratio,
                                  better: .lower, labels: labels, value: Double(attributed) / Double(phase.rounds)))
        }
        return metrics
    }

    /// A churning phase: rounds, stalls per round and each ioctl's latency.
    private func churnMetrics(_ phase: JitterPhase, _ analysis: JitterAnalysis) -> [Metric] {
        let labels = ["phase": phase.name]
        let seconds = analysis.seconds(phase.endTSC &- phase.startTSC)
        let attributed = phase.stalls.filter { analysis.attribute($0, ops: phase.ops) != nil }.count
        return [
            Metric("rounds_per_second", "Operation rounds achieved per second", unit: .perSecond, better: .neither,
                   labels: labels, value: Double(phase.rounds) / max(seconds, 1e-9)),
            Metric("stalls_per_round", "Stalls attributed to an operation, per round", unit: .ratio, better: .lower,
                   labels: labels, value: Double(attributed) / Double(phase.rounds)),
        ] + Dictionary(grouping: phase.ops, by: \.kind).sorted(by: { $0.key < $1.key }).map { kind, ops in
            Metric("ioctl_seconds", "Host memslot ioctl latency (value: median)", unit: .seconds, better: .lower,
                   labels: ["phase": phase.name, "op": kind],
                   distribution: Distribution(samples: ops.map { analysis.seconds($0.endTSC &- $0.startTSC) }))
        }
    }
}
