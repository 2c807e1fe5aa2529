import CHost
import CKVM
import Glibc

/// A vCPU's dirty ring (KVM_CAP_DIRTY_LOG_RING): KVM pushes one
/// `struct kvm_dirty_gfn` per page the vCPU dirtied; the host collects
/// entries in order, marks each for reset, then calls KVM_RESET_DIRTY_RINGS.
public final class DirtyRing: @unchecked Sendable {
    // @unchecked: `next` is advanced by one harvesting thread at a time (the main thread, or the vCPU whose ring filled while the main thread waits).
    /// Entries in the ring (a power of two, as KVM_CAP_DIRTY_LOG_RING was enabled with).
    public let entries: Int
    private let base: UnsafeMutablePointer<kvm_dirty_gfn>
    private let bytes: Int
    /// Next entry to look at; only the harvesting thread touches it.
    private var next: UInt64 = 0

    /// Maps `vcpu`'s ring (mmap of the vCPU fd at KVM_DIRTY_LOG_PAGE_OFFSET);
    /// throws if the ring was not enabled before the vCPU was created.
    public init(vcpu: VCPU, entries: Int) throws(KVMError) {
        self.entries = entries
        bytes = entries * MemoryLayout<kvm_dirty_gfn>.stride
        let offset = off_t(KVM_DIRTY_LOG_PAGE_OFFSET) * off_t(sysconf(Int32(_SC_PAGESIZE)))
        guard let map = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu.rawFD, offset), map != MAP_FAILED else {
            throw KVMError.last("mmap dirty ring of vCPU \(vcpu.id)", hint: "enable KVM_CAP_DIRTY_LOG_RING before creating vCPUs")
        }
        base = map.assumingMemoryBound(to: kvm_dirty_gfn.self)
    }

    deinit { munmap(base, bytes) }

    /// Collects every published entry as (slot, page offset in slot) and
    /// marks it for reset. The caller then resets the rings on the VM. At
    /// most one ring's worth per call: a ring cannot hold more between
    /// resets, and a ring whose flags never clear must not spin the caller.
    public func harvest(_ body: (_ slot: UInt32, _ page: UInt64) -> Void) -> Int {
        var count = 0
        while count < entries {
            let entry = base + Int(next % UInt64(entries))
            let flags = host_load_u32(&entry.pointee.flags)
            guard flags & CKVM_DIRTY_GFN_F_DIRTY != 0 else { break }
            body(entry.pointee.slot & 0xFFFF, entry.pointee.offset)
            host_store_u32(&entry.pointee.flags, CKVM_DIRTY_GFN_F_RESET)
            next += 1
            count += 1
        }
        return count
    }
}

extension VirtualMachine {
    /// Sizes a ring in bytes for KVM_ENABLE_CAP: entries must be a power of two.
    public static func dirtyRingBytes(entries: Int) -> UInt64 { UInt64(entries * MemoryLayout<kvm_dirty_gfn>.stride) }

    /// KVM_RESET_DIRTY_RINGS: re-protects every page whose entry was marked.
    @discardableResult
    public func resetDirtyRings() throws(KVMError) -> Int {
        Int(try fd.ioctl(CKVM_RESET_DIRTY_RINGS, value: 0, "KVM_RESET_DIRTY_RINGS"))
    }
}
