import Scenarios
import VMM

/// `kvmlab populate` for JSON and text.
public struct PopulateSummary: Encodable, Sendable {
    public struct Step: Encodable, Sendable {
        public let seconds: Double
        public let residentBytes: UInt64
        public let stats: StatsDelta?
    }

    public struct Mode: Encodable, Sendable {
        public let mode: String
        public let summary: String
        /// The one line saying why the mode did not run on this host.
        public let unsupported: String?
        public let residentBytesBefore: UInt64
        public let population: Step?
        public let firstPass: Step?
        public let secondPass: Step?
        /// Population plus the workload's first pass: when the memory was really usable.
        public let readySeconds: Double?
        public let mismatches: UInt64
        public let problem: String?
    }

    public let vcpus: Int
    public let bytesPerVCPU: UInt64
    public let backing: String
    public let modes: [Mode]

    public init(_ result: PopulateResult) {
        vcpus = result.config.vcpus
        bytesPerVCPU = result.config.bytesPerVCPU
        backing = result.config.backing.rawValue
        func step(_ step: PopulateStep?) -> Step? {
            step.map { Step(seconds: $0.seconds, residentBytes: UInt64($0.residentPages) * 4096, stats: $0.stats) }
        }
        modes = result.modes.map { mode in
            let ready: Double? = mode.population.flatMap { population in mode.firstPass.map { population.seconds + $0.seconds } }
            return Mode(mode: mode.mode.rawValue, summary: mode.mode.summary, unsupported: mode.unsupported,
                        residentBytesBefore: UInt64(mode.residentBefore) * 4096, population: step(mode.population),
                        firstPass: step(mode.firstPass), secondPass: step(mode.secondPass), readySeconds: ready,
                        mismatches: mode.mismatches, problem: mode.problem)
        }
    }
}

public enum PopulateReport: ExperimentReport {
    public static func detail(_ result: PopulateResult) -> PopulateSummary { PopulateSummary(result) }
    public static func svg(_ result: PopulateResult, host: HostFingerprint) -> String { PopulatePlot.svg(result, host: host) }

    public static func text(_ result: PopulateResult) -> String {
        let summary = PopulateSummary(result)
        var out = keyValues(nil, [
            ("vm", "\(summary.vcpus) workload vCPU\(summary.vcpus == 1 ? "" : "s") × \(Sizes.format(summary.bytesPerVCPU)) \(summary.backing), CPL3 pass worker"),
            ("first pass", "every workload vCPU writes one word in each of its pages; the second pass reads them back"),
        ])
        var table = Table(title: "\nSeconds until the memory is usable",
                          headers: ["mode", "population", "first pass", "ready", "second pass", "resident after population"])
        var notes: [String] = []
        for mode in summary.modes {
            if let reason = mode.unsupported {
                table.add([mode.mode, "-", "-", "-", "-", "-"])
                notes.append("\(mode.mode): \(reason)")
                continue
            }
            table.add([mode.mode] + [mode.population?.seconds, mode.firstPass?.seconds, mode.readySeconds, mode.secondPass?.seconds].map { $0.map(Format.seconds) ?? "-" }
                      + [mode.population.map { Sizes.format($0.residentBytes) } ?? "-"])
        }
        out += table.render()
        for note in notes { out += note + "\n" }
        var columns: [(name: String, stats: StatsDelta?)] = []
        for mode in summary.modes where mode.unsupported == nil {
            columns.append(("\(mode.mode) pop", mode.population?.stats))
            columns.append(("\(mode.mode) 1st", mode.firstPass?.stats))
        }
        out += statsTable("\nKVM stats during population (pop) and the first pass (1st)",
                          keys: ["pf_fixed", "pf_taken", "pf_spurious", "pages_4k", "pages_2m", "pages_1g", "exits", "mmu_cache_miss"], columns: columns)
        out += ExperimentFooter.text(result.experiment)
        return out
    }
}
