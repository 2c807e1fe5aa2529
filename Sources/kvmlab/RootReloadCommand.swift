import ArgumentParser
import Report
import Scenarios

struct RootReloadCommand: ExperimentCommand {
    typealias Scenario = RootReloadScenario
    typealias Report = RootReloadReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        vCPU 0 runs at CPL0 and flips CR0.WP as fast as it can, reading CR0 back
        after every flip; the other vCPUs dirty their working sets at CPL3 the
        whole time. A baseline (dirtiers alone) is followed by a toggling phase of
        the same length; the output gives toggles per second, the cost of one
        toggle, the dirtiers' rate in both phases and KVM's stats per phase.
        Where the host emulates CPL0 code (kvm_pvm) the output says so: the
        numbers then measure the emulator.

        Examples:
          kvmlab root-reload                        about 5 s
          kvmlab root-reload --dirtiers 0 --duration 5
          kvmlab root-reload --working-set 256m --json
        """)

    @Option(parsing: .unconditional, help: "vCPUs dirtying memory beside the toggling one (default: online CPUs - 1).", transform: Bounded.int("--dirtiers", 0...1023)) var dirtiers = RootReloadConfig().dirtiers
    @Option(help: "Working set per dirtying vCPU (k/m/g suffixes).", transform: ByteSize.parse) var workingSet = ByteSize(bytes: RootReloadConfig().workingSet)
    @Option(parsing: .unconditional, help: "Seconds of the baseline, and again of toggling.", transform: Bounded.double("--duration", 0.001...3600, unit: "seconds")) var duration = RootReloadConfig().duration
    @Option(name: .customShort("c"), help: "Pin vCPUs (the toggler first) to these CPUs, then optionally the main thread.") var pin: CPUListArgument?
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["dirtiers": "--dirtiers", "workingSet": "--working-set", "duration": "--duration", "pin": "-c", "vcpus": "--dirtiers (plus the toggler)"]

    func config() -> RootReloadConfig {
        var config = RootReloadConfig()
        config.dirtiers = dirtiers
        config.workingSet = workingSet.bytes
        config.duration = duration
        config.pin = pin?.cpus ?? []
        return config
    }
}
