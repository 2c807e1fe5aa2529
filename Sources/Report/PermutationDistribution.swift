import VMM

/// The permutation distribution of the sum of `k` integer scores drawn
/// from a pooled list: every way the pooled rounds could have been split
/// between the two sides, as the null hypothesis "both sides are one
/// distribution" makes them equally likely.
///
/// Exact (a count per sum, by dynamic programming over the scores) while
/// that takes at most `exactWork` steps, which covers every compare a person
/// runs live (up to about 60 rounds a side); beyond it a fixed-seed sample
/// of `samples` random splits, so the same rounds always give the same p.
struct PermutationDistribution: Sendable {
    static let exactWork = 60_000_000
    static let samples = 20_000

    /// How many splits give each sum (index = sum), out of `total`.
    let counts: [Double]
    let total: Double
    let exact: Bool
    /// The sum's expectation under the null: k times the pooled scores' mean.
    let mean: Double

    init(scores: [Int], choose k: Int) {
        precondition(k >= 0 && k <= scores.count && scores.allSatisfy { $0 >= 0 })
        let maxSum = scores.sorted(by: >).prefix(k).reduce(0, +)
        mean = Double(k) * Double(scores.reduce(0, +)) / Double(max(1, scores.count))
        let work = Double(scores.count) * Double(k) * Double(maxSum + 1)
        if work <= Double(PermutationDistribution.exactWork) {
            // ways[j][s]: subsets of j of the scores seen so far summing to s.
            var ways = [[Double]](repeating: [Double](repeating: 0, count: maxSum + 1), count: k + 1)
            ways[0][0] = 1
            for (seen, score) in scores.enumerated() {
                for j in stride(from: min(k, seen + 1), through: 1, by: -1) {
                    let from = ways[j - 1]
                    for s in stride(from: maxSum, through: score, by: -1) where from[s - score] != 0 {
                        ways[j][s] += from[s - score]
                    }
                }
            }
            counts = ways[k]
            total = counts.reduce(0, +)
            exact = true
        } else {
            var counts = [Double](repeating: 0, count: maxSum + 1)
            var random = SplitMix64(seed: 0x6B76_6D6C_6162)
            var pool = scores
            for _ in 0..<PermutationDistribution.samples {
                // A partial Fisher–Yates shuffle: the first k are a uniform k-subset.
                var sum = 0
                for i in 0..<k {
                    let j = i + random.index(pool.count - i)
                    pool.swapAt(i, j)
                    sum += pool[i]
                }
                counts[sum] += 1
            }
            self.counts = counts
            total = Double(PermutationDistribution.samples)
            exact = false
        }
    }

    /// P(|S − mean| ≥ |observed − mean|): the two-sided p of an observed sum.
    /// A sampled distribution counts the observed split among its samples
    /// ((hits + 1) / (samples + 1)), which keeps the test's level.
    func twoSidedP(observed: Int) -> Double {
        let deviation = abs(Double(observed) - mean)
        // Sums are integers and the mean a multiple of 1/N: a relative
        // tolerance keeps an equal deviation from being lost to rounding.
        let tolerance = 1e-9 * max(1, deviation)
        var hits = 0.0
        for (sum, count) in counts.enumerated() where count != 0 && abs(Double(sum) - mean) >= deviation - tolerance { hits += count }
        return exact ? min(1, hits / total) : min(1, (hits + 1) / (total + 1))
    }

    /// P(S ≤ sum).
    func cumulative(_ sum: Int) -> Double {
        guard sum >= 0 else { return 0 }
        return counts.prefix(sum + 1).reduce(0, +) / total
    }

    /// The smallest two-sided p any split could give: the sums farthest from
    /// the mean. (Sampled: at least one sample's worth, 1/(samples+1).)
    var smallestP: Double {
        let farthest = counts.indices.filter { counts[$0] != 0 }.map { abs(Double($0) - mean) }.max() ?? 0
        return twoSidedP(observed: Int((mean + farthest).rounded()))
    }
}

/// The no-ties distribution of the rank sum depends only on the two sides'
/// sizes; compare and its tests ask for the same few many times.
enum UntiedRankSums {
    private static let cache = Locked<[Int: PermutationDistribution]>([:])

    /// Doubled ranks 2, 4, ..., 2N with k of them chosen.
    static func distribution(pooled: Int, choose k: Int) -> PermutationDistribution {
        let key = pooled << 32 | k
        if let known = cache.withLock({ $0[key] }) { return known }
        let made = PermutationDistribution(scores: (0..<pooled).map { 2 * ($0 + 1) }, choose: k)
        cache.withLock { $0[key] = made }
        return made
    }
}

/// A small deterministic generator: the same rounds give the same sample.
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

    /// Uniform in (0, 1).
    mutating func unit() -> Double { (Double(next() >> 11) + 0.5) / Double(1 << 53) }
}
