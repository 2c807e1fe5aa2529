import Scenarios
import VMM

/// An experiment in the Prometheus text exposition format, for the
/// node_exporter textfile collector: one gauge per scalar metric, one
/// histogram per distribution (its log2 bucket bounds kept), and status
/// gauges, every sample labelled with the experiment, variant, kernel,
/// vendor module, MMU mode and backing. Families are named
/// kvmlab_<experiment>_<metric>, base units last (_seconds, _bytes).
public enum OpenMetrics {
    public static func text(_ experiment: Experiment, host: HostFingerprint, variant: String? = nil,
                            timestamp: Double? = nil) -> String {
        text([(experiment, variant)], host: host, timestamp: timestamp)
    }

    /// Several runs in one file (compare's variants): each family once, its
    /// samples told apart by the variant label.
    public static func text(_ runs: [(Experiment, String?)], host: HostFingerprint, timestamp: Double? = nil) -> String {
        var families: [(name: String, lines: [String])] = []
        func family(_ name: String, type: String, help: String, _ lines: [String]) {
            if let index = families.firstIndex(where: { $0.name == name }) {
                families[index].lines += lines
            } else {
                families.append((name, ["# HELP \(name) \(escape(help, quotes: false))", "# TYPE \(name) \(type)"] + lines))
            }
        }
        for (experiment, variant) in runs {
            add(experiment, variant: variant, host: host, timestamp: timestamp, to: family)
        }
        return families.flatMap(\.lines).joined(separator: "\n") + "\n"
    }

    private static func add(_ experiment: Experiment, variant: String?, host: HostFingerprint, timestamp: Double?,
                            to family: (String, String, String, [String]) -> Void) {
        var common: [(String, String)] = [("experiment", experiment.experiment)]
        if let variant { common.append(("variant", variant)) }
        common += [("kernel", host.kernel), ("kvm_module", host.kvmModule ?? "none"), ("mmu", host.mmuMode)]
        if let backing = experiment.config["backing"] { common.append(("backing", backing)) }
        let prefix = "kvmlab_" + snake(experiment.experiment) + "_"
        for metric in experiment.metrics {
            let name = prefix + snake(metric.name)
            let labels = common + metric.labels.sorted { $0.key < $1.key }.map { (snake($0.key), $0.value) }
            if let distribution = metric.distribution {
                family(name, "histogram", metric.help, histogram(name, distribution, labels))
            } else if let value = metric.value {
                family(name, "gauge", metric.help, ["\(name)\(render(labels)) \(number(value))"])
            }
        }
        let tracepoints = prefix + "tracepoint_events_total"
        let counts = experiment.phases.flatMap { phase in
            (phase.tracepoints ?? [:]).sorted { $0.key < $1.key }.map { "\(tracepoints)\(render(common + [("phase", phase.name), ("event", $0.key)])) \($0.value)" }
        }
        if !counts.isEmpty { family(tracepoints, "counter", "Kernel tracepoint hits during the phase (perf_event_open counting)", counts) }
        for phase in experiment.phases {
            for (stat, histogram) in (phase.stats?.histograms ?? [:]).sorted(by: { $0.key < $1.key }) {
                let base = stat.hasSuffix("_hist") ? String(stat.dropLast(5)) : stat
                let name = prefix + "kvm_" + snake(base) + (histogram.unit == "count" ? "" : "_" + histogram.unit)
                let buckets = zip(histogram.upperBounds, histogram.counts).filter { !$0.0.isInfinite }.map { Distribution.Bucket(le: $0.0, count: UInt64(max(0, $0.1))) }
                let distribution = Distribution(count: Int(histogram.total), sum: .nan, percentiles: nil, buckets: buckets, samples: nil)
                family(name, "histogram", "KVM's \(stat) over the phase (binary stats histogram)", self.histogram(name, distribution, common + [("phase", phase.name)], sum: false))
            }
        }
        family("kvmlab_run_status", "gauge", "1 for the status the run ended with, 0 for the others",
               RunStatus.allCases.map { "kvmlab_run_status\(render(common + [("status", $0.rawValue)])) \($0 == experiment.status ? 1 : 0)" })
        family("kvmlab_run_checks", "gauge", "Correctness checks the run made, by result", [
            "kvmlab_run_checks\(render(common + [("result", "passed")])) \(experiment.checks.filter(\.passed).count)",
            "kvmlab_run_checks\(render(common + [("result", "failed")])) \(experiment.checks.filter { !$0.passed }.count)",
        ])
        if let timestamp {
            family("kvmlab_run_timestamp_seconds", "gauge", "When the run ended (Unix time)",
                   ["kvmlab_run_timestamp_seconds\(render(common)) \(number(timestamp))"])
        }
    }

    /// Cumulative buckets in ascending `le`, then +Inf, _sum (where known:
    /// KVM's histograms keep none) and _count.
    static func histogram(_ name: String, _ distribution: Distribution, _ labels: [(String, String)], sum: Bool = true) -> [String] {
        var lines: [String] = []
        var cumulative: UInt64 = 0
        for bucket in distribution.buckets.sorted(by: { $0.le < $1.le }) {
            cumulative += bucket.count
            lines.append("\(name)_bucket\(render(labels + [("le", number(bucket.le))])) \(cumulative)")
        }
        lines.append("\(name)_bucket\(render(labels + [("le", "+Inf")])) \(distribution.count)")
        if sum { lines.append("\(name)_sum\(render(labels)) \(number(distribution.sum))") }
        lines.append("\(name)_count\(render(labels)) \(distribution.count)")
        return lines
    }

    static func render(_ labels: [(String, String)]) -> String {
        "{" + labels.map { "\($0.0)=\"\(escape($0.1, quotes: true))\"" }.joined(separator: ",") + "}"
    }

    /// Metric and label names: [a-zA-Z_][a-zA-Z0-9_]*.
    static func snake(_ text: String) -> String {
        String(text.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? Character($0.lowercased()) : "_" })
    }

    /// Go-style float text: shortest round-trip digits, exponent where Swift uses one.
    static func number(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : value < 0 ? "-Inf" : "+Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    /// The text format's escapes: backslash and newline everywhere, and the
    /// double quote too inside a label value (which quotes delimit; a HELP
    /// text keeps its quotes as they are).
    static func escape(_ text: String, quotes: Bool) -> String {
        var out = ""
        for character in text {
            switch character {
            case "\\": out += "\\\\"
            case "\"" where quotes: out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }
}
