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
    public static let resamples = 4000
    public static let method = "bootstrap 95% interval of the ratio of medians (B/A), \(resamples) resamples of the rounds of each side"

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
        /// 95% interval of the ratio; nil with fewer than two rounds a side.
        public let low: Double?
        public let high: Double?
        public let verdict: String
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
    public let variants: [Variant]
    public let metrics: [MetricComparison]
    public let stats: [StatComparison]
    /// Fingerprint fields that differ between the sides (they change results).
    public let hostDifferences: [String]
    public let configDifferences: [String]

    /// The stats shown side by side: where huge pages went, zaps, flushes, faults.
    public static let statNames = ["pages_4k", "pages_2m", "pages_1g", "nx_lpage_splits", "mmu_shadow_zapped", "remote_tlb_flush",
                                   "mmu_cache_miss", "pf_fixed", "pf_taken", "pf_emulate", "pf_mmio_spte_created", "exits"]

    public init(_ variants: [ComparedVariant]) {
        precondition(variants.count >= 2)
        let base = variants[0]
        experiment = base.experiments.first?.experiment ?? base.documents.first?.command ?? "unknown"
        method = Comparison.method
        self.variants = variants.map { variant in
            Variant(name: variant.name, flags: variant.flags, rounds: variant.documents.count,
                    statuses: variant.experiments.map(\.status.rawValue), host: variant.documents.first?.host,
                    config: variant.experiments.first?.config ?? [:])
        }
        var metrics: [MetricComparison] = []
        var stats: [StatComparison] = []
        for other in variants.dropFirst() {
            metrics += Comparison.compareMetrics(base, other)
            stats += Comparison.compareStats(base, other)
        }
        self.metrics = metrics
        self.stats = stats
        hostDifferences = Comparison.hostDifferences(variants)
        configDifferences = Comparison.configDifferences(variants)
    }

    static func compareMetrics(_ base: ComparedVariant, _ other: ComparedVariant) -> [MetricComparison] {
        var keys: [String] = []
        var prototypes: [String: Metric] = [:]
        for metric in (base.experiments + other.experiments).flatMap(\.metrics) where prototypes[metric.key] == nil {
            keys.append(metric.key)
            prototypes[metric.key] = metric
        }
        return keys.map { key in
            let metric = prototypes[key]!
            let a = base.experiments.compactMap { $0.metric(key)?.value }
            let b = other.experiments.compactMap { $0.metric(key)?.value }
            let estimate = RatioEstimate(a: a, b: b)
            return MetricComparison(key: key, name: metric.name, labels: metric.labels, unit: metric.unit, better: metric.better,
                                    baseline: base.name, variant: other.name, a: a, b: b,
                                    aMedian: Statistics.median(a), bMedian: Statistics.median(b),
                                    ratio: estimate.ratio, low: estimate.interval?.low, high: estimate.interval?.high,
                                    verdict: estimate.verdict(unit: metric.unit, better: metric.better))
        }
    }

    static func compareStats(_ base: ComparedVariant, _ other: ComparedVariant) -> [StatComparison] {
        var phases: [String] = []
        for phase in (base.experiments + other.experiments).flatMap(\.phases) where !phases.contains(phase.name) { phases.append(phase.name) }
        var result: [StatComparison] = []
        for phase in phases {
            for stat in statNames {
                func values(_ variant: ComparedVariant) -> [Double] {
                    variant.experiments.compactMap { $0.phases.first { $0.name == phase }?.stats?[stat] }.map(Double.init)
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

/// B/A from the medians of each side's rounds, with a bootstrap interval.
public struct RatioEstimate: Sendable {
    public let ratio: Double?
    public let interval: (low: Double, high: Double)?
    let a: [Double], b: [Double]

    public init(a: [Double], b: [Double], resamples: Int = Comparison.resamples) {
        self.a = a
        self.b = b
        guard let am = Statistics.median(a), let bm = Statistics.median(b), am != 0 else {
            ratio = nil
            interval = nil
            return
        }
        ratio = bm / am
        guard a.count >= 2, b.count >= 2 else {
            interval = nil
            return
        }
        var random = SplitMix64(seed: 0x6B76_6D6C_6162)
        var ratios: [Double] = []
        ratios.reserveCapacity(resamples)
        for _ in 0..<resamples {
            let ra = Statistics.median((0..<a.count).map { _ in a[random.index(a.count)] })!
            let rb = Statistics.median((0..<b.count).map { _ in b[random.index(b.count)] })!
            if ra != 0 { ratios.append(rb / ra) }
        }
        ratios.sort()
        guard !ratios.isEmpty else {
            interval = nil
            return
        }
        interval = (Statistics.quantile(ratios, 0.025), Statistics.quantile(ratios, 0.975))
    }

    /// Whether B differs from A beyond the noise, said in the metric's own
    /// direction. A zero median on A has no ratio: then only sides that do
    /// not overlap at all count as a change.
    public func verdict(unit: MetricUnit, better: Better) -> String {
        guard !a.isEmpty, !b.isEmpty else { return "not measured" }
        let direction: Int
        if let interval {
            if interval.low > 1 { direction = 1 } else if interval.high < 1 { direction = -1 } else { return "no significant change" }
        } else if ratio != nil {
            return "one round a side: no interval"
        } else {
            // A's median is zero.
            guard a.count >= 2, b.count >= 2 else { return "one round a side: no interval" }
            if b.min()! > a.max()! { direction = 1 } else if b.max()! < a.min()! { direction = -1 } else { return "no significant change" }
        }
        let improved = better == .lower ? direction < 0 : better == .higher ? direction > 0 : nil
        guard let improved else { return direction > 0 ? "higher" : "lower" }
        if unit == .seconds { return improved ? "faster" : "slower" }
        return improved ? "better" : "worse"
    }
}

public enum Statistics {
    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// Linear interpolation between order statistics of a sorted sample.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        let position = q * Double(sorted.count - 1)
        let lower = Int(position.rounded(.down)), upper = min(lower + 1, sorted.count - 1)
        return sorted[lower] + (sorted[upper] - sorted[lower]) * (position - Double(lower))
    }
}

/// A small deterministic generator: the same rounds give the same interval.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func index(_ count: Int) -> Int { Int(next() % UInt64(count)) }
}
