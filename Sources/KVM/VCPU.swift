import CKVM
import Glibc

/// A vCPU fd and its shared `struct kvm_run`.
public final class VCPU: @unchecked Sendable {
    // @unchecked: kvm_run is touched by its vCPU thread only, except immediate_exit (an atomic store).
    /// The vCPU id passed to KVM_CREATE_VCPU (its APIC id here).
    public let id: Int
    let fd: FileDescriptor
    let run: UnsafeMutablePointer<kvm_run>
    let mmapSize: Int

    init(id: Int, fd: FileDescriptor, mmapSize: Int) throws(KVMError) {
        self.id = id
        self.fd = fd
        self.mmapSize = mmapSize
        guard let map = mmap(nil, mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.raw, 0), map != MAP_FAILED else {
            throw KVMError.last("mmap(vCPU \(id) kvm_run)")
        }
        run = map.assumingMemoryBound(to: kvm_run.self)
    }

    deinit { munmap(run, mmapSize) }

    /// The vCPU fd, for ioctls this type does not wrap (it stays owned here).
    public var rawFD: Int32 { fd.raw }

    /// KVM_RUN, and why it returned.
    public func enter() throws(KVMError) -> VCPUExit {
        if ckvm_ioctl(fd.raw, CKVM_RUN, 0) == 0 { return decodeExit() }
        let err = Glibc.errno
        if err == EINTR || err == EAGAIN { return .interrupted }
        throw KVMError("KVM_RUN(vCPU \(id))", errno: err)
    }

    /// Makes the next (or current, after a signal) KVM_RUN return EINTR.
    /// Safe from any thread: an atomic release store (see ckvm.h).
    public func setImmediateExit(_ on: Bool) { ckvm_set_immediate_exit(run, on ? 1 : 0) }

    /// Answers an MMIO read that no device serves: the guest reads zeroes.
    public func completeMMIOReadWithZeroes() {
        _ = withUnsafeMutableBytes(of: &run.pointee.mmio.data) { $0.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    /// KVM_GET_REGS: the general-purpose registers, RIP and RFLAGS; throws if the ioctl fails.
    public func getRegisters() throws(KVMError) -> kvm_regs {
        var regs = kvm_regs()
        _ = try fd.ioctl(CKVM_GET_REGS, &regs, "KVM_GET_REGS(vCPU \(id))")
        return regs
    }

    /// KVM_SET_REGS: loads the general-purpose registers, RIP and RFLAGS; throws if refused.
    public func setRegisters(_ regs: kvm_regs) throws(KVMError) {
        var copy = regs
        _ = try fd.ioctl(CKVM_SET_REGS, &copy, "KVM_SET_REGS(vCPU \(id))")
    }

    /// KVM_GET_SREGS: segment, descriptor-table and control registers, EFER, APIC base; throws if the ioctl fails.
    public func getSpecialRegisters() throws(KVMError) -> kvm_sregs {
        var sregs = kvm_sregs()
        _ = try fd.ioctl(CKVM_GET_SREGS, &sregs, "KVM_GET_SREGS(vCPU \(id))")
        return sregs
    }

    /// KVM_SET_SREGS: loads them (the mode the vCPU runs in); throws if KVM rejects the state.
    public func setSpecialRegisters(_ sregs: kvm_sregs) throws(KVMError) {
        var copy = sregs
        _ = try fd.ioctl(CKVM_SET_SREGS, &copy, "KVM_SET_SREGS(vCPU \(id))") { _ in "the long-mode state was rejected by this host's KVM" }
    }

    /// KVM_SET_CPUID2: the CPUID leaves the guest sees; throws if refused.
    public func setCPUID(_ table: CPUIDTable) throws(KVMError) {
        _ = try fd.ioctl(CKVM_SET_CPUID2, UnsafeMutableRawPointer(table.pointer), "KVM_SET_CPUID2(vCPU \(id))")
    }

    /// KVM_PRE_FAULT_MEMORY: maps [gpa, gpa + size) in the MMU as if this
    /// vCPU had faulted on it. The kernel may stop early (EINTR, EAGAIN, or
    /// a partial return); the call resumes where it stopped.
    public func preFault(gpa: UInt64, size: UInt64) throws(KVMError) {
        var range = ckvm_pre_fault_memory(gpa: gpa, size: size, flags: 0, padding: (0, 0, 0, 0, 0))
        while range.size > 0 {
            if ckvm_ioctl_ptr(fd.raw, CKVM_PRE_FAULT_MEMORY, &range) == 0 { continue }
            let err = Glibc.errno
            if err == EINTR || err == EAGAIN { continue }
            throw KVMError("KVM_PRE_FAULT_MEMORY(vCPU \(id), GPA 0x\(String(range.gpa, radix: 16)), \(range.size) bytes)", errno: err,
                           hint: err == EOPNOTSUPP ? "this host's MMU cannot pre-fault (it needs the TDP MMU)" : nil)
        }
    }

    /// KVM_GET_TSC_KHZ: the guest TSC's rate in kHz; nil where KVM cannot say.
    public var tscKHz: Int? {
        let khz = ckvm_ioctl(fd.raw, CKVM_GET_TSC_KHZ, 0)
        return khz > 0 ? Int(khz) : nil
    }

    /// KVM_GET_STATS_FD on the vCPU: its binary stats (KVM_CAP_BINARY_STATS_FD);
    /// throws where the kernel has none. It takes the vCPU's mutex: open it
    /// before the vCPU runs.
    public func statsFD() throws(KVMError) -> StatsFile {
        let raw = try fd.ioctl(CKVM_GET_STATS_FD, value: 0, "KVM_GET_STATS_FD(vCPU \(id))")
        return try StatsFile(fd: FileDescriptor(raw))
    }
}

extension VCPU {
    /// guest TSC - host TSC, measured with KVM_GET_MSRS(IA32_TSC) between two
    /// host TSC reads (best of `tries`, so the error is one short ioctl).
    public func guestTSCOffset(tries: Int = 16) throws(KVMError) -> (offset: Int64, uncertainty: UInt64) {
        var best: (Int64, UInt64)?
        for _ in 0..<tries {
            var guest: UInt64 = 0, before: UInt64 = 0, after: UInt64 = 0
            guard ckvm_guest_tsc(fd.raw, &guest, &before, &after) == 0 else { throw KVMError.last("KVM_GET_MSRS(IA32_TSC) on vCPU \(id)") }
            let window = after &- before
            let offset = Int64(bitPattern: guest &- (before &+ window / 2))
            if best == nil || window < best!.1 { best = (offset, window) }
        }
        return (best!.0, best!.1)
    }
}
