import Glibc

/// Monotonic elapsed time.
public struct Stopwatch: Sendable {
    public let start: UInt64 = Stopwatch.now()

    public init() {}

    public static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    public var nanoseconds: UInt64 { Stopwatch.now() - start }
    public var seconds: Double { Double(nanoseconds) / 1e9 }
}
