/// Every experiment kvmlab has, declared once: its command name and what it
/// measures. A scenario names its results by it, the command line builds
/// its subcommand from it and `compare` accepts exactly these; the tests
/// check that the subcommands, compare, the JSON schema's enum, the README
/// and their own per-experiment lists agree with it (CONTRIBUTING.md).
public enum ExperimentKind: String, CaseIterable, Sendable, Codable {
    case run
    case jitter
    case dirtyLog = "dirty-log"
    case exitLatency = "exit-latency"
    case memslot
    case populate
    case rootReload = "root-reload"
    case teardown
    case migrate

    /// The command's one-line abstract.
    public var summary: String {
        switch self {
        case .run: return "Launch a test VM running a built-in guest or your own flat binary."
        case .jitter: return "Reproduce memslot-deletion jitter: vCPU stalls as a latency distribution."
        case .dirtyLog: return "Dirty logging and huge-page splitting, as dirty_log_perf_test measures them, checked page by page."
        case .exitLatency: return "Measure the userspace exit round trip: guest out -> host -> KVM_RUN."
        case .memslot: return "The memslot_perf_test experiments, with per-iteration and per-operation distributions."
        case .populate: return "How fast a VM's memory becomes usable: demand faults against three ways of populating it first."
        case .rootReload: return "MMU context resets forced from the guest: a CPL0 vCPU toggles CR0.WP in a loop."
        case .teardown: return "The cost of destroying a big VM, and who pays for it on the same CPU."
        case .migrate: return "Live-migrate a running VM to another kvmlab over TCP, pre-copy driven by the dirty log, with the guest's own view of the cost."
        }
    }
}
