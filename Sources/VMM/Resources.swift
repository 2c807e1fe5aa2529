import Glibc

/// Process limits a large VM runs into.
public enum Resources {
    /// CPUs online now (sysconf), at least 1.
    public static var onlineCPUs: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// Raises RLIMIT_NOFILE so that `needed` descriptors fit (one per vCPU,
    /// plus stats fds); returns false when even the hard limit is too low.
    @discardableResult
    public static func ensureOpenFiles(_ needed: Int) -> Bool {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        let want = rlim_t(needed)
        if limit.rlim_cur >= want { return true }
        if limit.rlim_max < want {
            // Root may raise the hard limit up to fs.nr_open.
            let ceiling = rlim_t(HostFiles.integer("/proc/sys/fs/nr_open") ?? 1_048_576)
            limit.rlim_max = min(max(want, limit.rlim_max), ceiling)
        }
        limit.rlim_cur = min(want, limit.rlim_max)
        return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 && limit.rlim_cur >= want
    }

    /// Fails before any memory is touched when `bytes` exceed the host's RAM.
    public static func requireRAM(_ bytes: UInt64, for what: ConfigError.Message, fix: ConfigError.Message) throws {
        guard let meminfo = HostFiles.read("/proc/meminfo"), let total = memTotal(meminfo), bytes > total else { return }
        throw ConfigError("\(what) = \(Sizes.format(bytes)) exceeds this host's \(Sizes.format(total)) of RAM; \(fix)")
    }

    static func memTotal(_ meminfo: String) -> UInt64? {
        for line in meminfo.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            return line.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }.map { $0 * 1024 }
        }
        return nil
    }
}
