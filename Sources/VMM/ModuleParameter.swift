import Glibc

/// A kernel module parameter under /sys/module/MODULE/parameters/NAME that
/// compare variants set (`param:kvm.eager_page_split=N`).
public struct ModuleParameter: Sendable, Equatable, Hashable {
    public let module: String
    public let name: String

    public var path: String { "/sys/module/\(module)/parameters/\(name)" }
    public var description: String { "\(module).\(name)" }

    /// "kvm.eager_page_split" -> (kvm, eager_page_split).
    public init(_ text: String) throws(ConfigError) {
        let parts = text.split(separator: ".", maxSplits: 1).map(String.init)
        let valid: (String) -> Bool = { !$0.isEmpty && $0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") } }
        guard parts.count == 2, valid(parts[0]), valid(parts[1]) else {
            throw ConfigError("'\(text)' is not a module parameter; write MODULE.NAME, e.g. kvm.eager_page_split")
        }
        module = parts[0]
        name = parts[1]
    }

    public func read() -> String? { HostFiles.trimmed(path) }

    /// Fails, before anything runs, where the parameter is absent or
    /// read-only (mode bits without owner write: sysfs then has no store).
    public func requireWritable() throws(ConfigError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw ConfigError("\(description): no such module parameter (\(path) does not exist)") }
        guard info.st_mode & S_IWUSR != 0 else {
            throw ConfigError("\(description) is read-only on this kernel (\(path) has mode \(String(info.st_mode & 0o777, radix: 8))); it can only be set at module load")
        }
        guard access(path, W_OK) == 0 else { throw ConfigError("\(description): writing \(path) needs root") }
    }

    public func write(_ value: String) throws(HostError) {
        guard HostFiles.write(path, value + "\n") else {
            throw HostError("cannot set \(description) to \(value): \(String(cString: strerror(errno)))")
        }
    }
}

/// Module parameters changed for a while and put back: `restoreAll` runs on
/// success, error and Ctrl-C/SIGTERM alike (the caller calls it from a
/// defer, and from the interrupt hook for a second signal's sake).
public final class ModuleParameterGuard: Sendable {
    private let originals = Locked<[ModuleParameter: String]>([:])

    public init() {}

    /// Sets `parameter`, remembering the value it had the first time.
    public func set(_ parameter: ModuleParameter, to value: String) throws(HostError) {
        guard let current = parameter.read() else { throw HostError("cannot read \(parameter.path)") }
        originals.withLock { if $0[parameter] == nil { $0[parameter] = current } }
        if current != value { try parameter.write(value) }
    }

    /// Writes every original value back; returns the ones that failed.
    @discardableResult
    public func restoreAll() -> [String] {
        let all = originals.withLock { saved in defer { saved = [:] }; return saved }
        var failures: [String] = []
        for (parameter, value) in all where parameter.read() != value {
            do { try parameter.write(value) } catch { failures.append(error.description) }
        }
        return failures
    }
}
