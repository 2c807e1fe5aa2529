import Scenarios
import VMM

/// How an experiment's result is shown: the table, the JSON detail beside
/// the model, and the picture. One conformance per experiment is the one
/// place each is decided; the command line prints through it
/// (`Output.experiment`), and JSON, OpenMetrics, compare and check read the
/// model the result builds, so they need nothing here.
public protocol ExperimentReport {
    associatedtype Result: ExperimentResult
    associatedtype Detail: Encodable

    /// The `detail` member of the JSON document.
    static func detail(_ result: Result) -> Detail
    /// The tables printed without --json.
    static func text(_ result: Result) -> String
    /// The --svg picture.
    static func svg(_ result: Result, host: HostFingerprint) -> String
}

extension ExperimentReport {
    /// Without a picture of its own an experiment draws its model.
    public static func svg(_ result: Result, host: HostFingerprint) -> String { ModelPlot.svg(result.experiment, host: host) }
}

extension ExperimentReport where Detail == Result, Result: Encodable {
    /// A result that encodes itself is its own detail.
    public static func detail(_ result: Result) -> Result { result }
}
