import ArgumentParser
import Report
import Scenarios
import VMM

struct ExitLatencyCommand: ExperimentCommand {
    typealias Scenario = ExitLatencyScenario
    typealias Report = ExitLatencyReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        Examples:
          kvmlab exit-latency                      100000 exits on one vCPU at CPL3
          kvmlab exit-latency --cpl 0 -n 20000     the same from guest kernel mode
          kvmlab exit-latency -v 2 -c 0,1 --json
        """)

    @Option(name: [.customShort("v"), .long], parsing: .unconditional, help: "vCPUs, each exiting in a loop.", transform: Bounded.int("--vcpus", ExitLatencyConfig.vcpuLimit)) var vcpus = 1
    @Option(name: [.customShort("n"), .long], parsing: .unconditional, help: "Exits per vCPU.", transform: Bounded.int("--exits", 2...50_000_000)) var exits = 100_000
    @Option(help: "Privilege level of the guest loop: 3 or 0.") var cpl: PrivilegeLevel = .user
    @Option(name: [.customShort("c"), .long], help: "Pin vCPU threads to these CPUs, round robin.") var pin: CPUListArgument?
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "--vcpus", "exits": "--exits", "pin": "-c"]

    func config() -> ExitLatencyConfig {
        var config = ExitLatencyConfig()
        config.vcpus = vcpus
        config.exits = exits
        config.cpl = cpl
        config.pin = pin?.cpus ?? []
        return config
    }
}
