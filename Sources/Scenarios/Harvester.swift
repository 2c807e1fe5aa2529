import KVM
import Synchronization
import VMM

/// Collects the dirty log of every test slot, by bitmap or dirty ring, and
/// checks it against what the guests really wrote.
final class Harvester: @unchecked Sendable {
    struct Check {
        var stamped = 0, dirty = 0, expected = 0, missed = 0, spurious = 0
    }

    let machine: Machine
    let manualProtect: Bool
    let clearChunk: Int?
    let rings: [DirtyRing]
    /// Entries drained by vCPU threads whose ring filled mid-iteration.
    private let pending = Mutex<[(UInt32, UInt64)]>([])

    init(machine: Machine, config: DirtyLogConfig) throws {
        self.machine = machine
        manualProtect = config.manualProtect && config.ringEntries == nil
        clearChunk = config.clearChunk
        if let entries = config.ringEntries {
            rings = try machine.vcpus.map { try DirtyRing(vcpu: $0, entries: entries) }
        } else {
            rings = []
        }
    }

    var usesRing: Bool { !rings.isEmpty }
    var needsClear: Bool { usesRing || manualProtect }

    /// On a vCPU thread after KVM_EXIT_DIRTY_RING_FULL: empty its own ring.
    func drainRingFull(vcpu: Int) {
        var drained: [(UInt32, UInt64)] = []
        _ = rings[vcpu].harvest { drained.append(($0, $1)) }
        pending.withLock { $0.append(contentsOf: drained) }
        _ = try? machine.vm.resetDirtyRings()
    }

    /// The "get dirty log" phase: one bitmap per test slot.
    func get() throws -> [DirtyBitmap] {
        var bitmaps = machine.testSlots.map { DirtyBitmap(pages: $0.pageCount) }
        if usesRing {
            func mark(_ slot: UInt32, _ page: UInt64) {
                let index = Int(slot) - Int(Machine.firstTestSlot)
                if bitmaps.indices.contains(index), page < UInt64(bitmaps[index].pages) { bitmaps[index][Int(page)] = true }
            }
            for ring in rings { _ = ring.harvest(mark) }
            for (slot, page) in pending.withLock({ all in defer { all.removeAll() }; return all }) { mark(slot, page) }
        } else {
            for (index, slot) in machine.testSlots.enumerated() { try machine.vm.getDirtyLog(slot: slot.slot, into: &bitmaps[index]) }
        }
        return bitmaps
    }

    /// The "clear dirty log" phase: re-protect what was harvested.
    func clear(_ bitmaps: [DirtyBitmap]) throws {
        if usesRing {
            try machine.vm.resetDirtyRings()
            return
        }
        for (index, slot) in machine.testSlots.enumerated() {
            let pages = slot.pageCount
            let ranges = clearChunk.map { ClearRange.chunks(slotPages: pages, chunk: $0) } ?? [ClearRange(firstPage: 0, pageCount: pages)]
            try machine.vm.clearDirtyLog(slot: slot.slot, bitmap: bitmaps[index], ranges: ranges)
        }
    }

    /// Compares dirty bits with the stamps the guests left in memory: a page
    /// is written in `iteration` exactly when its word carries that iteration.
    func verify(_ bitmaps: [DirtyBitmap], iteration: Int, expectAll: Bool) -> Check {
        var check = Check()
        let wanted = UInt64(iteration & 0xFFFF)
        for (index, slot) in machine.testSlots.enumerated() {
            guard let base = machine.host(slot.guestPhysicalAddress) else { continue }
            let bitmap = bitmaps[index]
            for page in 0..<slot.pageCount {
                let word = base.load(fromByteOffset: page * DirtyBitmap.pageSize, as: UInt64.self)
                let written = word >> 48 != 0 && (word >> 32) & 0xFFFF == wanted
                let dirty = bitmap[page]
                let expected = written || expectAll
                if written { check.stamped += 1 }
                if dirty { check.dirty += 1 }
                if expected { check.expected += 1 }
                if expected && !dirty { check.missed += 1 }
                if dirty && !expected { check.spurious += 1 }
            }
        }
        return check
    }
}

/// Reads huge-page splitting out of the pages_2m / pages_4k deltas.
enum HugePageSplitting {
    /// `phases` in order, each with how it splits if pages_2m falls there.
    static func explain(populate: StatsDelta?, phases: [(name: String, kind: String, stats: StatsDelta?)], backing: Backing) -> [String] {
        guard let populate, populate.vm["pages_2m"] != nil else {
            return ["KVM's binary stats (pages_2m) are not available here, so splitting cannot be observed."]
        }
        let mapped2M = populate.vm["pages_2m"] ?? 0
        let mapped1G = populate.vm["pages_1g"] ?? 0
        if mapped2M <= 0 && mapped1G <= 0 {
            return ["Populating mapped no huge pages (\(backing.rawValue) backing gives 4 KiB host pages), so there was nothing to split."]
        }
        var lines = ["Populating mapped \(mapped2M) 2 MiB" + (mapped1G > 0 ? " and \(mapped1G) 1 GiB" : "") + " pages."]
        for phase in phases {
            let split = -(phase.stats?.vm["pages_2m"] ?? 0)
            guard split > 0 else { continue }
            let small = phase.stats?.vm["pages_4k"] ?? 0
            lines.append("\(phase.name): \(split) 2 MiB mappings gone, pages_4k \(small > 0 ? "+" : "")\(small): \(phase.kind).")
        }
        if lines.count == 1 {
            lines.append("No 2 MiB mapping was split (nothing was written, or logging never write-protected them).")
        } else if !phases.contains(where: { $0.kind.hasPrefix("eager") && -($0.stats?.vm["pages_2m"] ?? 0) > 0 }) {
            lines.append("None were split eagerly: splitting waited for guest writes (shadow MMU, or kvm.eager_page_split=N).")
        }
        return lines
    }
}
