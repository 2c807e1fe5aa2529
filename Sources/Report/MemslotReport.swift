import Scenarios
import VMM

/// `kvmlab memslot` for JSON: every run with its per-iteration times, and
/// per experiment the distributions over all its runs.
public struct MemslotSummary: Encodable, Sendable {
    /// A run as measured, plus the distribution of its operation times.
    public struct Run: Encodable, Sendable {
        public let measured: MemslotRepetition
        public let iterations: Int
        public let operations: Int
        public let operationSeconds: Percentiles?
    }

    public struct Experiment: Encodable, Sendable {
        public let test: String
        public let summary: String
        public let operation: String
        public let runs: [Run]
        public let iterationSeconds: Percentiles?
        public let operationSeconds: Percentiles?
        /// memslot_perf_test's figures: the best run's mean iteration time, the best slot setup.
        public let bestMeanIterationSeconds: Double?
        public let bestSlotSetupSeconds: Double?
        public let stats: StatsDelta?
    }

    public let maxSlots: Int
    public let requestedSlots: Int?
    public let memoryBytes: UInt64
    public let secondsPerRun: Double
    public let runsPerTest: Int
    public let zapAllQuirk: String
    public let experiments: [Experiment]

    public init(_ result: MemslotResult) {
        maxSlots = result.maxSlots
        requestedSlots = result.config.slots
        memoryBytes = result.config.memory
        secondsPerRun = result.config.seconds
        runsPerTest = result.config.runs
        zapAllQuirk = result.zapAllQuirk
        experiments = result.config.tests.compactMap { test in
            let runs = result.runs.filter { $0.test == test }
            guard let first = runs.first else { return nil }
            let summaries = runs.map { run in
                Run(measured: run, iterations: run.iterationSeconds.count, operations: run.operationSeconds.count,
                    operationSeconds: Percentiles(run.operationSeconds))
            }
            let means = runs.filter { !$0.iterationSeconds.isEmpty }.map { $0.iterationSeconds.reduce(0, +) / Double($0.iterationSeconds.count) }
            return Experiment(test: test.rawValue, summary: test.summary, operation: first.operation, runs: summaries,
                              iterationSeconds: Percentiles(runs.flatMap(\.iterationSeconds)),
                              operationSeconds: Percentiles(runs.flatMap(\.operationSeconds)),
                              bestMeanIterationSeconds: means.min(), bestSlotSetupSeconds: runs.map(\.slotSetupSeconds).min(),
                              stats: StatsDelta.total(runs.compactMap(\.stats)))
        }
    }
}

/// `kvmlab memslot` as text.
public enum MemslotReport: ExperimentReport {
    public static func detail(_ result: MemslotResult) -> MemslotSummary { MemslotSummary(result) }

    public static func text(_ result: MemslotResult) -> String {
        let summary = MemslotSummary(result)
        var out = keyValues(nil, [
            ("vm", "1 vCPU running the CPL3 pass worker; test slots: \(summary.requestedSlots.map(String.init) ?? "as many as the host allows") (host limit \(summary.maxSlots))"),
            ("runs", "\(summary.runsPerTest) × \(Format.fixed(summary.secondsPerRun, 1)) s per experiment, each in a fresh VM"),
            ("SLOT_ZAP_ALL", summary.zapAllQuirk),
        ])
        var iterations = Table(title: "\nIterations, all runs (µs)",
                               headers: ["test", "slots", "area", "setup ms", "iterations", "p50", "p90", "p99", "max", "best mean"])
        var operations = Table(title: "\nHost operations, all runs (µs)", headers: ["test", "operation", "count", "p50", "p90", "p99", "max"])
        var checks = Table(title: "\nChecks", headers: ["test", "pages verified", "mismatches", "mmio exits", "guest passes"])
        for experiment in summary.experiments {
            let p = experiment.iterationSeconds
            iterations.add([experiment.test, "\(experiment.runs.map(\.measured.slots).max() ?? 0)", Sizes.format(experiment.runs.first?.measured.areaBytes ?? 0),
                            experiment.bestSlotSetupSeconds.map { Format.fixed($0 * 1e3, 1) } ?? "-",
                            "\(experiment.runs.map(\.iterations).reduce(0, +))"]
                           + [p?.p50, p?.p90, p?.p99, p?.max, experiment.bestMeanIterationSeconds].map { $0.map(Format.micros) ?? "-" })
            let o = experiment.operationSeconds
            operations.add([experiment.test, experiment.operation, "\(o?.count ?? 0)"] + [o?.p50, o?.p90, o?.p99, o?.max].map { $0.map(Format.micros) ?? "-" })
            let runs = experiment.runs.map(\.measured)
            checks.add([experiment.test, "\(runs.map(\.pagesVerified).reduce(0, +))", "\(runs.map(\.mismatches).reduce(0, +))",
                        "\(runs.map(\.mmioExits).reduce(0, +))", "\(runs.map(\.guestPasses).reduce(0, +))"])
        }
        out += iterations.render() + "setup: best time to create the test slots; best mean: the best run's mean iteration (memslot_perf_test's figure)\n"
        out += operations.render() + checks.render()
        out += statsTable("\nKVM stats, all runs", keys: ["mmu_shadow_zapped", "remote_tlb_flush", "mmu_cache_miss", "pages_4k", "pf_fixed", "pf_mmio_spte_created", "exits"],
                          columns: summary.experiments.map { ($0.test, $0.stats) })
        out += ExperimentFooter.text(result.experiment)
        return out
    }
}
