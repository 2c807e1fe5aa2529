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
    /// The host probe's gaps above the threshold (nil without --host-probe).
    public let hostStallSeconds: Percentiles?
    public let hostStalls: Int?
    public let hostStallsPerRound: Double?
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
    public let hostProbeCPU: Int?
    public let loopsMatchBuckets: Bool
    public let touchesMatchLoops: Bool

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
        phases = result.phases.map { analysis.summarize($0, probing: result.config.hostProbeCPU != nil) }
        hostProbeCPU = result.config.hostProbeCPU
        lostStalls = result.lostStalls
        loopsMatchBuckets = result.finalLoops == result.finalBucketSums
        touchesMatchLoops = result.finalLoops == result.finalTouches

    }
}

/// Shared arithmetic: TSC conversion, percentiles, attribution.

extension JitterAnalysis {
    func summarize(_ phase: JitterPhase, probing: Bool) -> JitterPhaseSummary {
        let gaps = gapDistribution(phase)
        let duration = seconds(phase.endTSC &- phase.startTSC)
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
            name: phase.name, seconds: duration, loops: phase.loops.reduce(0, &+), gapSeconds: gaps.percentiles,
            medianGapCycles: gaps.percentiles.map { $0.p50 * Double(tscKHz) * 1000 },
            stallSeconds: Percentiles(phase.stalls.map { seconds($0.cycles) }),
            stalls: phase.stalls.count,
            hostStallSeconds: probing ? Percentiles(phase.hostStalls.map { seconds($0.cycles) }) : nil,
            hostStalls: probing ? phase.hostStalls.count : nil,
            hostStallsPerRound: probing && phase.rounds > 0
                ? Double(phase.hostStalls.filter { attribute($0, ops: phase.ops) != nil }.count) / Double(phase.rounds) : nil,
            rounds: phase.rounds, roundsPerSecond: Double(phase.rounds) / max(duration, 1e-9),
            ioctls: phase.ops.count, attributedStalls: attributed,
            stallsPerRound: phase.rounds > 0 ? Double(attributed) / Double(phase.rounds) : nil,
            worstVCPU: worst, ioctlSeconds: ioctls, stats: phase.stats)
    }
}
