import Scenarios
import VMM

/// One side of a comparison: a variant's name, what set it, and its rounds.
public struct ComparedVariant: Sendable {
    public let name: String
    public let flags: [String]
    public let documents: [SavedDocument]

    public init(name: String, flags: [String], documents: [SavedDocument]) {
        self.name = name
        self.flags = flags
        self.documents = documents
    }

    public var experiments: [Experiment] { documents.compactMap(\.experiment) }
}

/// Before/after statistics for every metric of an experiment, read through
/// the experiment model only: compare holds no per-experiment code.
public struct Comparison: Encodable, Sendable {
    /// What a verdict must clear: significance after the table's correction,
    /// and a ratio outside the noise band.
    public struct Settings: Encodable, Sendable {
        /// The family-wise error rate of each table.
        public var level = 0.05
        /// Significant changes smaller than this share are "no meaningful change".
        public var noise = 0.05
        public init() {}
    }

    public struct Variant: Encodable, Sendable {
        public let name: String
        public let flags: [String]
        public let rounds: Int
        public let statuses: [String]
        public let host: HostFingerprint?
        public let config: [String: String]
    }

    public struct MetricComparison: Encodable, Sendable {
        public let key: String
        public let name: String
        public let labels: [String: String]
        public let unit: MetricUnit
        public let better: Better
        public let baseline: String
        public let variant: String
        /// The metric's value in each round, per side.
        public let a: [Double]
        public let b: [Double]
        public let aMedian: Double?
        public let bMedian: Double?
        public let ratio: Double?
        /// The table's simultaneous interval of the ratio; nil where A has a
        /// zero round or the rounds are too few to bound it.
        public let low: Double?
        public let high: Double?
        /// The rank-sum test's two-sided p, the smallest p these rounds could
        /// give, and p after the table's Holm correction (nil when the metric
        /// could never be called and so is not in the family).
        public let p: Double?
        public let smallestP: Double?
        public let adjustedP: Double?
        public let verdict: String

        /// The row's test, from its rounds (nil where a side has none).
        public var test: RankSumTest? { a.isEmpty || b.isEmpty ? nil : RankSumTest(a: a, b: b) }
    }

    /// One variant's table against the baseline: how many metrics were
    /// tested together and whether its rounds could show anything.
    public struct TableSummary: Encodable, Sendable {
        public let variant: String
        public let baseline: String
        public let metricsTested: Int
        public let canFindDifferences: Bool
        /// Why no verdict could be given, in one line; nil when one could.
        public let note: String?
    }

    public struct StatComparison: Encodable, Sendable {
        public let phase: String
        public let stat: String
        public let variant: String
        /// Median over rounds of the phase's delta, per side.
        public let a: Double
        public let b: Double
    }

    public let experiment: String
    public let method: String
    public let settings: Settings
    public let variants: [Variant]
    public let metrics: [MetricComparison]
    public let tables: [TableSummary]
    public let stats: [StatComparison]
    /// Fingerprint fields that differ between the sides (they change results).
    public let hostDifferences: [String]
    public let configDifferences: [String]

    /// The stats shown side by side: where huge pages went, zaps, flushes, faults.
    public static let statNames = ["pages_4k", "pages_2m", "pages_1g", "nx_lpage_splits", "mmu_shadow_zapped", "remote_tlb_flush",
                                   "mmu_cache_miss", "pf_fixed", "pf_taken", "pf_emulate", "pf_mmio_spte_created", "exits"]

    public init(_ variants: [ComparedVariant], settings: Settings = Settings()) {
        precondition(variants.count >= 2)
        let base = variants[0]
        experiment = base.experiments.first?.experiment ?? base.documents.first?.command ?? "unknown"
        self.settings = settings
        self.variants = variants.map { variant in
            Variant(name: variant.name, flags: variant.flags, rounds: variant.documents.count,
                    statuses: variant.experiments.map(\.status.rawValue), host: variant.documents.first?.host,
                    config: variant.experiments.first?.config ?? [:])
        }
        var metrics: [MetricComparison] = []
        var tables: [TableSummary] = []
        var stats: [StatComparison] = []
        var sampled = false
        for other in variants.dropFirst() {
            let table = Comparison.compareMetrics(base, other, settings: settings)
            metrics += table.rows
            tables.append(table.table)
            sampled = sampled || table.sampled
            stats += Comparison.compareStats(base, other)
        }
        self.metrics = metrics
        self.tables = tables
        method = Comparison.method(settings, sampled: sampled)
        self.stats = stats
        hostDifferences = Comparison.hostDifferences(variants)
        configDifferences = Comparison.configDifferences(variants)
    }

    /// How every verdict was reached, for the output's header.
    static func method(_ settings: Settings, sampled: Bool) -> String {
        let level = Format.fixed(settings.level * 100, 0) + "%"
        return "two-sided Wilcoxon–Mann–Whitney permutation test of the rounds ("
            + (sampled ? "every split counted where feasible, else \(PermutationDistribution.samples) fixed-seed random splits" : "every split counted")
            + "); Holm's correction over each table's metrics at \(level); interval: the test inverted over ratios (Hodges–Lehmann), "
            + "simultaneous \(Format.fixed(100 - settings.level * 100, 0))% over the table; changes under \(Format.fixed(settings.noise * 100, 1))% (--noise) are not called"
    }

    static func compareMetrics(_ base: ComparedVariant, _ other: ComparedVariant, settings: Settings)
        -> (rows: [MetricComparison], table: TableSummary, sampled: Bool) {
        var keys: [String] = []
        var prototypes: [String: Metric] = [:]
        for metric in (base.experiments + other.experiments).flatMap(\.metrics) where prototypes[metric.key] == nil {
            keys.append(metric.key)
            prototypes[metric.key] = metric
        }
        // A non-finite figure (a rate over no time) has no rank: it is left out.
        func values(_ variant: ComparedVariant, _ key: String) -> [Double] {
            variant.experiments.compactMap { $0.metric(key)?.value }.filter(\.isFinite)
        }
        let sides = keys.map { (a: values(base, $0), b: values(other, $0)) }
        let tests = sides.map { side in side.a.isEmpty || side.b.isEmpty ? nil : RankSumTest(a: side.a, b: side.b) }
        let family = TestFamily(tests, level: settings.level)
        let canFind = family.canFind(tests)
        let rows = keys.indices.map { index in
            let metric = prototypes[keys[index]]!
            let (a, b) = sides[index]
            let aMedian = Statistics.median(a), bMedian = Statistics.median(b)
            let ratio = aMedian.flatMap { am in am == 0 ? nil : bMedian.map { $0 / am } }
            let interval = RankSumTest.ratioInterval(a: a, b: b, alpha: family.intervalLevel)
            return MetricComparison(key: keys[index], name: metric.name, labels: metric.labels, unit: metric.unit, better: metric.better,
                                    baseline: base.name, variant: other.name, a: a, b: b, aMedian: aMedian, bMedian: bMedian,
                                    ratio: ratio, low: interval?.low, high: interval?.high,
                                    p: tests[index]?.p, smallestP: tests[index]?.smallestP, adjustedP: family.adjusted[index],
                                    verdict: Comparison.verdict(tests[index], index: index, family: family, canFind: canFind, values: a + b,
                                                                ratio: ratio, metric: metric, settings: settings))
        }
        // Nothing to say when every metric was the same in every round.
        let varying = sides.indices.filter { tests[$0] != nil && Set(sides[$0].a + sides[$0].b).count > 1 }.map { tests[$0]! }
        let note = canFind || varying.isEmpty ? nil : Comparison.tooFewRounds(base: base, other: other, varying: varying, settings: settings)
        let table = TableSummary(variant: other.name, baseline: base.name, metricsTested: family.size, canFindDifferences: canFind, note: note)
        return (rows, table, tests.contains { $0.map { !$0.exact } ?? false })
    }

    /// A row's verdict, in the metric's own direction.
    static func verdict(_ test: RankSumTest?, index: Int, family: TestFamily, canFind: Bool, values: [Double],
                        ratio: Double?, metric: Metric, settings: Settings) -> String {
        guard let test else { return "not measured" }
        if Set(values).count == 1 { return "no change (every round equal)" }
        guard canFind, family.members.contains(index) else { return "too few rounds" }
        guard family.significant(index), test.direction != 0 else { return "no significant change" }
        if let ratio, max(ratio, 1 / ratio) < 1 + settings.noise { return "no meaningful change" }
        let up = test.direction > 0
        switch metric.better {
        case .neither: return up ? "higher" : "lower"
        case .lower, .higher:
            let improved = (metric.better == .higher) == up
            if metric.unit == .seconds { return improved ? "faster" : "slower" }
            return improved ? "better" : "worse"
        }
    }

    /// The one line that replaces verdicts when the rounds cannot show a difference.
    static func tooFewRounds(base: ComparedVariant, other: ComparedVariant, varying: [RankSumTest], settings: Settings) -> String {
        let metrics = varying.count
        let smallest = varying.map(\.smallestP).min() ?? 1
        let rounds = min(base.documents.count, other.documents.count)
        let level = Format.fixed(settings.level * 100, 0) + "%"
        let needed = TestFamily.roundsNeeded(metrics: metrics, level: settings.level)
        return "\(other.name) against \(base.name): \(rounds) round\(rounds == 1 ? "" : "s") a side cannot show a difference at \(level) over \(metrics) metric\(metrics == 1 ? "" : "s") "
            + "(the smallest p they allow is \(Format.fixed(smallest, 4))): use \(needed) or more rounds a side (--rounds \(needed))"
    }

    /// KVM's stats, then the kernel tracepoints that moved in any round
    /// (named SUBSYSTEM:NAME), phase by phase.
    static func compareStats(_ base: ComparedVariant, _ other: ComparedVariant) -> [StatComparison] {
        var phases: [String] = []
        for phase in (base.experiments + other.experiments).flatMap(\.phases) where !phases.contains(phase.name) { phases.append(phase.name) }
        let events = Set((base.experiments + other.experiments).flatMap(\.phases).flatMap { ($0.tracepoints ?? [:]).keys }).sorted()
        var result: [StatComparison] = []
        for phase in phases {
            for stat in statNames + events {
                func values(_ variant: ComparedVariant) -> [Double] {
                    variant.experiments.compactMap { experiment in
                        let record = experiment.phases.first { $0.name == phase }
                        // A tracepoint absent from a counted phase did not move: 0.
                        return stat.contains(":") ? record?.tracepoints.map { $0[stat] ?? 0 } : record?.stats?[stat]
                    }.map(Double.init)
                }
                let a = Statistics.median(values(base)) ?? 0, b = Statistics.median(values(other)) ?? 0
                if a != 0 || b != 0 { result.append(StatComparison(phase: phase, stat: stat, variant: other.name, a: a, b: b)) }
            }
        }
        return result
    }

    static func hostDifferences(_ variants: [ComparedVariant]) -> [String] {
        let hosts = variants.compactMap { $0.documents.first?.host }
        guard let first = hosts.first else { return [] }
        var fields: [(String, (HostFingerprint) -> String)] = [
            ("kernel", { $0.kernel }), ("cpu", { $0.cpu }), ("kvm module", { $0.kvmModule ?? "none" }),
            ("mmu", { $0.mmuMode }), ("thp", { $0.thpMode ?? "-" }), ("online CPUs", { "\($0.onlineCPUs)" }),
        ]
        let parameterNames = Set(hosts.flatMap { $0.parameters.keys }).sorted()
        for name in parameterNames { fields.append((name, { $0.parameters[name] ?? "-" })) }
        return fields.compactMap { name, read in
            let values = hosts.map(read)
            return values.allSatisfy({ $0 == read(first) }) ? nil : "\(name): " + zip(variants, values).map { "\($0.name) \($1)" }.joined(separator: ", ")
        }
    }

    static func configDifferences(_ variants: [ComparedVariant]) -> [String] {
        let configs = variants.map { $0.experiments.first?.config ?? [:] }
        let keys = Set(configs.flatMap(\.keys)).sorted()
        return keys.compactMap { key in
            let values = configs.map { $0[key] ?? "-" }
            return Set(values).count > 1 ? "\(key): " + zip(variants, values).map { "\($0.name) \($1)" }.joined(separator: ", ") : nil
        }
    }
}

public enum Statistics {
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
