import Scenarios
import VMM

/// `kvmlab check` in KTAP version 1, as kselftest prints it: a version line,
/// the host as diagnostic lines, the plan, then per check its diagnostic
/// lines (what was expected and seen) and its result line.
public enum KTAP {
    public static func header(host: HostFingerprint, mode: String, plan: Int) -> String {
        var out = "KTAP version 1\n"
        out += "# kvmlab check (\(mode)): \(plan) checks\n"
        out += "# host: kernel \(host.kernel); cpu \(host.cpu) (\(host.onlineCPUs) online); \(host.kvmModule ?? "no KVM module"); \(host.mmuDescription)\n"
        let parameters = host.parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        out += "# host: \(parameters); THP \(host.thpMode ?? "unavailable")\n"
        return out + "1..\(plan)\n"
    }

    public static func result(_ number: Int, _ run: CheckRun) -> String {
        let name = sanitize(run.name)
        switch run.verdict {
        case .pass(let lines):
            return diagnostics(lines) + "ok \(number) \(name)\n"
        case .fail(let lines):
            return diagnostics(lines) + "not ok \(number) \(name)\n"
        case .skip(let reason):
            return "ok \(number) \(name) # SKIP \(sanitize(reason))\n"
        }
    }

    public static func footer(_ result: CheckSuiteResult) -> String {
        let counts = result.tally
        var out = result.interrupted ? "# interrupted after \(result.runs.count) checks\n" : ""
        out += "# Totals: pass:\(counts.pass) fail:\(counts.fail) xfail:0 xpass:0 skip:\(counts.skip) error:0\n"
        return out
    }

    static func diagnostics(_ lines: [String]) -> String {
        lines.map { "# " + $0.split(separator: "\n").joined(separator: " ") + "\n" }.joined()
    }

    /// Result lines end at a newline and a '#' starts a directive: keep both out of names.
    static func sanitize(_ text: String) -> String {
        String(text.map { $0 == "\n" || $0 == "#" ? " " : $0 })
    }
}
