import CKVM

/// One KVM memslot: guest physical range backed by host virtual memory.
public struct MemorySlot: Sendable, Equatable {
    public struct Flags: OptionSet, Sendable, Equatable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let logDirtyPages = Flags(rawValue: UInt32(KVM_MEM_LOG_DIRTY_PAGES))
        public static let readOnly = Flags(rawValue: UInt32(KVM_MEM_READONLY))
    }

    public var slot: UInt32
    public var flags: Flags
    public var guestPhysicalAddress: UInt64
    public var size: UInt64
    public nonisolated(unsafe) var hostAddress: UnsafeMutableRawPointer?

    public init(slot: UInt32, flags: Flags = [], guestPhysicalAddress: UInt64, size: UInt64, hostAddress: UnsafeMutableRawPointer?) {
        self.slot = slot
        self.flags = flags
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
        self.hostAddress = hostAddress
    }

    public var pageCount: Int { Int(size / UInt64(DirtyBitmap.pageSize)) }
}
