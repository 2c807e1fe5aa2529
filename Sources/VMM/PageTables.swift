/// x86-64 4-level page-table entries for the identity map.
public enum PageTables {
    public static let present: UInt64 = 1 << 0
    public static let writable: UInt64 = 1 << 1
    public static let user: UInt64 = 1 << 2
    public static let huge: UInt64 = 1 << 7

    /// Every mapping is user-accessible: CPL3 workloads run on it, and CPL0
    /// code may use it too because kvmlab never sets CR4.SMEP/SMAP.
    static let tableFlags = present | writable | user

    /// Writes PML4, PDPTs and PDs for the layout into `memory`, which maps
    /// guest physical address 0 of the system slot.
    static func build(_ layout: GuestLayout, into memory: UnsafeMutableRawPointer) {
        func entry(_ address: UInt64) -> UnsafeMutablePointer<UInt64> {
            (memory + Int(address)).assumingMemoryBound(to: UInt64.self)
        }
        for index in 0..<layout.pdptCount {
            entry(layout.pml4Address + UInt64(index) * 8).pointee =
                (layout.pdptAddress + UInt64(index) * GuestLayout.pageSize) | tableFlags
        }
        for index in 0..<layout.pdCount {
            entry(layout.pdptAddress + UInt64(index) * 8).pointee =
                (layout.pdAddress + UInt64(index) * GuestLayout.pageSize) | tableFlags
        }
        for index in 0..<(layout.pdCount * 512) {
            entry(layout.pdAddress + UInt64(index) * 8).pointee =
                UInt64(index) * GuestLayout.hugePageSize | tableFlags | huge
        }
    }

    /// Walks the tables in `memory` the way the MMU would; nil where unmapped.
    static func translate(_ virtual: UInt64, layout: GuestLayout, memory: UnsafeRawPointer) -> UInt64? {
        func load(_ address: UInt64) -> UInt64 { memory.load(fromByteOffset: Int(address), as: UInt64.self) }
        let mask: UInt64 = 0x000F_FFFF_FFFF_F000
        let pml4e = load(layout.pml4Address + ((virtual >> 39) & 511) * 8)
        guard pml4e & present != 0 else { return nil }
        let pdpte = load((pml4e & mask) + ((virtual >> 30) & 511) * 8)
        guard pdpte & present != 0 else { return nil }
        let pde = load((pdpte & mask) + ((virtual >> 21) & 511) * 8)
        guard pde & present != 0, pde & huge != 0 else { return nil }
        return (pde & mask & ~(GuestLayout.hugePageSize - 1)) | (virtual & (GuestLayout.hugePageSize - 1))
    }
}
