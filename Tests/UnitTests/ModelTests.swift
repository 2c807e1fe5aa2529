import KVM
import Testing
@testable import Scenarios
@testable import VMM

/// The pure logic under the experiments: verification, attribution,
/// statuses, stamps, distributions. None of it needs /dev/kvm.
@Suite(.timeLimit(.minutes(1))) struct ModelTests {
    /// A slot of 130 pages where pages 0..<100 carry iteration 2's stamp.
    func words(iteration: Int = 2) -> (Int) -> UInt64 {
        { page in page < 100 ? Stamp(tag: 1, sequence: iteration).word(page: page) : Stamp(tag: 1, sequence: iteration - 1).word(page: page) }
    }

    @Test func dirtyCheckCountsAMissedAndASpuriousPage() {
        var bitmap = DirtyBitmap(pages: 130)
        for page in 0..<100 { bitmap[page] = true }
        bitmap[17] = false   // written, not reported
        bitmap[120] = true   // reported, not written
        var check = DirtyCheck()
        check.add(slot: 1, bitmap: bitmap, iteration: 2, expectAll: false, word: words())
        #expect(check.stamped == 100 && check.dirty == 100 && check.expected == 100)
        #expect(check.missed == 1 && check.spurious == 1 && !check.correct)
        #expect(check.examples == ["slot 1 page 17 written but not dirty", "slot 1 page 120 dirty but not written"])
    }

    @Test func dirtyCheckPassesAnExactHarvestAndExpectsAllWhenInitiallySet() {
        var bitmap = DirtyBitmap(pages: 130)
        for page in 0..<100 { bitmap[page] = true }
        var exact = DirtyCheck()
        exact.add(slot: 1, bitmap: bitmap, iteration: 2, expectAll: false, word: words())
        #expect(exact.correct && exact.examples.isEmpty)
        var all = DirtyCheck()
        all.add(slot: 1, bitmap: bitmap, iteration: 2, expectAll: true, word: words())
        #expect(all.missed == 30 && all.expected == 130)
    }

    @Test func aFailedCheckMakesTheRunChecksFailedButAProblemWins() {
        let failed = CheckRecord.equal("pages", expected: 4, observed: 3)
        #expect(!failed.passed && failed.expected == "4" && failed.observed == "3")
        #expect(Experiment.status(interrupted: false, problems: [], checks: [failed]) == .checksFailed)
        #expect(Experiment.status(interrupted: false, problems: ["KVM_RUN failed"], checks: [failed]) == .error)
        #expect(Experiment.status(interrupted: true, problems: ["x"], checks: [failed]) == .interrupted)
        #expect(Experiment.status(interrupted: false, problems: [], checks: [.equal("ok", expected: 1, observed: 1)]) == .ok)
    }

    @Test func stampsRoundTripAndRejectUnstampedWords() {
        let stamp = Stamp(tag: 0x6B6C, sequence: 70_000, part: 3)
        let word = stamp.word(page: 12345)
        #expect(Stamp(word: word) == stamp)
        #expect(Stamp.page(of: word) == 12345)
        #expect(stamp.sequence == UInt16(70_000 & 0xFFFF))
        #expect(Stamp(word: 0x0000_1234_5678_9abc) == nil)
    }

    func analysis(window: Double = 100) -> JitterAnalysis {
        // 1 MHz TSC: one cycle per microsecond keeps the numbers readable.
        JitterAnalysis(tscKHz: 1000, thresholdCycles: 10, windowMicros: window, origin: 0)
    }

    @Test func attributionPicksTheLatestOperationWithinTheWindow() {
        let ops = [JitterOp(kind: "delete", startTSC: 1000, endTSC: 1100), JitterOp(kind: "create", startTSC: 2000, endTSC: 2050)]
        let a = analysis(window: 100)
        // A stall that began after delete ended, within the window.
        #expect(a.attribute(JitterStall(vcpu: 0, endTSC: 1180, cycles: 30), ops: ops) == 0)
        // A stall inside create.
        #expect(a.attribute(JitterStall(vcpu: 0, endTSC: 2040, cycles: 20), ops: ops) == 1)
        // Too late: began 300 cycles after delete ended.
        #expect(a.attribute(JitterStall(vcpu: 0, endTSC: 1450, cycles: 50), ops: ops) == nil)
        // Two candidates began before it ended: the later one wins.
        #expect(a.attribute(JitterStall(vcpu: 0, endTSC: 2100, cycles: 1200), ops: ops) == 1)
        // None began before it ended.
        #expect(a.attribute(JitterStall(vcpu: 0, endTSC: 900, cycles: 10), ops: ops) == nil)
        #expect(a.attribute(JitterStall(vcpu: 0, endTSC: 900, cycles: 10), ops: []) == nil)
    }

    @Test func guestTSCConvertsToHostTSCAcrossALargeOffset() {
        // The guest's TSC runs 2^40 cycles ahead of the host's.
        let offset: Int64 = 1 << 40
        #expect(StallCollector.hostTSC(guest: 5_000 + (1 << 40), offset: offset) == 5_000)
        // ... or behind it.
        #expect(StallCollector.hostTSC(guest: 5_000, offset: -(1 << 40)) == 5_000 + (1 << 40))
    }

    @Test func stallRingEntriesOneCapacityBehindAreTornAfterAWrap() {
        #expect(StallCollector.firstIntact(after: 10, capacity: 16) == 0)
        #expect(StallCollector.firstIntact(after: 16, capacity: 16) == 1)
        #expect(StallCollector.firstIntact(after: 40, capacity: 16) == 25)
    }

    @Test func distributionsKeepExactPercentilesAndLog2Buckets() {
        let samples = (1...100).map { Double($0) / 1e6 }
        let distribution = Distribution(samples: samples)
        #expect(distribution.count == 100)
        #expect(distribution.percentiles?.p50 == 50e-6 && distribution.percentiles?.max == 100e-6)
        #expect(distribution.buckets.reduce(0) { $0 + $1.count } == 100)
        #expect(distribution.buckets.allSatisfy { bucket in bucket.le > 0 })
        #expect(distribution.samples?.count == 100)
        let many = Distribution(samples: [Double](repeating: 1e-3, count: Distribution.maxKeptSamples + 1))
        #expect(many.samples == nil && many.count == Distribution.maxKeptSamples + 1)
        let odd = Distribution(samples: [.nan, .infinity, 2e-9])
        #expect(odd.count == 1 && odd.buckets == [.init(le: 2e-9, count: 1)])
    }

    /// A stamp's page index uses all 30 bits (up to 4 TiB of 4 KiB pages),
    /// not only the low ones every small test touches.
    @Test func aStampCarriesEveryBitOfItsPage() {
        let stamp = Stamp(tag: 7, sequence: 3, part: 2)
        for page in [0, 1, (1 << 29) + 5, (1 << 30) - 1] {
            let word = stamp.word(page: page)
            #expect(Stamp.page(of: word) == page && Stamp(word: word) == stamp, "page \(page)")
        }
    }

    /// Samples arrive in the order they were measured: the distribution
    /// sorts them (unsorted, min came out above max and the mean beyond both).
    @Test func unsortedSamplesGiveOrderedPercentiles() throws {
        let distribution = Distribution(samples: [40e-6, 27e-6, 90e-6, 10e-6, 55e-6])
        let p = try #require(distribution.percentiles)
        #expect(p.min == 10e-6 && p.max == 90e-6 && p.p50 == 40e-6)
        #expect(p.min <= p.p50 && p.p50 <= p.p90 && p.p90 <= p.max && p.mean <= p.max && p.mean >= p.min)
    }

    @Test func percentilesUseNearestRank() {
        let p = Percentiles(sorted: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        #expect(p.p50 == 5 && p.p90 == 9 && p.p99 == 10 && p.min == 1 && p.mean == 5.5)
    }

    @Test func metricKeysNameTheirLabelsInOrder() {
        let metric = Metric("stall_seconds", "", unit: .seconds, better: .lower, labels: ["phase": "churn", "op": "delete"], value: 1)
        #expect(metric.key == "stall_seconds{op=delete,phase=churn}")
        #expect(Metric("x", "", unit: .count, better: .lower, value: .nan).value == nil)
    }
}

/// Tracepoint names and deltas, without a kernel.
@Suite(.timeLimit(.minutes(1))) struct TracepointModelTests {
    @Test func eventNamesAreSubsystemColonName() {
        #expect(TraceCounters.parse("kvmmmu:kvm_mmu_split_huge_page")! == ("kvmmmu", "kvm_mmu_split_huge_page"))
        for bad in ["nocolon", "kvm:", ":x", "a:b:c", "kvm:../../x", "kvm:a b"] { #expect(TraceCounters.parse(bad) == nil, "\(bad)") }
    }

    @Test func aDeltaKeepsWhatMoved() {
        #expect(TraceCounters.delta(["a": 5, "b": 7], ["a": 5, "b": 9, "c": 1]) == ["b": 2, "c": 1])
        #expect(TraceCounters.delta(nil, ["a": 1]) == nil)
    }
}
