/// A request that cannot be satisfied as asked: bad sizes, too many vCPUs or
/// slots. The CLI reports these as usage errors (exit status 2).
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The host refused something kvmlab needed while running (a thread, a
/// file): a runtime failure (exit status 1), not a bad request.
public struct HostError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
