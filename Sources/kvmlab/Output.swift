import ArgumentParser
import Report
import Scenarios
import VMM

/// The output flags every experiment command shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document (schema kvmlab/2) instead of tables.") var json = false
    @Option(help: ArgumentHelp("Also write the metrics in the Prometheus text format to FILE, atomically (for node_exporter's textfile collector).",
                               valueName: "FILE")) var openmetrics: String?
    @Option(help: ArgumentHelp("Also draw the run as an SVG picture in FILE.", valueName: "FILE")) var svg: String?
    @Flag(help: "No progress lines on stderr.") var quiet = false
    @Option(name: .customLong("trace"), help: ArgumentHelp("Also count this kernel tracepoint per phase (repeatable; SUBSYSTEM:NAME, or 'faults' for the per-fault ones).", valueName: "EVENT"))
    var traceEvents: [String] = []
    @Option(help: "Count tracepoints of this process and its threads (process), or of every CPU, kernel workers included (system).")
    var traceScope: TraceCounters.Scope = .process
    @Flag(help: "Count no kernel tracepoints.") var noTrace = false

    /// The flags that set the tracepoint counters' configuration fields.
    static let flags = ["events": "--trace"]

    func validate() throws {
        Progress.shared.enable(quiet: quiet)
        // Opened while parsing, before any vCPU thread exists: process-scope
        // counters then cover every thread the run creates.
        if !noTrace {
            do {
                let counters = try TraceCounters(events: TraceCounters.defaultEvents, scope: traceScope, explicit: traceEvents)
                TraceCounters.current.withLock { $0 = counters }
            } catch {
                throw ValidationError(error.text { OutputOptions.flags[$0] })
            }
        } else if !traceEvents.isEmpty {
            throw ValidationError("--trace and --no-trace contradict each other")
        }
        for path in [openmetrics, svg].compactMap({ $0 }) where !HostFiles.canCreate(path) {
            throw ValidationError("cannot write \(path): its directory is missing or not writable")
        }
    }
}

extension TraceCounters.Scope: ExpressibleByArgument {}

/// Prints an experiment's result the one way every command does, and turns
/// its status into the exit status.
enum Output {
    static func experiment<R: ExperimentReport>(_ result: R.Result, report: R.Type, options: OutputOptions) throws {
        try Exit.check(try show(result, report: report, options: options).status)
    }

    /// The metrics and the picture, then the table or the JSON document;
    /// returns the model it built them from (built once: it is not free).
    static func show<R: ExperimentReport>(_ result: R.Result, report: R.Type, options: OutputOptions) throws -> Experiment {
        let experiment = result.experiment
        let host = HostFingerprint.current()
        try publish(experiment, host: host, options: options) { R.svg(result, host: $0) }
        Exit.output(options.json ? try JSONDocument(command: experiment.experiment, host: host, experiment: experiment, detail: R.detail(result)).render()
                                 : R.text(result))
        return experiment
    }

    /// The metrics file, written before anything else: a run that failed or
    /// was interrupted still publishes what it measured.
    /// The picture too: the experiment's own, else the model's.
    static func publish(_ experiment: Experiment, host: HostFingerprint, options: OutputOptions,
                        picture: ((HostFingerprint) -> String)? = nil) throws {
        if let path = options.openmetrics {
            try file(path, quiet: options.quiet) { OpenMetrics.text(experiment, host: host, timestamp: HostClock.unixTime()) }
        }
        if let path = options.svg {
            try file(path, quiet: options.quiet) { picture?(host) ?? ModelPlot.svg(experiment, host: host) }
        }
    }

    /// Renders and writes an output file atomically, and says on stderr
    /// what it cost (bytes, seconds to render and write) unless quiet.
    static func file(_ path: String, quiet: Bool, _ render: () -> String) throws {
        let clock = Stopwatch()
        let text = render()
        try HostFiles.writeAtomically(path, text)
        if !quiet { Exit.error("kvmlab: wrote \(path) (\(text.utf8.count) bytes in \(Format.fixed(clock.seconds, 3)) s)") }
    }
}
