import CKVM
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

    func drain() {
        for vcpu in machine.vcpus.indices {
            let mailbox = machine.mailbox(vcpu)
            let published = mailbox[MB_EVENT_INDEX]
            var next = drained[vcpu]
            if published &- next > capacity {
                lost += Int(published &- next &- capacity)
                next = published &- capacity
            }
            while next < published {
                let slot = Int32((next & (capacity - 1)) * 16)
                let guestTSC = mailbox[MB_EVENTS + slot]
                let cycles = mailbox[MB_EVENTS + slot + 8]
                collected.append(JitterStall(vcpu: vcpu, endTSC: UInt64(bitPattern: Int64(bitPattern: guestTSC) &- offsets[vcpu]), cycles: cycles))
                next += 1
            }
            drained[vcpu] = published
        }
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
    let memory: GuestMemory
    let slotID: UInt32
    /// Outside the guest's identity map: the probe never touches it.
    let home: UInt64
    private var slot: MemorySlot
    private var toggled = false
    private(set) var failure: String?

    init(machine: Machine, operation: JitterOperation) throws {
        self.machine = machine
        self.operation = operation
        memory = try GuestMemory(size: SlotChurner.slotSize, backing: .anonymous)
        slotID = Machine.firstTestSlot + UInt32(machine.testSlots.count)
        home = GuestLayout.roundUp(machine.layout.mappedEnd, GuestLayout.gigabyte) + GuestLayout.gigabyte
        slot = MemorySlot(slot: slotID, guestPhysicalAddress: home, size: SlotChurner.slotSize, hostAddress: memory.base)
        if operation != .toggleDirtyLog && operation != .manySlots { try machine.vm.setMemoryRegion(slot) }
    }

    /// One round; an ioctl failure ends the churn and is reported.
    func round() -> [JitterOp] {
        guard failure == nil else { return [] }
        var ops: [JitterOp] = []
        func timed(_ kind: String, _ body: () throws -> Void) throws {
            let start = ckvm_rdtsc()
            try body()
            ops.append(JitterOp(kind: kind, startTSC: start, endTSC: ckvm_rdtsc()))
        }
        do {
            switch operation {
            case .deleteCreate:
                try timed("delete") { try machine.vm.deleteMemoryRegion(slot: slotID) }
                try timed("create") { try machine.vm.setMemoryRegion(slot) }
            case .move:
                slot.guestPhysicalAddress = slot.guestPhysicalAddress == home ? home + GuestLayout.gigabyte : home
                try timed("move") { try machine.vm.setMemoryRegion(slot) }
            case .flags:
                slot.flags = slot.flags.isEmpty ? .logDirtyPages : []
                try timed("flags") { try machine.vm.setMemoryRegion(slot) }
            case .toggleDirtyLog:
                toggled.toggle()
                try timed(toggled ? "dirty-log-on" : "dirty-log-off") { _ = try machine.setTestSlotFlags(toggled ? .logDirtyPages : []) }
            case .manySlots:
                let size = SlotChurner.slotSize / UInt64(JitterConfig.manySlotsBatch)
                let batch = (0..<JitterConfig.manySlotsBatch).map {
                    MemorySlot(slot: slotID + UInt32($0), guestPhysicalAddress: home + UInt64($0) * size, size: size,
                               hostAddress: memory.base + Int(UInt64($0) * size))
                }
                for piece in batch { try timed("add") { try machine.vm.setMemoryRegion(piece) } }
                for piece in batch { try timed("remove") { try machine.vm.deleteMemoryRegion(slot: piece.slot) } }
            }
        } catch {
            failure = "\(operation.rawValue) failed: \(error)"
        }
        return ops
    }
}
