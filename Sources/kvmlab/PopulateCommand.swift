import ArgumentParser
import Report
import Scenarios
import VMM

struct PopulateCommand: ExperimentCommand {
    typealias Scenario = PopulateScenario
    typealias Report = PopulateReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        Each mode runs in a fresh VM: the population step (if any), then the
        workload vCPUs' first pass (one write per page) and a second pass that
        reads every word back. The table gives each step's time and the stats it
        moved; "ready" is population plus first pass.

        Modes: \(PopulateMode.allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: "; ")).

        Examples:
          kvmlab populate                                  every mode, 2 × 512 MiB here
          kvmlab populate -b 1g -s anonymous_hugetlb_2mb
          kvmlab populate --mode demand --mode prefault-vcpu --json
        """)

    @Option(name: .customShort("v"), parsing: .unconditional, help: "Workload vCPUs (default: online CPUs).", transform: Bounded.int("-v", PopulateConfig.vcpuLimit)) var vcpus = PopulateConfig().vcpus
    @Option(name: .customShort("b"), help: "Memory per workload vCPU (k/m/g suffixes).", transform: ByteSize.parse) var bytes = ByteSize(bytes: PopulateConfig().bytesPerVCPU)
    @Option(name: .customShort("s"), help: "Backing: \(Backing.allValueStrings.joined(separator: ", ")).") var backing: Backing = .anonymous
    @Option(help: "A mode to run (repeatable): \(PopulateMode.allCases.map(\.rawValue).joined(separator: ", ")). Default: all.") var mode: [PopulateMode] = []
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "-v", "bytesPerVCPU": "-b", "modes": "--mode"]

    func config() -> PopulateConfig {
        var config = PopulateConfig()
        config.vcpus = vcpus
        config.bytesPerVCPU = bytes.bytes
        config.backing = backing
        if !mode.isEmpty { config.modes = mode }
        return config
    }
}

extension PopulateMode: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
