import ArgumentParser
import Foundation
import Report
import Scenarios
import VMM

struct JitterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jitter",
        abstract: "Reproduce memslot-deletion jitter: vCPU stalls as a latency distribution.",
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

    @Option(name: .customShort("v"), help: "vCPUs (default: online CPUs).") var vcpus = JitterConfig().vcpus
    @Option(help: "Working set per vCPU (k/m/g suffixes).", transform: ByteSize.parse) var workingSet = ByteSize(bytes: JitterConfig().workingSet)
    @Option(help: "Seconds of baseline, and again of churn.") var duration = JitterConfig().duration
    @Option(help: "Seconds of warm-up before the baseline.") var warmup = JitterConfig().warmup
    @Option(help: "Operations per second during churn.") var rate = JitterConfig().rate
    @Option(help: "The churn operation: \(JitterOperation.allCases.map(\.rawValue).joined(separator: ", ")).") var op: JitterOperation = .deleteCreate
    @Option(help: "Stall threshold in microseconds.") var threshold = JitterConfig().thresholdMicros
    @Option(help: "Attribution window in microseconds after an operation ends.") var window = JitterConfig().windowMicros
    @Flag(help: "Disable KVM_X86_QUIRK_SLOT_ZAP_ALL (deleting a slot then zaps only its pages).") var noZapAll = false
    @Option(name: .customShort("c"), help: "Pin vCPUs to these CPUs, then optionally the main thread.") var pin: CPUListArgument?
    @Flag(help: "Run the main thread SCHED_FIFO, where permitted.") var rt = false
    @Option(help: "Write every stall and operation to this CSV file.") var events: String?
    @Option(help: "Write an SVG timeline and histograms to this file.") var svg: String?
    @Flag(help: "Print one JSON document instead of tables.") var json = false

    func run() throws {
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
        for path in [events, svg].compactMap({ $0 }) where !FileManager.default.isWritableFile(atPath: (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent) {
            throw ConfigError("cannot write \(path): its directory is missing or not writable")
        }
        let result = try JitterScenario.run(config)
        let summary = JitterSummary(result)
        if let events { try JitterReport.csv(result).write(toFile: events, atomically: true, encoding: .utf8) }
        if let svg { try JitterPlot.svg(result).write(toFile: svg, atomically: true, encoding: .utf8) }
        Exit.output(json ? try JSONDocument(command: "jitter", result: summary).render() : JitterReport.text(summary))
        try Exit.check(status: summary.status)
    }
}

extension JitterOperation: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
