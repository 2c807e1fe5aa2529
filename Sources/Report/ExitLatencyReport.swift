import Scenarios
import VMM

/// `kvmlab exit-latency` as text and JSON.
public struct ExitLatencySummary: Encodable, Sendable {
    public let vcpus: Int
    public let cpl: Int
    public let exits: Int
    public let setupSeconds: Double
    public let seconds: Double
    /// Exit round trips per second over all vCPUs.
    public let exitsPerSecond: Double
    /// Wall time divided by exits per vCPU: what one round trip costs.
    public let secondsPerExit: Double
    public let roundTripSeconds: Percentiles?
    public let guestExits: [UInt64]
    public let status: OutcomeKind

    public init(_ result: ExitLatencyResult) {
        vcpus = result.config.vcpus
        cpl = result.config.cpl.rawValue
        exits = result.totalExits
        setupSeconds = result.setupSeconds
        seconds = result.seconds
        exitsPerSecond = Double(result.totalExits) / result.seconds
        secondsPerExit = result.seconds / Double(result.config.exits)
        roundTripSeconds = Percentiles(result.roundTrips)
        guestExits = result.guestExits
        status = result.outcomes.worst
    }

    public var text: String {
        var out = keyValues(nil, [
            ("vm", "\(vcpus) vCPUs, guest at CPL\(cpl)"),
            ("exits", "\(exits) (\(Format.fixed(exitsPerSecond, 0))/s)"),
            ("per exit", "\(Format.micros(secondsPerExit)) µs (wall time / exits per vCPU)"),
            ("setup", "\(Format.seconds(setupSeconds)) s"),
            ("vCPUs", status.rawValue),
        ])
        if let p = roundTripSeconds {
            var table = Table(title: "\nRound trip (µs)", headers: ["p50", "p90", "p99", "p99.9", "max", "mean"])
            table.add([p.p50, p.p90, p.p99, p.p999, p.max, p.mean].map(Format.micros))
            out += table.render()
        }
        return out
    }
}

/// `kvmlab exit-latency`: the summary is both the table and the JSON detail.
public enum ExitLatencyReport: ExperimentReport {
    public static func detail(_ result: ExitLatencyResult) -> ExitLatencySummary { ExitLatencySummary(result) }
    public static func text(_ result: ExitLatencyResult) -> String { ExitLatencySummary(result).text + ExperimentFooter.text(result.experiment) }
}
