import Guests
import KVM
import VMM

/// Reads the probes' stall rings and counters out of the mailboxes while the
/// guests run, converting guest TSC stamps to host TSC.
final class StallCollector {
    let machine: Machine
    let offsets: [Int64]
    let capacity: UInt64
    private var drained: [UInt64]
    private var collected: [JitterStall] = []
    private(set) var lost = 0

    init(machine: Machine, offsets: [Int64], capacity: Int) {
        self.machine = machine
        self.offsets = offsets
        self.capacity = UInt64(capacity)
        drained = [UInt64](repeating: 0, count: machine.vcpus.count)
    }

    /// Guest TSC to host TSC: the probe stamps with the guest's TSC, which
    /// runs `offset` cycles ahead of the host's (KVM_GET_MSRS minus rdtsc).
    static func hostTSC(guest: UInt64, offset: Int64) -> UInt64 { guest &- UInt64(bitPattern: offset) }

    /// Copies new events out of every vCPU's ring while the guest keeps
    /// writing it, seqlock style: read the published index, copy, read the
    /// index again; an entry the guest may have overwritten meanwhile (one
    /// `capacity` or more behind the second index) is dropped and counted lost.
    func drain() {
        for vcpu in machine.vcpus.indices {
            let mailbox = machine.mailbox(vcpu)
            let published = mailbox[MB_EVENT_INDEX]
            var next = max(drained[vcpu], published > capacity ? published - capacity : 0)
            var copied: [(index: UInt64, tsc: UInt64, cycles: UInt64)] = []
            while next < published {
                let slot = Int32((next & (capacity - 1)) * 16)
                copied.append((next, mailbox[MB_EVENTS + slot], mailbox[MB_EVENTS + slot + 8]))
                next += 1
            }
            let firstIntact = StallCollector.firstIntact(after: mailbox[MB_EVENT_INDEX], capacity: capacity)
            for entry in copied where entry.index >= firstIntact {
                collected.append(JitterStall(vcpu: vcpu, endTSC: StallCollector.hostTSC(guest: entry.tsc, offset: offsets[vcpu]), cycles: entry.cycles))
            }
            lost += Int(published &- drained[vcpu]) - copied.filter { $0.index >= firstIntact }.count
            drained[vcpu] = published
        }
    }

    /// The oldest ring entry that cannot have been overwritten while it was
    /// copied, given the index the guest had published after the copy: the
    /// guest writes entry `after` (slot after % capacity) before it
    /// publishes after + 1, so entries at or below after - capacity may be torn.
    static func firstIntact(after: UInt64, capacity: UInt64) -> UInt64 { after >= capacity ? after - capacity + 1 : 0 }

    /// Sum of the first word of every working-set page of `vcpu`: the probe
    /// adds one to one page per loop, so this equals its loop count.
    func touches(vcpu: Int) -> UInt64 {
        let region = machine.region(of: vcpu)
        guard let memory = machine.memory(at: region.gpa, bytes: region.size) else { return 0 }
        return (0..<Int(region.size / GuestLayout.pageSize)).reduce(UInt64(0)) { $0 &+ memory.word(at: $1 * Int(GuestLayout.pageSize)) }
    }

    func buckets() -> [[UInt64]] {
        machine.vcpus.indices.map { vcpu in
            let mailbox = machine.mailbox(vcpu)
            return (0..<Int32(MB_BUCKET_COUNT)).map { mailbox[MB_BUCKETS + $0 * 8] }
        }
    }

    func loops() -> [UInt64] { machine.vcpus.indices.map { machine.mailbox($0)[MB_LOOPS] } }

    /// Stalls that ended in [start, end), ordered by time.
    func stalls(from start: UInt64, to end: UInt64) -> [JitterStall] {
        collected.filter { $0.endTSC >= start && $0.endTSC < end }.sorted { $0.endTSC < $1.endTSC }
    }
}

/// Performs one round of the chosen memslot operation at a time, timing
/// every ioctl with the host TSC.
final class SlotChurner {
    static let slotSize: UInt64 = 2 << 20

    let machine: Machine
    let operation: JitterOperation
    let slots: SpareSlots
    /// Outside the guest's identity map: the probe never touches it.
    let home: UInt64
    /// Where the churned slot is now, and its flags.
    private var address: UInt64
    private var flags: MemorySlot.Flags = []
    private var toggled = false
    private(set) var failure: String?

    init(machine: Machine, operation: JitterOperation) throws {
        self.machine = machine
        self.operation = operation
        slots = try SpareSlots(machine: machine, bytes: SlotChurner.slotSize, firstSlot: Machine.firstTestSlot + UInt32(machine.testSlots.count))
        home = GuestLayout.roundUp(machine.layout.mappedEnd, GuestLayout.gigabyte) + GuestLayout.gigabyte
        address = home
        if operation != .toggleDirtyLog && operation != .manySlots { try slots.set(piece: 0, of: 1, at: home) }
    }

    /// One round; an ioctl failure ends the churn and is reported.
    func round() -> [JitterOp] {
        guard failure == nil else { return [] }
        var ops: [JitterOp] = []
        func timed(_ kind: String, _ body: () throws -> Void) throws {
            let start = HostTSC.now()
            try body()
            ops.append(JitterOp(kind: kind, startTSC: start, endTSC: HostTSC.now()))
        }
        do {
            switch operation {
            case .deleteCreate:
                try timed("delete") { try slots.delete(piece: 0) }
                try timed("create") { try slots.set(piece: 0, of: 1, at: address, flags: flags) }
            case .move:
                address = address == home ? home + GuestLayout.gigabyte : home
                try timed("move") { try slots.set(piece: 0, of: 1, at: address, flags: flags) }
            case .flags:
                flags = flags.isEmpty ? .logDirtyPages : []
                try timed("flags") { try slots.set(piece: 0, of: 1, at: address, flags: flags) }
            case .toggleDirtyLog:
                toggled.toggle()
                try timed(toggled ? "dirty-log-on" : "dirty-log-off") { try machine.setTestSlotFlags(toggled ? .logDirtyPages : []) }
            case .manySlots:
                let pieces = JitterConfig.manySlotsBatch
                let size = SlotChurner.slotSize / UInt64(pieces)
                for piece in 0..<pieces { try timed("add") { try slots.set(piece: piece, of: pieces, at: home + UInt64(piece) * size) } }
                for piece in 0..<pieces { try timed("remove") { try slots.delete(piece: piece) } }
            }
        } catch {
            failure = "\(operation.rawValue) failed: \(error)"
        }
        return ops
    }
}
