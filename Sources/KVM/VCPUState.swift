import CHost
import CKVM
import Glibc

/// Everything KVM keeps of a vCPU that a migration must carry, in the
/// kernel's own structs: registers, special registers, FPU and XSAVE
/// areas, XCRs, MSRs, pending events and debug registers. The TSC is not
/// here: it is carried as an offset (see `tscOffset`), so that the
/// destination can keep it running.
public struct VCPUState: Sendable {
    /// KVM_GET_REGS: the general registers, RIP and RFLAGS.
    public var regs: kvm_regs
    /// KVM_GET_SREGS: segments, descriptor tables, control registers, EFER, APIC base.
    public var sregs: kvm_sregs
    /// KVM_GET_FPU: the x87/SSE state (MXCSR included).
    public var fpu: kvm_fpu
    /// KVM_GET_XSAVE2's buffer: KVM_CAP_XSAVE2 bytes (at least struct kvm_xsave's 4096).
    public var xsave: [UInt8]
    /// KVM_GET_XCRS: XCR0, which says what the XSAVE area holds.
    public var xcrs: kvm_xcrs
    /// KVM_GET_MSRS: every MSR of KVM_GET_MSR_INDEX_LIST the vCPU would read back.
    public var msrs: [MSR]
    /// KVM_GET_VCPU_EVENTS: pending exceptions, interrupts, NMIs and SMM state.
    public var events: kvm_vcpu_events
    /// KVM_GET_DEBUGREGS: DR0-3, DR6, DR7.
    public var debugregs: kvm_debugregs

    /// One MSR: its index and value (struct kvm_msr_entry without the padding).
    public struct MSR: Sendable, Equatable {
        public let index: UInt32
        public let value: UInt64
        public init(index: UInt32, value: UInt64) {
            self.index = index
            self.value = value
        }
    }

    /// The state as read on one host, or as decoded from the migration stream.
    public init(regs: kvm_regs, sregs: kvm_sregs, fpu: kvm_fpu, xsave: [UInt8], xcrs: kvm_xcrs,
                msrs: [MSR], events: kvm_vcpu_events, debugregs: kvm_debugregs) {
        self.regs = regs
        self.sregs = sregs
        self.fpu = fpu
        self.xsave = xsave
        self.xcrs = xcrs
        self.msrs = msrs
        self.events = events
        self.debugregs = debugregs
    }
}

extension KVMDevice {
    /// KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and restores for a VMM.
    public func msrIndexList() throws(KVMError) -> [UInt32] {
        var capacity = 256
        while true {
            var buffer = [UInt32](repeating: 0, count: capacity + 1)
            buffer[0] = UInt32(capacity)
            let result = buffer.withUnsafeMutableBytes { ckvm_ioctl_ptr(fd.raw, CKVM_GET_MSR_INDEX_LIST, $0.baseAddress) }
            if result == 0 { return Array(buffer[1...Int(min(buffer[0], UInt32(capacity)))]) }
            guard Glibc.errno == E2BIG, capacity < 65536 else { throw KVMError.last("KVM_GET_MSR_INDEX_LIST") }
            capacity = max(capacity * 2, Int(buffer[0]))
        }
    }

    /// KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2): the bytes KVM_GET_XSAVE2 fills.
    public var xsaveBytes: Int { max(MemoryLayout<kvm_xsave>.size, Int(check(.xsave2))) }
}

extension VCPU {
    /// The IA32_TSC MSR: carried as an offset, never restored by value.
    public static let tscMSR: UInt32 = 0x10

    /// Reads this vCPU's state (KVM_GET_REGS, _SREGS, _FPU, _XSAVE2, _XCRS,
    /// _MSRS for `msrs`, _VCPU_EVENTS, _DEBUGREGS). The vCPU must not be in
    /// KVM_RUN. Throws the first ioctl that fails.
    public func saveState(msrs: [UInt32], xsaveBytes: Int) throws(KVMError) -> VCPUState {
        var fpu = kvm_fpu()
        try call(CKVM_GET_FPU, &fpu, "KVM_GET_FPU")
        var xsave = [UInt8](repeating: 0, count: xsaveBytes)
        try fd.ioctl(CKVM_GET_XSAVE2, bytes: &xsave, "KVM_GET_XSAVE2(vCPU \(id))")
        var xcrs = kvm_xcrs()
        try call(CKVM_GET_XCRS, &xcrs, "KVM_GET_XCRS")
        var events = kvm_vcpu_events()
        try call(CKVM_GET_VCPU_EVENTS, &events, "KVM_GET_VCPU_EVENTS")
        var debugregs = kvm_debugregs()
        try call(CKVM_GET_DEBUGREGS, &debugregs, "KVM_GET_DEBUGREGS")
        return VCPUState(regs: try getRegisters(), sregs: try getSpecialRegisters(), fpu: fpu, xsave: xsave, xcrs: xcrs,
                         msrs: try readMSRs(msrs), events: events, debugregs: debugregs)
    }

    /// Loads a saved state (special registers first: they set the mode the
    /// rest is read in). Returns the MSRs this KVM refused, which stay as
    /// the new vCPU had them; any other refusal throws.
    @discardableResult
    public func restoreState(_ state: VCPUState) throws(KVMError) -> [UInt32] {
        try setSpecialRegisters(state.sregs)
        try setRegisters(state.regs)
        var fpu = state.fpu
        try call(CKVM_SET_FPU, &fpu, "KVM_SET_FPU")
        var xsave = state.xsave
        try fd.ioctl(CKVM_SET_XSAVE, bytes: &xsave, "KVM_SET_XSAVE(vCPU \(id))")
        var xcrs = state.xcrs
        try call(CKVM_SET_XCRS, &xcrs, "KVM_SET_XCRS")
        let refused = try writeMSRs(state.msrs)
        var events = state.events
        try call(CKVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS")
        var debugregs = state.debugregs
        try call(CKVM_SET_DEBUGREGS, &debugregs, "KVM_SET_DEBUGREGS")
        return refused
    }

    /// The MSRs of `candidates` this vCPU can read (KVM_GET_MSRS one at a
    /// time: a batch stops at the first it cannot), IA32_TSC left out.
    public func readableMSRs(_ candidates: [UInt32]) -> [UInt32] {
        candidates.filter { $0 != VCPU.tscMSR && (try? readMSRs([$0])) != nil }
    }

    /// KVM_GET_MSRS for every index, or the error naming the first it could not read.
    public func readMSRs(_ indices: [UInt32]) throws(KVMError) -> [VCPUState.MSR] {
        guard !indices.isEmpty else { return [] }
        var buffer = MSRBuffer(indices.map { VCPUState.MSR(index: $0, value: 0) })
        let read = buffer.call(fd.raw, CKVM_GET_MSRS)
        guard read == indices.count else {
            throw read < 0 ? KVMError.last("KVM_GET_MSRS(vCPU \(id))")
                           : KVMError("KVM_GET_MSRS(vCPU \(id), MSR 0x\(String(indices[Int(read)], radix: 16)))", errno: EINVAL, hint: "this KVM cannot read that MSR")
        }
        return buffer.entries
    }

    /// KVM_SET_MSRS as a batch; the ones refused are retried past, and returned.
    private func writeMSRs(_ msrs: [VCPUState.MSR]) throws(KVMError) -> [UInt32] {
        var refused: [UInt32] = []
        var rest = msrs[...]
        while !rest.isEmpty {
            var buffer = MSRBuffer(Array(rest))
            let written = buffer.call(fd.raw, CKVM_SET_MSRS)
            guard written >= 0 else { throw KVMError.last("KVM_SET_MSRS(vCPU \(id))") }
            rest = rest.dropFirst(Int(written))
            if let first = rest.first {
                refused.append(first.index)
                rest = rest.dropFirst()
            }
        }
        return refused
    }

    /// The guest TSC's offset from the host's, from KVM_GET_DEVICE_ATTR
    /// (KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET); nil where KVM lacks it.
    public func tscOffset() -> Int64? {
        var offset: UInt64 = 0
        return withUnsafeMutablePointer(to: &offset) { pointer -> Int64? in
            var attr = kvm_device_attr(flags: 0, group: CKVM_VCPU_TSC_CTRL, attr: CKVM_VCPU_TSC_OFFSET, addr: UInt64(UInt(bitPattern: pointer)))
            guard ckvm_ioctl_ptr(fd.raw, CKVM_HAS_DEVICE_ATTR, &attr) == 0, ckvm_ioctl_ptr(fd.raw, CKVM_GET_DEVICE_ATTR, &attr) == 0 else { return nil }
            return Int64(bitPattern: pointer.pointee)
        }
    }

    /// Sets guest TSC = host TSC + `offset` (KVM_SET_DEVICE_ATTR with
    /// KVM_VCPU_TSC_OFFSET) where KVM has the attribute; otherwise writes
    /// IA32_TSC = host TSC now + offset (off by one ioctl's time). Returns
    /// which way it was done.
    @discardableResult
    public func setTSCOffset(_ offset: Int64) throws(KVMError) -> String {
        var value = UInt64(bitPattern: offset)
        let exact = withUnsafeMutablePointer(to: &value) { pointer -> Bool in
            var attr = kvm_device_attr(flags: 0, group: CKVM_VCPU_TSC_CTRL, attr: CKVM_VCPU_TSC_OFFSET, addr: UInt64(UInt(bitPattern: pointer)))
            return ckvm_ioctl_ptr(fd.raw, CKVM_HAS_DEVICE_ATTR, &attr) == 0 && ckvm_ioctl_ptr(fd.raw, CKVM_SET_DEVICE_ATTR, &attr) == 0
        }
        if exact { return "KVM_VCPU_TSC_OFFSET" }
        var buffer = MSRBuffer([VCPUState.MSR(index: VCPU.tscMSR, value: host_rdtsc() &+ UInt64(bitPattern: offset))])
        guard buffer.call(fd.raw, CKVM_SET_MSRS) == 1 else { throw KVMError.last("KVM_SET_MSRS(vCPU \(id), IA32_TSC)") }
        return "IA32_TSC"
    }

    /// One fixed-size struct in or out of the vCPU.
    private func call<T: BitwiseCopyable>(_ request: UInt, _ value: inout T, _ name: String) throws(KVMError) {
        _ = try fd.ioctl(request, &value, "\(name)(vCPU \(id))")
    }
}

/// struct kvm_msrs with its entries, laid out as the kernel reads it:
/// nmsrs, pad, then {index, reserved, data} per MSR.
private struct MSRBuffer {
    var words: [UInt64]

    init(_ msrs: [VCPUState.MSR]) {
        words = [UInt64(msrs.count)]
        for msr in msrs { words += [UInt64(msr.index), msr.value] }
    }

    /// The ioctl's result: how many entries it processed, or -1.
    mutating func call(_ fd: Int32, _ request: UInt) -> Int32 {
        words.withUnsafeMutableBytes { ckvm_ioctl_ptr(fd, request, $0.baseAddress) }
    }

    var entries: [VCPUState.MSR] {
        stride(from: 1, to: words.count, by: 2).map { VCPUState.MSR(index: UInt32(truncatingIfNeeded: words[$0]), value: words[$0 + 1]) }
    }
}
