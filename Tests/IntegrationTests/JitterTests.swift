import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import KVM
import Testing
@testable import Report
@testable import Scenarios
@testable import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct JitterTests {
    func config(_ change: (inout JitterConfig) -> Void = { _ in }) -> JitterConfig {
        var config = JitterConfig()
        config.vcpus = 2
        config.warmup = 0.3
        config.duration = 1
        config.rate = 50
        change(&config)
        return config
    }

    @Test func probeCountsEveryLoopInItsBuckets() throws {
        let result = try JitterScenario.run(config())
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect(result.finalLoops.allSatisfy { $0 > 0 })
        #expect(result.finalLoops == result.finalBucketSums)
        // The probe touches one working-set page per loop: the words sum to its loops.
        #expect(result.finalTouches == result.finalLoops)
        // Per phase the host reads buckets and loop counts of running guests
        // a moment apart, so they agree only to within the loops of that moment.
        for phase in result.phases {
            for (buckets, loops) in zip(phase.buckets, phase.loops) {
                let sum = Double(buckets.reduce(0, &+))
                #expect(loops > 0 && abs(sum - Double(loops)) / Double(loops) < 0.01)
            }
        }
        let summary = JitterSummary(result)
        #expect(summary.loopsMatchBuckets)
        #expect(summary.phases[0].gapSeconds != nil)
        for phase in summary.phases where phase.stalls > 0 {
            #expect(phase.gapSeconds?.max == phase.worstVCPU?.maxStallSeconds)
            #expect(phase.stallSeconds?.max == phase.worstVCPU?.maxStallSeconds)
            #expect(phase.stallSeconds?.count == phase.stalls)
            #expect((phase.stallSeconds?.min ?? 0) > result.config.thresholdMicros / 1e6)
        }
    }

    @Test func deletesWithZapAllZapShadowPagesAndCauseAttributedStalls() throws {
        let result = try JitterScenario.run(config())
        let churn = try #require(result.churn)
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect(churn.rounds > 0)
        #expect(churn.ops.count == 2 * churn.rounds)  // a delete and a create per round
        let zapped = churn.stats?["mmu_shadow_zapped"] ?? 0
        let summary = JitterSummary(result)
        if FingerprintFacts.shadowMMU {
            #expect(zapped > 0, "deleting a slot with SLOT_ZAP_ALL on should zap shadow pages")
        }
        // Effects, not speed: operations were recorded in churn only, and
        // every stall attributed names one of them (checked in the CSV test).
        #expect(summary.phases[1].ioctls == churn.ops.count && churn.ops.allSatisfy { $0.endTSC >= $0.startTSC })
        #expect(summary.phases[0].ioctls == 0 && summary.phases[0].attributedStalls == 0)
    }

    @Test(.enabled(if: HostCaps.zapAllQuirk != nil, "this kernel can disable SLOT_ZAP_ALL"))
    func noZapAllIsRefusedWhereTheQuirkCannotBeDisabled() throws {
        #expect(throws: ConfigError.self) { _ = try JitterScenario.run(config { $0.noZapAll = true }) }
    }

    @Test(.enabled(if: HostCaps.zapAllQuirk == nil, "\(HostCaps.zapAllQuirk ?? "")"))
    func noZapAllLeavesShadowPagesAlone() throws {
        let result = try JitterScenario.run(config { $0.noZapAll = true })
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect((result.churn?.rounds ?? 0) > 0)
        #expect((result.churn?.stats?["mmu_shadow_zapped"] ?? 0) == 0)
    }

    @Test(arguments: [JitterOperation.toggleDirtyLog, .move, .flags, .manySlots])
    func everyOperationRuns(operation: JitterOperation) throws {
        let result = try JitterScenario.run(config { $0.operation = operation; $0.duration = 0.5 })
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect((result.churn?.rounds ?? 0) > 0 && !(result.churn?.ops.isEmpty ?? true))
        #expect(result.baseline.ops.isEmpty)
    }

    /// A host probe sharing vCPU 0's CPU is descheduled by it: its gaps are
    /// recorded, reported and written to the CSV as host-stall records.
    @Test func hostProbeBesideAVCPURecordsItsGaps() throws {
        let result = try JitterScenario.run(config { $0.vcpus = 1; $0.pin = [0]; $0.hostProbeCPU = 0; $0.duration = 0.5 })
        #expect(result.experiment.status == .ok, "\(result.experiment.problems)")
        let gaps = result.phases.reduce(0) { $0 + $1.hostStalls.count }
        #expect(gaps > 0)
        #expect(result.phases.allSatisfy { $0.hostStalls.allSatisfy { $0.vcpu == -1 && $0.cycles > result.thresholdCycles } })
        for phase in result.phases {
            #expect(result.experiment.metric("host_stalls{phase=\(phase.name)}")?.value == Double(phase.hostStalls.count), "\(phase.name)")
        }
        let csv = JitterReport.csv(result)
        #expect(csv.split(separator: "\n").filter { $0.hasPrefix("host-stall,") }.count == gaps)
        let without = try JitterScenario.run(config { $0.duration = 0.2 })
        #expect(without.phases.allSatisfy(\.hostStalls.isEmpty) && without.experiment.metric("host_stalls{phase=churn}") == nil)
    }

    /// A TCP flow on vCPU 0's CPU through the baseline and the churn: bytes
    /// in both phases, every one of them in a slot, and the table shows it.
    @Test func aTCPVictimBesideVCPU0IsMeasuredInBothPhases() throws {
        let result = try JitterScenario.run(config { $0.vcpus = 1; $0.pin = [1]; $0.duration = 0.3; $0.victim = .tcp; $0.controlCPU = 0 })
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect(result.flows.map(\.flow) == ["victim", "control"] && result.flows.map(\.cpu) == [1, 0])
        for flow in result.flows {
            #expect(flow.windows.map(\.name) == ["baseline", "churn"])
            #expect(flow.windows.allSatisfy { $0.slotBytes.reduce(0, +) > 0 } && flow.bytesCounted == flow.bytesReceived)
        }
        #expect(result.experiment.metric("tcp_throughput_ratio{flow=victim,window=baseline}")?.value == 1)
        #expect(JitterReport.text(result).contains("TCP over loopback per window"))
        // --events: one tcp row per whole slot, its bytes the slot's.
        let rows = JitterReport.csv(result).split(separator: "\n").dropFirst().map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        for flow in result.flows {
            let slots = rows.filter { $0[0] == "tcp" && $0[2] == "\(flow.flow)@\(flow.cpu)" }
            #expect(slots.count == flow.windows.reduce(0) { $0 + $1.slotBytes.count })
            #expect(slots.reduce(UInt64(0)) { $0 + UInt64($1[7])! } == flow.windows.reduce(UInt64(0)) { $0 + $1.slotBytes.reduce(0, +) })
        }
        #expect(throws: ConfigError.self) { try JitterScenario.validate(config { $0.victim = .tcp }) }  // no pin: no CPU under test
    }

    @Test func csvIsOrderedAndMatchesTheSummary() throws {
        let result = try JitterScenario.run(config())
        let summary = JitterSummary(result)
        let lines = JitterReport.csv(result).split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines[0] == ["record", "phase", "vcpu", "time_s", "duration_us", "kind", "op_index", "bytes"])
        let rows = lines.dropFirst()
        let times = rows.map { Double($0[3])! }
        #expect(times == times.sorted())
        for phase in summary.phases {
            #expect(rows.filter { $0[0] == "stall" && $0[1] == phase.name }.count == phase.stalls)
            #expect(rows.filter { $0[0] == "op" && $0[1] == phase.name }.count == phase.ioctls)
            #expect(rows.filter { $0[0] == "stall" && $0[1] == phase.name && !$0[6].isEmpty }.count == phase.attributedStalls)
        }
        // Every attributed stall names an operation that began before the stall ended.
        let ops = Dictionary(uniqueKeysWithValues: rows.filter { $0[0] == "op" && $0[1] == "churn" }.map { (Int($0[6])!, Double($0[3])!) })
        for stall in rows where stall[0] == "stall" && !stall[6].isEmpty {
            let start = try #require(ops[Int(stall[6])!])
            #expect(start <= Double(stall[3])! + Double(stall[4])! / 1e6 + 1e-6)
        }
    }

    @Test func svgIsWellFormed() throws {
        let result = try JitterScenario.run(config())
        let svg = JitterPlot.svg(result, host: .current())
        let parser = XMLParser(data: Data(svg.utf8))
        #expect(parser.parse(), "\(parser.parserError.map { "\($0)" } ?? "")")
        #expect(svg.contains("<svg") && svg.contains("</svg>") && svg.contains("stalls over time"))
        // One cell per vCPU row and slice that had a stall: never more than the stalls.
        let cells = svg.components(separatedBy: "height=\"14.0\"").count - 1
        #expect(cells > 0 && cells <= result.phases.reduce(0) { $0 + $1.stalls.count })
    }
}

enum FingerprintFacts {
    static var shadowMMU: Bool { HostFingerprint.current().mmuMode == "shadow" }
}
