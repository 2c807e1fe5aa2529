import Scenarios

/// The end of every experiment's table: its checks and its status, read
/// from the experiment model (one footer, whatever the experiment).
public enum ExperimentFooter {
    public static func text(_ experiment: Experiment) -> String {
        var out = tracepoints(experiment)
        let failed = experiment.checks.filter { !$0.passed }
        if !experiment.checks.isEmpty {
            out += "\nchecks: \(experiment.checks.count - failed.count) passed, \(failed.count) failed\n"
            for check in failed { out += "  FAILED \(check.name): expected \(check.expected), observed \(check.observed)\n" }
        }
        out += "\nstatus: \(experiment.status.rawValue)\n"
        for problem in experiment.problems { out += "  \(problem)\n" }
        return out
    }

    /// The tracepoint counts that moved, phase by phase, and how they were counted.
    static func tracepoints(_ experiment: Experiment) -> String {
        var table = Table(title: "\nKernel tracepoints per phase (counts that moved)", headers: ["phase", "event", "count"])
        for phase in experiment.phases {
            for (event, count) in (phase.tracepoints ?? [:]).sorted(by: { $0.key < $1.key }) { table.add([phase.name, event, String(count)]) }
        }
        var out = table.rows.isEmpty ? "" : table.render()
        if let tracing = experiment.tracing { out += "\n\(tracing)\n" }
        return out + histograms(experiment)
    }

    /// KVM's histogram stats that moved, phase by phase: how many samples
    /// and the bucket bounds their percentiles fall under.
    static func histograms(_ experiment: Experiment) -> String {
        var table = Table(title: "\nKVM histogram stats per phase (samples; percentiles are bucket upper bounds)",
                          headers: ["phase", "stat", "samples", "p50", "p90", "p99"])
        for phase in experiment.phases {
            for (name, histogram) in (phase.stats?.histograms ?? [:]).sorted(by: { $0.key < $1.key }) {
                let bound = { (q: Double) in histogram.quantile(q).map { bound in
                    bound.isInfinite ? "beyond" : histogram.unit == "seconds" ? Format.micros(bound) + " µs" : Format.fixed(bound, 0)
                } ?? "-" }
                table.add([phase.name, name, String(histogram.total), bound(0.5), bound(0.9), bound(0.99)])
            }
        }
        return table.rows.isEmpty ? "" : table.render()
    }
}
