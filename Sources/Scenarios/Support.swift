import Glibc
import Synchronization
import VMM

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

/// Passes serial lines on while counting them.
final class LineCounter: Sendable {
    private let lines = Atomic<Int>(0)
    private let downstream: SerialConsole.Sink

    init(sink: @escaping SerialConsole.Sink) { downstream = sink }

    var count: Int { lines.load(ordering: .acquiring) }

    var sink: SerialConsole.Sink {
        { [self] vcpu, line in
            lines.add(1, ordering: .relaxed)
            downstream(vcpu, line)
        }
    }
}
