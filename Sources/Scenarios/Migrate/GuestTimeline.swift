import Guests
import VMM

/// What one vCPU recorded of itself (migrator guest): work per TSC slot
/// and stalls, collected from its mailbox by the host while it runs. The
/// source collects until the switchover, the destination from then on;
/// slots are numbered from the same TSC base on both, so the two halves
/// join into one timeline.
public struct GuestTimeline: Sendable, Equatable {
    /// Work done in slot `firstSlot + i` (pages written, or compute units).
    public var firstSlot: UInt64
    public var work: [UInt32]
    /// Stalls as {guest TSC at the stall's end, its length in TSC cycles}.
    public var stalls: [Stall]
    /// Stalls the ring overwrote before the host read them.
    public var stallsLost: UInt64

    public struct Stall: Sendable, Equatable {
        public let endTSC: UInt64
        public let cycles: UInt64
        public init(endTSC: UInt64, cycles: UInt64) {
            self.endTSC = endTSC
            self.cycles = cycles
        }
    }

    public init(firstSlot: UInt64 = 0, work: [UInt32] = [], stalls: [Stall] = [], stallsLost: UInt64 = 0) {
        self.firstSlot = firstSlot
        self.work = work
        self.stalls = stalls
        self.stallsLost = stallsLost
    }

    /// Work in `slot`, 0 where the timeline has no record.
    public func work(in slot: UInt64) -> UInt32 {
        guard slot >= firstSlot, slot - firstSlot < UInt64(work.count) else { return 0 }
        return work[Int(slot - firstSlot)]
    }

    /// The source's half joined with the destination's: a slot both saw
    /// (the one the switchover fell in) keeps the larger count, because
    /// the guest's count runs on across the switch.
    public func joined(with later: GuestTimeline) -> GuestTimeline {
        guard !later.work.isEmpty else { return GuestTimeline(firstSlot: firstSlot, work: work, stalls: stalls + later.stalls, stallsLost: stallsLost + later.stallsLost) }
        guard !work.isEmpty else { return GuestTimeline(firstSlot: later.firstSlot, work: later.work, stalls: stalls + later.stalls, stallsLost: stallsLost + later.stallsLost) }
        let first = min(firstSlot, later.firstSlot)
        let end = max(firstSlot + UInt64(work.count), later.firstSlot + UInt64(later.work.count))
        let merged = (first..<end).map { max(work(in: $0), later.work(in: $0)) }
        return GuestTimeline(firstSlot: first, work: merged, stalls: stalls + later.stalls, stallsLost: stallsLost + later.stallsLost)
    }
}

/// Reads a running migrator's mailbox: slots it has finished and stalls it
/// recorded since the last read. Must be called at least once per
/// MB_MIG_TIMELINE_SLOTS slots (the guest's ring), e.g. every round.
final class TimelineCollector {
    private let mailbox: Mailbox
    private(set) var timeline: GuestTimeline
    /// The next slot to read, and the stall count already read.
    private var nextSlot: UInt64
    private var stallsRead: UInt64

    /// Starts from what the mailbox shows now: a fresh guest, or one just
    /// migrated in (whose earlier slots the source collected).
    init(mailbox: Mailbox) {
        self.mailbox = mailbox
        nextSlot = mailbox[MB_MIG_SLOT_NOW]
        stallsRead = mailbox[MB_MIG_STALLS]
        timeline = GuestTimeline(firstSlot: nextSlot)
    }

    /// Reads the finished slots, or with `final` (the vCPU is stopped)
    /// also the one it was counting in.
    func collect(final: Bool = false) {
        let now = mailbox[MB_MIG_SLOT_NOW]
        let end = final ? now + 1 : now
        let capacity = UInt64(MB_MIG_TIMELINE_SLOTS)
        // Slots older than the ring were overwritten: they read as unknown (0).
        if end > nextSlot + capacity { nextSlot = end - capacity }
        while nextSlot < end {
            let entry = mailbox[Int32(MB_MIG_TIMELINE) + Int32((nextSlot % capacity) * 8)]
            let work = entry >> 32 == nextSlot & 0xFFFF_FFFF ? UInt32(truncatingIfNeeded: entry) : 0
            let index = Int(nextSlot - timeline.firstSlot)
            while timeline.work.count < index { timeline.work.append(0) }
            if index < timeline.work.count { timeline.work[index] = max(timeline.work[index], work) } else { timeline.work.append(work) }
            // The slot still being counted is read again next time.
            if final && nextSlot == now { break }
            nextSlot += 1
        }
        let recorded = mailbox[MB_MIG_STALLS]
        let ring = UInt64(MB_MIG_STALL_CAPACITY)
        if recorded > stallsRead + ring {
            timeline.stallsLost += recorded - stallsRead - ring
            stallsRead = recorded - ring
        }
        while stallsRead < recorded {
            let offset = Int32(MB_MIG_STALL_RING) + Int32((stallsRead % ring) * 16)
            timeline.stalls.append(.init(endTSC: mailbox[offset], cycles: mailbox[offset + 8]))
            stallsRead += 1
        }
    }
}
