import Guests
import KVM
import VMM

/// Harvesting while the vCPUs run, the way live migration does it: every
/// vCPU writes random pages without pause while the host gets and clears
/// the dirty bitmap (or harvests and resets the dirty rings) in a loop.
/// Every page a vCPU wrote must be reported dirty by the harvest after the
/// write or the one after that; a page that is not is lost.
public struct ConcurrentHarvestConfig: Sendable {
    public var vcpus = 2
    public var bytesPerVCPU: UInt64 = 8 << 20
    public var seconds: Double = 1
    public var cpl: PrivilegeLevel = .user
    /// Dirty ring entries per vCPU; nil harvests the bitmap with manual protect.
    public var ringEntries: Int?

    public init() {}
}

public struct ConcurrentHarvestResult: Sendable {
    public let config: ConcurrentHarvestConfig
    public let harvests: Int
    /// Guest writes over the run (sum of the vCPUs' loop counters).
    public let writes: UInt64
    /// (page, generation) pairs whose report was checked.
    public let writesChecked: Int
    public let lost: Int
    public let examples: [String]
    public let interrupted: Bool
    public let problems: [String]
}

public enum ConcurrentHarvestScenario {
    /// Generations are stamped in 16 bits.
    static let maxHarvests = 60_000

    /// A write of generation g began after harvest g − 1 ended, so harvest g
    /// or a later one must report it: last reported before g, it was lost.
    static func lost(lastReported: Int, generation: Int) -> Bool { lastReported < generation }

    public static func run(_ config: ConcurrentHarvestConfig) throws -> ConcurrentHarvestResult {
        let device = try KVMDevice()
        if let entries = config.ringEntries {
            let limits = device.dirtyRingLimits
            guard limits.maxEntries > 0 else { throw HostLacks("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)") }
            guard entries >= limits.minEntries, entries <= limits.maxEntries, entries & (entries - 1) == 0 else {
                throw ConfigError("\(field: "ringEntries") must be a power of two from \(limits.minEntries) to \(limits.maxEntries)")
            }
        }
        let machine = try Machine(MachineConfig(vcpus: config.vcpus, testMemory: config.bytesPerVCPU * UInt64(config.vcpus), cpl: config.cpl,
                                                manualProtect: config.ringEntries == nil ? .enable : nil, dirtyRingEntries: config.ringEntries),
                                  device: device)
        try machine.load(GuestImage.builtin("dirtier")!)
        for index in machine.vcpus.indices {
            let region = machine.region(of: index)
            let mailbox = machine.mailbox(index)
            mailbox[MB_REGION] = region.gpa
            mailbox[MB_PAGES] = region.size / GuestLayout.pageSize
            mailbox[MB_STAMP] = Stamp(tag: UInt16(index + 1), sequence: 0).base
            mailbox[MB_SEED] = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)
        }
        try machine.setTestSlotFlags(.logDirtyPages)
        return try ConcurrentHarvestRun(machine: machine, config: config).execute()
    }
}

final class ConcurrentHarvestRun {
    let machine: Machine
    let config: ConcurrentHarvestConfig
    let harvester: Harvester
    let runner: VCPURunner
    let memory: GuestSpan
    /// The harvest that last reported each page dirty, and the generation
    /// of each page's last write already checked.
    private var lastReported: [Int]
    private var checked: [UInt16]
    private var writesChecked = 0, lost = 0
    private var examples: [String] = []

    init(machine: Machine, config: ConcurrentHarvestConfig) throws {
        self.machine = machine
        self.config = config
        harvester = try Harvester(machine: machine, manualProtect: config.ringEntries == nil, clearChunk: nil, ringEntries: config.ringEntries)
        runner = VCPURunner(machine: machine) { _, _ in .resume }
        let harvester = self.harvester
        if config.ringEntries != nil { runner.onDirtyRingFull = { vcpu in _ = try harvester.drainRing(vcpu: vcpu) } }
        let test = machine.testSlots[0]
        memory = machine.memory(at: test.guestPhysicalAddress, bytes: config.bytesPerVCPU * UInt64(config.vcpus))!
        let pages = Int(config.bytesPerVCPU / GuestLayout.pageSize) * config.vcpus
        lastReported = [Int](repeating: 0, count: pages)
        checked = [UInt16](repeating: 0, count: pages)
    }

    var running: Bool { runner.endedCount == 0 && runner.stopRequested == nil }

    func execute() throws -> ConcurrentHarvestResult {
        try runner.start()
        var harvests = 0
        var problems: [String] = []
        let clock = Stopwatch()
        do {
            while running && clock.seconds < config.seconds && harvests < ConcurrentHarvestScenario.maxHarvests {
                harvests += 1
                guard advance(to: harvests) else { break }
                try harvester.get()
                record(harvest: harvests)
                try harvester.clear()
                verify(after: harvests)
            }
        } catch {
            problems.append("\(error)")
        }
        let writes = machine.vcpus.indices.reduce(UInt64(0)) { $0 &+ machine.mailbox($1)[MB_LOOPS] }
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_COMMAND] = 1 }
        let outcomes = runner.wait(timeout: 30)
        if let problem = outcomes.runProblem { problems.append(problem) }
        return ConcurrentHarvestResult(config: config, harvests: harvests, writes: writes, writesChecked: writesChecked, lost: lost,
                                       examples: examples, interrupted: outcomes.worst == .interrupted, problems: problems)
    }

    /// Publishes generation `n` and waits until every vCPU acknowledged it:
    /// from then on, every write stamped below `n` has completed.
    private func advance(to generation: Int) -> Bool {
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_ITERATION] = UInt64(generation) }
        let deadline = Stopwatch.now() + 10_000_000_000
        for index in machine.vcpus.indices {
            while machine.mailbox(index)[MB_DONE_ITERATION] < UInt64(generation) {
                guard running else { return false }
                if Stopwatch.now() > deadline {
                    runner.stop(.timeout)
                    return false
                }
                Spin.yield()
            }
        }
        return true
    }

    private func record(harvest: Int) {
        let bitmap = harvester.bitmaps[0]
        for page in 0..<lastReported.count where bitmap[page] { lastReported[page] = harvest }
    }

    /// Every page whose last write is stamped g < n must have been reported
    /// by harvest g or later (g's writes began after harvest g - 1).
    private func verify(after harvest: Int) {
        for page in lastReported.indices {
            guard let stamp = Stamp(word: memory.word(at: page * Int(GuestLayout.pageSize))) else { continue }
            let generation = Int(stamp.sequence)
            guard generation >= 1, generation < harvest, stamp.sequence != checked[page] else { continue }
            checked[page] = stamp.sequence
            writesChecked += 1
            if ConcurrentHarvestScenario.lost(lastReported: lastReported[page], generation: generation) {
                lost += 1
                if examples.count < 5 {
                    examples.append("page \(page) (vCPU \(Int(stamp.tag) - 1)) written in generation \(generation), last reported by harvest \(lastReported[page]), checked after harvest \(harvest)")
                }
            }
        }
    }
}
