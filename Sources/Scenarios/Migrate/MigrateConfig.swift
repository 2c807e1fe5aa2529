import VMM

/// How the source finds the pages dirtied during a round.
public enum DirtyTrack: String, CaseIterable, Sendable, Codable {
    /// KVM_GET_DIRTY_LOG without manual protect: each get re-protects the slot.
    case bitmap
    /// Manual protect with initially-set bits: get, then KVM_CLEAR_DIRTY_LOG
    /// one chunk at a time just before those pages are sent (as QEMU does).
    case manual
    /// Per-vCPU dirty rings, collected and reset with KVM_RESET_DIRTY_RINGS.
    case ring
}

/// `kvmlab migrate`'s settings: the workload, the migration and the checks.
public struct MigrateConfig: Sendable {
    /// Dirtying vCPUs, each writing its own `bytesPerVCPU` region.
    public var vcpus = 2
    /// vCPUs that compute without writing memory.
    public var idleVCPUs = 0
    public var bytesPerVCPU: UInt64 = 64 << 20
    public var backing: Backing = .anonymous
    /// Pages per second each dirtying vCPU writes; nil: as fast as it can.
    public var dirtyRate: Double? = 20_000
    public var random = false
    /// Percent of each region written after the first pass (the hot set).
    public var hotSetPercent = 100.0
    public var track: DirtyTrack = .bitmap
    /// Pages per KVM_CLEAR_DIRTY_LOG call in manual mode (a multiple of 64).
    public var clearChunk = 4096
    public var ringEntries = 4096
    /// Bytes per second the stream may use; nil: unlimited.
    public var bandwidth: Double?
    public var downtimeLimit = 0.3
    public var maxRounds = 30
    public var abortIfNotConverged = false
    /// Seconds of workload measured before tracking starts.
    public var baselineSeconds = 0.5
    /// Seconds the workload runs on the destination before it verifies.
    public var afterSeconds = 0.5
    /// Timeline slot length and the stall threshold, seconds.
    public var slotSeconds = 0.01
    public var stallThreshold = 100e-6
    /// Check a digest of all memory on the destination before it resumes
    /// (its time is part of the downtime; reported separately).
    public var digest = true
    public var pin: [Int] = []
    /// auto-converge or dirty-limit; nil: the guest is never slowed.
    public var throttle: ThrottlePolicy?
    /// Where the destination listens.
    public var destination: SocketAddress?

    public init() {}

    /// The dirtying and idle vCPU counts migrate takes (its command bounds -v and --idle-vcpus with them).
    public static let vcpuLimit = 1...256
    public static let idleVCPULimit = 0...256
    /// Bounds that keep every product of them finite: 1 TiB per vCPU, 1 TiB/s.
    public static let maxBytesPerVCPU: UInt64 = 1 << 40
    public static let maxBandwidth = Double(UInt64(1) << 40)

    public var totalVCPUs: Int { vcpus + idleVCPUs }
    public var testMemory: UInt64 { bytesPerVCPU * UInt64(vcpus) }

    /// The settings that make two runs comparable.
    public var described: [String: String] {
        [
            "vcpus": "\(vcpus)", "idle_vcpus": "\(idleVCPUs)", "bytes_per_vcpu": "\(bytesPerVCPU)", "backing": backing.rawValue,
            "dirty_rate": dirtyRate.map { "\(Int($0))" } ?? "unlimited", "access": random ? "random" : "sequential",
            "hot_set_percent": "\(hotSetPercent)", "dirty_track": track.rawValue,
            "clear_chunk": track == .manual ? "\(clearChunk)" : "-", "ring_entries": track == .ring ? "\(ringEntries)" : "-",
            "bandwidth": bandwidth.map { "\(Int($0))" } ?? "unlimited", "downtime_limit": "\(downtimeLimit)",
            "max_rounds": "\(maxRounds)", "digest": "\(digest)", "throttle": throttleDescription,
        ]
    }

    var throttleDescription: String {
        switch throttle {
        case nil: return "none"
        case .autoConverge(let initial, let step)?: return "auto-converge \(initial)+\(step)"
        case .dirtyLimit(let limit)?: return "dirty-limit \(Int(limit))"
        }
    }

    /// Rejects settings no run can satisfy, with the bound.
    public func validate() throws(ConfigError) {
        guard MigrateConfig.vcpuLimit.contains(vcpus) else { throw ConfigError.vcpus(vcpus, MigrateConfig.vcpuLimit) }
        guard MigrateConfig.idleVCPULimit.contains(idleVCPUs) else {
            throw ConfigError("\(field: "idleVCPUs") must be between \(MigrateConfig.idleVCPULimit.lowerBound) and \(MigrateConfig.idleVCPULimit.upperBound), not \(idleVCPUs)")
        }
        guard bytesPerVCPU <= MigrateConfig.maxBytesPerVCPU else {
            throw ConfigError("\(field: "bytesPerVCPU") \(Sizes.format(bytesPerVCPU)) exceeds \(Sizes.format(MigrateConfig.maxBytesPerVCPU))")
        }
        if let bandwidth, !(bandwidth >= 1 && bandwidth <= MigrateConfig.maxBandwidth) {
            throw ConfigError("\(field: "bandwidth") \(bandwidth) bytes/s is outside 1 byte/s to \(Sizes.format(UInt64(MigrateConfig.maxBandwidth)))/s")
        }
        let page = backing.pageSize
        guard bytesPerVCPU >= page, bytesPerVCPU % page == 0 else {
            throw ConfigError("\(field: "bytesPerVCPU") \(Sizes.format(bytesPerVCPU)) must be a whole number of \(Sizes.format(page)) pages for \(backing.rawValue)")
        }
        guard clearChunk >= 64, clearChunk % 64 == 0, clearChunk <= 1 << 20 else {
            throw ConfigError("\(field: "clearChunk") \(clearChunk): KVM_CLEAR_DIRTY_LOG takes multiples of 64 pages (64 to 1048576)")
        }
        if case .dirtyLimit = throttle, track != .ring {
            throw ConfigError("\(field: "throttle") dirty-limit needs \(field: "track") ring: it measures each vCPU's dirty rate from its dirty ring")
        }
        guard ringEntries >= 512, ringEntries <= 65536, ringEntries & (ringEntries - 1) == 0 else {
            throw ConfigError("\(field: "ringEntries") \(ringEntries): a power of two from 512 to 65536")
        }
    }
}
