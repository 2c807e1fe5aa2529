import CKVM
import Glibc

/// A VM fd: memslots, capabilities enabled on the VM, vCPUs, stats.
public final class VirtualMachine: @unchecked Sendable {
    // @unchecked: immutable after init; every operation is an ioctl, which the kernel serialises.
    /// The /dev/kvm this VM was created from (kept open as long as the VM).
    public let device: KVMDevice
    let fd: FileDescriptor
    let mmapSize: Int

    init(device: KVMDevice, fd: FileDescriptor, mmapSize: Int) {
        self.device = device
        self.fd = fd
        self.mmapSize = mmapSize
    }

    /// The VM fd, for ioctls this type does not wrap (it stays owned here).
    public var rawFD: Int32 { fd.raw }

    /// KVM_CHECK_EXTENSION on the VM fd (answers can differ from /dev/kvm's).
    public func check(_ capability: Capability) -> Int32 {
        max(0, ckvm_ioctl(fd.raw, CKVM_CHECK_EXTENSION, UInt(capability.rawValue)))
    }

    /// KVM_ENABLE_CAP on the VM with up to four arguments; throws (naming the
    /// capability and its arguments) if KVM refuses.
    public func enableCap(_ capability: Capability, _ args: UInt64...) throws(KVMError) {
        var cap = kvm_enable_cap()
        cap.cap = UInt32(capability.rawValue)
        withUnsafeMutableBytes(of: &cap.args) { raw in
            for (index, value) in args.enumerated() { raw.storeBytes(of: value, toByteOffset: index * 8, as: UInt64.self) }
        }
        _ = try fd.ioctl(CKVM_ENABLE_CAP, &cap, "KVM_ENABLE_CAP(\(capability.kernelName), \(args.map { "0x" + String($0, radix: 16) }.joined(separator: ", ")))")
    }

    /// Turns on manual dirty-log protection (KVM_CLEAR_DIRTY_LOG), optionally
    /// with every bit initially set so that enabling logging write-protects nothing.
    public func enableManualDirtyLogProtect(initiallySet: Bool) throws(KVMError) {
        let supported = ManualProtectFlags(rawValue: UInt64(check(.manualDirtyLogProtect2)))
        var wanted: ManualProtectFlags = .enable
        if initiallySet { wanted.insert(.initiallySet) }
        guard supported.isSuperset(of: wanted) else {
            throw KVMError("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2", errno: EOPNOTSUPP,
                           hint: "this kernel supports flags 0x\(String(supported.rawValue, radix: 16)); run without manual protect (-g)")
        }
        try enableCap(.manualDirtyLogProtect2, wanted.rawValue)
    }

    /// Disables x86 quirks (e.g. SLOT_ZAP_ALL) if the kernel allows it.
    public func disableQuirks(_ quirks: [X86Quirk]) throws(KVMError) {
        let mask = quirks.reduce(UInt64(0)) { $0 | $1.mask }
        let supported = UInt64(check(.disableQuirks2))
        guard supported & mask == mask else {
            throw KVMError("KVM_CAP_DISABLE_QUIRKS2", errno: EOPNOTSUPP,
                           hint: "this kernel cannot disable \(X86Quirk.names(in: mask & ~supported).joined(separator: ", "))")
        }
        try enableCap(.disableQuirks2, mask)
    }

    /// KVM_CREATE_IRQCHIP: an in-kernel PIC, IOAPIC and a LAPIC per vCPU
    /// created afterwards. With it, HLT blocks inside KVM (counted by the
    /// halt_* stats) instead of exiting to the host. Call before creating vCPUs.
    public func createIRQChip() throws(KVMError) {
        _ = try fd.ioctl(CKVM_CREATE_IRQCHIP, value: 0, "KVM_CREATE_IRQCHIP")
    }

    /// KVM_CREATE_VCPU with `id`, and its `struct kvm_run` mapped; throws if
    /// either fails (e.g. more vCPUs than KVM_CAP_MAX_VCPUS).
    public func createVCPU(id: Int) throws(KVMError) -> VCPU {
        let raw = try fd.ioctl(CKVM_CREATE_VCPU, value: UInt(id), "KVM_CREATE_VCPU(\(id))")
        return try VCPU(id: id, fd: FileDescriptor(raw), mmapSize: mmapSize)
    }

    /// KVM_SET_USER_MEMORY_REGION: creates, changes, moves or (size 0) deletes
    /// a slot. The caller guarantees that `slot.hostAddress` maps `slot.size`
    /// bytes read-write for as long as the slot exists (KVM keeps only the
    /// address); throws if KVM refuses, with what is wrong for EINVAL.
    public func setMemoryRegion(_ slot: MemorySlot) throws(KVMError) {
        var region = kvm_userspace_memory_region(
            slot: slot.slot, flags: slot.flags.rawValue, guest_phys_addr: slot.guestPhysicalAddress,
            memory_size: slot.size, userspace_addr: UInt64(UInt(bitPattern: slot.hostAddress)))
        _ = try fd.ioctl(CKVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION(slot \(slot.slot))") { err in
            err == EINVAL
                ? "slot \(slot.slot) at GPA 0x\(String(slot.guestPhysicalAddress, radix: 16)) size \(slot.size) is misaligned, overlaps another slot or exceeds KVM_CAP_NR_MEMSLOTS"
                : nil
        }
    }

    /// KVM_SET_USER_MEMORY_REGION with size 0: deletes the slot (KVM zaps its mappings).
    public func deleteMemoryRegion(slot: UInt32) throws(KVMError) {
        try setMemoryRegion(MemorySlot(slot: slot, guestPhysicalAddress: 0, size: 0, hostAddress: nil))
    }

    /// KVM_CREATE_GUEST_MEMFD: `size` bytes of guest memory the host cannot
    /// map (closed when the returned descriptor is released).
    /// KVM_CREATE_GUEST_MEMFD: a file of `size` bytes of guest memory;
    /// `mappable` asks for GUEST_MEMFD_FLAG_MMAP | INIT_SHARED (the host can
    /// map it, and it is shared memory a default VM may bind).
    public func createGuestMemfd(size: UInt64, mappable: Bool = false) throws(KVMError) -> FileDescriptor {
        let flags = mappable ? CKVM_GUEST_MEMFD_FLAG_MMAP | CKVM_GUEST_MEMFD_FLAG_INIT_SHARED : 0
        var request = ckvm_create_guest_memfd(size: size, flags: UInt64(flags), reserved: (0, 0, 0, 0, 0, 0))
        let raw = try fd.ioctl(CKVM_CREATE_GUEST_MEMFD, &request, "KVM_CREATE_GUEST_MEMFD(\(size) bytes, flags 0x\(String(flags, radix: 16)))")
        return FileDescriptor(raw)
    }

    /// KVM_SET_USER_MEMORY_REGION2 with KVM_MEM_GUEST_MEMFD: slot `slot` at
    /// `gpa` backed by `size` bytes of `guestMemfd` from `offset`, and by the
    /// host mapping at `hostAddress` (which must stay mapped while the slot exists).
    public func setGuestMemfdRegion(slot: UInt32, gpa: UInt64, size: UInt64, hostAddress: UnsafeMutableRawPointer,
                                    guestMemfd: FileDescriptor, offset: UInt64) throws(KVMError) {
        var region = ckvm_userspace_memory_region2()
        region.slot = slot
        region.flags = CKVM_MEM_GUEST_MEMFD
        region.guest_phys_addr = gpa
        region.memory_size = size
        region.userspace_addr = UInt64(UInt(bitPattern: hostAddress))
        region.guest_memfd_offset = offset
        region.guest_memfd = UInt32(guestMemfd.raw)
        _ = try fd.ioctl(CKVM_SET_USER_MEMORY_REGION2, &region, "KVM_SET_USER_MEMORY_REGION2(slot \(slot), guest_memfd)") { _ in
            "the VM type must allow guest_memfd, or the file must be shared memory (GUEST_MEMFD_FLAG_INIT_SHARED)"
        }
    }

    /// KVM_GET_STATS_FD on the VM: its binary stats; throws where the kernel has none.
    public func statsFD() throws(KVMError) -> StatsFile {
        let raw = try fd.ioctl(CKVM_GET_STATS_FD, value: 0, "KVM_GET_STATS_FD(vm)") { _ in "this kernel has no binary stats (KVM_CAP_BINARY_STATS_FD)" }
        return try StatsFile(fd: FileDescriptor(raw))
    }
}
