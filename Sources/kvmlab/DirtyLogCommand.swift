import ArgumentParser
import Report
import Scenarios
import VMM

struct DirtyLogCommand: ExperimentCommand {
    typealias Scenario = DirtyLogScenario
    typealias Report = DirtyLogReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        Phases: populate (every page written once), enable dirty logging, then per
        iteration: vCPUs dirty memory, the host gets the dirty log and clears it;
        finally disable dirty logging. Every iteration's dirty pages are compared
        with the pages the guests really wrote; a mismatch makes the run fail.

        Examples:
          kvmlab dirty-log -v 2 -b 1g -i 3
          kvmlab dirty-log -v 64 -b 32m -s anonymous_thp --json
          kvmlab dirty-log -b 512m -g                       (plain KVM_GET_DIRTY_LOG)
          kvmlab dirty-log -b 512m --initially-set off --clear-chunk 4096
          kvmlab dirty-log -v 2 -b 256m --ring 4096         (dirty ring instead of bitmap)
          kvmlab dirty-log -b 128m --cpl 0 -c 0,1 --wait spin   (as dirty_log_perf_test -c 0,1 runs)
        """)

    @Option(name: .customShort("v"), parsing: .unconditional, help: "vCPUs.", transform: Bounded.int("-v", DirtyLogConfig.vcpuLimit)) var vcpus = 1
    @Option(name: .customShort("b"), help: "Guest memory per vCPU (k/m/g suffixes).", transform: ByteSize.parse) var bytes = ByteSize(bytes: 1 << 30)
    @Option(name: .customShort("i"), parsing: .unconditional, help: "Dirty-logging iterations.", transform: Bounded.int("-i", 1...100_000)) var iterations = 2
    @Option(name: .customShort("s"), help: "Backing: \(Backing.allValueStrings.joined(separator: ", ")).") var backing: Backing = .anonymous
    @Option(name: .customShort("x"), parsing: .unconditional, help: "Memslots the memory is split into.", transform: Bounded.int("-x", 1...32_768)) var slots = 1
    @Option(name: .customShort("w"), parsing: .unconditional, help: "Percent of pages written per pass (the rest are read).", transform: Bounded.int("-w", 0...100)) var writePercent = 100
    @Flag(name: .customShort("a"), help: "Random access order.") var random = false
    @Option(name: .customShort("r"), help: "Seed for the random order and write choice.") var seed: UInt64 = 1
    @Flag(name: .customShort("o"), help: "All vCPUs share one region instead of one each.") var shared = false
    @Option(name: .customShort("c"), help: "Pin vCPUs to these CPUs, then optionally the main thread (one more CPU).") var pin: CPUListArgument?
    @Flag(name: .customShort("g"), help: "No manual protect: KVM_GET_DIRTY_LOG re-protects by itself.") var noManualProtect = false
    @Option(help: "KVM_DIRTY_LOG_INITIALLY_SET: on or off (default on with manual protect).") var initiallySet: OnOff?
    @Option(parsing: .unconditional, help: "Clear the dirty log in chunks of this many pages (rounded up to 64).", transform: Bounded.int("--clear-chunk", 1...(1 << 40))) var clearChunk: Int?
    @Option(parsing: .unconditional, help: "Harvest with a dirty ring of this many entries per vCPU (power of two, at least one page of entries).", transform: Bounded.int("--ring", 1...(1 << 24))) var ring: Int?
    @Option(help: "Privilege level of the guest: 3 (native) or 0 (emulated on kvm_pvm).") var cpl: PrivilegeLevel = .user
    @Flag(name: [.customShort("e"), .long], help: "vCPUs keep dirtying memory while logging is disabled.") var keepRunning = false
    @Option(name: .customLong("wait"), help: "How threads wait between passes: sleep, or spin as dirty_log_perf_test's do (vCPUs for the next pass, the host for the vCPUs: their CPUs never idle).") var waiting: IterationGate.Waiting = .sleep
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "-v", "bytesPerVCPU": "-b", "iterations": "-i", "slots": "-x", "writePercent": "-w", "pin": "-c",
                        "manualProtect": "manual protect (drop -g)", "initiallySet": "--initially-set", "clearChunk": "--clear-chunk", "ringEntries": "--ring"]

    func config() -> DirtyLogConfig {
        var config = DirtyLogConfig()
        config.vcpus = vcpus
        config.bytesPerVCPU = bytes.bytes
        config.iterations = iterations
        config.backing = backing
        config.slots = slots
        config.writePercent = writePercent
        config.random = random
        config.seed = seed
        config.sharedRegion = shared
        config.pin = pin?.cpus ?? []
        config.manualProtect = !noManualProtect
        config.initiallySet = initiallySet?.value
        config.clearChunk = clearChunk
        config.ringEntries = ring
        config.cpl = cpl
        config.keepRunning = keepRunning
        config.waiting = waiting
        return config
    }
}

/// "on" / "off" flags.
struct OnOff: ExpressibleByArgument, Sendable {
    let value: Bool

    init?(argument: String) {
        switch argument.lowercased() {
        case "on", "yes", "true", "1": value = true
        case "off", "no", "false", "0": value = false
        default: return nil
        }
    }

    static var allValueStrings: [String] { ["on", "off"] }
}
