import Scenarios
import VMM

/// `kvmlab dirty-log` as text: dirty_log_perf_test's phase lines, with the
/// KVM stats each phase moved, the checks and the splitting analysis.
public enum DirtyLogReport: ExperimentReport {
    public static func svg(_ result: DirtyLogResult, host: HostFingerprint) -> String { DirtyLogPlot.svg(result, host: host) }

    static let vmColumns = [("pages_4k", "4k"), ("pages_2m", "2m"), ("remote_tlb_flush", "tlb_flush"), ("mmu_shadow_zapped", "zapped")]
    static let vcpuColumns = [("pf_fixed", "pf_fixed"), ("pf_taken", "pf_taken"), ("pf_emulate", "pf_emulate")]

    public static func text(_ result: DirtyLogResult) -> String {
        var out = keyValues(nil, [
            ("vm", "\(result.vcpus) vCPUs × \(Sizes.format(result.bytesPerVCPU)) \(result.backing.rawValue) in \(result.slots) slot\(result.slots == 1 ? "" : "s"), CPL\(result.cpl)"),
            ("access", "\(result.writePercent)% writes, \(result.random ? "random" : "sequential")\(result.sharedRegion ? ", one shared region" : "")"),
            ("harvest", result.harvest + (result.initiallySet ? ", INITIALLY_SET" : "") + (result.clearChunkPages.map { ", clear in \($0)-page chunks" } ?? "") + (result.ringEntries.map { ", \($0) entries per vCPU" } ?? "")),
        ])
        out += phaseTable(result)
        let count = Double(max(1, result.iterations.count))
        out += "\n" + keyValues(nil, [
            ("Get dirty log over \(result.iterations.count) iterations took", "\(Format.seconds(result.totalGetSeconds)) s (\(Format.seconds(result.totalGetSeconds / count)) s per iteration)"),
            ("Clear dirty log over \(result.iterations.count) iterations took", "\(Format.seconds(result.totalClearSeconds)) s (\(Format.seconds(result.totalClearSeconds / count)) s per iteration)"),
            ("Dirty memory over \(result.iterations.count) iterations took", "\(Format.seconds(result.totalDirtySeconds)) s (\(Format.seconds(result.totalDirtySeconds / count)) s per iteration)"),
        ])
        out += checkTable(result)
        out += "\nHuge pages:\n" + HugePageSplitting.explain(result).map { "  " + $0 }.joined(separator: "\n") + "\n"
        return out + ExperimentFooter.text(result.experiment)
    }

    /// dirty_log_perf_test's phase lines, each with the KVM stats it moved.
    static func phaseTable(_ result: DirtyLogResult) -> String {
        var table = Table(title: "\nPhases", headers: ["phase", "seconds"] + vmColumns.map(\.1) + vcpuColumns.map(\.1))
        func row(_ name: String, _ seconds: Double?, _ stats: StatsDelta?) {
            var cells = [name, seconds.map(Format.seconds) ?? "-"]
            for (key, _) in vmColumns { cells.append(stats?.vm[key].map(Format.signed) ?? "-") }
            for (key, _) in vcpuColumns { cells.append(stats?.vcpus[key].map(Format.signed) ?? "-") }
            table.add(cells)
        }
        if let populate = result.populate { row("Populate memory time", populate.seconds, populate.stats) }
        if let enable = result.enable { row("Enabling dirty logging time", enable.seconds, enable.stats) }
        for iteration in result.iterations {
            row("Iteration \(iteration.iteration) dirty memory time", iteration.dirtyMemorySeconds, iteration.dirtyStats)
            row("Iteration \(iteration.iteration) get dirty log time", iteration.getSeconds, iteration.getStats)
            if let clear = iteration.clearSeconds { row("Iteration \(iteration.iteration) clear dirty log time", clear, iteration.clearStats) }
        }
        if let disable = result.disable { row("Disabling dirty logging time", disable.seconds, disable.stats) }
        if let pass = result.keepRunningPass { row("Dirty memory while disabling time", pass.seconds, nil) }
        return table.render()
    }

    /// Every iteration's page check and the vCPUs' pass times.
    static func checkTable(_ result: DirtyLogResult) -> String {
        var checks = Table(title: "\nChecks (every page compared with the guests' stamps) and vCPU pass times (\(result.tscSource))",
                           headers: ["iteration", "written", "dirty", "expected", "missed", "spurious", "pass p50 s", "pass max s"])
        for iteration in result.iterations {
            let passes = Percentiles(iteration.vcpuPassSeconds)
            checks.add(["\(iteration.iteration)", "\(iteration.pagesWritten)", "\(iteration.pagesDirty)", "\(iteration.pagesExpected)",
                        "\(iteration.missed)", "\(iteration.spurious)",
                        passes.map { Format.seconds($0.p50) } ?? "-", passes.map { Format.seconds($0.max) } ?? "-"])
        }
        return checks.render()
    }
}
