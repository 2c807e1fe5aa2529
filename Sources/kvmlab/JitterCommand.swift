import ArgumentParser
import Report
import Scenarios
import VMM

struct JitterCommand: ExperimentCommand {
    typealias Scenario = JitterScenario
    typealias Report = JitterReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        Every vCPU runs a CPL3 probe that times each loop with rdtsc and touches
        its working set, with no exits. After a warm-up the host measures a quiet
        baseline, then a churn phase of the same length in which the main thread
        performs a memslot operation at a fixed rate. Stalls are attributed to
        the operation that preceded them.

        Operations: \(JitterOperation.allCases.map { "\($0.rawValue) (\($0.summary))" }.joined(separator: "; ")).

        Examples:
          kvmlab jitter                                   about 20 s with defaults sized to this host
          kvmlab jitter --no-zap-all                      the same with KVM_X86_QUIRK_SLOT_ZAP_ALL off
          kvmlab jitter -v 8 --op move --rate 200 --json
          kvmlab jitter --events stalls.csv --svg jitter.svg
        """)

    @Option(name: .customShort("v"), parsing: .unconditional, help: "vCPUs (default: online CPUs).", transform: Bounded.int("-v", JitterConfig.vcpuLimit)) var vcpus = JitterConfig().vcpus
    @Option(help: "Working set per vCPU (k/m/g suffixes).", transform: ByteSize.parse) var workingSet = ByteSize(bytes: JitterConfig().workingSet)
    @Option(parsing: .unconditional, help: "Seconds of baseline, and again of churn.", transform: Bounded.double("--duration", 0.001...3600, unit: "seconds")) var duration = JitterConfig().duration
    @Option(parsing: .unconditional, help: "Seconds of warm-up before the baseline.", transform: Bounded.double("--warmup", 0...3600, unit: "seconds")) var warmup = JitterConfig().warmup
    @Option(parsing: .unconditional, help: "Operations per second during churn.", transform: Bounded.double("--rate", 0.01...100_000, unit: "per second")) var rate = JitterConfig().rate
    @Option(help: "The churn operation: \(JitterOperation.allCases.map(\.rawValue).joined(separator: ", ")).") var op: JitterOperation = .deleteCreate
    @Option(parsing: .unconditional, help: "Stall threshold in microseconds.", transform: Bounded.double("--threshold", 0.01...1_000_000, unit: "µs")) var threshold = JitterConfig().thresholdMicros
    @Option(parsing: .unconditional, help: "Attribution window in microseconds after an operation ends.", transform: Bounded.double("--window", 0...10_000_000, unit: "µs")) var window = JitterConfig().windowMicros
    @Flag(help: "Disable KVM_X86_QUIRK_SLOT_ZAP_ALL (deleting a slot then zaps only its pages).") var noZapAll = false
    @Option(name: .customShort("c"), help: "Pin vCPUs to these CPUs, then optionally the main thread.") var pin: CPUListArgument?
    @Flag(help: "Run the main thread SCHED_FIFO, where permitted.") var rt = false
    @Option(parsing: .unconditional, help: ArgumentHelp("Also probe the host: a thread pinned to CPU records its own gaps, reported and attributed like the vCPUs' stalls.", valueName: "CPU"),
            transform: Bounded.int("--host-probe", 0...4095)) var hostProbe: Int?
    @Option(help: "Write every stall and operation to this CSV file.") var events: String?
    @Option(help: "What shares vCPU 0's CPU (pin with -c): probe (only with --host-probe), tcp (a bulk TCP flow over loopback), both (with --host-probe).") var victim: VictimKind = .probe
    @Option(parsing: .unconditional, help: "With a TCP victim: a second flow on this CPU, as a control.", transform: Bounded.int("--control-cpu", 0...4095)) var controlCpu: Int?
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "-v", "workingSet": "--working-set", "pin": "-c", "victim": "--victim", "hostProbeCPU": "--host-probe", "controlCPU": "--control-cpu"]

    func validate() throws {
        if let events, !HostFiles.canCreate(events) { throw ValidationError("cannot write \(events): its directory is missing or not writable") }
    }

    func config() -> JitterConfig {
        var config = JitterConfig()
        config.vcpus = vcpus
        config.workingSet = workingSet.bytes
        config.duration = duration
        config.warmup = warmup
        config.rate = rate
        config.operation = op
        config.thresholdMicros = threshold
        config.windowMicros = window
        config.noZapAll = noZapAll
        config.pin = pin?.cpus ?? []
        config.realtime = rt
        config.hostProbeCPU = hostProbe
        config.victim = victim
        config.controlCPU = controlCpu
        return config
    }

    /// The shared run, with the stalls' CSV written beside it.
    func run() throws {
        let result = try measure()
        if let events { try Output.file(events, quiet: output.quiet) { JitterReport.csv(result) } }
        try Output.experiment(result, report: Report.self, options: output)
    }
}

extension JitterOperation: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
