import CKVM
import KVM

/// A vCPU's state on the migration stream: the kernel structs as KVM lays
/// them out (both ends check they agree with `structSizes` first), the
/// XSAVE area and the MSRs as (index, value) pairs.
extension VCPUState {
    /// The sizes of the kernel structs carried whole: two hosts whose sizes
    /// differ have different KVM ABIs and cannot exchange them.
    public static var structSizes: [UInt64] {
        [MemoryLayout<kvm_regs>.size, MemoryLayout<kvm_sregs>.size, MemoryLayout<kvm_fpu>.size, MemoryLayout<kvm_xcrs>.size,
         MemoryLayout<kvm_vcpu_events>.size, MemoryLayout<kvm_debugregs>.size].map { UInt64($0) }
    }

    public func encode(into writer: inout WireWriter) {
        writer.value(regs)
        writer.value(sregs)
        writer.value(fpu)
        writer.value(xcrs)
        writer.value(events)
        writer.value(debugregs)
        writer.blob(xsave)
        writer.u64(UInt64(msrs.count))
        for msr in msrs {
            writer.u32(msr.index)
            writer.u64(msr.value)
        }
    }

    /// One vCPU's state, every length bounded before it is read.
    public static func decode(from reader: inout WireReader) throws(MigrationWireError) -> VCPUState {
        let regs = try reader.value(kvm_regs.self, zero: kvm_regs())
        let sregs = try reader.value(kvm_sregs.self, zero: kvm_sregs())
        let fpu = try reader.value(kvm_fpu.self, zero: kvm_fpu())
        let xcrs = try reader.value(kvm_xcrs.self, zero: kvm_xcrs())
        let events = try reader.value(kvm_vcpu_events.self, zero: kvm_vcpu_events())
        let debugregs = try reader.value(kvm_debugregs.self, zero: kvm_debugregs())
        let xsave = try reader.blob(max: 1 << 20, of: "XSAVE state")
        guard xsave.count >= MemoryLayout<kvm_xsave>.size else { throw MigrationWireError("an XSAVE area of \(xsave.count) bytes (at least \(MemoryLayout<kvm_xsave>.size))") }
        let msrCount = try reader.count(max: 4096, of: "MSRs")
        var msrs: [MSR] = []
        for _ in 0..<msrCount { msrs.append(MSR(index: try reader.u32(), value: try reader.u64())) }
        return VCPUState(regs: regs, sregs: sregs, fpu: fpu, xsave: xsave, xcrs: xcrs, msrs: msrs, events: events, debugregs: debugregs)
    }
}
