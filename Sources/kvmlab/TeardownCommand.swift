import ArgumentParser
import Report
import Scenarios
import VMM

struct TeardownCommand: ExperimentCommand {
    typealias Scenario = TeardownScenario
    typealias Report = TeardownReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        The vCPUs populate the memory (one write per page), then a thread pinned
        to one CPU tears the VM down in the chosen order, timing each step, while
        a probe thread pinned to the same CPU records every gap in its own
        execution. Two baselines come first: the probe alone, and the probe
        beside a thread spinning in user space (a fully preemptible CPU hog).

        Orders: vm-first (close the vCPU and VM fds, so KVM destroys the VM and
        its MMU, then unmap the memory); memory-first (unmap the memory while the
        VM lives, so KVM zaps it through the MMU notifier, then destroy the VM).

        Examples:
          kvmlab teardown                                  both orders, 2 GiB
          kvmlab teardown --memory 8g --order memory-first
          kvmlab teardown -s anonymous_hugetlb_2mb --memory 4g --json
        """)

    @Option(name: .customShort("v"), parsing: .unconditional, help: "vCPUs that populate the memory (default: online CPUs).", transform: Bounded.int("-v", TeardownConfig.vcpuLimit)) var vcpus = TeardownConfig().vcpus
    @Option(name: [.customShort("m"), .long], help: "Guest memory to populate (k/m/g suffixes).", transform: ByteSize.parse) var memory = ByteSize(bytes: TeardownConfig().memory)
    @Option(name: .customShort("s"), help: "Backing: \(Backing.allValueStrings.joined(separator: ", ")).") var backing: Backing = .anonymous
    @Option(help: "An order to run (repeatable): vm-first, memory-first. Default: both.") var order: [TeardownOrder] = []
    @Option(parsing: .unconditional, help: "The CPU shared by the teardown and the probe (default: the last online CPU).", transform: Bounded.int("--cpu", 0...4095)) var cpu: Int?
    @Option(parsing: .unconditional, help: "Record probe gaps longer than this many microseconds.", transform: Bounded.double("--threshold", 0.01...1_000_000, unit: "µs")) var threshold = TeardownConfig().thresholdMicros
    @Option(parsing: .unconditional, help: "Seconds of each baseline window.", transform: Bounded.double("--baseline", 0.001...60, unit: "seconds")) var baseline = TeardownConfig().baselineSeconds
    @Option(help: "What shares the CPU with the teardown: probe (a thread recording its gaps), tcp (a bulk TCP flow over loopback), both.") var victim: VictimKind = .probe
    @Option(parsing: .unconditional, help: "With a TCP victim: a second flow on this CPU, as a control.", transform: Bounded.int("--control-cpu", 0...4095)) var controlCpu: Int?
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "-v", "memory": "--memory", "orders": "--order", "thresholdMicros": "--threshold", "baselineSeconds": "--baseline",
                        "cpu": "--cpu", "victim": "--victim", "controlCPU": "--control-cpu"]

    func config() -> TeardownConfig {
        var config = TeardownConfig()
        config.vcpus = vcpus
        config.memory = memory.bytes
        config.backing = backing
        if !order.isEmpty { config.orders = order }
        config.cpu = cpu
        config.thresholdMicros = threshold
        config.baselineSeconds = baseline
        config.victim = victim
        config.controlCPU = controlCpu
        return config
    }
}

extension VictimKind: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension TeardownOrder: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
