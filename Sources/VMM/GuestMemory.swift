import CHost
import Glibc
import KVM

/// A host mapping that backs guest memory, unmapped (and its hugetlb pages
/// returned to the pool) when released.
public final class GuestMemory: @unchecked Sendable {
    // @unchecked: the mapping is fixed after init; `mapped` changes only on the thread that unmaps it.
    public let backing: Backing
    public let size: UInt64
    /// Where the mapping starts, for VMM alone (memslots, windows): valid
    /// for `size` bytes until unmap() or release, and whoever hands it to
    /// KVM keeps this GuestMemory alive at least as long as the slot.
    let base: UnsafeMutableRawPointer
    private let mappedSize: Int
    private let mappedBase: UnsafeMutableRawPointer
    private var mapped = true

    public init(size: UInt64, backing: Backing) throws(KVMError) {
        guard size > 0, size % backing.pageSize == 0 else {
            throw KVMError("allocate \(size) bytes of \(backing.rawValue) memory", errno: EINVAL,
                           hint: "\(backing.rawValue) needs a multiple of \(Sizes.format(backing.pageSize))")
        }
        if backing.isHugetlb { try HugetlbPool.require(pages: size / backing.pageSize, pageSize: backing.pageSize, backing: backing) }
        self.backing = backing
        self.size = size
        let mapping = switch backing {
        case .anonymous, .anonymousTHP: try GuestMemory.mapAnonymous(size, backing: backing)
        case .anonymousHugetlb2MB, .anonymousHugetlb1GB: try GuestMemory.mapHugetlb(size, backing: backing)
        case .shmem, .sharedHugetlb: try GuestMemory.mapShared(size, backing: backing)
        }
        (mappedBase, mappedSize, base) = mapping
    }

    private typealias Mapping = (mappedBase: UnsafeMutableRawPointer, mappedSize: Int, base: UnsafeMutableRawPointer)
    private static let protection = PROT_READ | PROT_WRITE

    /// Private anonymous memory; THP over-maps by 2 MiB and uses an aligned window.
    private static func mapAnonymous(_ size: UInt64, backing: Backing) throws(KVMError) -> Mapping {
        let extra = backing == .anonymousTHP ? Int(backing.pageSize) : 0
        let mappedSize = Int(size) + extra
        guard let raw = mmap(nil, mappedSize, protection, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0), raw != MAP_FAILED else {
            throw KVMError.last("mmap \(Sizes.format(size)) anonymous")
        }
        let aligned = (UInt(bitPattern: raw) + UInt(extra) - 1) / UInt(max(extra, 1)) * UInt(max(extra, 1))
        let base = UnsafeMutableRawPointer(bitPattern: extra == 0 ? UInt(bitPattern: raw) : aligned)!
        // Like the selftests: plain anonymous memory opts out of THP so
        // that the two backings differ even where THP is "always".
        madvise(base, Int(size), backing == .anonymousTHP ? MADV_HUGEPAGE : MADV_NOHUGEPAGE)
        return (raw, mappedSize, base)
    }

    /// Private hugetlb pages of the backing's size, from the host's pool.
    private static func mapHugetlb(_ size: UInt64, backing: Backing) throws(KVMError) -> Mapping {
        let log2 = backing == .anonymousHugetlb1GB ? 30 : 21
        guard let raw = mmap(nil, Int(size), protection, MAP_PRIVATE | MAP_ANONYMOUS | host_map_hugetlb_flags(Int32(log2)), -1, 0), raw != MAP_FAILED else {
            throw KVMError.last("mmap \(Sizes.format(size)) \(backing.rawValue)", hint: HugetlbPool.hint(pageSize: backing.pageSize, pages: size / backing.pageSize))
        }
        return (raw, Int(size), raw)
    }

    /// A shared mapping of a memfd (hugetlb-backed for shared hugetlb).
    private static func mapShared(_ size: UInt64, backing: Backing) throws(KVMError) -> Mapping {
        let flags: UInt32 = backing == .sharedHugetlb ? UInt32(host_memfd_flags_hugetlb(21)) : 0
        let fd = host_memfd("kvmlab-guest", flags | 1 /* MFD_CLOEXEC */)
        guard fd >= 0 else { throw KVMError.last("memfd_create(\(backing.rawValue))") }
        defer { close(fd) }
        guard ftruncate(fd, off_t(size)) == 0 else { throw KVMError.last("ftruncate memfd to \(Sizes.format(size))") }
        guard let raw = mmap(nil, Int(size), protection, MAP_SHARED, fd, 0), raw != MAP_FAILED else {
            throw KVMError.last("mmap \(Sizes.format(size)) \(backing.rawValue)",
                                hint: backing.isHugetlb ? HugetlbPool.hint(pageSize: backing.pageSize, pages: size / backing.pageSize) : nil)
        }
        return (raw, Int(size), raw)
    }

    /// Unmaps now rather than at release (teardown times this step). The
    /// memory must not be used afterwards.
    public func unmap() {
        guard mapped else { return }
        munmap(mappedBase, mappedSize)
        mapped = false
    }

    /// Faults every page in from the host side (MADV_POPULATE_WRITE, 5.14+).
    public func populateWrite() throws(KVMError) {
        guard madvise(base, Int(size), HOST_MADV_POPULATE_WRITE) == 0 else {
            throw KVMError.last("madvise(MADV_POPULATE_WRITE, \(Sizes.format(size)) \(backing.rawValue))",
                                hint: "MADV_POPULATE_WRITE needs Linux 5.14 or later")
        }
    }

    /// Pages of this mapping resident in host memory (mincore), in units of
    /// 4 KiB.
    public func residentPages() -> Int {
        let pages = Int(size / 4096)
        var vector = [UInt8](repeating: 0, count: pages)
        guard mincore(base, Int(size), &vector) == 0 else { return 0 }
        return vector.reduce(0) { $0 + Int($1 & 1) }
    }

    deinit { unmap() }
}
