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

    /// Seconds that `body` took.
    public static func seconds(of body: () throws -> Void) rethrows -> Double {
        let clock = Stopwatch()
        try body()
        return clock.seconds
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `nanos` (absolute), through signals.
    public static func sleep(until nanos: UInt64) {
        var spec = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &spec, nil) == EINTR {}
    }

    public static func sleep(seconds: Double) { sleep(until: now() + UInt64(max(0, seconds) * 1e9)) }
}

/// Wall-clock time, for stamps other programs read (Prometheus, file names).
public enum HostClock {
    public static func unixTime() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}
