import Scenarios
import VMM

/// `kvmlab jitter` as text, CSV and SVG.
public enum JitterReport: ExperimentReport {
    public static func detail(_ result: JitterResult) -> JitterSummary { JitterSummary(result) }
    public static func svg(_ result: JitterResult, host: HostFingerprint) -> String { JitterPlot.svg(result, host: host) }

    public static func text(_ result: JitterResult) -> String {
        let summary = JitterSummary(result)
        var out = keyValues(nil, [
            ("vm", "\(summary.vcpus) vCPUs, \(Sizes.format(summary.workingSetBytes)) working set each, probe at CPL3"),
            ("churn", "\(summary.operation): \(summary.operationSummary), \(Format.fixed(summary.requestedRate, 0))/s requested"),
            ("SLOT_ZAP_ALL", summary.zapAllQuirk),
            ("threshold", "\(Format.micros(summary.thresholdSeconds)) µs; stalls attributed within \(Format.micros(summary.windowSeconds)) µs of an operation"),
            ("tsc", "\(summary.tscKHz) kHz (\(summary.tscSource)), guest/host offset ±\(Format.micros(summary.offsetUncertaintySeconds)) µs"),
            ("main thread", summary.realtime),
        ])
        out += stallTable(summary) + gapTable(summary)
        for phase in summary.phases where !phase.ioctlSeconds.isEmpty {
            var ioctls = Table(title: "\nHost memslot ioctls during \(phase.name) (µs)", headers: ["op", "count", "p50", "p90", "p99", "max"])
            for (kind, p) in phase.ioctlSeconds.sorted(by: { $0.key < $1.key }) {
                ioctls.add([kind, "\(p.count)", Format.micros(p.p50), Format.micros(p.p90), Format.micros(p.p99), Format.micros(p.max)])
            }
            out += ioctls.render()
        }
        let keys = ["mmu_shadow_zapped", "remote_tlb_flush", "mmu_cache_miss", "pages_4k", "pf_fixed", "pf_taken", "exits"]
        out += statsTable("\nKVM stats per phase", keys: keys, columns: summary.phases.map { ($0.name, $0.stats) })
        out += VictimReport.flowTable([("jitter", result.flows)])
        if let note = result.victimNote { out += "\n\(note)\n" }
        if summary.lostStalls > 0 { out += "\n\(summary.lostStalls) stalls were overwritten in the guests' rings before the host read them\n" }
        out += ExperimentFooter.text(result.experiment)
        return out
    }

    /// Stalls per phase, with the host probe's beside them.
    static func stallTable(_ summary: JitterSummary) -> String {
        var stalls = Table(title: "\nStalls above the threshold, all vCPUs (µs)",
                           headers: ["phase", "stalls", "p50", "p90", "p99", "p99.9", "max", "rounds/s", "stalls/round", "worst vCPU"])
        for phase in summary.phases {
            let p = phase.stallSeconds
            stalls.add([phase.name, "\(phase.stalls)"] + [p?.p50, p?.p90, p?.p99, p?.p999, p?.max].map { $0.map(Format.micros) ?? "-" } + [
                phase.rounds > 0 ? Format.fixed(phase.roundsPerSecond, 1) : "-",
                phase.stallsPerRound.map { Format.fixed($0, 2) } ?? "-",
                phase.worstVCPU.map { "\($0.vcpu) (\(Format.micros($0.maxStallSeconds)) µs)" } ?? "-"])
            if let cpu = summary.hostProbeCPU {
                let h = phase.hostStallSeconds
                stalls.add(["\(phase.name), host probe on CPU \(cpu)", "\(phase.hostStalls ?? 0)"]
                           + [h?.p50, h?.p90, h?.p99, h?.p999, h?.max].map { $0.map(Format.micros) ?? "-" }
                           + ["", phase.hostStallsPerRound.map { Format.fixed($0, 2) } ?? "-", ""])
            }
        }
        return stalls.render()
    }

    /// Every gap between probe loops per phase, and the probe's floor.
    static func gapTable(_ summary: JitterSummary) -> String {
        var gaps = Table(title: "\nEvery gap between probe loops, all vCPUs (µs; log2-bucket upper bounds below the threshold, exact above)",
                         headers: ["phase", "loops", "p50", "p90", "p99", "p99.9", "max", "mean"])
        for phase in summary.phases {
            let p = phase.gapSeconds
            gaps.add([phase.name, "\(phase.loops)"] + [p?.p50, p?.p90, p?.p99, p?.p999, p?.max, p?.mean].map { $0.map(micros3) ?? "-" })
        }
        var out = gaps.render()
        if let baseline = summary.phases.first, let cycles = baseline.medianGapCycles {
            out += "probe floor: median gap ≤ \(Int(cycles)) cycles in the baseline (one rdtsc, one store, one page touch, bookkeeping)\n"
        }
        return out
    }

    /// Every stall and every operation, ordered by time (seconds since the
    /// baseline began). A stall's op_index names the operation it is
    /// attributed to; an operation's is its own index.
    public static func csv(_ result: JitterResult) -> String {
        let analysis = JitterAnalysis(result)
        var rows: [(Double, String)] = []
        for phase in result.phases {
            for (index, op) in phase.ops.enumerated() {
                let time = analysis.time(op.startTSC)
                rows.append((time, "op,\(phase.name),,\(fixed9(time)),\(fixed3(analysis.seconds(op.endTSC &- op.startTSC) * 1e6)),\(op.kind),\(index),"))
            }
            for stall in phase.stalls + phase.hostStalls {
                let time = analysis.time(stall.endTSC &- stall.cycles)
                let op = analysis.attribute(stall, ops: phase.ops).map(String.init) ?? ""
                let (record, who) = stall.vcpu < 0 ? ("host-stall", "host") : ("stall", "\(stall.vcpu)")
                rows.append((time, "\(record),\(phase.name),\(who),\(fixed9(time)),\(fixed3(analysis.seconds(stall.cycles) * 1e6)),stall,\(op),"))
            }
            // The TCP flows' slots: each whole slot from the phase's start
            // (to within one slot), the flow and its CPU, the bytes received.
            for flow in result.flows {
                guard let window = flow.windows.first(where: { $0.name == phase.name }) else { continue }
                let start = analysis.time(phase.startTSC)
                for (index, bytes) in window.slotBytes.enumerated() {
                    let time = start + Double(index) * window.slotSeconds
                    rows.append((time, "tcp,\(phase.name),\(flow.flow)@\(flow.cpu),\(fixed9(time)),\(fixed3(window.slotSeconds * 1e6)),slot,,\(bytes)"))
                }
            }
        }
        return "record,phase,vcpu,time_s,duration_us,kind,op_index,bytes\n" + rows.sorted { $0.0 < $1.0 }.map { $0.1 + "\n" }.joined()
    }

    static func micros3(_ seconds: Double) -> String { Format.fixed(seconds * 1e6, 3) }

    static func fixed9(_ value: Double) -> String { Format.fixed(value, 9) }
    static func fixed3(_ value: Double) -> String { Format.fixed(value, 3) }
}
