import Synchronization
import VMM

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

/// A pin list: CPUs for the vCPUs (round robin) and, if it names one more
/// CPU than there are vCPUs, the main thread's CPU last (as the selftests do).
struct PinPlan {
    let vcpus: [Int]
    let main: Int?

    init(_ pin: [Int], vcpus count: Int) throws {
        try PinPlan.checkCPUs(pin)
        if pin.count > count + 1 {
            throw ConfigError("\(field: "pin") lists \(pin.count) CPUs: give one per vCPU (\(count)) and optionally one more for the main thread")
        }
        main = pin.count == count + 1 ? pin.last : nil
        vcpus = main == nil ? pin : Array(pin.dropLast())
    }

    /// Every CPU named must be online; `field` is the setting that named them.
    static func checkCPUs(_ pin: [Int], field: String = "pin") throws {
        let cpus = Resources.onlineCPUs
        if let bad = pin.first(where: { $0 >= cpus }) { throw ConfigError("\(field: field) names CPU \(bad), but this host has CPUs 0-\(cpus - 1)") }
    }
}

