/// Segment descriptors, the TSS and IDT gates for 64-bit mode.
public enum Descriptors {
    public static let kernelCode: UInt16 = 0x08
    public static let kernelData: UInt16 = 0x10
    public static let userData: UInt16 = 0x18 | 3
    public static let userCode: UInt16 = 0x20 | 3
    public static let taskState: UInt16 = 0x28
    /// Null, kernel code/data, user data/code, and a 16-byte TSS descriptor.
    public static let gdtEntries = 7
    /// The 104-byte TSS, then an I/O permission bitmap for all 65536 ports
    /// (all zero: every port allowed) and its terminating 0xFF byte. Some
    /// hosts (kvm_pvm) ignore RFLAGS.IOPL for CPL3 and consult only the
    /// bitmap, so CPL3 `out` to the host needs it.
    public static let ioBitmapOffset = 0x68
    public static let ioBitmapSize = 0x2000
    public static let tssLimit = UInt32(ioBitmapOffset + ioBitmapSize)

    /// A flat code or data descriptor (base 0, limit 4 GiB, 4 KiB granular).
    public static func segment(code: Bool, dpl: UInt64) -> UInt64 {
        let limit: UInt64 = 0xFFFF | (0xF << 48)
        let access: UInt64 = (1 << 47) | (dpl << 45) | (1 << 44) | (code ? (0xB << 40) : (0x3 << 40))
        let flags: UInt64 = code ? (1 << 53 | 1 << 55) : (1 << 54 | 1 << 55)  // L or D/B, and G
        return limit | access | flags
    }

    /// The two 8-byte halves of a 64-bit available-TSS descriptor.
    public static func taskStateDescriptor(base: UInt64) -> (UInt64, UInt64) {
        let low = UInt64(tssLimit) | ((base & 0xFF_FFFF) << 16) | (0x89 << 40) | (((base >> 24) & 0xFF) << 56)
        return (low, base >> 32)
    }

    /// The GDT kvmlab installs (the TSS descriptor names vCPU 0's TSS; every
    /// vCPU's TR is loaded directly with KVM_SET_SREGS, so it is never re-read).
    public static func gdt(firstTSS: UInt64) -> [UInt64] {
        let tss = taskStateDescriptor(base: firstTSS)
        return [0, segment(code: true, dpl: 0), segment(code: false, dpl: 0),
                segment(code: false, dpl: 3), segment(code: true, dpl: 3), tss.0, tss.1]
    }

    /// A 64-bit interrupt gate to `handler` in the kernel code segment, on IST `ist`.
    public static func interruptGate(handler: UInt64, ist: UInt64) -> (UInt64, UInt64) {
        let low = (handler & 0xFFFF) | (UInt64(kernelCode) << 16) | (ist << 32) | (0x8E << 40) | (((handler >> 16) & 0xFFFF) << 48)
        return (low, handler >> 32)
    }

    /// Byte offsets inside the 64-bit TSS.
    public static let tssRSP0Offset = 4
    public static let tssIST1Offset = 0x24
    public static let tssIOMapOffset = 0x66
}
