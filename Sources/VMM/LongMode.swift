import CKVM
import Guests

/// The privilege level guest code starts at.
public enum PrivilegeLevel: Int, Sendable, Codable {
    case kernel = 0
    case user = 3
}

/// Register state that drops a vCPU straight into 64-bit mode, at CPL3 by
/// default: no real-mode boot code, no firmware.
public enum LongMode {
    static let cr0PE: UInt64 = 1 << 0, cr0MP: UInt64 = 1 << 1, cr0ET: UInt64 = 1 << 4, cr0NE: UInt64 = 1 << 5
    static let cr0WP: UInt64 = 1 << 16, cr0AM: UInt64 = 1 << 18, cr0PG: UInt64 = 1 << 31
    static let cr4PAE: UInt64 = 1 << 5, cr4OSFXSR: UInt64 = 1 << 9, cr4OSXMMEXCPT: UInt64 = 1 << 10
    static let eferSCE: UInt64 = 1 << 0, eferLME: UInt64 = 1 << 8, eferLMA: UInt64 = 1 << 10, eferNXE: UInt64 = 1 << 11
    /// RFLAGS: bit 1 is reserved-one; IOPL=3 lets CPL3 code `out` to the host.
    public static let rflags: UInt64 = 0x2 | (3 << 12)

    static func segment(selector: UInt16, code: Bool) -> kvm_segment {
        var s = kvm_segment()
        s.base = 0
        s.limit = 0xFFFF_FFFF
        s.selector = selector
        s.type = code ? 0xB : 0x3
        s.present = 1
        s.dpl = UInt8(selector & 3)
        s.db = code ? 0 : 1
        s.s = 1
        s.l = code ? 1 : 0
        s.g = 1
        return s
    }

    public static func specialRegisters(from current: kvm_sregs, layout: GuestLayout, vcpu: Int, cpl: PrivilegeLevel) -> kvm_sregs {
        var sregs = current
        sregs.cr0 = cr0PE | cr0MP | cr0ET | cr0NE | cr0WP | cr0AM | cr0PG
        sregs.cr3 = layout.pml4Address
        sregs.cr4 = cr4PAE | cr4OSFXSR | cr4OSXMMEXCPT
        sregs.efer = eferSCE | eferLME | eferLMA | eferNXE
        let user = cpl == .user
        sregs.cs = segment(selector: user ? Descriptors.userCode : Descriptors.kernelCode, code: true)
        let data = segment(selector: user ? Descriptors.userData : Descriptors.kernelData, code: false)
        sregs.ds = data
        sregs.es = data
        sregs.fs = data
        sregs.gs = data
        sregs.ss = data
        var tr = kvm_segment()
        tr.base = layout.tss(vcpu)
        tr.limit = Descriptors.tssLimit
        tr.selector = Descriptors.taskState
        tr.type = 0xB  // busy 64-bit TSS
        tr.present = 1
        sregs.tr = tr
        sregs.gdt.base = GuestLayout.gdtAddress
        sregs.gdt.limit = UInt16(Descriptors.gdtEntries * 8 - 1)
        sregs.idt.base = GuestLayout.idtAddress
        sregs.idt.limit = UInt16(Int(EXC_VECTORS) * 16 - 1)
        return sregs
    }

    /// Entry registers: RIP at the image, RSP on the vCPU's stack, RDI =
    /// mailbox, RSI = vCPU index.
    public static func registers(layout: GuestLayout, vcpu: Int, entry: UInt64) -> kvm_regs {
        var regs = kvm_regs()
        regs.rip = entry
        regs.rsp = layout.userStackTop(vcpu)
        regs.rdi = layout.mailbox(vcpu)
        regs.rsi = UInt64(vcpu)
        regs.rflags = rflags
        return regs
    }
}
