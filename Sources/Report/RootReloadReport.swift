import Scenarios
import VMM

/// `kvmlab root-reload` for JSON and text.
public struct RootReloadSummary: Encodable, Sendable {
    public struct Phase: Encodable, Sendable {
        public let name: String
        public let seconds: Double
        public let toggles: UInt64
        public let togglesPerSecond: Double
        public let secondsPerToggle: Double?
        public let pagesDirtied: UInt64
        public let pagesDirtiedPerSecond: Double
        public let togglerStats: StatsDelta?
        public let dirtierStats: StatsDelta?
    }

    public let dirtiers: Int
    public let workingSetBytes: UInt64
    public let mmuMode: String
    public let emulatedKernelMode: Bool
    public let note: String?
    public let phases: [Phase]
    /// Dirtying rate while toggling, as a fraction of the baseline's.
    public let dirtierThroughputRatio: Double?

    public static let emulationNote = "this host (kvm_pvm) emulates CPL0 guest code instruction by instruction: each toggle is an emulator round trip, not a hardware CR0 write, so the cost per toggle is the emulator's and says little about EPT/NPT hosts"

    static func phase(_ phase: RootReloadPhase) -> Phase {
        let toggles = Double(phase.toggles)
        let perToggle: Double? = phase.toggles > 0 ? phase.seconds / toggles : nil
        return Phase(name: phase.name, seconds: phase.seconds, toggles: phase.toggles, togglesPerSecond: toggles / phase.seconds,
                     secondsPerToggle: perToggle, pagesDirtied: phase.pagesDirtied,
                     pagesDirtiedPerSecond: Double(phase.pagesDirtied) / phase.seconds,
                     togglerStats: phase.togglerStats, dirtierStats: phase.dirtierStats)
    }

    public init(_ result: RootReloadResult) {
        dirtiers = result.config.dirtiers
        workingSetBytes = result.config.workingSet
        mmuMode = result.mmuMode
        emulatedKernelMode = result.emulatedKernelMode
        note = result.emulatedKernelMode ? RootReloadSummary.emulationNote : nil
        phases = [result.baseline, result.toggling].compactMap { $0 }.map(RootReloadSummary.phase)
        if phases.count == 2, phases[0].pagesDirtiedPerSecond > 0 {
            dirtierThroughputRatio = phases[1].pagesDirtiedPerSecond / phases[0].pagesDirtiedPerSecond
        } else {
            dirtierThroughputRatio = nil
        }
    }
}

public enum RootReloadReport: ExperimentReport {
    public static func detail(_ result: RootReloadResult) -> RootReloadSummary { RootReloadSummary(result) }

    static let keys = ["exits", "insn_emulation", "tlb_flush", "mmu_cache_miss", "mmu_shadow_zapped", "mmu_pte_write", "mmu_flooded",
                       "remote_tlb_flush", "pf_fixed", "pf_taken", "pf_emulate", "pages_4k", "halt_exits"]

    public static func text(_ result: RootReloadResult) -> String {
        let summary = RootReloadSummary(result)
        var out = keyValues(nil, [
            ("vm", "vCPU 0 toggles CR0.WP at CPL0; \(summary.dirtiers) CPL3 vCPU\(summary.dirtiers == 1 ? "" : "s") dirty \(Sizes.format(summary.workingSetBytes)) each throughout"),
            ("mmu", summary.mmuMode),
        ])
        if let note = summary.note { out += "note: \(note)\n" }
        var table = Table(title: "\nPhases", headers: ["phase", "seconds", "toggles", "toggles/s", "µs/toggle", "pages dirtied/s"])
        for phase in summary.phases {
            table.add([phase.name, Format.fixed(phase.seconds, 3), "\(phase.toggles)", Format.fixed(phase.togglesPerSecond, 0),
                       phase.secondsPerToggle.map(Format.micros) ?? "-", Format.fixed(phase.pagesDirtiedPerSecond, 0)])
        }
        out += table.render()
        if let ratio = summary.dirtierThroughputRatio {
            out += "dirtying vCPUs while toggling: \(Format.fixed(ratio * 100, 1))% of their baseline rate\n"
        }
        out += statsTable("\nKVM stats: the VM and the toggling vCPU", keys: keys, columns: summary.phases.map { ($0.name, $0.togglerStats) })
        if summary.dirtiers > 0 {
            out += statsTable("\nKVM stats: the dirtying vCPUs (vCPU stats only)", keys: keys, columns: summary.phases.map { ($0.name, $0.dirtierStats.map { StatsDelta(vcpus: $0.vcpus) }) })
        }
        out += ExperimentFooter.text(result.experiment)
        return out
    }
}
