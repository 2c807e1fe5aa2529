import CHost
import Glibc
import KVM

/// Guest memory in a guest_memfd: the file KVM created, mapped by the host
/// (GUEST_MEMFD_FLAG_MMAP), and bound as a memslot (KVM_MEM_GUEST_MEMFD).
public final class GuestMemfdRegion: @unchecked Sendable {
    // @unchecked: fixed after init; the mapping is read and written through GuestSpan only.
    public let gpa: UInt64
    public let size: UInt64
    private let file: FileDescriptor
    private let base: UnsafeMutableRawPointer

    /// Creates `size` bytes of shared guest_memfd memory and binds it as
    /// `slot` at `gpa` (which the guest's identity map must cover).
    public init(vm: VirtualMachine, slot: UInt32, gpa: UInt64, size: UInt64) throws(KVMError) {
        self.gpa = gpa
        self.size = size
        file = try vm.createGuestMemfd(size: size, mappable: true)
        guard let map = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_SHARED, file.raw, 0), map != MAP_FAILED else {
            throw KVMError.last("mmap guest_memfd", hint: "this kernel's guest_memfd cannot be mapped (GUEST_MEMFD_FLAG_MMAP)")
        }
        base = map
        do {
            try vm.setGuestMemfdRegion(slot: slot, gpa: gpa, size: size, hostAddress: map, guestMemfd: file, offset: 0)
        } catch {
            munmap(map, Int(size))
            throw error
        }
    }

    deinit { munmap(base, Int(size)) }

    /// The host's view of the memory.
    public var span: GuestSpan { GuestSpan(base: base, bytes: Int(size)) }

    /// fallocate(PUNCH_HOLE) on the file: the pages are freed, and read
    /// back as zero by the host and (once KVM has zapped them) the guest.
    public func punchHole(offset: UInt64, length: UInt64) throws(KVMError) {
        guard host_punch_hole(file.raw, Int64(offset), Int64(length)) == 0 else {
            throw KVMError.last("fallocate(PUNCH_HOLE) on guest_memfd at \(offset), \(length) bytes")
        }
    }
}
