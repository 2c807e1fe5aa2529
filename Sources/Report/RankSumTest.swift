/// The Wilcoxon–Mann–Whitney rank-sum test of two sides' rounds, exact by
/// permutation.
///
/// Why this test: compare has few rounds a side (often 3 to 10) from
/// distributions with heavy tails (a stall maximum, a run that met a busy
/// host). A permutation test's level holds for any distribution and any
/// sample size, and on ranks one outlying round moves the statistic by one
/// rank, not by its size. A bootstrap of the medians, used before, has a few
/// dozen distinct resamples at 3 rounds and cannot see spread it was not
/// shown: its intervals were far too narrow (11% false calls in A/A runs).
public struct RankSumTest: Sendable {
    /// Two-sided p: the share of splits of the pooled rounds whose rank sum
    /// lies at least as far from its expectation as the observed one.
    public let p: Double
    /// The smallest p any split of these pooled rounds could give (2/C(2n, n)
    /// for n untied rounds a side): a test that cannot go below the level
    /// cannot find anything, whatever the data.
    public let smallestP: Double
    /// +1 when B's rounds rank above A's, −1 below, 0 when level.
    public let direction: Int
    /// Every split counted, or a fixed-seed sample of them.
    public let exact: Bool

    public init(a: [Double], b: [Double]) {
        precondition(!a.isEmpty && !b.isEmpty)
        let ranks = RankSumTest.doubledMidranks(a + b)
        let rankA = ranks[..<a.count].reduce(0, +), rankB = ranks[a.count...].reduce(0, +)
        // Count splits by the smaller side: the same test, less work.
        let bIsSmaller = b.count <= a.count
        let k = bIsSmaller ? b.count : a.count
        // Untied rounds (the usual case for times) share one distribution per size.
        let untied = Set(ranks).count == ranks.count
        let distribution = untied ? UntiedRankSums.distribution(pooled: ranks.count, choose: k) : PermutationDistribution(scores: ranks, choose: k)
        p = distribution.twoSidedP(observed: bIsSmaller ? rankB : rankA)
        smallestP = distribution.smallestP
        let meanA = Double(rankA) / Double(a.count), meanB = Double(rankB) / Double(b.count)
        direction = meanB > meanA ? 1 : meanB < meanA ? -1 : 0
        exact = distribution.exact
    }

    /// Each value's rank among all of them, ties sharing the mean of their
    /// ranks, doubled so that every one is an integer.
    static func doubledMidranks(_ values: [Double]) -> [Int] {
        let order = values.indices.sorted { values[$0] < values[$1] }
        var ranks = [Int](repeating: 0, count: values.count)
        var start = 0
        while start < order.count {
            var end = start
            while end + 1 < order.count && values[order[end + 1]] == values[order[start]] { end += 1 }
            // Positions start...end hold ranks start+1 ... end+1: their mean, doubled.
            for position in start...end { ranks[order[position]] = start + end + 2 }
            start = end + 1
        }
        return ranks
    }

    /// The ratios r for which the test does not reject "B and r·A are one
    /// distribution" at two-sided level `alpha`: the test inverted over
    /// ratios, so the interval excludes 1 exactly when the test rejects (for
    /// untied rounds). It is the order statistics of every ratio b/a,
    /// [D(c), D(nm+1−c)] with c the largest count P(U ≤ c−1) ≤ alpha/2 allows
    /// (the Hodges–Lehmann interval, on ratios).
    /// nil when a round of A is zero or negative (no ratio), or when so few
    /// rounds cannot bound the ratio at this level.
    public static func ratioInterval(a: [Double], b: [Double], alpha: Double) -> (low: Double, high: Double)? {
        guard !a.isEmpty, !b.isEmpty, a.allSatisfy({ $0 > 0 && $0.isFinite }), b.allSatisfy(\.isFinite) else { return nil }
        let k = min(a.count, b.count)
        let untied = UntiedRankSums.distribution(pooled: a.count + b.count, choose: k)
        // U = (rank sum of the chosen side) − k(k+1)/2; its doubled rank sum is 2U + k(k+1).
        func cumulativeU(_ u: Int) -> Double { untied.cumulative(2 * u + k * (k + 1)) }
        let pairs = a.count * b.count
        var c = 0
        while c < pairs / 2 && cumulativeU(c) <= alpha / 2 { c += 1 }
        guard c > 0 else { return nil }
        let ratios = a.flatMap { x in b.map { $0 / x } }.sorted()
        return (ratios[c - 1], ratios[pairs - c])
    }
}
