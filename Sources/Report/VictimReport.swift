import Scenarios

/// The TCP victim's table, shared by teardown and jitter.
public enum VictimReport {
    /// The TCP flows' throughput per window, in Gbit/s: over the whole window,
    /// then per 1 ms slot the median, the 10th percentile and the worst, and
    /// the window's throughput against the first (idle) window's: the
    /// seeds' "9.5 → 2 Gbps" in one row.
    public static func flowTable(_ runs: [(label: String, flows: [FlowRecord])]) -> String {
        var table = Table(title: "\nTCP over loopback per window (Gbit/s; p50, p10, worst of the 1 ms slots)",
                          headers: ["run", "flow", "cpu", "window", "slots", "Gbit/s", "p50", "p10", "worst", "vs idle"])
        for (label, flows) in runs {
            for flow in flows {
                let reference = flow.windows.first?.meanRate
                for window in flow.windows {
                    let sorted = window.rates.sorted()
                    // A window shorter than one slot has none: no percentiles (Percentiles(sorted:) needs a sample).
                    let median = sorted.isEmpty ? nil : Percentiles(sorted: sorted).p50
                    let p10 = sorted.isEmpty ? nil : sorted[min(sorted.count - 1, sorted.count / 10)]
                    let gbit = { (bytesPerSecond: Double?) in bytesPerSecond.map { Format.fixed($0 * 8 / 1e9, 2) } ?? "-" }
                    table.add([label, flow.flow, "\(flow.cpu)", window.name, "\(sorted.count)", gbit(window.meanRate), gbit(median), gbit(p10),
                               gbit(sorted.first), reference.flatMap { ref in window.meanRate.map { ref == 0 ? "-" : Format.fixed($0 / ref, 3) } } ?? "-"])
                }
            }
        }
        return table.rows.isEmpty ? "" : table.render()
    }
}
