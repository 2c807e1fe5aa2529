import VMM

/// How a run ended, in the words every output uses. One place maps it to an
/// exit status (the CLI's `Exit`).
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    /// Every phase ran and every check passed.
    case ok
    /// The run measured everything, but a check found a wrong result.
    case checksFailed = "checks_failed"
    /// Ctrl-C or SIGTERM ended the run; what was measured is still reported.
    case interrupted
    /// The run could not measure (a KVM error, a guest fault, a hung guest).
    case error
}

/// Which way a metric improves, so that a comparison can call a change
/// better or worse without knowing the experiment.
public enum Better: String, Codable, Sendable {
    case lower, higher
    /// A count that describes, not a figure of merit (e.g. pages verified).
    case neither
}

/// SI base units only: seconds, bytes; counts and rates of them.
public enum MetricUnit: String, Codable, Sendable {
    case seconds, bytes, pages, count, ratio
    case perSecond = "per_second"
    case pagesPerSecond = "pages_per_second"
    case bytesPerSecond = "bytes_per_second"
}

/// A distribution as the model keeps it: exact summary figures over every
/// sample, log2 buckets (upper bounds in the metric's unit, counts not
/// cumulative), and the samples themselves while there are few enough.
public struct Distribution: Codable, Sendable, Equatable {
    public static let maxKeptSamples = 4096

    public struct Bucket: Codable, Sendable, Equatable {
        /// Upper bound (inclusive) of the bucket, in the metric's unit.
        public let le: Double
        public let count: UInt64
        public init(le: Double, count: UInt64) {
            self.le = le
            self.count = count
        }
    }

    public let count: Int
    public let sum: Double
    public let percentiles: Percentiles?
    public let buckets: [Bucket]
    public let samples: [Double]?

    public init(count: Int, sum: Double, percentiles: Percentiles?, buckets: [Bucket], samples: [Double]?) {
        self.count = count
        self.sum = sum
        self.percentiles = percentiles
        self.buckets = buckets
        self.samples = samples
    }

    /// From raw samples: buckets are powers of two of `bucketBase` (1 ns for
    /// seconds), so every distribution of one unit shares its bounds.
    public init(samples values: [Double], bucketBase: Double = 1e-9) {
        let finite = values.filter(\.isFinite)
        let sorted = finite.sorted()
        count = sorted.count
        sum = sorted.reduce(0, +)
        percentiles = sorted.isEmpty ? nil : Percentiles(sorted: sorted)
        var counts: [Int: UInt64] = [:]
        for value in sorted {
            let ratio = max(value / bucketBase, 1)
            let exponent = Int(Double.log2Ceiling(ratio))
            counts[exponent, default: 0] += 1
        }
        buckets = counts.keys.sorted().map { Bucket(le: bucketBase * Double.exp2(Double($0)), count: counts[$0]!) }
        samples = sorted.count <= Distribution.maxKeptSamples ? finite : nil
    }
}

extension Double {
    /// ceil(log2(x)) for x >= 1, exact at powers of two.
    static func log2Ceiling(_ x: Double) -> Double {
        let exponent = x.exponent
        return x == Double(sign: .plus, exponent: exponent, significand: 1) ? Double(exponent) : Double(exponent + 1)
    }

    static func exp2(_ power: Double) -> Double { Double(sign: .plus, exponent: Int(power), significand: 1) }
}

/// One figure an experiment measured.
public struct Metric: Codable, Sendable, Equatable {
    /// snake_case, unit last (e.g. `get_dirty_log_seconds`); with `labels`
    /// it identifies the metric within its experiment.
    public let name: String
    public let help: String
    public let unit: MetricUnit
    public let better: Better
    public let labels: [String: String]
    /// The run's figure: a total, a mean or a rate; for a distribution its median.
    public let value: Double?
    public let distribution: Distribution?

    public init(_ name: String, _ help: String, unit: MetricUnit, better: Better, labels: [String: String] = [:], value: Double?) {
        self.name = name
        self.help = help
        self.unit = unit
        self.better = better
        self.labels = labels
        self.value = value.flatMap { $0.isFinite ? $0 : nil }
        distribution = nil
    }

    public init(_ name: String, _ help: String, unit: MetricUnit, better: Better, labels: [String: String] = [:], distribution: Distribution) {
        self.name = name
        self.help = help
        self.unit = unit
        self.better = better
        self.labels = labels
        value = distribution.percentiles?.p50
        self.distribution = distribution
    }

    /// name{key="value",...}: how compare and OpenMetrics tell metrics apart.
    public var key: String {
        labels.isEmpty ? name : name + "{" + labels.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",") + "}"
    }
}

/// A named phase of a run: how long it took, what KVM counted, and which
/// kernel tracepoints fired how often (those that moved; nil when none
/// were counted).
public struct PhaseRecord: Codable, Sendable, Equatable {
    public let name: String
    public let seconds: Double?
    public let stats: StatsDelta?
    public let tracepoints: [String: Int64]?

    public init(name: String, seconds: Double?, stats: StatsDelta?, tracepoints: [String: Int64]? = nil) {
        self.name = name
        self.seconds = seconds
        self.stats = stats
        self.tracepoints = tracepoints
    }
}

/// A correctness check the run made, with what it expected and saw.
public struct CheckRecord: Codable, Sendable, Equatable {
    public let name: String
    public let passed: Bool
    public let expected: String
    public let observed: String

    public init(_ name: String, passed: Bool, expected: String, observed: String) {
        self.name = name
        self.passed = passed
        self.expected = expected
        self.observed = observed
    }

    /// A check that two counts are equal.
    public static func equal<T: BinaryInteger>(_ name: String, expected: T, observed: T) -> CheckRecord {
        CheckRecord(name, passed: expected == observed, expected: "\(expected)", observed: "\(observed)")
    }
}

/// Every experiment's result in one shape: what compare, check, JSON,
/// OpenMetrics and pictures read, with no per-experiment code downstream.
public struct Experiment: Codable, Sendable, Equatable {
    /// The command name (dirty-log, jitter, ...).
    public let experiment: String
    /// The settings that make two runs comparable, as text (flag meaning → value).
    public let config: [String: String]
    public let metrics: [Metric]
    public let phases: [PhaseRecord]
    public let checks: [CheckRecord]
    public let status: RunStatus
    public let problems: [String]
    /// How the phases' tracepoints were counted, or why they were not: the
    /// counters the phase timer read (nil when none were opened).
    public let tracing: String?

    /// An experiment's result, named by its kind.
    public init(_ kind: ExperimentKind, config: [String: String], metrics: [Metric], phases: [PhaseRecord],
                checks: [CheckRecord], problems: [String], interrupted: Bool) {
        self.init(experiment: kind.rawValue, config: config, metrics: metrics, phases: phases, checks: checks, problems: problems, interrupted: interrupted)
    }

    public init(experiment: String, config: [String: String], metrics: [Metric], phases: [PhaseRecord],
                checks: [CheckRecord], problems: [String], interrupted: Bool) {
        self.experiment = experiment
        self.config = config
        self.metrics = metrics
        self.phases = phases
        self.checks = checks
        self.problems = problems
        status = Experiment.status(interrupted: interrupted, problems: problems, checks: checks)
        tracing = TraceCounters.current.withLock { $0 }?.summary
    }

    /// Interrupted first (what was measured is still valid), then errors
    /// (nothing trustworthy), then failed checks.
    public static func status(interrupted: Bool, problems: [String], checks: [CheckRecord]) -> RunStatus {
        if interrupted { return .interrupted }
        if !problems.isEmpty { return .error }
        return checks.allSatisfy(\.passed) ? .ok : .checksFailed
    }

    public func metric(_ key: String) -> Metric? { metrics.first { $0.key == key } }
}

/// What every scenario result provides.
public protocol ExperimentResult: Sendable {
    var experiment: Experiment { get }
}
