import KVM

/// Memslots outside the test memory, backed by memory of their own, that an
/// experiment creates, moves, flags and deletes while the guest runs
/// (jitter's churn). The host address stays here: callers name a piece and
/// where it goes, and the memory lives as long as the slots can.
public final class SpareSlots {
    public let machine: Machine
    /// The first slot id; piece i of a split is slot firstSlot + i.
    public let firstSlot: UInt32
    public let bytes: UInt64
    private let memory: GuestMemory

    public init(machine: Machine, bytes: UInt64, firstSlot: UInt32) throws {
        self.machine = machine
        self.firstSlot = firstSlot
        self.bytes = bytes
        memory = try GuestMemory(size: bytes, backing: .anonymous)
    }

    /// Registers (or moves, or re-flags) piece `index` of the memory split
    /// into `pieces` equal parts, at guest physical `gpa`.
    public func set(piece index: Int, of pieces: Int, at gpa: UInt64, flags: MemorySlot.Flags = []) throws(KVMError) {
        precondition(pieces >= 1 && (0..<pieces).contains(index) && bytes % UInt64(pieces) == 0, "piece \(index) of \(pieces) does not split \(bytes) bytes")
        let size = bytes / UInt64(pieces)
        try machine.vm.setMemoryRegion(MemorySlot(slot: firstSlot + UInt32(index), flags: flags, guestPhysicalAddress: gpa, size: size,
                                                  hostAddress: memory.base + Int(UInt64(index) * size)))
    }

    /// Deletes piece `index`'s slot (KVM zaps its mappings); its memory stays.
    public func delete(piece index: Int) throws(KVMError) { try machine.vm.deleteMemoryRegion(slot: firstSlot + UInt32(index)) }
}
