import ArgumentParser
import Report
import Scenarios
import VMM

/// The output flags every experiment command shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document (schema kvmlab/2) instead of tables.") var json = false
}

/// Prints an experiment's result the one way every command does, and turns
/// its status into the exit status.
enum Output {
    static func experiment<R: ExperimentResult, D: Encodable>(_ command: String, _ result: R, detail: D, options: OutputOptions,
                                                            text: () -> String) throws {
        let experiment = result.experiment
        Exit.output(options.json ? try JSONDocument(command: command, experiment: experiment, detail: detail).render() : text())
        try Exit.check(experiment.status)
    }

    /// Results that are their own JSON detail.
    static func experiment<R: ExperimentResult & Encodable>(_ command: String, _ result: R, options: OutputOptions, text: () -> String) throws {
        try experiment(command, result, detail: result, options: options, text: text)
    }
}
