import Guests
import Scenarios
import VMM

/// Distributions and attribution computed from a jitter run's raw data.
public struct JitterPhaseSummary: Encodable, Sendable {
    public struct WorstVCPU: Encodable, Sendable {
        public let vcpu: Int
        public let maxStallSeconds: Double
        public let stalls: Int
    }

    public let name: String
    public let seconds: Double
    public let loops: UInt64
    /// Gap percentiles over all vCPUs: exact above the threshold (from the
    /// recorded stalls), log2-bucket upper bounds below it.
    public let gapSeconds: Percentiles?
    /// The probe's floor: median gap in TSC cycles.
    public let medianGapCycles: Double?
    /// Percentiles of the stalls themselves (gaps above the threshold).
    public let stallSeconds: Percentiles?
    public let stalls: Int
    public let rounds: Int
    public let roundsPerSecond: Double
    public let ioctls: Int
    public let attributedStalls: Int
    public let stallsPerRound: Double?
    public let worstVCPU: WorstVCPU?
    public let ioctlSeconds: [String: Percentiles]
    public let stats: StatsDelta?
}

public struct JitterSummary: Encodable, Sendable {
    public let vcpus: Int
    public let workingSetBytes: UInt64
    public let operation: String
    public let operationSummary: String
    public let requestedRate: Double
    public let thresholdSeconds: Double
    public let windowSeconds: Double
    public let tscKHz: Int
    public let tscSource: String
    public let offsetUncertaintySeconds: Double
    public let zapAllQuirk: String
    public let realtime: String
    public let phases: [JitterPhaseSummary]
    public let lostStalls: Int
    public let loopsMatchBuckets: Bool
    public let status: String
    public let problems: [String]

    public init(_ result: JitterResult) {
        let analysis = JitterAnalysis(result)
        vcpus = result.config.vcpus
        workingSetBytes = result.config.workingSet
        operation = result.config.operation.rawValue
        operationSummary = result.config.operation.summary
        requestedRate = result.config.rate
        thresholdSeconds = result.config.thresholdMicros / 1e6
        windowSeconds = result.config.windowMicros / 1e6
        tscKHz = result.tscKHz
        tscSource = result.tscSource
        offsetUncertaintySeconds = analysis.seconds(result.offsetUncertainty)
        zapAllQuirk = result.zapAllQuirk
        realtime = result.realtime
        phases = [analysis.summarize(result.baseline), analysis.summarize(result.churn)]
        lostStalls = result.lostStalls
        loopsMatchBuckets = result.finalLoops == result.finalBucketSums
        status = result.status
        problems = result.problems
    }
}

/// Shared arithmetic: TSC conversion, percentiles, attribution.
public struct JitterAnalysis: Sendable {
    public let result: JitterResult
    let cyclesPerSecond: Double
    let window: UInt64

    public init(_ result: JitterResult) {
        self.result = result
        cyclesPerSecond = Double(result.tscKHz) * 1000
        window = UInt64(result.config.windowMicros * Double(result.tscKHz) / 1000)
    }

    public func seconds(_ cycles: UInt64) -> Double { Double(cycles) / cyclesPerSecond }

    /// Seconds since the baseline began.
    public func time(_ tsc: UInt64) -> Double { Double(Int64(bitPattern: tsc &- result.baseline.startTSC)) / cyclesPerSecond }

    /// Sum of the per-vCPU log2 buckets.
    public static func total(_ buckets: [[UInt64]]) -> [UInt64] {
        buckets.reduce([UInt64](repeating: 0, count: Int(MB_BUCKET_COUNT))) { zip($0, $1).map { $0 &+ $1 } }
    }

    /// The q-th percentile gap in cycles: the recorded stalls give exact
    /// values for the top ranks, the log2 buckets bound the rest from above.
    public func percentile(_ q: Double, buckets: [UInt64], stalls: [UInt64]) -> Double? {
        let count = buckets.reduce(0, &+)
        guard count > 0 else { return nil }
        let rank = max(1, UInt64((q / 100 * Double(count)).rounded(.up)))
        let exact = UInt64(stalls.count)
        if rank > count - min(exact, count) {
            let index = Int(rank - (count - exact)) - 1
            return Double(stalls[max(0, min(stalls.count - 1, index))])
        }
        var seen: UInt64 = 0
        for (bucket, n) in buckets.enumerated() {
            seen += n
            if seen >= rank {
                let upper = bucket >= 63 ? Double(UInt64.max) : Double((UInt64(1) << UInt64(bucket + 1)) - 1)
                return min(upper, Double(result.thresholdCycles))
            }
        }
        return nil
    }

    /// The index (into `ops`) of the operation a stall is attributed to: the
    /// latest that began before the stall ended and ended at most `window`
    /// before the stall began.
    public func attribute(_ stall: JitterStall, ops: [JitterOp]) -> Int? {
        let stallStart = stall.endTSC &- stall.cycles
        var low = 0, high = ops.count
        while low < high {
            let mid = (low + high) / 2
            if ops[mid].startTSC <= stall.endTSC { low = mid + 1 } else { high = mid }
        }
        var index = low - 1
        while index >= 0 {
            if ops[index].endTSC &+ window >= stallStart { return index }
            if ops[index].endTSC &+ window < stallStart { return nil }
            index -= 1
        }
        return nil
    }

    func summarize(_ phase: JitterPhase) -> JitterPhaseSummary {
        let buckets = JitterAnalysis.total(phase.buckets)
        let stallCycles = phase.stalls.map(\.cycles).sorted()
        let duration = seconds(phase.endTSC &- phase.startTSC)
        var gap: Percentiles? = nil
        var median: Double? = nil
        if let p50 = percentile(50, buckets: buckets, stalls: stallCycles) {
            let values = [50.0, 90, 99, 99.9].map { percentile($0, buckets: buckets, stalls: stallCycles) ?? 0 }
            let maximum = stallCycles.last.map { Double($0) } ?? values[3]
            median = p50
            gap = Percentiles(count: Int(buckets.reduce(0, &+)), min: 0, p50: values[0] / cyclesPerSecond, p90: values[1] / cyclesPerSecond,
                              p99: values[2] / cyclesPerSecond, p999: values[3] / cyclesPerSecond, max: maximum / cyclesPerSecond,
                              mean: duration * Double(phase.loops.count) / Double(max(1, phase.loops.reduce(0, &+))))
        }
        let attributed = phase.stalls.filter { attribute($0, ops: phase.ops) != nil }.count
        var worst: JitterPhaseSummary.WorstVCPU? = nil
        let byVCPU = Dictionary(grouping: phase.stalls, by: \.vcpu)
        if let top = byVCPU.max(by: { ($0.value.map(\.cycles).max() ?? 0) < ($1.value.map(\.cycles).max() ?? 0) }) {
            worst = .init(vcpu: top.key, maxStallSeconds: seconds(top.value.map(\.cycles).max() ?? 0), stalls: top.value.count)
        }
        var ioctls: [String: Percentiles] = [:]
        for (kind, ops) in Dictionary(grouping: phase.ops, by: \.kind) {
            ioctls[kind] = Percentiles(ops.map { seconds($0.endTSC &- $0.startTSC) })
        }
        return JitterPhaseSummary(
            name: phase.name, seconds: duration, loops: phase.loops.reduce(0, &+), gapSeconds: gap, medianGapCycles: median,
            stallSeconds: Percentiles(stallCycles.map { seconds($0) }),
            stalls: phase.stalls.count, rounds: phase.rounds, roundsPerSecond: Double(phase.rounds) / max(duration, 1e-9),
            ioctls: phase.ops.count, attributedStalls: attributed,
            stallsPerRound: phase.rounds > 0 ? Double(attributed) / Double(phase.rounds) : nil,
            worstVCPU: worst, ioctlSeconds: ioctls, stats: phase.stats)
    }
}
