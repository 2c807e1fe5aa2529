import KVM
import VMM

/// `kvmlab dirty-log`: what dirty_log_perf_test measures, checked page by
/// page and explained with KVM's own stats.
public struct DirtyLogConfig: Sendable {
    /// The vCPU counts this experiment takes (its command bounds -v with it).
    public static let vcpuLimit = 1...4096

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
    /// How threads wait between passes: vCPUs for the next, the host for
    /// the vCPUs' reports (dirty_log_perf_test spins at both).
    public var waiting: IterationGate.Waiting = .sleep
    public var timeout: Double = 600

    public init() {}

    public var totalBytes: UInt64 { bytesPerVCPU &* UInt64(vcpus) }
    public var usesInitiallySet: Bool { ringEntries == nil && manualProtect && (initiallySet ?? true) }
    public var harvest: String { ringEntries != nil ? "dirty ring" : manualProtect ? "bitmap, manual protect" : "bitmap" }
    public var clearChunkPages: Int? { clearChunk.map { ($0 + DirtyBitmap.clearAlignment - 1) / DirtyBitmap.clearAlignment * DirtyBitmap.clearAlignment } }
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
    /// The first pages that disagreed, for the report.
    public let examples: [String]
    /// Each vCPU's pass time from its TSC stamps.
    public let vcpuPassSeconds: [Double]
    /// The iteration's phases as measured: dirty memory, get, and clear (nil without manual protect).
    public let dirty: PhaseRecord
    public let get: PhaseRecord
    public let clear: PhaseRecord?

    public var dirtyStats: StatsDelta? { dirty.stats }
    public var getStats: StatsDelta? { self.get.stats }
    public var clearStats: StatsDelta? { clear?.stats }
    public var phases: [PhaseRecord] { [dirty, self.get] + (clear.map { [$0] } ?? []) }

    public var correct: Bool { missed == 0 && spurious == 0 }
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
    public let keepRunning: Bool
    public let waiting: IterationGate.Waiting
    public let tscKHz: Int?
    public let tscSource: String
    public let populate: PhaseRecord?
    public let enable: PhaseRecord?
    public let iterations: [DirtyLogIteration]
    public let disable: PhaseRecord?
    public let keepRunningPass: PhaseRecord?
    public let interrupted: Bool
    public let problems: [String]

    public var totalGetSeconds: Double { iterations.reduce(0) { $0 + $1.getSeconds } }
    public var totalClearSeconds: Double { iterations.reduce(0) { $0 + ($1.clearSeconds ?? 0) } }
    public var totalDirtySeconds: Double { iterations.reduce(0) { $0 + $1.dirtyMemorySeconds } }
}

public enum DirtyLogScenario: Scenario {
    public static let kind = ExperimentKind.dirtyLog

    public static func validate(_ config: DirtyLogConfig) throws { try validate(config, device: KVMDevice()) }

    /// Checks a request before any memory is mapped.
    static func validate(_ config: DirtyLogConfig, device: KVMDevice) throws {
        let limit = DirtyLogConfig.vcpuLimit.lowerBound...min(DirtyLogConfig.vcpuLimit.upperBound, device.maxVCPUs)
        guard limit.contains(config.vcpus) else { throw ConfigError.vcpus(config.vcpus, limit, " (KVM_CAP_MAX_VCPUS)") }
        guard config.bytesPerVCPU >= 4096, config.bytesPerVCPU % 4096 == 0 else {
            throw ConfigError("\(field: "bytesPerVCPU") must be a positive multiple of 4 KiB, not \(config.bytesPerVCPU)")
        }
        guard config.iterations >= 1 else { throw ConfigError("\(field: "iterations") must be at least 1") }
        guard (0...100).contains(config.writePercent) else { throw ConfigError("\(field: "writePercent") must be 0...100") }
        guard config.slots >= 1 else { throw ConfigError("\(field: "slots") must be at least 1") }
        let (total, overflow) = config.bytesPerVCPU.multipliedReportingOverflow(by: UInt64(config.vcpus))
        try Resources.requireRAM(overflow ? .max : total, for: "\(config.vcpus) vCPUs × \(Sizes.format(config.bytesPerVCPU))", fix: "lower \(field: "vcpus") or \(field: "bytesPerVCPU")")
        let unit = config.backing.pageSize * UInt64(config.slots)
        guard total % unit == 0 else {
            throw ConfigError("\(Sizes.format(total)) of guest memory does not split evenly into \(config.slots) slots of whole \(Sizes.format(config.backing.pageSize)) \(config.backing.rawValue) pages; change \(field: "bytesPerVCPU") or \(field: "slots")")
        }
        if config.initiallySet == true && !config.manualProtect { throw ConfigError("\(field: "initiallySet") needs \(field: "manualProtect")") }
        if let chunk = config.clearChunk {
            guard chunk >= 1, chunk <= 1 << 40 else { throw ConfigError("\(field: "clearChunk") must be between 1 and \(1 << 40) pages") }
            guard config.manualProtect, config.ringEntries == nil else { throw ConfigError("\(field: "clearChunk") needs \(field: "manualProtect") and the bitmap, not \(field: "ringEntries")") }
        }
        if let entries = config.ringEntries { try validateRing(entries, config: config, device: device) }
        _ = try PinPlan(config.pin, vcpus: config.vcpus)
    }

    static func validateRing(_ entries: Int, config: DirtyLogConfig, device: KVMDevice) throws {
        guard !(!config.manualProtect) else { throw ConfigError("\(field: "ringEntries") harvests the dirty ring, which plain KVM_GET_DIRTY_LOG cannot go with: it needs \(field: "manualProtect")") }
        let limits = device.dirtyRingLimits
        guard limits.maxEntries > 0 else { throw HostLacks("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING); drop --ring") }
        guard entries >= limits.minEntries, entries <= limits.maxEntries, entries & (entries - 1) == 0 else {
            throw ConfigError("\(field: "ringEntries") takes a power of two from \(limits.minEntries) (one page of entries) to \(limits.maxEntries) entries, not \(entries)")
        }
    }

    public static func run(_ config: DirtyLogConfig) throws -> DirtyLogResult {
        let device = try KVMDevice()
        try validate(config, device: device)
        return try DirtyLogRun(config: config, device: device).execute()
    }
}

/// One dirty-log run: its machine, its phases in order, and what they saw.
final class DirtyLogRun {
    let config: DirtyLogConfig
    let pins: PinPlan
    let machine: Machine
    let harvester: Harvester
    let driver: MemstressDriver
    let timer: PhaseTimer
    let tscKHz: Int?
    private var populate, enable, disable, keepRunningPass: PhaseRecord?
    private var iterations: [DirtyLogIteration] = []
    private var problems: [String] = []

    init(config: DirtyLogConfig, device: KVMDevice) throws {
        self.config = config
        pins = try PinPlan(config.pin, vcpus: config.vcpus)
        var manual: ManualProtectFlags? = nil
        if config.manualProtect && config.ringEntries == nil { manual = config.usesInitiallySet ? [.enable, .initiallySet] : .enable }
        machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.totalBytes, backing: config.backing,
                                            slots: config.slots, cpl: config.cpl, manualProtect: manual,
                                            dirtyRingEntries: config.ringEntries), device: device)
        harvester = try Harvester(machine: machine, manualProtect: config.manualProtect, clearChunk: config.clearChunk, ringEntries: config.ringEntries)
        driver = try MemstressDriver(machine: machine, params: MemstressParams(writePercent: config.writePercent, random: config.random,
                                                                               seed: config.seed, sharedRegion: config.sharedRegion,
                                                                               waiting: config.waiting))
        if config.ringEntries != nil {
            let harvester = self.harvester
            driver.runner.onDirtyRingFull = { vcpu in _ = try harvester.drainRing(vcpu: vcpu) }
        }
        timer = PhaseTimer(machine: machine)
        tscKHz = machine.vcpus[0].tscKHz
    }

    func execute() throws -> DirtyLogResult {
        if let main = pins.main { JoinableThread.pinCurrent(to: main) }
        try driver.start(pin: pins.vcpus)
        var complete = false
        do {
            complete = try runPhases()
        } catch {
            problems.append("\(error)")
        }
        let outcomes = driver.runner.stopRequested == nil ? driver.finish() : driver.runner.wait()
        if let problem = outcomes.runProblem { problems.append(problem) }
        let interrupted = !complete && problems.isEmpty
        return result(interrupted: interrupted || outcomes.worst == .interrupted)
    }

    /// populate, enable, the iterations, disable; false if the run stopped.
    private func runPhases() throws -> Bool {
        let populated = timer.measure("populate") { driver.runIteration(timeout: config.timeout) }
        populate = populated.phase
        guard populated.value != nil else { return false }
        enable = try timer.measureSpan("enable dirty logging") { try machine.setTestSlotFlags(.logDirtyPages) }
        for index in 1...config.iterations {
            guard try iterate(index), !Interrupts.shared.requested else { return false }
        }
        return try disableLogging()
    }

    private func iterate(_ index: Int) throws -> Bool {
        let (reports, dirty) = timer.measure("iteration \(index) dirty memory") { driver.runIteration(timeout: config.timeout) }
        guard let reports else { return false }
        let get = try timer.measureSpan("iteration \(index) get dirty log") { try harvester.get() }
        let check = harvester.verify(iteration: driver.iteration, expectAll: index == 1 && config.usesInitiallySet)
        let clear = harvester.needsClear ? try timer.measureSpan("iteration \(index) clear dirty log") { try harvester.clear() } : nil
        iterations.append(DirtyLogIteration(
            iteration: index, dirtyMemorySeconds: dirty.seconds ?? 0, getSeconds: get.seconds ?? 0, clearSeconds: clear?.seconds,
            pagesWritten: reports.reduce(0) { $0 + $1.writes }, pagesStamped: check.stamped, pagesDirty: check.dirty,
            pagesExpected: check.expected, missed: check.missed, spurious: check.spurious, examples: check.examples,
            vcpuPassSeconds: passSeconds(reports), dirty: dirty, get: get, clear: clear))
        return true
    }

    private func disableLogging() throws -> Bool {
        guard config.keepRunning else {
            disable = try timer.measureSpan("disable dirty logging") { try machine.setTestSlotFlags([]) }
            return true
        }
        let clock = Stopwatch()
        driver.beginIteration()
        disable = try timer.measureSpan("disable dirty logging") { try machine.setTestSlotFlags([]) }
        let finished = driver.awaitIteration(timeout: config.timeout) != nil
        keepRunningPass = PhaseRecord(name: "dirty memory while disabling", seconds: clock.seconds, stats: nil)
        return finished
    }

    private func passSeconds(_ reports: [PassReport]) -> [Double] {
        guard let khz = tscKHz else { return [] }
        return reports.map { Double($0.tscEnd &- $0.tscStart) / (Double(khz) * 1000) }
    }

    private func result(interrupted: Bool) -> DirtyLogResult {
        DirtyLogResult(
            vcpus: config.vcpus, bytesPerVCPU: config.bytesPerVCPU, backing: config.backing, slots: config.slots,
            writePercent: config.writePercent, random: config.random, sharedRegion: config.sharedRegion, cpl: config.cpl.rawValue,
            harvest: config.harvest, initiallySet: config.usesInitiallySet, clearChunkPages: config.clearChunkPages,
            ringEntries: config.ringEntries, keepRunning: config.keepRunning, waiting: config.waiting,
            tscKHz: tscKHz, tscSource: tscKHz != nil ? "KVM_GET_TSC_KHZ" : "unknown",
            populate: populate, enable: enable, iterations: iterations, disable: disable, keepRunningPass: keepRunningPass,
            interrupted: interrupted, problems: problems)
    }
}

extension DirtyLogResult: ExperimentResult {
    public var phases: [PhaseRecord] {
        [populate, enable].compactMap { $0 } + iterations.flatMap(\.phases) + [disable, keepRunningPass].compactMap { $0 }
    }

    public var experiment: Experiment {
        func perIteration(_ name: String, _ help: String, _ values: [Double]) -> Metric {
            Metric(name, help + " (per iteration; value: median)", unit: .seconds, better: .lower, distribution: Distribution(samples: values))
        }
        var metrics = [
            Metric("populate_seconds", "Populate memory time: every page written once", unit: .seconds, better: .lower, value: populate?.seconds),
            Metric("enable_dirty_logging_seconds", "Enabling dirty logging time", unit: .seconds, better: .lower, value: enable?.seconds),
            perIteration("dirty_memory_seconds", "Dirty memory time", iterations.map(\.dirtyMemorySeconds)),
            perIteration("get_dirty_log_seconds", "Get dirty log time", iterations.map(\.getSeconds)),
            Metric("disable_dirty_logging_seconds", "Disabling dirty logging time", unit: .seconds, better: .lower, value: disable?.seconds),
            Metric("vcpu_pass_seconds", "Each vCPU's pass time over all iterations, from its TSC", unit: .seconds, better: .lower,
                   distribution: Distribution(samples: iterations.flatMap(\.vcpuPassSeconds))),
            Metric("pages_dirtied", "Pages the guests wrote over all iterations", unit: .pages, better: .neither,
                   value: Double(iterations.reduce(0) { $0 + $1.pagesWritten })),
        ]
        if iterations.contains(where: { $0.clearSeconds != nil }) {
            metrics.append(perIteration("clear_dirty_log_seconds", "Clear dirty log time", iterations.compactMap(\.clearSeconds)))
        }
        return Experiment(.dirtyLog, config: configDescription, metrics: metrics, phases: phases,
                          checks: checks, problems: problems, interrupted: interrupted)
    }

    var checks: [CheckRecord] {
        iterations.flatMap { iteration in
            var checks = [CheckRecord("iteration \(iteration.iteration) dirty pages match written pages", passed: iteration.correct,
                                      expected: "\(iteration.pagesExpected) dirty, 0 missed, 0 spurious",
                                      observed: "\(iteration.pagesDirty) dirty, \(iteration.missed) missed, \(iteration.spurious) spurious"
                                          + (iteration.examples.isEmpty ? "" : " (" + iteration.examples.joined(separator: "; ") + ")"))]
            // With a shared region several vCPUs may write one page, so only
            // private regions make the guests' count a page count.
            if !sharedRegion {
                checks.append(.equal("iteration \(iteration.iteration) guest write count matches stamped pages",
                                     expected: Int(iteration.pagesWritten), observed: iteration.pagesStamped))
            }
            return checks
        }
    }

    var configDescription: [String: String] {
        ["vcpus": "\(vcpus)", "bytes_per_vcpu": "\(bytesPerVCPU)", "backing": backing.rawValue, "slots": "\(slots)",
         "write_percent": "\(writePercent)", "random": "\(random)", "shared_region": "\(sharedRegion)", "cpl": "\(cpl)",
         "harvest": harvest, "initially_set": "\(initiallySet)", "clear_chunk_pages": clearChunkPages.map(String.init) ?? "slot",
         "ring_entries": ringEntries.map(String.init) ?? "none", "iterations": "\(iterations.count)", "keep_running": "\(keepRunning)",
         "wait": waiting.rawValue]
    }
}
