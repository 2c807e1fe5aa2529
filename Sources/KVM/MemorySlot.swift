import CKVM

/// One KVM memslot: guest physical range backed by host virtual memory.
public struct MemorySlot: Sendable, Equatable {
    /// KVM_MEM_* flags of a memslot.
    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// KVM_MEM_LOG_DIRTY_PAGES: KVM tracks writes (bitmap or dirty ring).
        public static let logDirtyPages = Flags(rawValue: UInt32(KVM_MEM_LOG_DIRTY_PAGES))
        /// KVM_MEM_READONLY: guest writes exit as MMIO.
        public static let readOnly = Flags(rawValue: UInt32(KVM_MEM_READONLY))
    }

    /// The slot id (address space in the high 16 bits, 0 here).
    public var slot: UInt32
    /// The flags the slot is (or will be) registered with.
    public var flags: Flags
    /// Where the slot starts in guest physical memory.
    public var guestPhysicalAddress: UInt64
    /// Bytes; 0 deletes the slot.
    public var size: UInt64
    /// The host mapping behind the slot (nil only to delete it). An unsafe
    /// contract, as KVM's own: whoever registers the slot guarantees that
    /// `size` bytes from here stay mapped, read-write, until the slot is
    /// deleted or its VM closed; KVM faults them in on the guest's behalf.
    public nonisolated(unsafe) var hostAddress: UnsafeMutableRawPointer?

    /// A slot description; nothing is registered until
    /// VirtualMachine.setMemoryRegion (whose caller keeps `hostAddress`'s contract).
    public init(slot: UInt32, flags: Flags = [], guestPhysicalAddress: UInt64, size: UInt64, hostAddress: UnsafeMutableRawPointer?) {
        self.slot = slot
        self.flags = flags
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
        self.hostAddress = hostAddress
    }

    /// 4 KiB pages in the slot: the bits of its dirty bitmap.
    public var pageCount: Int { Int(size / UInt64(DirtyBitmap.pageSize)) }
}
