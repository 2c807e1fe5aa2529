import ArgumentParser
import Report
import Scenarios
import VMM

struct ExitLatencyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exit-latency",
        abstract: "Measure the userspace exit round trip: guest out -> host -> KVM_RUN.",
        discussion: """
        Examples:
          kvmlab exit-latency                      100000 exits on one vCPU at CPL3
          kvmlab exit-latency --cpl 0 -n 20000     the same from guest kernel mode
          kvmlab exit-latency -v 2 -c 0,1 --json
        """)

    @Option(name: [.customShort("v"), .long], help: "vCPUs, each exiting in a loop.") var vcpus = 1
    @Option(name: [.customShort("n"), .long], help: "Exits per vCPU.") var exits = 100_000
    @Option(help: "Privilege level of the guest loop: 3 or 0.") var cpl: PrivilegeLevel = .user
    @Option(name: [.customShort("c"), .long], help: "Pin vCPU threads to these CPUs, round robin.") var pin: CPUListArgument?
    @Flag(help: "Print one JSON document instead of text.") var json = false

    func validate() throws {
        guard vcpus >= 1 else { throw ValidationError("--vcpus must be at least 1, not \(vcpus)") }
        guard exits >= 2 else { throw ValidationError("--exits must be at least 2") }
        guard exits <= 50_000_000 else { throw ValidationError("--exits is limited to 50000000 per vCPU") }
    }

    func run() throws {
        var config = ExitLatencyConfig()
        config.vcpus = vcpus
        config.exits = exits
        config.cpl = cpl
        config.pin = pin?.cpus ?? []
        let summary = ExitLatencySummary(try ExitLatencyScenario.run(config))
        Exit.output(json ? try JSONDocument(command: "exit-latency", result: summary).render() : summary.text)
        if summary.status != "finished" { throw ExitCode(1) }
    }
}
