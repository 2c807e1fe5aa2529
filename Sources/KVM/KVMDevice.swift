import CKVM
import Glibc

/// /dev/kvm: the system fd that answers capability questions and creates VMs.
public final class KVMDevice: @unchecked Sendable {
    // @unchecked: immutable after init; every operation is an ioctl.
    /// The device node this was opened from.
    public let path: String
    let fd: FileDescriptor

    /// Opens the KVM device read-write (O_CLOEXEC); throws a KVMError whose hint
    /// says what to do (no KVM module loaded, no permission).
    public init(path: String = "/dev/kvm") throws(KVMError) {
        self.path = path
        let raw = ckvm_open(path, O_RDWR)
        guard raw >= 0 else {
            let err = Glibc.errno
            let hint: String
            switch err {
            case ENOENT: hint = "this host has no KVM; load kvm_intel, kvm_amd or kvm_pvm, or run on a KVM host"
            case EACCES, EPERM: hint = "run as root or join the kvm group"
            default: hint = "check that \(path) is the KVM device"
            }
            throw KVMError("open \(path)", errno: err, hint: hint)
        }
        fd = FileDescriptor(raw)
    }

    /// KVM_GET_API_VERSION: 12 on every kernel since 2.6.22; -1 if the ioctl fails.
    public var apiVersion: Int32 { ckvm_ioctl(fd.raw, CKVM_GET_API_VERSION, 0) }

    /// KVM_CHECK_EXTENSION on /dev/kvm; 0 where unsupported (never negative).
    public func check(_ capability: Capability) -> Int32 {
        max(0, ckvm_ioctl(fd.raw, CKVM_CHECK_EXTENSION, UInt(capability.rawValue)))
    }

    /// KVM_GET_VCPU_MMAP_SIZE: the bytes of each vCPU's shared `struct kvm_run`
    /// mapping (with the pages after it); throws if the ioctl fails.
    public func vcpuMmapSize() throws(KVMError) -> Int {
        let size = try fd.ioctl(CKVM_GET_VCPU_MMAP_SIZE, value: 0, "KVM_GET_VCPU_MMAP_SIZE")
        guard size > 0 else { throw KVMError("KVM_GET_VCPU_MMAP_SIZE", errno: EINVAL, hint: "KVM reported a size of \(size)") }
        return Int(size)
    }

    /// The most vCPUs a VM may have: KVM_CAP_MAX_VCPUS, or NR_VCPUS on old kernels.
    public var maxVCPUs: Int {
        let max = check(.maxVCPUs)
        return Int(max > 0 ? max : check(.nrVCPUs))
    }

    /// Dirty ring sizes KVM accepts, in entries: at least one host page of
    /// `struct kvm_dirty_gfn`, at most KVM_CAP_DIRTY_LOG_RING bytes' worth;
    /// zero maximum where there is no dirty ring.
    public var dirtyRingLimits: (minEntries: Int, maxEntries: Int) {
        let entry = MemoryLayout<kvm_dirty_gfn>.stride
        return (Int(getpagesize()) / entry, Int(check(.dirtyLogRing)) / entry)
    }

    /// Whether KVM_CAP_DISABLE_QUIRKS2 can turn `quirk` off on this host.
    public func canDisable(_ quirk: X86Quirk) -> Bool {
        UInt64(UInt32(bitPattern: check(.disableQuirks2))) & quirk.mask != 0
    }

    /// KVM_CREATE_VM with machine type `type` (0: the default VM): the new VM's
    /// fd, wrapped. Throws on failure, with a hint for a rejected type.
    public func createVM(type: UInt = 0) throws(KVMError) -> VirtualMachine {
        let raw = try fd.ioctl(CKVM_CREATE_VM, value: type, "KVM_CREATE_VM") { $0 == EINVAL ? "this host's KVM rejects the VM type" : nil }
        return try VirtualMachine(device: self, fd: FileDescriptor(raw), mmapSize: vcpuMmapSize())
    }

    /// The CPUID leaves KVM can expose, for KVM_SET_CPUID2.
    public func supportedCPUID() throws(KVMError) -> CPUIDTable {
        var entries = 128
        while true {
            let table = CPUIDTable(capacity: entries)
            if ckvm_ioctl_ptr(fd.raw, CKVM_GET_SUPPORTED_CPUID, table.pointer) == 0 { return table }
            guard Glibc.errno == E2BIG, entries < 4096 else { throw KVMError.last("KVM_GET_SUPPORTED_CPUID") }
            entries *= 2
        }
    }
}
