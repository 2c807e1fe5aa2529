import Guests

/// Arithmetic on a jitter run's raw data: TSC conversion, gap percentiles
/// from the log2 buckets and the exact stalls, and stall attribution.
public struct JitterAnalysis: Sendable {
    public let tscKHz: Int
    public let thresholdCycles: UInt64
    public let windowCycles: UInt64
    /// Host TSC at which the baseline began (time zero of the CSV and plots).
    public let origin: UInt64

    public init(tscKHz: Int, thresholdCycles: UInt64, windowMicros: Double, origin: UInt64) {
        self.tscKHz = tscKHz
        self.thresholdCycles = thresholdCycles
        windowCycles = UInt64(min(windowMicros * Double(tscKHz) / 1000, Double(UInt64.max / 2)))
        self.origin = origin
    }

    public init(_ result: JitterResult) {
        self.init(tscKHz: result.tscKHz, thresholdCycles: result.thresholdCycles, windowMicros: result.config.windowMicros,
                  origin: result.baseline.startTSC)
    }

    var cyclesPerSecond: Double { Double(tscKHz) * 1000 }

    public func seconds(_ cycles: UInt64) -> Double { Double(cycles) / cyclesPerSecond }

    /// Seconds since the baseline began.
    public func time(_ tsc: UInt64) -> Double { Double(Int64(bitPattern: tsc &- origin)) / cyclesPerSecond }

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
                return min(upper, Double(thresholdCycles))
            }
        }
        return nil
    }

    /// The index (into `ops`, ordered by start) of the operation a stall is
    /// attributed to: the latest that began before the stall ended and ended
    /// at most the window before the stall began.
    public func attribute(_ stall: JitterStall, ops: [JitterOp]) -> Int? {
        let stallStart = stall.endTSC &- stall.cycles
        var low = 0, high = ops.count
        while low < high {
            let mid = (low + high) / 2
            if ops[mid].startTSC <= stall.endTSC { low = mid + 1 } else { high = mid }
        }
        // Operations run one at a time, so earlier ones ended earlier still:
        // only the latest candidate can be close enough.
        guard low > 0, ops[low - 1].endTSC &+ windowCycles >= stallStart else { return nil }
        return low - 1
    }

    /// The gaps of a phase as a distribution in seconds: log2 buckets (upper
    /// bounds) below the threshold, each stall exactly above it.
    public func gapDistribution(_ phase: JitterPhase) -> Distribution {
        let buckets = JitterAnalysis.total(phase.buckets)
        let stallCycles = phase.stalls.map(\.cycles).sorted()
        let count = Int(buckets.reduce(0, &+))
        var percentiles: Percentiles?
        if let p50 = percentile(50, buckets: buckets, stalls: stallCycles) {
            let values = [90.0, 99, 99.9].map { percentile($0, buckets: buckets, stalls: stallCycles) ?? 0 }
            let duration = seconds(phase.endTSC &- phase.startTSC)
            percentiles = Percentiles(count: count, min: 0, p50: p50 / cyclesPerSecond, p90: values[0] / cyclesPerSecond,
                                      p99: values[1] / cyclesPerSecond, p999: values[2] / cyclesPerSecond,
                                      max: (stallCycles.last.map { Double($0) } ?? values[2]) / cyclesPerSecond,
                                      mean: duration * Double(phase.loops.count) / Double(max(1, phase.loops.reduce(0, &+))))
        }
        let bounds = buckets.enumerated().filter { $0.element > 0 }.map {
            Distribution.Bucket(le: Double($0.offset >= 63 ? UInt64.max : (UInt64(1) << UInt64($0.offset + 1)) - 1) / cyclesPerSecond, count: $0.element)
        }
        return Distribution(count: count, sum: seconds(phase.endTSC &- phase.startTSC) * Double(phase.loops.count),
                            percentiles: percentiles, buckets: bounds, samples: nil)
    }
}
