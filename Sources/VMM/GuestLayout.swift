/// Where everything lives in guest physical memory. Guest virtual = guest
/// physical (identity map with 2 MiB pages), so every address here is both.
///
///   0x0000_1000  GDT            0x0000_2000  IDT
///   0x0000_3000  exception stubs
///   0x0010_0000  guest code (up to `codeCapacity`)
///   0x0020_0000  per-vCPU areas, `vcpuStride` each:
///                  +0x00000 mailbox (64 KiB)
///                  +0x10000 TSS with a full I/O permission bitmap
///                  +0x13000 exception stack     +0x15000 user stack
///   after them   page tables (PML4, PDPTs, PDs), then the system slot ends
///   4 GiB        test memory (the experiment's slots), 1 GiB aligned
public struct GuestLayout: Sendable, Equatable {
    public static let pageSize: UInt64 = 4096
    public static let hugePageSize: UInt64 = 2 << 20
    public static let gigabyte: UInt64 = 1 << 30

    public static let gdtAddress: UInt64 = 0x1000
    public static let idtAddress: UInt64 = 0x2000
    public static let stubsAddress: UInt64 = 0x3000
    public static let codeAddress: UInt64 = 0x10_0000
    public static let codeCapacity: UInt64 = 0x10_0000
    public static let vcpuAreaBase: UInt64 = 0x20_0000
    public static let vcpuStride: UInt64 = 0x2_0000
    public static let mailboxSize: UInt64 = 0x1_0000
    public static let tssOffset: UInt64 = 0x1_0000
    public static let exceptionStackTop: UInt64 = 0x1_5000
    public static let userStackTop: UInt64 = 0x2_0000
    public static let testMemoryBase: UInt64 = 4 << 30

    public let vcpus: Int
    /// Bytes of guest-visible test memory starting at testMemoryBase.
    public let testMemorySize: UInt64

    public struct LayoutError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public init(vcpus: Int, testMemorySize: UInt64) throws(LayoutError) {
        guard vcpus > 0 else { throw LayoutError(description: "a VM needs at least one vCPU") }
        guard testMemorySize % GuestLayout.pageSize == 0 else {
            throw LayoutError(description: "test memory size \(testMemorySize) is not a multiple of 4096")
        }
        self.vcpus = vcpus
        self.testMemorySize = testMemorySize
        guard pageTablesEnd <= GuestLayout.testMemoryBase else {
            throw LayoutError(description: "\(vcpus) vCPUs need more system memory than fits below 4 GiB")
        }
    }

    public func vcpuArea(_ index: Int) -> UInt64 { GuestLayout.vcpuAreaBase + UInt64(index) * GuestLayout.vcpuStride }
    public func mailbox(_ index: Int) -> UInt64 { vcpuArea(index) }
    public func tss(_ index: Int) -> UInt64 { vcpuArea(index) + GuestLayout.tssOffset }
    public func exceptionStackTop(_ index: Int) -> UInt64 { vcpuArea(index) + GuestLayout.exceptionStackTop }
    public func userStackTop(_ index: Int) -> UInt64 { vcpuArea(index) + GuestLayout.userStackTop }

    /// The highest guest address the identity map must cover.
    public var mappedEnd: UInt64 { GuestLayout.roundUp(GuestLayout.testMemoryBase + testMemorySize, GuestLayout.gigabyte) }

    public var pml4Address: UInt64 { GuestLayout.roundUp(vcpuArea(vcpus), GuestLayout.pageSize) }
    /// One PDPT per 512 GiB, one PD per GiB.
    public var pdptCount: Int { Int((mappedEnd + (512 << 30) - 1) / (512 << 30)) }
    public var pdCount: Int { Int(mappedEnd / GuestLayout.gigabyte) }
    public var pdptAddress: UInt64 { pml4Address + GuestLayout.pageSize }
    public var pdAddress: UInt64 { pdptAddress + UInt64(pdptCount) * GuestLayout.pageSize }
    public var pageTablesEnd: UInt64 { pdAddress + UInt64(pdCount) * GuestLayout.pageSize }

    /// Size of slot 0, which holds everything below the test memory.
    public var systemSize: UInt64 { GuestLayout.roundUp(pageTablesEnd, GuestLayout.hugePageSize) }

    public static func roundUp(_ value: UInt64, _ alignment: UInt64) -> UInt64 {
        (value + alignment - 1) / alignment * alignment
    }
}
