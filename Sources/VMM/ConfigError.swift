/// A request that cannot be satisfied as asked: bad sizes, too many vCPUs or
/// slots. The CLI reports these as usage errors (exit status 2).
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// A vCPU count outside what an experiment takes.
    public static func vcpus(_ count: Int, _ limit: ClosedRange<Int>) -> ConfigError {
        ConfigError("vCPUs must be between \(limit.lowerBound) and \(limit.upperBound), not \(count)")
    }
}

/// The host refused something kvmlab needed while running (a thread, a
/// file): a runtime failure (exit status 1), not a bad request.
public struct HostError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A capability this host's KVM lacks (no dirty ring, a quirk it cannot
/// disable). The CLI reports it like a request that cannot be satisfied
/// (exit status 2); `kvmlab check` reports it as a SKIP that names it,
/// while a check's own bad request (a ConfigError) fails.
public struct HostLacks: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
