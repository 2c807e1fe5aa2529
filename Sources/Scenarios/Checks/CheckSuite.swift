import VMM

/// What one check concluded, with the lines that say why.
public enum CheckVerdict: Sendable, Equatable {
    case pass([String])
    case fail([String])
    case skip(String)
}

/// One correctness check of `kvmlab check`: it builds its own VM(s), and
/// says pass, fail (with expected and observed) or skip (with the reason).
public struct CheckCase: Sendable {
    public let name: String
    public let summary: String
    /// Part of `--quick` (every check is part of `--full`).
    public let quick: Bool
    let body: @Sendable (CheckContext) throws -> CheckVerdict

    init(_ name: String, _ summary: String, quick: Bool, _ body: @escaping @Sendable (CheckContext) throws -> CheckVerdict) {
        self.name = name
        self.summary = summary
        self.quick = quick
        self.body = body
    }
}

/// What the checks may vary: how long the concurrent ones run.
public struct CheckContext: Sendable {
    public var seconds: Double
    public var full: Bool

    public init(seconds: Double, full: Bool) {
        self.seconds = seconds
        self.full = full
    }
}

public struct CheckRun: Sendable {
    public let name: String
    public let summary: String
    public let verdict: CheckVerdict
    public let seconds: Double
}

public struct CheckSuiteResult: Sendable {
    public let mode: String
    public let runs: [CheckRun]
    public let interrupted: Bool

    /// How many checks passed, failed and were skipped.
    public var tally: (pass: Int, fail: Int, skip: Int) {
        runs.reduce(into: (pass: 0, fail: 0, skip: 0)) { totals, run in
            switch run.verdict {
            case .pass: totals.pass += 1
            case .fail: totals.fail += 1
            case .skip: totals.skip += 1
            }
        }
    }
}

public enum CheckSuite {
    /// Runs `cases` one after another, each in fresh VMs; `report` sees each
    /// result as it lands (KTAP is printed as the suite goes).
    public static func run(_ cases: [CheckCase], context: CheckContext, report: (Int, CheckRun) -> Void) -> CheckSuiteResult {
        Interrupts.shared.install()
        var runs: [CheckRun] = []
        for (index, check) in cases.enumerated() {
            if Interrupts.shared.requested { break }
            let clock = Stopwatch()
            Progress.shared.begin(check.name)
            let verdict: CheckVerdict
            do {
                verdict = try check.body(context)
            } catch let error as HostLacks {
                verdict = .skip(error.description)
            } catch let error as ConfigError {
                // The check asked for something impossible: its fault, not the host's.
                verdict = .fail(["the check's own settings were refused: \(error.description)"])
            } catch {
                verdict = .fail(["error: \(error)"])
            }
            Progress.shared.end()
            let run = CheckRun(name: check.name, summary: check.summary, verdict: verdict, seconds: clock.seconds)
            runs.append(run)
            report(index + 1, run)
        }
        return CheckSuiteResult(mode: context.full ? "full" : "quick", runs: runs, interrupted: Interrupts.shared.requested)
    }

    /// A check's verdict from an experiment it ran: its failed checks and
    /// problems become the expected/observed lines.
    static func verdict(_ experiment: Experiment, notes: [String] = []) -> CheckVerdict {
        switch experiment.status {
        case .ok:
            return .pass(notes + ["\(experiment.checks.count) checks passed"])
        case .checksFailed:
            return .fail(notes + experiment.checks.filter { !$0.passed }.prefix(5).flatMap { check in
                ["\(check.name):", "  expected \(check.expected)", "  observed \(check.observed)"]
            })
        case .error:
            return .fail(notes + experiment.problems.map { "could not measure: \($0)" })
        case .interrupted:
            return .skip("interrupted")
        }
    }

    static func expect(_ condition: Bool, _ what: String, expected: String, observed: String, notes: [String] = []) -> CheckVerdict {
        condition ? .pass(notes + ["\(what): \(observed)"]) : .fail(notes + ["\(what):", "  expected \(expected)", "  observed \(observed)"])
    }
}

extension CheckSuiteResult: ExperimentResult {
    public var experiment: Experiment {
        let counts = tally
        let checks = runs.map { run -> CheckRecord in
            switch run.verdict {
            case .pass(let lines): return CheckRecord(run.name, passed: true, expected: run.summary, observed: lines.joined(separator: "; "))
            case .fail(let lines): return CheckRecord(run.name, passed: false, expected: run.summary, observed: lines.joined(separator: "; "))
            case .skip(let reason): return CheckRecord(run.name, passed: true, expected: run.summary, observed: "SKIP: \(reason)")
            }
        }
        return Experiment(experiment: "check", config: ["mode": mode], metrics: [
            Metric("checks_passed", "Checks that passed", unit: .count, better: .higher, value: Double(counts.pass)),
            Metric("checks_failed", "Checks that failed", unit: .count, better: .lower, value: Double(counts.fail)),
            Metric("checks_skipped", "Checks this host cannot run", unit: .count, better: .neither, value: Double(counts.skip)),
        ], phases: runs.map { PhaseRecord(name: $0.name, seconds: $0.seconds, stats: nil) },
           checks: checks, problems: [], interrupted: interrupted)
    }
}
