import Testing
@testable import Report
@testable import Scenarios

/// compare's statistics on synthetic rounds: no KVM, no timing.
@Suite struct CompareStatisticsTests {
    /// Deterministic noise: ±5% around `center`.
    func rounds(_ center: Double, count: Int = 8, seed: UInt64 = 1) -> [Double] {
        var random = SplitMix64(seed: seed)
        return (0..<count).map { _ in center * (0.95 + 0.1 * Double(random.next() % 1000) / 1000) }
    }

    @Test func identicalDistributionsShowNoSignificantChange() {
        let estimate = RatioEstimate(a: rounds(10, seed: 1), b: rounds(10, seed: 2))
        let interval = try! #require(estimate.interval)
        #expect(interval.low <= 1 && interval.high >= 1)
        #expect(estimate.verdict(unit: .seconds, better: .lower) == "no significant change")
    }

    @Test func aTwofoldShiftIsSignificantAndItsIntervalCoversTwo() {
        let estimate = RatioEstimate(a: rounds(10, seed: 3), b: rounds(20, seed: 4))
        let interval = try! #require(estimate.interval)
        #expect(interval.low > 1 && interval.low <= 2 && interval.high >= 2)
        #expect(abs((estimate.ratio ?? 0) - 2) < 0.15)
        #expect(estimate.verdict(unit: .seconds, better: .lower) == "slower")
        #expect(RatioEstimate(a: rounds(20, seed: 4), b: rounds(10, seed: 3)).verdict(unit: .seconds, better: .lower) == "faster")
    }

    @Test func higherIsBetterMetricsReadTheOtherWay() {
        let up = RatioEstimate(a: rounds(100, seed: 5), b: rounds(200, seed: 6))
        #expect(up.verdict(unit: .pagesPerSecond, better: .higher) == "better")
        #expect(up.verdict(unit: .count, better: .lower) == "worse")
        #expect(up.verdict(unit: .count, better: .neither) == "higher")
    }

    @Test func oneRoundASideGivesNoInterval() {
        let estimate = RatioEstimate(a: [10], b: [20])
        #expect(estimate.ratio == 2 && estimate.interval == nil)
        #expect(estimate.verdict(unit: .seconds, better: .lower) == "one round a side: no interval")
    }

    @Test func aZeroBaselineComparesBySeparation() {
        let zaps = RatioEstimate(a: [0, 0, 0], b: [400, 390, 410])
        #expect(zaps.ratio == nil)
        #expect(zaps.verdict(unit: .count, better: .lower) == "worse")
        #expect(RatioEstimate(a: [0, 0, 1], b: [0, 1, 0]).verdict(unit: .count, better: .lower) == "no significant change")
    }

    @Test func theIntervalIsRepeatable() {
        let a = rounds(10, seed: 7), b = rounds(12, seed: 8)
        #expect(RatioEstimate(a: a, b: b).interval! == RatioEstimate(a: a, b: b).interval!)
    }

    @Test func mediansAndQuantiles() {
        #expect(Statistics.median([3, 1, 2]) == 2 && Statistics.median([4, 1, 2, 3]) == 2.5 && Statistics.median([]) == nil)
        #expect(Statistics.quantile([1, 2, 3, 4, 5], 0.5) == 3 && Statistics.quantile([1, 2], 0.25) == 1.25)
    }
}
