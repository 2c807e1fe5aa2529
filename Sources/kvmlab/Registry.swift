import ArgumentParser
import Report
import Scenarios
import VMM

/// An experiment's command: flags that build its scenario's configuration,
/// shown through its report. Its name and abstract come from the
/// scenario's kind; running, printing and the exit status are shared.
protocol ExperimentCommand: ParsableCommand {
    associatedtype Scenario: Scenarios.Scenario
    associatedtype Report: ExperimentReport where Report.Result == Scenario.Result
    var output: OutputOptions { get }
    /// The flag (or words) that sets each configuration field the scenario's
    /// errors may name: the library speaks of its fields, the command line
    /// of its flags.
    static var flags: [String: String] { get }
    /// The configuration the flags describe.
    func config() throws -> Scenario.Config
}

extension ExperimentCommand {
    static var kind: ExperimentKind { Scenario.kind }

    /// Runs the scenario the flags describe.
    func measure() throws -> Scenario.Result { try Scenario.run(config()) }

    func run() throws { try Output.experiment(try measure(), report: Report.self, options: output) }

    /// A configuration error in this command's terms: each field by its flag.
    static func usage(_ error: ConfigError) -> String { error.text { flags[$0] ?? OutputOptions.flags[$0] } }
}

/// The one list that links each experiment to its command. The subcommand
/// list and `compare` read it; a test checks it against ExperimentKind
/// (`kvmlab --help` must list every kind, compare must accept every kind).
enum Registry {
    static let experiments: [any ExperimentCommand.Type] = [
        RunCommand.self, JitterCommand.self, DirtyLogCommand.self, ExitLatencyCommand.self,
        MemslotCommand.self, PopulateCommand.self, RootReloadCommand.self, TeardownCommand.self, MigrateCommand.self,
    ]

    /// The experiments compare can run, by command name.
    static var names: [String] { experiments.map { $0.kind.rawValue } }

    static var subcommands: [ParsableCommand.Type] { [InfoCommand.self] + experiments + [CompareCommand.self, CheckCommand.self] }

    /// The experiments for the top-level help, three to a line.
    static var helpList: String {
        let entries: [String] = names.filter { $0 != ExperimentKind.run.rawValue }.map { "kvmlab " + $0 }
        var lines: [String] = []
        for start in stride(from: 0, to: entries.count, by: 3) {
            let row = entries[start..<min(entries.count, start + 3)]
            lines.append("  " + row.dropLast().map { $0.padding(22) }.joined() + row.last!)
        }
        return lines.joined(separator: "\n")
    }
}
