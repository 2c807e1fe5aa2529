/// The tests of one table (or of the metrics `--fail-if` names), corrected
/// together so that the whole table keeps the promised error rate: with 14
/// metrics each tested at 5%, an A/A table would show a false verdict about
/// half of the time.
///
/// Holm's step-down correction controls the family-wise error rate (the
/// chance of any false verdict in the table) under any dependence between
/// the metrics, which matters here: the metrics of one run are correlated.
/// It rejects everything Bonferroni does and more.
///
/// A metric whose pooled rounds could not give p ≤ level in any split (all
/// rounds equal, or too many ties) can never be called and is left out of
/// the family (Tarone's observation): the choice depends on the pooled
/// values only, which every split shares, so the level still holds.
public struct TestFamily: Sendable {
    public let level: Double
    /// Indices of the tests that take part.
    public let members: [Int]
    /// Holm-adjusted p of each member, by index.
    public let adjusted: [Int: Double]

    public init(_ tests: [RankSumTest?], level: Double) {
        self.level = level
        members = tests.indices.filter { tests[$0].map { $0.smallestP <= level } ?? false }
        let sorted = members.sorted { tests[$0]!.p < tests[$1]!.p }
        var adjusted: [Int: Double] = [:]
        var running = 0.0
        for (step, index) in sorted.enumerated() {
            // p(i) · (m − i + 1), never below an earlier one, never above 1.
            running = max(running, min(1, tests[index]!.p * Double(sorted.count - step)))
            adjusted[index] = running
        }
        self.adjusted = adjusted
    }

    public var size: Int { members.count }

    /// The level each member's interval is drawn at, so that the table's
    /// intervals hold together (Bonferroni): one that excludes 1 is always a
    /// Holm rejection.
    public var intervalLevel: Double { level / Double(max(1, size)) }

    /// Whether any member could be called at all: Holm's first step needs a
    /// p at or below level/m, and some member must be able to reach it.
    public func canFind(_ tests: [RankSumTest?]) -> Bool {
        members.contains { tests[$0]!.smallestP <= intervalLevel }
    }

    public func significant(_ index: Int) -> Bool { adjusted[index].map { $0 <= level } ?? false }

    /// The fewest untied rounds a side whose smallest p, 2/C(2n, n), reaches
    /// level/m: what to ask for when these rounds cannot find anything.
    public static func roundsNeeded(metrics: Int, level: Double) -> Int {
        var n = 1
        var choose = 2.0  // C(2n, n)
        while 2 / choose > level / Double(max(1, metrics)) && n < 1000 {
            n += 1
            choose *= Double(2 * n) * Double(2 * n - 1) / Double(n * n)
        }
        return n
    }
}
