import Foundation
import Testing
@testable import Report
@testable import Scenarios
import VMM

/// compare's statistics on synthetic rounds: no KVM, no timing. The error
/// rates are measured on thousands of A/A comparisons drawn with a fixed
/// seed, so every run sees the same draws.
@Suite(.timeLimit(.minutes(1))) struct CompareStatisticsTests {
    /// Rounds from a heavy-tailed distribution: log-normal, or log-normal
    /// with a rare large outlier (a stall maximum, a round that met a busy host).
    enum Noise: CaseIterable {
        case logNormal, outliers

        func draw(_ count: Int, scale: Double, _ random: inout SplitMix64) -> [Double] {
            (0..<count).map { _ in
                let gaussian = (-2 * Foundation.log(random.unit())).squareRoot() * Foundation.cos(2 * Double.pi * random.unit())
                switch self {
                case .logNormal: return scale * Foundation.exp(0.25 * gaussian)
                case .outliers: return scale * Foundation.exp(0.1 * gaussian) * (random.unit() < 0.1 ? 10 : 1)
                }
            }
        }
    }

    func metric(_ unit: MetricUnit = .seconds, better: Better = .lower) -> Metric {
        Metric("m_seconds", "", unit: unit, better: better, value: 0)
    }

    /// One comparison of `metrics` metrics, each drawn from `noise`, the
    /// first `shifted` of them with B scaled by `shift`.
    func table(rounds: Int, metrics: Int, shifted: Int = 0, shift: Double = 1, noise: Noise, _ random: inout SplitMix64,
               settings: Comparison.Settings = Comparison.Settings()) -> [String] {
        func side(_ name: String, _ factor: (Int) -> Double) -> ComparedVariant {
            let runs = (0..<rounds).map { _ in
                Experiment(experiment: "synthetic", config: [:], metrics: (0..<metrics).map { index in
                    Metric("m\(index)_seconds", "", unit: .seconds, better: .lower, value: noise.draw(1, scale: factor(index), &random)[0])
                }, phases: [], checks: [], problems: [], interrupted: false)
            }
            return ComparedVariant(name: name, flags: [], documents: runs.map { saved($0) })
        }
        let a = side("A") { _ in 1 }, b = side("B") { $0 < shifted ? shift : 1 }
        return Comparison([a, b], settings: settings).metrics.map(\.verdict)
    }

    static let host = HostFingerprint.current()
    func saved(_ experiment: Experiment) -> SavedDocument {
        SavedDocument(schema: "kvmlab/2", command: experiment.experiment, host: Self.host, experiment: experiment)
    }

    static let calls: Set<String> = ["faster", "slower", "better", "worse", "higher", "lower"]

    @Test func exactPValuesOfSeparatedSides() {
        #expect(abs(RankSumTest(a: [1, 2, 3], b: [4, 5, 6]).p - 2.0 / 20) < 1e-12)
        #expect(abs(RankSumTest(a: [1, 2, 3, 4, 5], b: [6, 7, 8, 9, 10]).p - 2.0 / 252) < 1e-12)
        #expect(abs(RankSumTest(a: [1, 2, 3, 4, 5], b: [6, 7, 8, 9, 10]).smallestP - 2.0 / 252) < 1e-12)
        #expect(RankSumTest(a: [5, 5, 5], b: [5, 5, 5]).p == 1 && RankSumTest(a: [5, 5, 5], b: [5, 5, 5]).smallestP == 1)
        #expect(RankSumTest(a: [1, 3, 5], b: [2, 4, 6]).direction == 1 && RankSumTest(a: [2, 4, 6], b: [1, 3, 5]).direction == -1)
        // Ties share their mean rank: 1, 2.5, 2.5, 4 doubled.
        #expect(RankSumTest.doubledMidranks([1, 7, 7, 9]) == [2, 5, 5, 8])
    }

    @Test func holmAdjustsStepDown() {
        let tests = [RankSumTest(a: [1, 2, 3, 4, 5], b: [6, 7, 8, 9, 10]), nil, RankSumTest(a: [1, 2, 3], b: [4, 5, 6]),
                     RankSumTest(a: [1, 2, 3, 4, 6], b: [5, 7, 8, 9, 10])]
        let family = TestFamily(tests, level: 0.05)
        // The 3-round test can never reach 5%: it is not in the family.
        #expect(family.members == [0, 3])
        #expect(abs(family.adjusted[0]! - 2 * tests[0]!.p) < 1e-12)
        #expect(abs(family.adjusted[3]! - max(2 * tests[0]!.p, tests[3]!.p)) < 1e-12)
        #expect(TestFamily.roundsNeeded(metrics: 1, level: 0.05) == 4)
        #expect(TestFamily.roundsNeeded(metrics: 12, level: 0.05) == 6)
        #expect(TestFamily.roundsNeeded(metrics: 24, level: 0.05) == 7)
    }

    @Test func aTwofoldShiftIsFoundAndItsIntervalCoversTwo() {
        var random = SplitMix64(seed: 3)
        let a = Noise.logNormal.draw(7, scale: 10, &random), b = Noise.logNormal.draw(7, scale: 20, &random)
        let verdicts = table(rounds: 7, metrics: 1, shifted: 1, shift: 2, noise: .logNormal, &random)
        #expect(verdicts == ["slower"])
        let interval = try! #require(RankSumTest.ratioInterval(a: a, b: b, alpha: 0.05))
        #expect(interval.low > 1 && interval.low <= 2 && interval.high >= 2)
        #expect(table(rounds: 7, metrics: 1, shifted: 1, shift: 0.5, noise: .logNormal, &random) == ["faster"])
    }

    @Test func higherIsBetterMetricsReadTheOtherWay() {
        let a = ComparedVariant(name: "A", flags: [], documents: [100, 101, 99, 102, 98].map { value in
            saved(Experiment(experiment: "x", config: [:], metrics: [
                Metric("rate_per_second", "", unit: .perSecond, better: .higher, value: value),
                Metric("events", "", unit: .count, better: .lower, value: value),
                Metric("level", "", unit: .count, better: .neither, value: value)], phases: [], checks: [], problems: [], interrupted: false))
        })
        let b = ComparedVariant(name: "B", flags: [], documents: a.documents.map { document in
            let experiment = document.experiment!
            return saved(Experiment(experiment: "x", config: [:], metrics: experiment.metrics.map {
                Metric($0.name, "", unit: $0.unit, better: $0.better, value: $0.value! * 2) }, phases: [], checks: [], problems: [], interrupted: false))
        })
        #expect(Comparison([a, b]).metrics.map(\.verdict) == ["better", "worse", "higher"])
    }

    @Test func tooFewRoundsSayWhyInsteadOfVerdicts() {
        var random = SplitMix64(seed: 4)
        for rounds in [1, 3] {
            #expect(table(rounds: rounds, metrics: 3, shifted: 3, shift: 10, noise: .logNormal, &random) == Array(repeating: "too few rounds", count: 3))
        }
        // 5 rounds reach 2/252 ≈ 0.008: enough for one metric, not for 14 under Holm (0.05/14 ≈ 0.0036).
        #expect(table(rounds: 5, metrics: 1, shifted: 1, shift: 10, noise: .logNormal, &random) == ["slower"])
        #expect(table(rounds: 5, metrics: 14, shifted: 14, shift: 10, noise: .logNormal, &random).allSatisfy { $0 == "too few rounds" })
        let a = ComparedVariant(name: "A", flags: [], documents: [saved(Experiment(experiment: "x", config: [:],
            metrics: [Metric("m_seconds", "", unit: .seconds, better: .lower, value: 1)], phases: [], checks: [], problems: [], interrupted: false))])
        #expect(Comparison([a, a]).tables[0].note == nil)  // every round equal: nothing to show
        let spread = ComparedVariant(name: "B", flags: [], documents: [2.0, 3.0, 4.0].map { value in
            saved(Experiment(experiment: "x", config: [:], metrics: [Metric("m_seconds", "", unit: .seconds, better: .lower, value: value)],
                                                 phases: [], checks: [], problems: [], interrupted: false)) })
        let other = ComparedVariant(name: "C", flags: [], documents: spread.documents)
        let comparison = Comparison([spread, other])
        #expect(comparison.tables[0].note?.contains("3 rounds a side cannot show a difference at 5% over 1 metric") == true)
        #expect(comparison.tables[0].note?.contains("use 4 or more rounds a side") == true)
    }

    @Test func aZeroBaselineIsComparedByRanks() {
        let zeros = [0.0, 0, 0, 0, 0, 0, 0], zaps = [400.0, 390, 410, 405, 395, 399, 401]
        let test = RankSumTest(a: zeros, b: zaps)
        #expect(test.p < 0.001 && test.direction == 1)
        #expect(RankSumTest.ratioInterval(a: zeros, b: zaps, alpha: 0.05) == nil)
        #expect(RankSumTest(a: [0, 0, 1, 0, 0, 1, 0], b: [0, 1, 0, 0, 0, 0, 1]).p > 0.5)
    }

    @Test func aSignificantButSmallChangeIsNotMeaningful() {
        // Every B round 2% above every A round: significant, below the 5% noise.
        let a = [1.00, 1.01, 0.99, 1.005, 0.995, 1.002, 0.998]
        let docs = { (values: [Double]) in values.map { saved(Experiment(experiment: "x", config: [:],
            metrics: [Metric("m_seconds", "", unit: .seconds, better: .lower, value: $0)], phases: [], checks: [], problems: [], interrupted: false)) } }
        let sides = [ComparedVariant(name: "A", flags: [], documents: docs(a)), ComparedVariant(name: "B", flags: [], documents: docs(a.map { $0 * 1.02 + 0.011 }))]
        #expect(Comparison(sides).metrics[0].verdict == "no meaningful change")
        var strict = Comparison.Settings()
        strict.noise = 0
        #expect(Comparison(sides, settings: strict).metrics[0].verdict == "slower")
    }

    /// The interval is the test inverted: for untied rounds it excludes 1
    /// exactly when the test rejects at the same level.
    @Test func theIntervalAgreesWithTheTest() {
        var random = SplitMix64(seed: 5)
        for trial in 0..<400 {
            let rounds = 4 + trial % 7
            let a = Noise.logNormal.draw(rounds, scale: 1, &random), b = Noise.logNormal.draw(rounds + trial % 3, scale: 1.2, &random)
            let rejects = RankSumTest(a: a, b: b).p <= 0.05
            guard let interval = RankSumTest.ratioInterval(a: a, b: b, alpha: 0.05) else { Issue.record("no interval at \(rounds) rounds"); continue }
            #expect(rejects == (interval.low > 1 || interval.high < 1), "trial \(trial): \(a) \(b)")
        }
    }

    /// A/A: identical variants. Per metric, at most 5% of the comparisons
    /// may call a change, at every rounds count compare accepts.
    @Test(arguments: [3, 5, 10], Noise.allCases)
    func falseCallsPerMetricStayAtTheLevel(rounds: Int, noise: Noise) {
        var random = SplitMix64(seed: UInt64(rounds) &* 77 &+ (noise == .logNormal ? 0 : 1))
        let trials = 2000
        var calls = 0, pBelow = 0
        for _ in 0..<trials {
            let a = noise.draw(rounds, scale: 1, &random), b = noise.draw(rounds, scale: 1, &random)
            if RankSumTest(a: a, b: b).p <= 0.05 { pBelow += 1 }
            if Self.calls.contains(table(rounds: rounds, metrics: 1, noise: noise, &random, settings: Self.noNoiseBand)[0]) { calls += 1 }
        }
        #expect(Double(pBelow) / Double(trials) <= 0.05, "\(pBelow) of \(trials) A/A tests below 5%")
        #expect(Double(calls) / Double(trials) <= 0.05, "\(calls) of \(trials) A/A verdicts")
    }

    /// A/A, a table of 14 metrics: at most 5% of the tables hold any call.
    @Test(arguments: [5, 7, 10], Noise.allCases)
    func falseCallsPerTableStayAtTheLevel(rounds: Int, noise: Noise) {
        var random = SplitMix64(seed: UInt64(rounds) &* 991 &+ (noise == .logNormal ? 0 : 1))
        let trials = 600
        var tables = 0
        for _ in 0..<trials where table(rounds: rounds, metrics: 14, noise: noise, &random, settings: Self.noNoiseBand).contains(where: Self.calls.contains) {
            tables += 1
        }
        #expect(Double(tables) / Double(trials) <= 0.05, "\(tables) of \(trials) A/A tables had a false verdict")
    }

    /// Power on a known effect, log-normal rounds (σ = 0.25, a 25% spread):
    /// a 1.5× shift at 10 rounds is found in at least 80% of comparisons, a
    /// 2× shift at 5 rounds in at least 90% (5 rounds must separate almost
    /// completely: U ≤ 2 of 25), and a 2× shift of 3 of 14 metrics at the
    /// default 7 rounds, through Holm, in at least 80%.
    @Test func realShiftsAreFound() {
        var random = SplitMix64(seed: 11)
        #expect(share(10, metrics: 1, shifted: 1, 1.5, .logNormal, &random) >= 0.8)
        #expect(share(5, metrics: 1, shifted: 1, 2, .logNormal, &random) >= 0.9)
        #expect(share(7, metrics: 14, shifted: 3, 2, .logNormal, &random) >= 0.8)
    }

    /// With a 10× outlier in one round of ten, a side of 5 holds one 41% of
    /// the time and it outranks every shifted round: no rank test separates
    /// those, so power comes from rounds. 10 still find 1.5× alone; through
    /// Holm, 12 find 2× on 3 of 14 metrics at least 80% of the time (10: 74%).
    @Test func realShiftsAreFoundThroughOutliers() {
        var random = SplitMix64(seed: 12)
        #expect(share(10, metrics: 1, shifted: 1, 1.5, .outliers, &random) >= 0.8)
        #expect(share(12, metrics: 14, shifted: 3, 2, .outliers, &random) >= 0.8)
    }

    /// The share of shifted metrics called "slower" over 300 comparisons.
    func share(_ rounds: Int, metrics: Int, shifted: Int, _ shift: Double, _ noise: Noise, _ random: inout SplitMix64) -> Double {
        var found = 0
        for _ in 0..<300 {
            found += table(rounds: rounds, metrics: metrics, shifted: shifted, shift: shift, noise: noise, &random).prefix(shifted).filter { $0 == "slower" }.count
        }
        return Double(found) / Double(300 * shifted)
    }

    @Test func manyRoundsAreSampledWithAFixedSeed() {
        var random = SplitMix64(seed: 6)
        let a = Noise.logNormal.draw(150, scale: 1, &random), b = Noise.logNormal.draw(150, scale: 1.2, &random)
        let test = RankSumTest(a: a.map { ($0 * 20).rounded() }, b: b.map { ($0 * 20).rounded() })  // ties: no shared distribution
        #expect(!test.exact && test.p < 0.01 && test.direction == 1)
        #expect(test.p == RankSumTest(a: a.map { ($0 * 20).rounded() }, b: b.map { ($0 * 20).rounded() }).p)
    }

    @Test func medians() {
        #expect(Statistics.median([3, 1, 2]) == 2 && Statistics.median([4, 1, 2, 3]) == 2.5 && Statistics.median([]) == nil)
    }

    /// The error-rate tests count calls of any size: the noise band would hide false calls.
    static var noNoiseBand: Comparison.Settings {
        var settings = Comparison.Settings()
        settings.noise = 0
        return settings
    }
}
