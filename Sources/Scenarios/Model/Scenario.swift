/// The one shape of an experiment in the library: a configuration of plain
/// settings, a validation that rejects what no run can satisfy before
/// anything is mapped, and a run that returns the result the model and
/// every output are built from. The command line, `check` and the tests all
/// drive an experiment through these two calls.
///
/// Inside, a scenario whose run has state across steps keeps it in one
/// internal `final class NAMERun` (its `init` builds the VM, `execute()`
/// measures); CONTRIBUTING.md says how to add one.
public protocol Scenario {
    associatedtype Config: Sendable
    associatedtype Result: ExperimentResult

    /// The experiment this scenario runs.
    static var kind: ExperimentKind { get }

    /// Throws `ConfigError` (naming the config's fields, not any flag) for
    /// a request no run can satisfy, `HostLacks` for a capability the host
    /// does not have.
    static func validate(_ config: Config) throws

    /// Validates, runs and measures. A failure once the guest runs is in
    /// the result, with what was measured, rather than thrown.
    static func run(_ config: Config) throws -> Result
}
