import Glibc
import KVM

/// The host's hugetlb pools under /sys/kernel/mm/hugepages.
public enum HugetlbPool {
    public struct Pool: Sendable, Equatable, Codable {
        public let pageSize: UInt64
        public let total: Int
        public let free: Int
    }

    static func directory(pageSize: UInt64) -> String { "/sys/kernel/mm/hugepages/hugepages-\(pageSize / 1024)kB" }

    public static func pool(pageSize: UInt64) -> Pool? {
        let dir = directory(pageSize: pageSize)
        guard let total = HostFiles.integer(dir + "/nr_hugepages"), let free = HostFiles.integer(dir + "/free_hugepages") else { return nil }
        return Pool(pageSize: pageSize, total: total, free: free)
    }

    public static var pools: [Pool] { [2 << 20, 1 << 30].compactMap { pool(pageSize: $0) } }

    static func hint(pageSize: UInt64, pages: UInt64) -> String {
        pageSize == 1 << 30
            ? "reserve 1 GiB pages: echo \(pages) > \(directory(pageSize: pageSize))/nr_hugepages (or boot with hugepagesz=1G hugepages=\(pages))"
            : "reserve 2 MiB pages: echo \(pages) > /proc/sys/vm/nr_hugepages"
    }

    /// Fails before any mapping when the pool cannot hold the request.
    static func require(pages: UInt64, pageSize: UInt64, backing: Backing) throws(KVMError) {
        let free = pool(pageSize: pageSize)?.free ?? 0
        guard UInt64(free) >= pages else {
            throw KVMError("reserve \(pages) \(Sizes.format(pageSize)) hugetlb pages for \(backing.rawValue)",
                           errno: ENOMEM, hint: "the pool has \(free) free; " + hint(pageSize: pageSize, pages: pages))
        }
    }

    /// Sets the pool size (root only); returns the size now in force.
    @discardableResult
    public static func setTotal(_ pages: Int, pageSize: UInt64) -> Int? {
        let path = directory(pageSize: pageSize) + "/nr_hugepages"
        guard HostFiles.write(path, "\(pages)\n") else { return nil }
        return HostFiles.integer(path)
    }
}
