import ArgumentParser
import Report
import Scenarios
import VMM

struct RunCommand: ExperimentCommand {
    typealias Scenario = LaunchScenario
    typealias Report = LaunchReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        Built-in guests: \(GuestImage.builtins.sorted { $0.key < $1.key }.map { "\($0.key) (\($0.value))" }.joined(separator: "; ")).

        A user image is a flat 64-bit binary loaded at 0x100000 and entered in
        long mode with RDI = its mailbox and RSI = the vCPU index; bytes sent
        to port 0x3f8 appear on stdout, and `out` of 2 to port 0xea ends the
        vCPU (see README for the full ABI).

        Examples:
          kvmlab run --vcpus 4
          kvmlab run -v 64 --guest memstress --memory 256m --iterations 5
          kvmlab run --guest fault                     (exit status 4, register dump)
          kvmlab run --image my.bin --cpl 0 --timeout 2
        """)

    @Option(name: [.customShort("v"), .long], parsing: .unconditional, help: "vCPUs, 1 up to KVM_CAP_MAX_VCPUS.", transform: Bounded.int("--vcpus", 1...1_000_000)) var vcpus = 1
    @Option(name: [.customShort("m"), .long], help: "Test memory (k/m/g suffixes), split evenly between vCPUs.", transform: ByteSize.parse) var memory = ByteSize(bytes: 64 << 20)
    @Option(name: [.customShort("s"), .long], help: "Backing: \(Backing.allValueStrings.joined(separator: ", ")).") var backing: Backing = .anonymous
    @Option(help: "Built-in guest to run.") var guest = "hello"
    @Option(help: "Run this flat 64-bit binary instead of a built-in guest.") var image: String?
    @Option(help: "Privilege level of the guest code: 3 (native) or 0.") var cpl: PrivilegeLevel = .user
    @Option(parsing: .unconditional, help: "Seconds before the watchdog stops the guest.", transform: Bounded.double("--timeout", 0.001...86_400, unit: "seconds")) var timeout = 30.0
    @Option(name: [.customShort("i"), .long], parsing: .unconditional, help: "memstress: passes over memory; other guests: iteration events per vCPU before it is ended.", transform: Bounded.int("--iterations", 1...10_000_000)) var iterations = 3
    @Option(name: [.customShort("w"), .long], parsing: .unconditional, help: "memstress: percent of pages written (the rest are read).", transform: Bounded.int("--write-percent", 0...100)) var writePercent = 100
    @Flag(name: [.customShort("a"), .long], help: "memstress: visit pages in random order.") var random = false
    @Option(name: [.customShort("c"), .long], help: "Pin vCPU threads to these CPUs, round robin (e.g. 0,1 or 0-3).") var pin: CPUListArgument?
    @Flag(help: "An in-kernel interrupt controller (KVM_CREATE_IRQCHIP): HLT at CPL0 blocks in KVM instead of ending the vCPU.") var irqchip = false
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "--vcpus", "memory": "--memory", "guest": "--guest", "pin": "-c", "writePercent": "--write-percent"]

    func validate() throws {
        guard memory.bytes >= 4096 else { throw ValidationError("--memory must be at least 4k") }
        if image == nil && GuestImage.builtin(guest) == nil {
            throw ValidationError("unknown guest '\(guest)'; built-in guests are \(GuestImage.builtins.keys.sorted().joined(separator: ", "))")
        }
    }

    func config() -> LaunchConfig {
        var config = LaunchConfig()
        config.vcpus = vcpus
        config.memory = memory.bytes
        config.backing = backing
        config.guest = guest
        config.imagePath = image
        config.cpl = cpl
        config.timeout = timeout
        config.iterations = iterations
        config.writePercent = writePercent
        config.random = random
        config.pin = pin?.cpus ?? []
        config.inKernelIRQChip = irqchip
        // In JSON mode the guest's serial output goes to stderr so stdout stays one document.
        if output.json { config.console = { _, line in Exit.error(line) } }
        return config
    }

    /// The shared run, with the guest's outcome as the exit status.
    func run() throws {
        let result = try measure()
        if try Output.show(result, report: Report.self, options: output).status == .checksFailed { throw ExitCode(Exit.runtime) }
        switch result.outcome {
        case .finished: return
        case .error: throw ExitCode(1)
        case .failed: throw ExitCode(3)
        case .faulted: throw ExitCode(4)
        case .timedOut: throw ExitCode(5)
        case .interrupted: throw ExitCode(130)
        }
    }
}
