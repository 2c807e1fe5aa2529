/// Nearest-rank percentiles of a sample, for latency tables and JSON.
public struct Percentiles: Sendable, Codable, Equatable {
    public let count: Int
    public let min: Double
    public let p50: Double
    public let p90: Double
    public let p99: Double
    public let p999: Double
    public let max: Double
    public let mean: Double

    public init(count: Int, min: Double, p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double) {
        self.count = count
        self.min = min
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
        self.mean = mean
    }

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        self.init(sorted: values.sorted())
    }

    public init(sorted: [Double]) {
        precondition(!sorted.isEmpty)
        func rank(_ p: Double) -> Double {
            let index = Int((p / 100 * Double(sorted.count)).rounded(.up)) - 1
            return sorted[Swift.max(0, Swift.min(sorted.count - 1, index))]
        }
        count = sorted.count
        min = sorted[0]
        p50 = rank(50)
        p90 = rank(90)
        p99 = rank(99)
        p999 = rank(99.9)
        max = sorted[sorted.count - 1]
        mean = sorted.reduce(0, +) / Double(sorted.count)
    }
}
