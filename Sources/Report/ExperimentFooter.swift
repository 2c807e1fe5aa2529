import Scenarios

/// The end of every experiment's table: its checks and its status, read
/// from the experiment model (one footer, whatever the experiment).
public enum ExperimentFooter {
    public static func text(_ experiment: Experiment) -> String {
        var out = ""
        let failed = experiment.checks.filter { !$0.passed }
        if !experiment.checks.isEmpty {
            out += "\nchecks: \(experiment.checks.count - failed.count) passed, \(failed.count) failed\n"
            for check in failed { out += "  FAILED \(check.name): expected \(check.expected), observed \(check.observed)\n" }
        }
        out += "\nstatus: \(experiment.status.rawValue)\n"
        for problem in experiment.problems { out += "  \(problem)\n" }
        return out
    }
}
