import KVM
import VMM

/// Collects the dirty log of every test slot, by bitmap or dirty ring, into
/// bitmaps allocated once, and checks it against what the guests wrote.
final class Harvester: @unchecked Sendable {
    // @unchecked: `bitmaps` is touched only by the main thread; vCPU threads
    // reach `drainRing`, whose shared state is behind `pending` and each ring's lock.
    let machine: Machine
    let manualProtect: Bool
    let clearRanges: [[ClearRange]]
    /// One per vCPU, each behind its own lock: the main thread may harvest
    /// a ring while its vCPU drains it after a ring-full exit (concurrent
    /// harvesting).
    private let rings: [Locked<DirtyRing>]
    private(set) var bitmaps: [DirtyBitmap]
    /// Entries drained by vCPU threads whose ring filled mid-iteration.
    private let pending = Locked<[(UInt32, UInt64)]>([])

    init(machine: Machine, manualProtect: Bool, clearChunk: Int?, ringEntries: Int?) throws {
        self.machine = machine
        self.manualProtect = manualProtect && ringEntries == nil
        clearRanges = machine.testSlots.map { slot in
            clearChunk.map { ClearRange.chunks(slotPages: slot.pageCount, chunk: $0) } ?? [ClearRange(firstPage: 0, pageCount: slot.pageCount)]
        }
        rings = try ringEntries.map { entries in try machine.vcpus.map { try Locked(DirtyRing(vcpu: $0, entries: entries)) } } ?? []
        bitmaps = machine.testSlots.map { DirtyBitmap(pages: $0.pageCount) }
    }

    var usesRing: Bool { !rings.isEmpty }
    var needsClear: Bool { usesRing || manualProtect }

    /// Empties vCPU `vcpu`'s ring into the pending entries and resets it:
    /// on its own thread after KVM_EXIT_DIRTY_RING_FULL (a failed reset then
    /// ends the vCPU: it would fill again at once), or on a host thread that
    /// harvests while the vCPUs run. Returns the entries it took.
    @discardableResult
    func drainRing(vcpu: Int) throws(KVMError) -> Int {
        var drained: [(UInt32, UInt64)] = []
        rings[vcpu].withLock { ring in _ = ring.harvest { drained.append(($0, $1)) } }
        pending.withLock { $0.append(contentsOf: drained) }
        try machine.vm.resetDirtyRings()
        return drained.count
    }

    /// The "get dirty log" phase: fills one bitmap per test slot. Returns
    /// the seconds of the harvest itself: the ioctls for bitmaps, the
    /// collection of ring entries for rings.
    @discardableResult
    func get() throws -> Double {
        let seconds: Double
        if usesRing {
            let clock = Stopwatch()
            for index in bitmaps.indices { bitmaps[index].clearAll() }
            for lockedRing in rings {
                var entries: [(UInt32, UInt64)] = []
                lockedRing.withLock { ring in _ = ring.harvest { entries.append(($0, $1)) } }
                for (slot, page) in entries { mark(slot, page) }
            }
            for (slot, page) in pending.withLock({ all in defer { all.removeAll() }; return all }) { mark(slot, page) }
            seconds = clock.seconds
        } else {
            var total = 0.0
            for (index, slot) in machine.testSlots.enumerated() {
                total += try Stopwatch.seconds { try machine.vm.getDirtyLog(slot: slot.slot, into: &bitmaps[index]) }
            }
            seconds = total
        }
        injectFaults()
        return seconds
    }

    private func mark(_ slot: UInt32, _ page: UInt64) {
        let index = Int(slot) - Int(Machine.firstTestSlot)
        if bitmaps.indices.contains(index), page < UInt64(bitmaps[index].pages) { bitmaps[index][Int(page)] = true }
    }

    private func injectFaults() {
        guard !bitmaps.isEmpty else { return }
        if InjectedFault.on(.dropDirtyBit), let page = (0..<bitmaps[0].pages).first(where: { bitmaps[0][$0] }) { bitmaps[0][page] = false }
        if InjectedFault.on(.extraDirtyBit), let page = (0..<bitmaps[0].pages).last(where: { !bitmaps[0][$0] }) { bitmaps[0][page] = true }
    }

    /// The "clear dirty log" phase: re-protect what was harvested. Returns
    /// the seconds of the ioctls.
    @discardableResult
    func clear() throws -> Double {
        if InjectedFault.on(.skipClear) { return 0 }
        if usesRing { return try Stopwatch.seconds { try machine.vm.resetDirtyRings() } }
        var total = 0.0
        for (index, slot) in machine.testSlots.enumerated() {
            total += try Stopwatch.seconds { try machine.vm.clearDirtyLog(slot: slot.slot, bitmap: bitmaps[index], ranges: clearRanges[index]) }
        }
        return total
    }

    /// Compares the harvested bits with the stamps in guest memory.
    func verify(iteration: Int, expectAll: Bool) -> DirtyCheck {
        var check = DirtyCheck()
        for (index, slot) in machine.testSlots.enumerated() {
            guard let memory = machine.memory(at: slot.guestPhysicalAddress, bytes: slot.size) else { continue }
            check.add(slot: slot.slot, bitmap: bitmaps[index], iteration: iteration, expectAll: expectAll) {
                memory.word(at: $0 * DirtyBitmap.pageSize)
            }
        }
        return check
    }
}
