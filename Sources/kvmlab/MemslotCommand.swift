import ArgumentParser
import Report
import Scenarios

struct MemslotCommand: ExperimentCommand {
    typealias Scenario = MemslotScenario
    typealias Report = MemslotReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        Each experiment runs in a fresh one-vCPU VM whose test memory is spread
        over many memslots; the host repeats its operation for --seconds while the
        guest works, --runs times. Everything the guest or the host writes is read
        back and compared; data written through the moved slot is checked after it
        moved away and back.

        Experiments: \(MemslotTest.allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: "; ")).

        Examples:
          kvmlab memslot                                  every experiment, 3 runs of 1 s
          kvmlab memslot -s 32763 --test move-active      as many slots as KVM allows
          kvmlab memslot --test map --test unmap -r 5 --json
          kvmlab memslot --no-zap-all --test move-inactive
        """)

    @Option(name: [.customShort("s"), .long], parsing: .unconditional, help: "Test memslots (up to KVM_CAP_NR_MEMSLOTS - 1; default \(MemslotCommand.defaultSlots)).") var slots: Int = MemslotCommand.defaultSlots
    @Option(name: .long, help: "Test memory of the move and rw experiments (k/m/g suffixes).", transform: ByteSize.parse) var memory = ByteSize(bytes: MemslotConfig().memory)
    @Option(name: [.customShort("l"), .long], parsing: .unconditional, help: "Seconds each run repeats its operation.", transform: Bounded.double("--seconds", 0.001...3600, unit: "seconds")) var seconds = MemslotConfig().seconds
    @Option(name: [.customShort("r"), .long], parsing: .unconditional, help: "Runs per experiment.", transform: Bounded.int("--runs", 1...1000)) var runs = MemslotConfig().runs
    @Option(name: .long, help: "An experiment to run (repeatable): \(MemslotTest.allCases.map(\.rawValue).joined(separator: ", ")). Default: all.") var test: [MemslotTest] = []
    @Flag(help: "Disable KVM_X86_QUIRK_SLOT_ZAP_ALL (moving a slot then zaps only its pages).") var noZapAll = false
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["slots": "-s", "memory": "--memory", "seconds": "--seconds", "runs": "--runs", "tests": "--test"]

    static let defaultSlots = 4096

    func config() -> MemslotConfig {
        var config = MemslotConfig()
        config.slots = slots
        config.memory = memory.bytes
        config.seconds = seconds
        config.runs = runs
        if !test.isEmpty { config.tests = test }
        config.noZapAll = noZapAll
        return config
    }
}

extension MemslotTest: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
