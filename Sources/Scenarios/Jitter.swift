import CKVM
import Glibc
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

    public init() {}
}

/// A gap the probe recorded: host TSC at its end, and its length in cycles.
public struct JitterStall: Sendable, Equatable {
    public let vcpu: Int
    public let endTSC: UInt64
    public let cycles: UInt64
}

/// One host memslot ioctl, timed with the host TSC.
public struct JitterOp: Sendable, Equatable {
    public let kind: String
    public let startTSC: UInt64
    public let endTSC: UInt64
}

public struct JitterPhase: Sendable {
    public let name: String
    public let startTSC: UInt64
    public let endTSC: UInt64
    /// log2 gap buckets per vCPU (MB_BUCKET_COUNT each), counted in this phase.
    public let buckets: [[UInt64]]
    public let loops: [UInt64]
    public let stalls: [JitterStall]
    public let ops: [JitterOp]
    /// Operation rounds started (one round may be several ioctls).
    public let rounds: Int
    public let stats: StatsDelta?
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
    public let churn: JitterPhase
    /// Events that the guests' rings overwrote before the host read them.
    public let lostStalls: Int
    public let status: String
    public let problems: [String]
    /// Every vCPU's final loop count and bucket sum (they must match).
    public let finalLoops: [UInt64]
    public let finalBucketSums: [UInt64]
}

public enum JitterScenario {
    public static func validate(_ config: JitterConfig) throws {
        guard config.vcpus >= 1 else { throw ConfigError("-v must be at least 1") }
        guard config.workingSet >= 4096, config.workingSet % 4096 == 0 else { throw ConfigError("--working-set must be a positive multiple of 4 KiB") }
        guard config.duration > 0, config.duration <= 3600 else { throw ConfigError("--duration must be between 0 and 3600 seconds") }
        guard config.warmup >= 0 else { throw ConfigError("--warmup must not be negative") }
        guard config.rate > 0, config.rate <= 100_000 else { throw ConfigError("--rate must be between 0 and 100000 operations per second") }
        guard config.thresholdMicros > 0 else { throw ConfigError("--threshold must be positive") }
        guard config.eventCapacity >= 16, config.eventCapacity <= Int(MB_EVENTS_MAX), config.eventCapacity & (config.eventCapacity - 1) == 0 else {
            throw ConfigError("the event ring takes a power of two from 16 to \(MB_EVENTS_MAX)")
        }
        _ = try PinPlan(config.pin, vcpus: config.vcpus)
    }

    public static func run(_ config: JitterConfig) throws -> JitterResult {
        try validate(config)
        let device = try KVMDevice()
        if config.noZapAll && UInt64(UInt32(bitPattern: device.check(.disableQuirks2))) & X86Quirk.slotZapAll.mask == 0 {
            throw ConfigError("--no-zap-all: this kernel cannot disable KVM_X86_QUIRK_SLOT_ZAP_ALL (see kvmlab info)")
        }
        let machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.workingSet * UInt64(config.vcpus),
                                                disabledQuirks: config.noZapAll ? [.slotZapAll] : []), device: device)
        try machine.load(GuestImage.builtin("jitter")!)
        guard let khz = machine.vcpus[0].tscKHz ?? cpuinfoKHz() else { throw ConfigError("cannot tell the TSC rate (no KVM_GET_TSC_KHZ, no cpuinfo)") }
        let tscSource = machine.vcpus[0].tscKHz != nil ? "KVM_GET_TSC_KHZ" : "/proc/cpuinfo"
        let threshold = UInt64(config.thresholdMicros * Double(khz) / 1000)
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
            mailbox[MB_THRESHOLD] = threshold
            mailbox[MB_EVENT_CAPACITY] = UInt64(config.eventCapacity)
        }
        let churner = try SlotChurner(machine: machine, operation: config.operation)
        let probe = try? StatsProbe(machine: machine)
        let pins = try PinPlan(config.pin, vcpus: config.vcpus)
        if let main = pins.main { JoinableThread.pinCurrent(to: main) }
        let realtime = config.realtime ? Realtime.enable() : "off"
        defer { if config.realtime { Realtime.disable() } }
        let collector = StallCollector(machine: machine, offsets: offsets, capacity: config.eventCapacity)

        let runner = VCPURunner(machine: machine) { _, _ in .resume }
        try runner.start(pin: pins.vcpus)
        var problems: [String] = []
        func running() -> Bool { runner.endedCount == 0 && runner.stopRequested == nil }

        // Warm-up: every vCPU faults its working set in and settles.
        let warmupEnd = Stopwatch.now() + UInt64(config.warmup * 1e9)
        while running() && Stopwatch.now() < warmupEnd { sleepUntil(min(warmupEnd, Stopwatch.now() + 20_000_000)); collector.drain() }

        func measure(_ name: String, churn: Bool) -> JitterPhase {
            collector.drain()
            let before = try? probe?.sample()
            let bucketsBefore = collector.buckets()
            let loopsBefore = collector.loops()
            let start = ckvm_rdtsc()
            let startNanos = Stopwatch.now()
            let end = startNanos + UInt64(config.duration * 1e9)
            var ops: [JitterOp] = []
            var rounds = 0
            var next = startNanos
            while running() {
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
                sleepUntil(min(end, churn ? next : now + 20_000_000))
            }
            let stop = ckvm_rdtsc()
            collector.drain()
            let after = try? probe?.sample()
            let buckets = zip(collector.buckets(), bucketsBefore).map { zip($0, $1).map { $0 &- $1 } }
            let loops = zip(collector.loops(), loopsBefore).map { $0 &- $1 }
            return JitterPhase(name: name, startTSC: start, endTSC: stop, buckets: buckets, loops: loops,
                               stalls: collector.stalls(from: start, to: stop), ops: ops, rounds: rounds,
                               stats: StatsDelta.between(before, after))
        }
        let baseline = measure("baseline", churn: false)
        let churn = measure("churn", churn: true)
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_COMMAND] = 1 }
        let outcomes = runner.wait(timeout: 30)
        let status = LaunchScenario.status(of: outcomes)
        if status != .finished && status != .interrupted {
            problems.append(outcomes.lazy.compactMap { LaunchScenario.problem($0) }.first ?? "a vCPU did not finish")
        }
        if let error = churner.failure { problems.append(error) }
        let finalLoops = machine.vcpus.indices.map { machine.mailbox($0)[MB_LOOPS] }
        let finalSums = collector.buckets().map { $0.reduce(0, &+) }
        return JitterResult(
            config: config, tscKHz: khz, tscSource: tscSource, offsetUncertainty: uncertainty, thresholdCycles: threshold,
            zapAllQuirk: config.noZapAll ? "disabled (--no-zap-all)" : "on (kernel default)", realtime: realtime,
            baseline: baseline, churn: churn, lostStalls: collector.lost,
            status: RunProblem.status(interrupted: status == .interrupted, problems: problems), problems: problems,
            finalLoops: finalLoops, finalBucketSums: finalSums)
    }

    static func sleepUntil(_ nanos: UInt64) {
        var spec = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &spec, nil) == EINTR {}
    }

    static func cpuinfoKHz() -> Int? {
        guard let text = HostFiles.read("/proc/cpuinfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("cpu MHz") {
            if let value = line.split(separator: ":").last.flatMap({ Double(String($0).trimmingCharacters(in: " \t")) }) { return Int(value * 1000) }
        }
        return nil
    }
}

/// SCHED_FIFO for the main thread, where permitted.
enum Realtime {
    static func enable() -> String {
        var param = sched_param()
        param.sched_priority = 1
        return sched_setscheduler(0, SCHED_FIFO, &param) == 0 ? "SCHED_FIFO priority 1" : "not permitted: \(KVMError.name(of: errno))"
    }

    static func disable() {
        var param = sched_param()
        param.sched_priority = 0
        sched_setscheduler(0, SCHED_OTHER, &param)
    }
}
