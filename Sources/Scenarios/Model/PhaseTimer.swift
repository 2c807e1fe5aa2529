import VMM

/// Times a phase and samples KVM's stats and the kernel tracepoint counts
/// before and after it: the one place every experiment measures a phase.
final class PhaseTimer {
    let probe: StatsProbe?
    /// Every phase measured so far, in order.
    private(set) var records: [PhaseRecord] = []

    init(probe: StatsProbe?) { self.probe = probe }

    /// Stats of the machine's VM and the listed vCPUs (all by default);
    /// nil stats on kernels without binary stats.
    convenience init(machine: Machine, vcpus: [Int]? = nil) {
        self.init(probe: try? StatsProbe(machine: machine, vcpus: vcpus))
    }

    /// What a phase is measured against.
    struct Start {
        let stats: StatsSample?
        let tracepoints: [String: Int64]?
    }

    @discardableResult
    func measure<T>(_ name: String, _ body: () throws -> T) rethrows -> (value: T, phase: PhaseRecord) {
        let before = sample()
        Progress.shared.begin(name)
        defer { Progress.shared.end() }
        let clock = Stopwatch()
        let value = try body()
        let seconds = clock.seconds
        let record = self.record(name, since: before, seconds: seconds)
        return (value, record)
    }

    /// A phase whose body times its own span and returns the seconds: the
    /// host-side dirty-log phases time only their ioctls, so that the
    /// Swift runtime's first-use work (generic metadata, conformance
    /// lookups: tens of µs on a phase's first call) stays outside.
    func measureSpan(_ name: String, _ body: () throws -> Double) rethrows -> PhaseRecord {
        let before = begin(name)
        let seconds = try body()
        return end(name, since: before, seconds: seconds)
    }

    /// A phase timed elsewhere: stats before (and progress, unless another
    /// timer of the same phase shows it) ...
    func begin(_ name: String, progress: Bool = true) -> Start {
        if progress { Progress.shared.begin(name) }
        return sample()
    }

    /// ... and after.
    @discardableResult
    func end(_ name: String, since before: Start, seconds: Double?) -> PhaseRecord {
        Progress.shared.end()
        return record(name, since: before, seconds: seconds)
    }

    private func sample() -> Start { Start(stats: try? probe?.sample(), tracepoints: TraceCounters.sampleCurrent()) }

    private func record(_ name: String, since before: Start, seconds: Double?) -> PhaseRecord {
        let after = sample()
        let record = PhaseRecord(name: name, seconds: seconds, stats: StatsDelta.between(before.stats, after.stats),
                                 tracepoints: TraceCounters.delta(before.tracepoints, after.tracepoints))
        records.append(record)
        return record
    }
}

/// Runs `body` for each item until one is interrupted or ends the sequence
/// (returns false): the repeat loop of memslot, populate and teardown.
func eachUntilInterrupted<T>(_ items: [T], _ body: (T) throws -> Bool) rethrows -> Bool {
    Interrupts.shared.install()
    for item in items {
        if Interrupts.shared.requested { return true }
        if try !body(item) { return Interrupts.shared.requested }
    }
    return Interrupts.shared.requested
}
