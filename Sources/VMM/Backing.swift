/// How guest memory is backed on the host (the names dirty_log_perf_test uses).
public enum Backing: String, CaseIterable, Sendable, Codable {
    case anonymous
    case anonymousTHP = "anonymous_thp"
    case anonymousHugetlb2MB = "anonymous_hugetlb_2mb"
    case anonymousHugetlb1GB = "anonymous_hugetlb_1gb"
    case shmem
    case sharedHugetlb = "shared_hugetlb"

    /// The host page size the backing is allocated in.
    public var pageSize: UInt64 {
        switch self {
        case .anonymous, .shmem: return 4096
        case .anonymousTHP, .anonymousHugetlb2MB, .sharedHugetlb: return 2 << 20
        case .anonymousHugetlb1GB: return 1 << 30
        }
    }

    public var isHugetlb: Bool {
        switch self {
        case .anonymousHugetlb2MB, .anonymousHugetlb1GB, .sharedHugetlb: return true
        default: return false
        }
    }

    public var isShared: Bool { self == .shmem || self == .sharedHugetlb }
}
