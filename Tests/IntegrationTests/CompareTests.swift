import Foundation
import TestSupport
import Testing

/// `kvmlab compare`, live and offline, on the real KVM.
@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct CompareTests {
    func json(_ result: Tool.Result) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
    }

    func stat(_ document: [String: Any], phase: String, _ name: String) throws -> (a: Double, b: Double) {
        let comparison = try #require((document["detail"] as? [String: Any])?["comparison"] as? [String: Any])
        let stats = try #require(comparison["stats"] as? [[String: Any]])
        let row = stats.first { $0["phase"] as? String == phase && $0["stat"] as? String == name }
        return ((row?["a"] as? Double) ?? 0, (row?["b"] as? Double) ?? 0)
    }

    /// An effect certain on any host where the quirk can be disabled.
    @Test(.enabled(if: HostCaps.zapAllQuirk == nil, "\(HostCaps.zapAllQuirk ?? "")"))
    func zapAllAgainstNoZapAllZapsOnlyWithTheQuirk() throws {
        let result = try CLI.run(["compare", "jitter", "-v", "1", "--duration", "0.3", "--warmup", "0.1", "--rounds", "2",
                                  "--a", "", "--b", "--no-zap-all", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let document = try json(result)
        #expect(document["command"] as? String == "compare")
        let zapped = try stat(document, phase: "churn", "mmu_shadow_zapped")
        #expect(zapped.a > 0 && zapped.b == 0)
        let detail = try #require(document["detail"] as? [String: Any])
        let rounds = try #require(detail["rounds"] as? [String: [[String: Any]]])
        #expect(rounds["A"]?.count == 2 && rounds["B"]?.count == 2)
        #expect((detail["order"] as? String)?.contains("AB then BA") == true)
        if let problem = try SchemaValidator.problem(result.stdout) { Issue.record("schema: \(problem)") }
    }

    /// THP backing maps 2 MiB pages at populate; plain anonymous memory none.
    @Test func thpAgainstAnonymousShowsWhereHugePagesWent() throws {
        let result = try CLI.run(["compare", "dirty-log", "-v", "1", "-b", "8m", "-i", "1", "--rounds", "2",
                                  "--a", "-s anonymous", "--b", "-s anonymous_thp", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let pages = try stat(try json(result), phase: "populate", "pages_2m")
        #expect(pages.a == 0 && pages.b > 0)
        let text = try CLI.run(["compare", "dirty-log", "-v", "1", "-b", "8m", "-i", "1", "--rounds", "1", "--a", "-s anonymous", "--b", "-s anonymous_thp"])
        #expect(text.stdout.contains("1 round a side cannot show a difference at 5%"))
        #expect(text.stdout.contains("backing: A anonymous, B anonymous_thp"))
    }

    // printk.time stands in for a KVM parameter: it is writable here, KVM's
    // are not (kvm_pvm registers them read-only), and flipping it is harmless.
    static let parameter = "/sys/module/printk/parameters/time"
    static var parameterProblem: String? {
        guard getuid() == 0 else { return "needs root to write module parameters" }
        return access(parameter, W_OK) == 0 && FileManager.default.fileExists(atPath: parameter) ? nil : "\(parameter) is not writable here"
    }
    func readParameter() throws -> String { try String(contentsOfFile: Self.parameter, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) }
    func opposite(_ value: String) -> String { value == "Y" ? "N" : "Y" }

    @Test(.enabled(if: CompareTests.parameterProblem == nil, "\(CompareTests.parameterProblem ?? "")"))
    func aModuleParameterIsRestoredAfterARunAndAfterAFailingVariant() throws {
        let original = try readParameter()
        let normal = try CLI.run(["compare", "exit-latency", "-n", "200", "--rounds", "1",
                                  "--a", "param:printk.time=\(opposite(original))", "--b", "param:printk.time=\(original)"])
        #expect(normal.status == 0, "\(normal.stderr)")
        #expect(try readParameter() == original)
        let failing = try CLI.run(["compare", "exit-latency", "-n", "200", "--rounds", "1",
                                   "--a", "param:printk.time=\(opposite(original))", "--b", "-n 1"])
        #expect(failing.status == 2)
        #expect(failing.stderr.contains("variant B"))
        #expect(try readParameter() == original)
    }

    @Test(.enabled(if: CompareTests.parameterProblem == nil, "\(CompareTests.parameterProblem ?? "")"))
    func aModuleParameterIsRestoredAfterSIGINT() throws {
        try interrupt(times: 1)
    }

    /// A second Ctrl-C exits at once: the parameter is put back before it does.
    @Test(.enabled(if: CompareTests.parameterProblem == nil, "\(CompareTests.parameterProblem ?? "")"))
    func aModuleParameterIsRestoredAfterASecondSIGINT() throws {
        try interrupt(times: 2)
    }

    func interrupt(times: Int) throws {
        let original = try readParameter()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["compare", "jitter", "-v", "1", "--duration", "5", "--warmup", "0.1", "--rounds", "2",
                             "--a", "param:printk.time=\(opposite(original))", "--b", ""]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1.5)
        #expect(try readParameter() == opposite(original))  // variant A's round is running
        // The second stop signal is a SIGTERM sent at once: two different
        // signals are never merged, so the watcher always counts two and
        // takes the exit-at-once path whose restore is under test.
        for signal in [SIGINT, SIGTERM].prefix(times) { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        #expect(try readParameter() == original)
    }

    @Test func aReadOnlyOrMissingParameterIsRefusedBeforeAnythingRuns() throws {
        let readOnly = try CLI.run(["compare", "exit-latency", "--a", "param:kvm.tdp_mmu=Y", "--b", ""])
        #expect(readOnly.status == 2)
        #expect(readOnly.stderr.contains("read-only") || readOnly.stderr.contains("needs root"))
        let missing = try CLI.run(["compare", "exit-latency", "--a", "param:kvm.no_such_parameter=1", "--b", ""])
        #expect(missing.status == 2 && missing.stderr.contains("no such module parameter"))
    }

    /// Sides whose folders share a last name (6.12/runs, 6.18/runs), or one
    /// folder given twice, get names that differ: the JSON keys its rounds
    /// by side name (a duplicate crashed it).
    @Test func offlineSidesWithTheSameFolderNameStayApart() throws {
        let root = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        for kernel in ["6.12", "6.18"] {
            try FileManager.default.createDirectory(atPath: "\(root)/\(kernel)/runs", withIntermediateDirectories: true)
            let run = try CLI.run(["exit-latency", "-n", "100", "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            try run.stdout.write(toFile: "\(root)/\(kernel)/runs/1.json", atomically: true, encoding: .utf8)
        }
        for (paths, names) in [(["\(root)/6.12/runs", "\(root)/6.18/runs"], ["6.12/runs", "6.18/runs"]),
                               (["\(root)/6.12/runs", "\(root)/6.12/runs"], ["\(root.dropFirst())/6.12/runs", "\(root.dropFirst())/6.12/runs (2)"])] {
            let result = try CLI.run(["compare"] + paths + ["--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let rounds = try #require((document["detail"] as? [String: Any])?["rounds"] as? [String: Any])
            #expect(Set(rounds.keys) == Set(names))
        }
    }

    /// Saved documents: two folders compared, mismatches refused, bisect codes.
    /// One real run is the template; each side's rounds scale its
    /// ready_seconds (after: 2×), so the effect is known and certain.
    @Test func offlineDocumentsAndBisectExitCodes() throws {
        let root = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let run = try CLI.run(["populate", "-v", "1", "-b", "4m", "--mode", "demand", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let template = try json(run)
        func write(_ side: String, rounds: Int, factor: Double) throws {
            try FileManager.default.createDirectory(atPath: "\(root)/\(side)", withIntermediateDirectories: true)
            for round in 1...rounds {
                var document = template, experiment = try #require(template["experiment"] as? [String: Any])
                var metrics = try #require(experiment["metrics"] as? [[String: Any]])
                for index in metrics.indices where metrics[index]["name"] as? String == "ready_seconds" {
                    metrics[index]["value"] = factor * (1 + Double(round) / 100)
                }
                experiment["metrics"] = metrics
                document["experiment"] = experiment
                try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: "\(root)/\(side)/\(round).json"))
            }
        }
        try write("before", rounds: 5, factor: 1)
        try write("after", rounds: 5, factor: 2)
        try write("few", rounds: 2, factor: 2)
        let plain = try CLI.run(["compare", "\(root)/before", "\(root)/after"])
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(plain.stdout.contains("after against before") && plain.stdout.contains("ready_seconds{mode=demand}"))
        #expect(plain.stdout.contains("Holm"))
        #expect(try CLI.run(["compare", "\(root)/before", "\(root)/after", "--fail-if", "ready_seconds>3"]).status == 0)
        let crossed = try CLI.run(["compare", "\(root)/before", "\(root)/after", "--fail-if", "ready_seconds>1.5"])
        #expect(crossed.status == 1 && crossed.stdout.contains("CROSSED"), "\(crossed.stdout)")
        // Two rounds a side cannot show any difference: the bisect step is skipped, not called good.
        let few = try CLI.run(["compare", "\(root)/before", "\(root)/few", "--fail-if", "ready_seconds>1.5"])
        #expect(few.status == 125 && few.stdout.contains("undecided (too few rounds)"), "\(few.stdout)")
        let unknown = try CLI.run(["compare", "\(root)/before", "\(root)/after", "--fail-if", "nosuch>1.1"])
        #expect(unknown.status == 2 && unknown.stderr.contains("has no metric 'nosuch'"))

        // A side whose run could not measure: 125, as git bisect run's "skip".
        try FileManager.default.createDirectory(atPath: "\(root)/broken", withIntermediateDirectories: true)
        for round in 1...5 {
            let saved = try Data(contentsOf: URL(fileURLWithPath: "\(root)/after/\(round).json"))
            var broken = try #require(try JSONSerialization.jsonObject(with: saved) as? [String: Any])
            var experiment = try #require(broken["experiment"] as? [String: Any])
            if round == 1 { experiment["status"] = "error" }
            broken["experiment"] = experiment
            try JSONSerialization.data(withJSONObject: broken).write(to: URL(fileURLWithPath: "\(root)/broken/\(round).json"))
        }
        #expect(try CLI.run(["compare", "\(root)/before", "\(root)/broken", "--fail-if", "ready_seconds>1000"]).status == 125)

        // Different experiments, or different settings, are refused with the reason.
        let other = try CLI.run(["exit-latency", "-n", "100", "--json"])
        try other.stdout.write(toFile: "\(root)/exit.json", atomically: true, encoding: .utf8)
        let mixed = try CLI.run(["compare", "\(root)/before/1.json", "\(root)/exit.json"])
        #expect(mixed.status == 2 && mixed.stderr.contains("cannot compare populate runs"))
        let bigger = try CLI.run(["populate", "-v", "1", "-b", "8m", "--mode", "demand", "--json"])
        try bigger.stdout.write(toFile: "\(root)/bigger.json", atomically: true, encoding: .utf8)
        let settings = try CLI.run(["compare", "\(root)/before/1.json", "\(root)/bigger.json"])
        #expect(settings.status == 2 && settings.stderr.contains("bytes_per_vcpu"))
        #expect(try CLI.run(["compare", "\(root)/before/1.json", "\(root)/bigger.json", "--any-config"]).status == 0)
    }
}
