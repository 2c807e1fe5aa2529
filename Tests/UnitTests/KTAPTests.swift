@testable import Scenarios
import TestSupport
import Testing
@testable import Report
import VMM

/// kvmlab's KTAP and the reader the integration tests trust it with.
@Suite(.timeLimit(.minutes(1))) struct KTAPTests {
    static let host = HostFingerprint.current()

    @Test func renderedResultsParseBack() throws {
        let runs = [
            CheckRun(name: "a", summary: "", verdict: .pass(["3 checks passed"]), seconds: 0.1),
            CheckRun(name: "b", summary: "", verdict: .fail(["lost pages:", "  expected 0", "  observed 2"]), seconds: 0.1),
            CheckRun(name: "c", summary: "", verdict: .skip("no # dirty ring\nhere"), seconds: 0),
        ]
        var text = KTAP.header(host: KTAPTests.host, mode: "quick", plan: runs.count)
        for (index, run) in runs.enumerated() { text += KTAP.result(index + 1, run) }
        text += KTAP.footer(CheckSuiteResult(mode: "quick", runs: runs, interrupted: false))
        let document = try KTAPDocument(text)
        #expect(document.plan == 3)
        #expect(document.results.map(\.ok) == [true, false, true])
        #expect(document.results[1].diagnostics == ["lost pages:", "  expected 0", "  observed 2"])
        #expect(document.results[2].skip == "no   dirty ring here")
        #expect(document.leading.contains { $0.hasPrefix("host: kernel") })
        #expect(text.contains("# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0"))
    }

    /// A ring-full exit that finds every entry used is an overrun; one
    /// short of it is not.
    @Test func aFullRingAtAnExitIsAnOverrun() {
        #expect(RingFillScenario.overruns([192, 255, 256, 256], ringEntries: 256) == 2)
        #expect(RingFillScenario.overruns([192, 192], ringEntries: 256) == 0)
    }

    /// A write of generation g reported by harvest g − 1 only (before the
    /// write began) was lost; by harvest g, or later, it was not.
    @Test func aWriteReportedOnlyBeforeItBeganIsLost() {
        #expect(ConcurrentHarvestScenario.lost(lastReported: 4, generation: 5))
        #expect(!ConcurrentHarvestScenario.lost(lastReported: 5, generation: 5))
        #expect(!ConcurrentHarvestScenario.lost(lastReported: 7, generation: 5))
    }

    /// A window shorter than one slot has no slots: the table says "-", kvmlab does not trap.
    @Test func aFlowWindowWithoutSlotsIsShownNotTrappedOn() {
        let flow = FlowRecord(flow: "victim", cpu: 1, windows: [FlowWindow(name: "idle", slotSeconds: 0.001, slotBytes: [1000, 2000]),
                                                                FlowWindow(name: "teardown", slotSeconds: 0.001, slotBytes: [])],
                              bytesReceived: 3000, bytesCounted: 3000)
        let text = VictimReport.flowTable([("vm-first", [flow])])
        #expect(text.contains("teardown") && text.contains("idle"))
    }

    /// SKIP is for a capability the host lacks, and names it; a check whose
    /// own settings are refused failed, whatever threw.
    @Test func onlyAMissingCapabilitySkips() {
        let cases = [
            CheckCase("lacks", "", quick: true) { _ in throw HostLacks("this host's KVM has no dirty ring") },
            CheckCase("misconfigured", "", quick: true) { _ in throw ConfigError("ring entries must be a power of two, not 300") },
        ]
        let result = CheckSuite.run(cases, context: CheckContext(seconds: 0.1, full: false)) { _, _ in }
        #expect(result.runs[0].verdict == .skip("this host's KVM has no dirty ring"))
        #expect(result.runs[1].verdict == .fail(["the check's own settings were refused: ring entries must be a power of two, not 300"]))
    }

    /// The reader rejects what is not KTAP, so a passing parse means something.
    @Test(arguments: [
        "ok 1 a\n",
        "KTAP version 1\n1..2\nok 1 a\n",
        "KTAP version 1\n1..1\nok 2 a\n",
        "KTAP version 1\n1..1\nok 1 a # TODO later\n",
        "KTAP version 1\n1..1\nok 1 a\nsomething else\n",
        "KTAP version 1\nok 1 a\n",
    ])
    func malformedKTAPIsRefused(text: String) {
        #expect(throws: KTAPDocument.Malformed.self) { _ = try KTAPDocument(text) }
    }

    @Test func everyCheckHasAUniqueKTAPSafeName() {
        let names = CheckSuite.all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" } })
        #expect(CheckSuite.all.filter(\.quick).count >= 15)
    }
}
