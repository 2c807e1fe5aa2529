import Glibc
import KVM
import Synchronization
import VMM

/// `kvmlab dirty-log`: what dirty_log_perf_test measures, checked page by
/// page and explained with KVM's own stats.
public struct DirtyLogConfig: Sendable {
    public var vcpus = 1
    public var bytesPerVCPU: UInt64 = 1 << 30
    public var iterations = 2
    public var backing: Backing = .anonymous
    public var slots = 1
    public var writePercent = 100
    public var random = false
    public var seed: UInt64 = 1
    public var sharedRegion = false
    /// vCPU pins, round robin, and (if one longer than vcpus) the main thread last.
    public var pin: [Int] = []
    public var manualProtect = true
    /// nil: on exactly when manual protect is.
    public var initiallySet: Bool?
    /// Pages per KVM_CLEAR_DIRTY_LOG call (rounded up to 64); nil: whole slot.
    public var clearChunk: Int?
    /// Harvest with a dirty ring of this many entries per vCPU instead of the bitmap.
    public var ringEntries: Int?
    public var cpl: PrivilegeLevel = .user
    /// vCPUs keep dirtying memory while logging is disabled (selftests' -e).
    public var keepRunning = false
    public var timeout: Double = 600

    public init() {}

    public var totalBytes: UInt64 { bytesPerVCPU * UInt64(vcpus) }
    public var usesInitiallySet: Bool { ringEntries == nil && manualProtect && (initiallySet ?? true) }
    public var harvest: String { ringEntries != nil ? "dirty ring" : manualProtect ? "bitmap, manual protect" : "bitmap" }
}

public struct DirtyLogPhase: Sendable, Codable {
    public let name: String
    public let seconds: Double
    public let stats: StatsDelta?
}

public struct DirtyLogIteration: Sendable, Codable {
    public let iteration: Int
    public let dirtyMemorySeconds: Double
    public let getSeconds: Double
    /// nil without manual protect (KVM_GET_DIRTY_LOG re-protects by itself).
    public let clearSeconds: Double?
    /// Pages the guests counted as written (sum over vCPUs).
    public let pagesWritten: UInt64
    /// Pages the host found stamped with this iteration (distinct pages).
    public let pagesStamped: Int
    /// Pages KVM reported dirty.
    public let pagesDirty: Int
    /// Pages expected dirty (stamped, or every page on an INITIALLY_SET first harvest).
    public let pagesExpected: Int
    public let missed: Int
    public let spurious: Int
    /// Each vCPU's pass time from its TSC stamps.
    public let vcpuPassSeconds: [Double]
    public let dirtyStats: StatsDelta?
    public let getStats: StatsDelta?
    public let clearStats: StatsDelta?

    public var correct: Bool { missed == 0 && spurious == 0 && pagesDirty == pagesExpected }
}

public struct DirtyLogResult: Sendable, Codable {
    public let vcpus: Int
    public let bytesPerVCPU: UInt64
    public let backing: Backing
    public let slots: Int
    public let writePercent: Int
    public let random: Bool
    public let sharedRegion: Bool
    public let cpl: Int
    public let harvest: String
    public let initiallySet: Bool
    public let clearChunkPages: Int?
    public let ringEntries: Int?
    public let tscKHz: Int?
    public let tscSource: String
    public let populate: DirtyLogPhase
    public let enable: DirtyLogPhase
    public let iterations: [DirtyLogIteration]
    public let disable: DirtyLogPhase?
    public let keepRunningPass: DirtyLogPhase?
    /// In words: what the stats say about huge-page splitting.
    public let splitting: [String]
    public let status: String
    public let problems: [String]

    public var totalGetSeconds: Double { iterations.reduce(0) { $0 + $1.getSeconds } }
    public var totalClearSeconds: Double { iterations.reduce(0) { $0 + ($1.clearSeconds ?? 0) } }
    public var totalDirtySeconds: Double { iterations.reduce(0) { $0 + $1.dirtyMemorySeconds } }
}

public enum DirtyLogScenario {
    /// Checks a request before any memory is mapped.
    public static func validate(_ config: DirtyLogConfig, device: KVMDevice) throws {
        guard config.vcpus >= 1 else { throw ConfigError("-v must be at least 1") }
        guard config.bytesPerVCPU >= 4096, config.bytesPerVCPU % 4096 == 0 else {
            throw ConfigError("-b must be a positive multiple of 4 KiB, not \(config.bytesPerVCPU)")
        }
        guard config.iterations >= 1 else { throw ConfigError("-i must be at least 1") }
        guard (0...100).contains(config.writePercent) else { throw ConfigError("-w must be 0...100") }
        guard config.slots >= 1 else { throw ConfigError("-x must be at least 1") }
        let unit = config.backing.pageSize * UInt64(config.slots)
        guard config.totalBytes % unit == 0 else {
            throw ConfigError("\(Sizes.format(config.totalBytes)) of guest memory does not split evenly into \(config.slots) slots of whole \(Sizes.format(config.backing.pageSize)) \(config.backing.rawValue) pages; change -b or -x")
        }
        try Resources.requireRAM(config.totalBytes, for: "\(config.vcpus) vCPUs × \(Sizes.format(config.bytesPerVCPU))", fix: "lower -v or -b")
        if config.initiallySet == true && !config.manualProtect { throw ConfigError("--initially-set on needs manual protect (drop -g)") }
        if let chunk = config.clearChunk {
            guard chunk >= 1 else { throw ConfigError("--clear-chunk must be at least 1 page") }
            guard config.manualProtect, config.ringEntries == nil else { throw ConfigError("--clear-chunk needs manual protect and the bitmap (drop -g / --ring)") }
        }
        if let entries = config.ringEntries {
            let maxBytes = Int(device.check(.dirtyLogRing))
            guard maxBytes > 0 else { throw ConfigError("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING); drop --ring") }
            let maxEntries = maxBytes / 16
            guard entries >= 64, entries <= maxEntries, entries & (entries - 1) == 0 else {
                throw ConfigError("--ring takes a power of two from 64 to \(maxEntries) entries, not \(entries)")
            }
        }
        _ = try PinPlan(config.pin, vcpus: config.vcpus)
    }

    public static func run(_ config: DirtyLogConfig) throws -> DirtyLogResult {
        let device = try KVMDevice()
        try validate(config, device: device)
        let pins = try PinPlan(config.pin, vcpus: config.vcpus)
        var manual: ManualProtectFlags? = nil
        if config.manualProtect && config.ringEntries == nil {
            manual = config.usesInitiallySet ? [.enable, .initiallySet] : .enable
        }
        let machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.totalBytes, backing: config.backing,
                                                slots: config.slots, cpl: config.cpl, manualProtect: manual,
                                                dirtyRingEntries: config.ringEntries), device: device)
        let harvester = try Harvester(machine: machine, config: config)
        let driver = try MemstressDriver(machine: machine, params: MemstressParams(writePercent: config.writePercent, random: config.random,
                                                                                   seed: config.seed, sharedRegion: config.sharedRegion))
        if config.ringEntries != nil { driver.runner.onDirtyRingFull = { vcpu in harvester.drainRingFull(vcpu: vcpu) } }
        let probe = try? StatsProbe(machine: machine)
        let tsc = machine.vcpus[0].tscKHz.map { ($0, "KVM_GET_TSC_KHZ") } ?? (nil, "unknown")
        if let main = pins.main { JoinableThread.pinCurrent(to: main) }
        var problems: [String] = []

        // Times `body` and the KVM stats it moved.
        func phase<T>(_ name: String, _ body: () throws -> T) rethrows -> (T, DirtyLogPhase) {
            let before = try? probe?.sample()
            let clock = Stopwatch()
            let value = try body()
            let seconds = clock.seconds
            let after = try? probe?.sample()
            return (value, DirtyLogPhase(name: name, seconds: seconds, stats: StatsDelta.between(before, after)))
        }
        func passSeconds(_ reports: [PassReport]) -> [Double] {
            guard let khz = tsc.0 else { return [] }
            return reports.map { Double($0.tscEnd &- $0.tscStart) / (Double(khz) * 1000) }
        }

        try driver.start(pin: pins.vcpus)
        let (populated, populate) = phase("populate") { driver.runIteration(timeout: config.timeout) }
        guard populated != nil else {
            let outcomes = driver.runner.stopRequested == nil ? driver.finish() : driver.runner.wait()
            throw RunFailure(outcomes: outcomes, phase: "populate")
        }
        let (_, enable) = try phase("enable dirty logging") { try machine.setTestSlotFlags(.logDirtyPages) }
        var iterations: [DirtyLogIteration] = []
        var stopped = false
        for index in 1...config.iterations {
            let (reports, dirty) = phase("dirty memory") { driver.runIteration(timeout: config.timeout) }
            guard let reports else { stopped = true; break }
            let (bitmaps, get) = try phase("get dirty log") { try harvester.get() }
            let check = harvester.verify(bitmaps, iteration: driver.iteration, expectAll: index == 1 && config.usesInitiallySet)
            var clear: DirtyLogPhase? = nil
            if harvester.needsClear { clear = try phase("clear dirty log") { try harvester.clear(bitmaps) }.1 }
            let written = reports.reduce(0) { $0 + $1.writes }
            let record = DirtyLogIteration(
                iteration: index, dirtyMemorySeconds: dirty.seconds, getSeconds: get.seconds, clearSeconds: clear?.seconds,
                pagesWritten: written, pagesStamped: check.stamped, pagesDirty: check.dirty, pagesExpected: check.expected,
                missed: check.missed, spurious: check.spurious, vcpuPassSeconds: passSeconds(reports),
                dirtyStats: dirty.stats, getStats: get.stats, clearStats: clear?.stats)
            if !record.correct {
                problems.append("iteration \(index): KVM reported \(check.dirty) dirty pages, expected \(check.expected) (\(check.missed) written pages missing, \(check.spurious) unwritten pages reported)")
            }
            if !config.sharedRegion && UInt64(check.stamped) != written {
                problems.append("iteration \(index): guests counted \(written) writes but \(check.stamped) pages carry this pass's stamp")
            }
            iterations.append(record)
            if Interrupts.shared.requested { stopped = true; break }
        }
        var disable: DirtyLogPhase? = nil
        var keepRunningPass: DirtyLogPhase? = nil
        if !stopped {
            if config.keepRunning {
                let clock = Stopwatch()
                driver.beginIteration()
                disable = try phase("disable dirty logging") { try machine.setTestSlotFlags([]) }.1
                if driver.awaitIteration(timeout: config.timeout) == nil { stopped = true }
                keepRunningPass = DirtyLogPhase(name: "dirty memory while disabling", seconds: clock.seconds, stats: nil)
            } else {
                disable = try phase("disable dirty logging") { try machine.setTestSlotFlags([]) }.1
            }
        }
        let outcomes = driver.runner.stopRequested == nil ? driver.finish() : driver.runner.wait()
        let status = LaunchScenario.status(of: outcomes)
        if status != .finished && status != .interrupted {
            problems.append(outcomes.lazy.compactMap { LaunchScenario.problem($0) }.first ?? "a vCPU did not finish")
        }
        return DirtyLogResult(
            vcpus: config.vcpus, bytesPerVCPU: config.bytesPerVCPU, backing: config.backing, slots: config.slots,
            writePercent: config.writePercent, random: config.random, sharedRegion: config.sharedRegion, cpl: config.cpl.rawValue,
            harvest: config.harvest, initiallySet: config.usesInitiallySet,
            clearChunkPages: config.clearChunk.map { ($0 + 63) / 64 * 64 }, ringEntries: config.ringEntries,
            tscKHz: tsc.0, tscSource: tsc.1, populate: populate, enable: enable, iterations: iterations,
            disable: disable, keepRunningPass: keepRunningPass,
            splitting: HugePageSplitting.explain(populate: populate.stats, phases: splittingPhases(enable: enable, iterations: iterations),
                                                 backing: config.backing),
            status: RunProblem.status(interrupted: status == .interrupted || stopped && problems.isEmpty, problems: problems),
            problems: problems)
    }
}

/// The phases in which KVM may split huge pages, and how it would there.
func splittingPhases(enable: DirtyLogPhase, iterations: [DirtyLogIteration]) -> [(name: String, kind: String, stats: StatsDelta?)] {
    var phases: [(name: String, kind: String, stats: StatsDelta?)] = [
        ("Enabling dirty logging", "eager splitting when logging is enabled", enable.stats)]
    for iteration in iterations {
        phases.append(("Iteration \(iteration.iteration) dirty memory", "split on the guest's write faults", iteration.dirtyStats))
        phases.append(("Iteration \(iteration.iteration) clear dirty log", "eager splitting on KVM_CLEAR_DIRTY_LOG (INITIALLY_SET)", iteration.clearStats))
    }
    return phases
}

/// The run ended before there was anything to measure.
public struct RunFailure: Error, CustomStringConvertible, Sendable {
    public let outcomes: [VCPUOutcome]
    public let phase: String

    public var description: String {
        let first = outcomes.lazy.compactMap { LaunchScenario.problem($0) }.first ?? "the vCPUs stopped"
        return "\(phase) did not complete: \(first)"
    }
}
