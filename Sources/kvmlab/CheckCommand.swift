import ArgumentParser
import Report
import Scenarios
import VMM

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "A KVM MMU regression suite for new kernels, in KTAP.",
        discussion: """
        Runs correctness checks, each in fresh VMs, and prints KTAP version 1
        (as kselftest does): ok, not ok with '# ' lines saying what was
        expected and what was seen, or ok # SKIP with the reason where the
        host lacks a feature. Exit status 0 when every check passed or was
        skipped, 1 when any failed.

        Examples:
          sudo kvmlab check                 the quick suite, about a minute
          sudo kvmlab check --full          every check, longer concurrent runs
          kvmlab check --list
          sudo kvmlab check --only concurrent_harvest_ring_smallest_cpl0 --seconds 10
        """)

    @Flag(help: "The quick suite (default).") var quick = false
    @Flag(help: "Every check, with longer concurrent runs.") var full = false
    @Option(help: "Run only this check (repeatable; see --list).") var only: [String] = []
    @Flag(help: "List the checks and exit.") var list = false
    @Option(parsing: .unconditional, help: "Seconds each concurrent-harvest check runs (default 1 quick, 5 full).",
            transform: Bounded.double("--seconds", 0.1...600, unit: "seconds")) var seconds: Double?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        if quick && full { throw ValidationError("--quick and --full exclude each other") }
        let names = Set(CheckSuite.all.map(\.name))
        if let unknown = only.first(where: { !names.contains($0) }) {
            throw ValidationError("no check named '\(unknown)'; kvmlab check --list shows them")
        }
    }

    func run() throws {
        if list {
            var table = Table(headers: ["check", "suite", "what it checks"])
            table.alignNumbers = false
            for check in CheckSuite.all { table.add([check.name, check.quick ? "quick" : "full", check.summary]) }
            Exit.output(table.render())
            return
        }
        let cases = only.isEmpty ? CheckSuite.all.filter { full || $0.quick } : CheckSuite.all.filter { only.contains($0.name) }
        let host = HostFingerprint.current()
        let context = CheckContext(seconds: seconds ?? (full ? 5 : 1), full: full)
        if !output.json { Exit.output(KTAP.header(host: host, mode: full ? "full" : only.isEmpty ? "quick" : "selected", plan: cases.count)) }
        let result = CheckSuite.run(cases, context: context) { number, run in
            if !output.json { Exit.output(KTAP.result(number, run)) }
        }
        try Output.publish(result.experiment, host: host, options: output)
        if output.json {
            Exit.output(try JSONDocument(command: "check", host: host, experiment: result.experiment, detail: CheckDetail(result)).render())
        } else {
            Exit.output(KTAP.footer(result))
        }
        try Exit.check(result.experiment.status)
    }
}

/// `check --json`'s detail: each check's verdict and lines.
struct CheckDetail: Encodable {
    struct Entry: Encodable {
        let name: String
        let summary: String
        let result: String
        let lines: [String]
        let seconds: Double
    }

    let mode: String
    let checks: [Entry]

    init(_ result: CheckSuiteResult) {
        mode = result.mode
        checks = result.runs.map { run in
            switch run.verdict {
            case .pass(let lines): return Entry(name: run.name, summary: run.summary, result: "ok", lines: lines, seconds: run.seconds)
            case .fail(let lines): return Entry(name: run.name, summary: run.summary, result: "not ok", lines: lines, seconds: run.seconds)
            case .skip(let reason): return Entry(name: run.name, summary: run.summary, result: "skip", lines: [reason], seconds: run.seconds)
            }
        }
    }
}
