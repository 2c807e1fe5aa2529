import Scenarios
import VMM

/// `kvmlab run` as text.
public enum LaunchReport: ExperimentReport {
    public static func text(_ result: LaunchResult) -> String {
        var out = keyValues(nil, [
            ("guest", result.guest),
            ("vm", "\(result.vcpus) vCPUs, \(Sizes.format(result.memoryBytes)) \(result.backing.rawValue), CPL\(result.cpl)"),
            ("status", result.outcome.rawValue),
            ("time", "\(Format.seconds(result.seconds)) s"),
        ])
        if !result.passes.isEmpty {
            var table = Table(title: "\nPasses", headers: ["iteration", "seconds", "written", "read", "verified"])
            for pass in result.passes {
                table.add(["\(pass.iteration)", Format.seconds(pass.seconds), "\(pass.pagesWritten)", "\(pass.pagesRead)", "\(pass.pagesVerified)"])
            }
            out += table.render()
        }
        var counts: [String: Int] = [:]
        for vcpu in result.vcpuResults { counts[vcpu.outcome, default: 0] += 1 }
        out += "\nvCPUs: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ") + "\n"
        if let delta = result.statsDelta {
            let moved = (delta.vm.map { ("vm." + $0.key, $0.value) } + delta.vcpus.map { ("vcpu." + $0.key, $0.value) })
                .filter { $0.1 != 0 }.sorted { $0.0 < $1.0 }
            if !moved.isEmpty {
                out += "\n" + keyValues("KVM stats that moved", moved.map { ($0.0, Format.signed($0.1)) })
            }
        }
        if let problem = result.firstProblem { out += "\n" + problem + "\n" }
        return out + ExperimentFooter.text(result.experiment)
    }
}
