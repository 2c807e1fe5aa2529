import Dispatch
import Guests

/// Parameters of the memstress guest.
public struct MemstressParams: Sendable {
    public var writePercent: Int = 100
    public var random: Bool = false
    public var seed: UInt64 = 1
    /// Every vCPU works on the whole test memory instead of its own share.
    public var sharedRegion: Bool = false
    /// How vCPU threads wait between passes, and the host for their reports.
    public var waiting: IterationGate.Waiting = .sleep

    public init(writePercent: Int = 100, random: Bool = false, seed: UInt64 = 1, sharedRegion: Bool = false,
                waiting: IterationGate.Waiting = .sleep) {
        self.writePercent = writePercent
        self.random = random
        self.seed = seed
        self.sharedRegion = sharedRegion
        self.waiting = waiting
    }
}

/// One vCPU's report for one pass.
public struct PassReport: Sendable, Equatable {
    public let vcpu: Int
    public let writes: UInt64
    public let reads: UInt64
    public let tscStart: UInt64
    public let tscEnd: UInt64
}

/// Drives the memstress guest iteration by iteration: the host opens an
/// iteration, every vCPU makes one pass over its region and reports, and
/// waits outside the guest until the host opens the next.
public final class MemstressDriver: @unchecked Sendable {
    // @unchecked: `iteration` is written by the main thread only; vCPU threads share just the gate and the semaphore.
    public let machine: Machine
    public let params: MemstressParams
    public let runner: VCPURunner
    private let gate: IterationGate
    private let reported = DispatchSemaphore(value: 0)
    public private(set) var iteration = 0

    public init(machine: Machine, params: MemstressParams, console: SerialConsole = SerialConsole()) throws {
        guard machine.config.testMemory > 0 else { throw ConfigError("memstress needs test memory") }
        guard (0...100).contains(params.writePercent) else { throw ConfigError("\(field: "writePercent") must be 0...100, not \(params.writePercent)") }
        let pages = machine.region(of: 0, shared: params.sharedRegion).size / GuestLayout.pageSize
        guard pages > 0 else { throw ConfigError("each vCPU needs at least one 4 KiB page of test memory") }
        self.machine = machine
        self.params = params
        gate = IterationGate(waiting: params.waiting)
        try machine.load(GuestImage.builtin("memstress")!)
        for index in machine.vcpus.indices {
            let region = machine.region(of: index, shared: params.sharedRegion)
            let mailbox = machine.mailbox(index)
            mailbox[MB_REGION] = region.gpa
            mailbox[MB_PAGES] = region.size / GuestLayout.pageSize
            mailbox[MB_PAGE_SIZE] = GuestLayout.pageSize
            mailbox[MB_WRITE_PCT] = UInt64(params.writePercent)
            mailbox[MB_RANDOM] = params.random ? 1 : 0
        }
        let gate = self.gate, reported = self.reported
        runner = VCPURunner(machine: machine, console: console, prologue: { _ in gate.wait(after: 0) != nil }) { index, event in
            guard event == .iteration else { return .finish }
            let done = Int(machine.mailbox(index)[MB_DONE_ITERATION])
            reported.signal()
            return gate.wait(after: done) == nil ? .finish : .resume
        }
        runner.onStop { gate.cancel() }
    }

    /// What memstress writes to vCPU `vcpu`'s pages in `iteration`.
    public static func stamp(vcpu: Int, iteration: Int) -> Stamp { Stamp(tag: UInt16(vcpu + 1), sequence: iteration) }

    public func start(pin: [Int] = []) throws { try runner.start(pin: pin) }

    /// Runs one pass on every vCPU and returns their reports, or nil if the
    /// run ended first (a fault, the watchdog, Ctrl-C).
    public func runIteration(timeout: Double? = nil) -> [PassReport]? {
        beginIteration()
        return awaitIteration(timeout: timeout)
    }

    /// Opens the next pass; the vCPUs start on it at once.
    public func beginIteration() {
        iteration += 1
        for index in machine.vcpus.indices {
            let mailbox = machine.mailbox(index)
            mailbox[MB_ITERATION] = UInt64(iteration)
            mailbox[MB_STAMP] = MemstressDriver.stamp(vcpu: index, iteration: iteration).base
            mailbox[MB_SEED] = params.seed &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(index) << 20 ^ UInt64(iteration)
        }
        gate.open(iteration)
    }

    /// Waits until every vCPU has reported the open pass (polling without
    /// sleeping when the parameters say spin).
    public func awaitIteration(timeout: Double? = nil) -> [PassReport]? {
        let deadline = timeout.map { DispatchTime.now() + $0 }
        var waiting = machine.vcpus.count
        while waiting > 0 {
            if reported.wait(timeout: params.waiting == .spin ? .now() : .now() + 0.05) == .success { waiting -= 1; continue }
            if runner.endedCount > 0 || runner.stopRequested != nil { return nil }
            if let deadline, DispatchTime.now() > deadline { runner.stop(.timeout); return nil }
        }
        return machine.vcpus.indices.map { index in
            let mailbox = machine.mailbox(index)
            return PassReport(vcpu: index, writes: mailbox[MB_WRITES], reads: mailbox[MB_READS],
                              tscStart: mailbox[MB_TSC_START], tscEnd: mailbox[MB_TSC_END])
        }
    }

    /// Tells every guest to stop, lets it see that, and joins the threads.
    public func finish(timeout: Double = 30) -> [VCPUOutcome] {
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_COMMAND] = 1 }
        gate.open(iteration + 1)
        return runner.wait(timeout: timeout)
    }

    /// Pages of vCPU `index`'s region holding the stamp of `iteration`
    /// (each checked against its own page index, so misplaced writes fail).
    public func pagesStamped(vcpu index: Int, iteration: Int) -> Int {
        let region = machine.region(of: index, shared: params.sharedRegion)
        guard let memory = machine.memory(at: region.gpa, bytes: region.size) else { return 0 }
        let stamp = MemstressDriver.stamp(vcpu: index, iteration: iteration)
        var count = 0
        for page in 0..<Int(region.size / GuestLayout.pageSize) {
            if memory.word(at: page * Int(GuestLayout.pageSize)) == stamp.word(page: page) { count += 1 }
        }
        return count
    }
}
