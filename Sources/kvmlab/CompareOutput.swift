import ArgumentParser
import Report
import Scenarios
import VMM

/// Prints a comparison (table or JSON), writes its picture and metrics, and
/// turns it into the exit status.
enum CompareOutput {
    /// `compare --json`: the comparison and every round's experiment.
    struct Detail: Encodable {
        let comparison: Comparison
        let order: String?
        let interrupted: Bool
        let rounds: [String: [Experiment]]
        let thresholds: [String]
    }

    static func emit(_ outcome: CompareRun.Outcome, options: CompareOptions) throws {
        let empty = outcome.variants.filter { $0.documents.isEmpty }.map(\.name)
        guard empty.isEmpty else {
            if outcome.interrupted { Exit.fail("interrupted before every variant had a round (\(empty.joined(separator: ", ")) had none)", status: Exit.interrupted) }
            throw RoundFailure(description: "no round of \(empty.joined(separator: ", ")) measured anything")
        }
        var settings = Comparison.Settings()
        settings.noise = options.noise
        let comparison = Comparison(outcome.variants, settings: settings)
        let verdicts = try thresholdVerdicts(comparison, options.thresholds)
        let host = HostFingerprint.current()
        if let path = options.openmetrics {
            try HostFiles.writeAtomically(path, OpenMetrics.text(variantMedians(outcome.variants), host: host, timestamp: HostClock.unixTime()))
        }
        if let path = options.svg { try HostFiles.writeAtomically(path, ComparePlot.svg(comparison, host: host)) }
        if options.json {
            let detail = Detail(comparison: comparison, order: outcome.order, interrupted: outcome.interrupted,
                                rounds: Dictionary(uniqueKeysWithValues: outcome.variants.map { ($0.name, $0.experiments) }),
                                thresholds: verdicts.map(\.line))
            Exit.output(try JSONDocument(command: "compare", host: host, experiment: nil, detail: detail).render())
        } else {
            var text = CompareReport.text(comparison, order: outcome.order)
            if !verdicts.isEmpty { text += "\nThresholds:\n" + verdicts.map { "  \($0.line)\n" }.joined() }
            if outcome.interrupted { text += "\ninterrupted: the table holds the rounds that finished\n" }
            Exit.output(text)
        }
        try exit(comparison, outcome: outcome, verdicts: verdicts, bisect: !options.thresholds.isEmpty)
    }

    /// git bisect run's codes with --fail-if; the usual ones without.
    static func exit(_ comparison: Comparison, outcome: CompareRun.Outcome, verdicts: [ThresholdVerdict], bisect: Bool) throws {
        let statuses = comparison.variants.flatMap(\.statuses)
        if outcome.interrupted { throw ExitCode(Exit.interrupted) }
        if bisect {
            if statuses.contains(RunStatus.error.rawValue) || verdicts.contains(where: \.undecided) { throw ExitCode(125) }
            if verdicts.contains(where: \.crossed) || statuses.contains(RunStatus.checksFailed.rawValue) { throw ExitCode(1) }
            return
        }
        if statuses.contains(where: { $0 != RunStatus.ok.rawValue }) { throw ExitCode(Exit.runtime) }
    }

    struct ThresholdVerdict {
        let line: String
        let crossed: Bool
        /// The rounds were too few to call any of the named metrics.
        var undecided = false
    }

    /// Each --fail-if against every variant's ratio for the metrics it names
    /// (a bare name matches every label set of that metric). A threshold is
    /// crossed when the ratio is past it and the change is significant among
    /// the named metrics alone (their own Holm family: a bisect does not pay
    /// for the rest of the table). Rounds too few to call anything there
    /// decide nothing: git bisect's "skip", 125.
    static func thresholdVerdicts(_ comparison: Comparison, _ thresholds: [CompareOptions.Threshold]) throws -> [ThresholdVerdict] {
        let matched = try thresholds.map { threshold -> [Int] in
            let rows = comparison.metrics.indices.filter { comparison.metrics[$0].key == threshold.metric || comparison.metrics[$0].name == threshold.metric }
            guard !rows.isEmpty else {
                let names = Set(comparison.metrics.map(\.name)).sorted().joined(separator: ", ")
                throw ConfigError("--fail-if: \(comparison.experiment) has no metric '\(threshold.metric)'; it has \(names)")
            }
            return rows
        }
        var verdicts: [ThresholdVerdict] = []
        for variant in Set(comparison.metrics.map(\.variant)).sorted() {
            let named = Array(Set(matched.joined())).sorted().filter { comparison.metrics[$0].variant == variant }
            let tests = named.map { comparison.metrics[$0].test }
            let family = TestFamily(tests, level: comparison.settings.level)
            let decidable = family.canFind(tests)
            for (threshold, rows) in zip(thresholds, matched) {
                for index in rows where comparison.metrics[index].variant == variant {
                    let row = comparison.metrics[index]
                    let head = "\(threshold.description): \(row.key) \(row.variant)/\(row.baseline)"
                    guard let ratio = row.ratio else {
                        verdicts.append(ThresholdVerdict(line: "\(head) has no ratio (zero baseline): not crossed", crossed: false))
                        continue
                    }
                    let position = named.firstIndex(of: index)!
                    let significant = family.significant(position)
                    let crossed = threshold.crossed(by: ratio) && significant
                    let state = !decidable ? "undecided (too few rounds)" : crossed ? "CROSSED" : threshold.crossed(by: ratio) ? "within (not significant)" : "within"
                    let p = family.adjusted[position].map { ", p \(CompareReport.pValue($0))" } ?? ""
                    verdicts.append(ThresholdVerdict(line: "\(head) = \(Format.fixed(ratio, 3))\(p): \(state)", crossed: crossed, undecided: !decidable))
                }
            }
        }
        return verdicts
    }

    /// Each variant as one experiment of median values, for OpenMetrics.
    static func variantMedians(_ variants: [ComparedVariant]) -> [(Experiment, String?)] {
        variants.compactMap { variant in
            let runs = variant.documents.compactMap(\.experiment)
            guard let first = runs.first else { return nil }
            var keys: [String] = []
            for metric in runs.flatMap(\.metrics) where !keys.contains(metric.key) { keys.append(metric.key) }
            let metrics = keys.compactMap { key -> Metric? in
                guard let model = runs.lazy.compactMap({ $0.metric(key) }).first else { return nil }
                return Metric(model.name, model.help + " (median over \(runs.count) rounds)", unit: model.unit, better: model.better,
                              labels: model.labels, value: Statistics.median(runs.compactMap { $0.metric(key)?.value }))
            }
            let worst = runs.map(\.status).max { rank($0) < rank($1) } ?? .ok
            let experiment = Experiment(experiment: first.experiment, config: first.config, metrics: metrics, phases: [],
                                        checks: runs.flatMap(\.checks), problems: runs.flatMap(\.problems),
                                        interrupted: worst == .interrupted)
            return (experiment, variant.name)
        }
    }

    static func rank(_ status: RunStatus) -> Int { [RunStatus.ok, .interrupted, .checksFailed, .error].firstIndex(of: status)! }
}
