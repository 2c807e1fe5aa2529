import Guests
import KVM
import Synchronization
import VMM

/// Counts guest writes that reached no memslot (the moved slot's old place).
final class MMIOCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// One run of one memslot experiment: a fresh one-vCPU VM with the area
/// spread over the slots, the host loop for the configured seconds, then
/// the checks. The guest is the pass worker, synchronised through its
/// mailbox as memslot_perf_test synchronises through shared memory.
final class MemslotRun {
    let test: MemslotTest
    let index: Int
    let config: MemslotConfig
    let area: UInt64
    let machine: Machine
    let runner: VCPURunner
    let driver: PassDriver
    let mmio = MMIOCounter()
    private var operations: [Double] = []
    private var verified = 0
    private var mismatches = 0
    private var hostError: String?

    init(test: MemslotTest, run index: Int, config: MemslotConfig, slots: Int, device: KVMDevice) throws {
        self.test = test
        self.index = index
        self.config = config
        area = test.area(config)
        var machineConfig = MachineConfig(vcpus: 1, testMemory: area, slots: slots, disabledQuirks: config.noZapAll ? [.slotZapAll] : [])
        // The moved slot's destination, right above the area, must be mapped too.
        if test == .moveActive || test == .moveInactive { machineConfig.mappedSpan = 2 * area }
        machine = try Machine(machineConfig, device: device)
        driver = try PassDriver.load(on: machine)
        runner = driver.runner
        if test == .moveActive, let last = machine.testSlots.last {
            // Only the straddling window's upper half may miss while the slot is away.
            let window = last.guestPhysicalAddress..<(last.guestPhysicalAddress + MemslotScenario.movePages / 2 * GuestLayout.pageSize)
            let counter = mmio
            runner.onMMIO = { _, address, isWrite in
                guard isWrite, window.contains(address) else { return false }
                counter.count.add(1, ordering: .relaxed)
                return true
            }
        }
    }

    var pages: UInt64 { area / GuestLayout.pageSize }
    func gpa(_ page: UInt64) -> UInt64 { GuestLayout.testMemoryBase + page * GuestLayout.pageSize }

    /// A word no earlier iteration or part wrote; the guest adds the page index.
    func stamp(_ iteration: Int, part: UInt8) -> UInt64 { Stamp(tag: 0x6B6C, sequence: iteration, part: part).base }

    func execute() -> MemslotRepetition {
        let timer = PhaseTimer(machine: machine)
        var problem: String?
        var iterations: [Double] = []
        var loopSeconds = 0.0
        var healthy = false
        let before = timer.begin("\(test.rawValue) run \(index)")
        do {
            try runner.start()
            healthy = prepare()
            let clock = Stopwatch()
            while healthy && clock.seconds < config.seconds && runner.stopRequested == nil {
                let step = Stopwatch()
                healthy = iterate(iterations.count + 1)
                if healthy { iterations.append(step.seconds) }
            }
            loopSeconds = clock.seconds
            if healthy { healthy = conclude() }
        } catch {
            problem = "\(error)"
        }
        let record = timer.end("\(test.rawValue) run \(index)", since: before, seconds: loopSeconds)
        let passes = driver.passes(0)
        let ending = driver.finish(known: problem ?? hostError, complete: healthy)
        return MemslotRepetition(test: test, run: index, slots: machine.testSlots.count, areaBytes: area,
                          slotSetupSeconds: machine.slotSetupSeconds, loopSeconds: loopSeconds, iterationSeconds: iterations,
                          operation: test.operation, operationSeconds: operations, pagesVerified: verified, mismatches: mismatches,
                          mmioExits: mmio.count.load(ordering: .relaxed), guestPasses: passes,
                          stats: record.stats, tracepoints: record.tracepoints, problem: ending.problem, interrupted: ending.interrupted)
    }

    // MARK: the experiments

    private func prepare() -> Bool {
        switch test {
        case .map:
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(0), pages: pages / 2, stamp: stamp(1, part: 0)))
        case .unmap, .unmapChunked:
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(0), pages: 1, stamp: stamp(1, part: 0)))
        case .moveActive, .moveInactive:
            driver.begin(0, Pass(op: PASS_WRITE_LOOP, gpa: moveWindow, pages: MemslotScenario.movePages, stamp: stamp(0, part: 3)))
        case .rw:
            break
        }
        return true
    }

    private func iterate(_ iteration: Int) -> Bool {
        let half = pages / 2
        switch test {
        case .map:
            // The guest maps the first half while the host unmaps the second.
            guard unmap(from: half, count: half, chunk: half), driver.wait(0) != nil else { return false }
            check(from: 0, count: half, stamp: stamp(iteration, part: 0))
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(half), pages: half, stamp: stamp(iteration, part: 1)))
            guard unmap(from: 0, count: half, chunk: half), driver.wait(0) != nil else { return false }
            check(from: half, count: half, stamp: stamp(iteration, part: 1))
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(0), pages: half, stamp: stamp(iteration + 1, part: 0)))
        case .unmap, .unmapChunked:
            let chunk = test == .unmap ? 1 : MemslotScenario.unmapChunkPages
            guard driver.wait(0) != nil else { return false }
            check(from: 0, count: 1, stamp: stamp(iteration, part: 0))
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(half), pages: 1, stamp: stamp(iteration, part: 1)))
            guard unmap(from: 0, count: half, chunk: chunk), driver.wait(0) != nil else { return false }
            check(from: half, count: 1, stamp: stamp(iteration, part: 1))
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(0), pages: 1, stamp: stamp(iteration + 1, part: 0)))
            guard unmap(from: half, count: half, chunk: chunk) else { return false }
        case .moveActive, .moveInactive:
            guard let slot = machine.testSlots.last else { return false }
            return move(to: GuestLayout.testMemoryBase + area) && move(to: slot.guestPhysicalAddress)
        case .rw:
            // Both sides write at once, then each checks the other's words.
            let writing = Stopwatch()
            driver.begin(0, Pass(op: PASS_WRITE, gpa: gpa(0), pages: pages, offset: 0, stamp: stamp(iteration, part: 0)))
            fill(offset: 2048, stamp: stamp(iteration, part: 1))
            guard driver.wait(0) != nil else { return false }
            operations.append(writing.seconds)
            let checking = Stopwatch()
            driver.begin(0, Pass(op: PASS_VERIFY, gpa: gpa(0), pages: pages, offset: 2048, stamp: stamp(iteration, part: 1)))
            check(from: 0, count: pages, stamp: stamp(iteration, part: 0))
            guard let bad = driver.wait(0) else { return false }
            operations.append(checking.seconds)
            verified += Int(pages)
            mismatches += Int(bad)
        }
        return true
    }

    /// Finishes the last pass; for the moves, checks that data written
    /// through the slot reads back after it moved away and back.
    private func conclude() -> Bool {
        switch test {
        case .map, .unmap, .unmapChunked:
            return driver.wait(0) != nil
        case .rw:
            return true
        case .moveActive, .moveInactive:
            guard driver.endLoop(0), let slot = machine.testSlots.last else { return false }
            let slotPages = slot.size / GuestLayout.pageSize
            let word = stamp(0, part: 2)
            let away = GuestLayout.testMemoryBase + area
            guard driver.run(0, Pass(op: PASS_WRITE, gpa: slot.guestPhysicalAddress, pages: slotPages, stamp: word)) != nil,
                  move(to: away), let there = driver.run(0, Pass(op: PASS_VERIFY, gpa: away, pages: slotPages, stamp: word)),
                  move(to: slot.guestPhysicalAddress), let back = driver.run(0, Pass(op: PASS_VERIFY, gpa: slot.guestPhysicalAddress, pages: slotPages, stamp: word))
            else { return false }
            verified += 2 * Int(slotPages)
            mismatches += Int(there + back)
            check(from: pages - slotPages, count: slotPages, stamp: word)
            return true
        }
    }

    /// The 50 pages the guest writes during a move experiment.
    private var moveWindow: UInt64 {
        let last = machine.testSlots.last!.guestPhysicalAddress
        let below = test == .moveActive ? MemslotScenario.movePages / 2 : MemslotScenario.movePages
        return last - below * GuestLayout.pageSize
    }

    // MARK: host operations

    /// Registers the last test slot at `address` (its own address moves it back).
    private func move(to address: UInt64) -> Bool {
        let clock = Stopwatch()
        do {
            try machine.moveTestSlot(machine.testSlots.count - 1, to: address)
        } catch {
            hostError = error.description
            return false
        }
        operations.append(clock.seconds)
        return true
    }

    /// MADV_DONTNEED on `count` pages from `first`, one call per `chunk`
    /// pages and never across a slot boundary (as if each slot had its own
    /// mapping, like the selftest's).
    private func unmap(from first: UInt64, count: UInt64, chunk: UInt64) -> Bool {
        let slotEnds = machine.testSlots.map { ($0.guestPhysicalAddress - GuestLayout.testMemoryBase + $0.size) / GuestLayout.pageSize }
        var page = first
        let end = first + count
        while page < end {
            let slotEnd = slotEnds.first { $0 > page } ?? pages
            let length = min(chunk, end - page, slotEnd - page)
            let clock = Stopwatch()
            do {
                try machine.discard(at: gpa(page), bytes: length * GuestLayout.pageSize)
            } catch {
                hostError = "guest page \(page): \(error)"
                return false
            }
            operations.append(clock.seconds)
            page += length
        }
        return true
    }

    /// Compares the first word of `count` pages with stamp + page index.
    private func check(from first: UInt64, count: UInt64, stamp: UInt64) {
        let memory = machine.memory(at: gpa(first), bytes: count * GuestLayout.pageSize)!
        if InjectedFault.on(.corruptPage) { memory.store(~stamp, at: 0) }
        for page in 0..<Int(count) where memory.word(at: page * Int(GuestLayout.pageSize)) != stamp + UInt64(page) {
            mismatches += 1
        }
        verified += Int(count)
    }

    /// The host's half of rw: a word at `offset` in every page.
    private func fill(offset: Int, stamp: UInt64) {
        let memory = machine.memory(at: gpa(0), bytes: area)!
        for page in 0..<Int(pages) {
            memory.store(stamp + UInt64(page), at: page * Int(GuestLayout.pageSize) + offset)
        }
        if InjectedFault.on(.corruptHostWrite) { memory.store(stamp &+ 0xBAD, at: offset) }
    }
}
