import Scenarios
import VMM

/// `kvmlab teardown` for JSON and text.
public struct TeardownSummary: Encodable, Sendable {
    public struct Step: Encodable, Sendable {
        public let name: String
        public let seconds: Double
        public let residentBytesFreed: Int64
        public let descriptorsClosed: Int
    }

    public struct Window: Encodable, Sendable {
        public let name: String
        public let seconds: Double
        public let gaps: Int
        public let gapSeconds: Percentiles?
        /// Share of the window the probe spent in gaps above the threshold.
        public let offCPUFraction: Double
    }

    public struct Run: Encodable, Sendable {
        public let order: String
        public let populateSeconds: Double
        public let populateStats: StatsDelta?
        public let residentBytes: Int64
        public let steps: [Step]
        public let teardownSeconds: Double
        public let windows: [Window]
        public let probeLoops: UInt64
        public let probeOverflowed: Bool
        /// The TCP flows per window, and why there is none where one was asked for.
        public let flows: [FlowRecord]
        public let victimNote: String?
        public let problem: String?
    }

    public let vcpus: Int
    public let memoryBytes: UInt64
    public let backing: String
    public let cpu: Int
    public let thresholdSeconds: Double
    public let victim: String
    public let controlCPU: Int?
    public let runs: [Run]

    public init(_ result: TeardownResult) {
        vcpus = result.config.vcpus
        memoryBytes = result.config.memory
        backing = result.config.backing.rawValue
        cpu = result.cpu
        thresholdSeconds = result.config.thresholdMicros / 1e6
        victim = result.config.victim.rawValue
        controlCPU = result.config.controlCPU
        runs = result.runs.map { run in
            let windows = run.windows.map { window in
                Window(name: window.name, seconds: window.seconds, gaps: window.gaps.count, gapSeconds: Percentiles(window.gaps),
                       offCPUFraction: window.seconds > 0 ? min(1, window.gaps.reduce(0, +) / window.seconds) : 0)
            }
            return Run(order: run.order.rawValue, populateSeconds: run.populateSeconds, populateStats: run.populateStats,
                       residentBytes: run.residentBytes,
                       steps: run.steps.map { Step(name: $0.name, seconds: $0.seconds, residentBytesFreed: $0.residentBytesFreed, descriptorsClosed: $0.descriptorsClosed) },
                       teardownSeconds: run.teardownSeconds, windows: windows,
                       probeLoops: run.probeLoops, probeOverflowed: run.probeOverflowed, flows: run.flows, victimNote: run.victimNote, problem: run.problem)
        }
    }
}

public enum TeardownReport: ExperimentReport {
    public static func detail(_ result: TeardownResult) -> TeardownSummary { TeardownSummary(result) }

    /// The model's picture, with the TCP flows over time in front where
    /// there were any (the step boundary marked in the teardown window).
    public static func svg(_ result: TeardownResult, host: HostFingerprint) -> String {
        let flows = VictimPlot.panels(result.runs.map { ($0.order.rawValue, $0.flows) }) { order, window in
            guard window == "teardown", let run = result.runs.first(where: { $0.order.rawValue == order }), run.steps.count == 2 else { return [] }
            return [(run.steps[0].seconds, run.steps[1].name.hasPrefix("unmap") ? "unmap" : "destroy VM")]
        }
        return ModelPlot.svg(result.experiment, host: host, extra: flows)
    }

    public static func text(_ result: TeardownResult) -> String {
        let summary = TeardownSummary(result)
        let kind = result.config.victim
        var out = keyValues(nil, [
            ("vm", "\(summary.vcpus) vCPU\(summary.vcpus == 1 ? "" : "s") populate \(Sizes.format(summary.memoryBytes)) \(summary.backing) (one write per 4 KiB page)"),
            kind.probe ? ("probe", "a thread reading the clock in a loop on CPU \(summary.cpu), beside the thread that tears down; gaps above \(Format.micros(summary.thresholdSeconds)) µs are recorded") : nil,
            kind.tcp ? ("tcp victim", "a bulk TCP flow over loopback, sender and receiver on CPU \(summary.cpu); bytes counted per 1 ms slot"
                        + (summary.controlCPU.map { "; a control flow on CPU \($0)" } ?? "")) : nil,
            ("windows", "idle: alone; busy: beside a thread spinning in user space; teardown: beside the teardown"),
        ].compactMap { $0 })
        var steps = Table(title: "\nTeardown steps", headers: ["order", "step", "seconds", "memory freed", "fds closed"])
        for run in summary.runs {
            steps.add([run.order, "populate (guest writes)", Format.seconds(run.populateSeconds), "-", "-"])
            for step in run.steps {
                steps.add([run.order, step.name, Format.seconds(step.seconds), Sizes.format(UInt64(max(0, step.residentBytesFreed))), "\(step.descriptorsClosed)"])
            }
            if !run.steps.isEmpty { steps.add([run.order, "teardown total", Format.seconds(run.teardownSeconds), "", ""]) }
        }
        out += steps.render()
        var gaps = Table(title: "\nThe probe's gaps above the threshold (µs)", headers: ["order", "window", "seconds", "gaps", "p50", "p90", "p99", "max", "off CPU"])
        for run in summary.runs {
            for window in run.windows {
                let p = window.gapSeconds
                gaps.add([run.order, window.name, Format.fixed(window.seconds, 3), "\(window.gaps)"]
                         + [p?.p50, p?.p90, p?.p99, p?.max].map { $0.map(Format.micros) ?? "-" } + [Format.fixed(window.offCPUFraction * 100, 1) + "%"])
            }
        }
        if !gaps.rows.isEmpty { out += gaps.render() }
        if summary.runs.contains(where: \.probeOverflowed) { out += "the probe's gap buffer filled; later gaps went unrecorded\n" }
        out += VictimReport.flowTable(summary.runs.map { ($0.order, $0.flows) })
        for note in Set(summary.runs.compactMap(\.victimNote)) { out += "\n\(note); the probe alone measured\n" }
        out += ExperimentFooter.text(result.experiment)
        return out
    }
}
