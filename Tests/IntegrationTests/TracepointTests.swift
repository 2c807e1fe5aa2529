import Foundation
import TestSupport
import Testing
import VMM

/// Kernel tracepoint counts per phase, on the real kernel: counts that must
/// move where the mechanism ran, and runs that go on where tracing cannot.
@Suite(.serialized, .timeLimit(.minutes(3)), .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"),
       .enabled(if: HostCaps.tracing == nil, "\(HostCaps.tracing ?? "")"))
struct TracepointTests {
    /// Each phase's tracepoint counts from a run's --json.
    func phases(_ arguments: [String], environment: [String: String] = [:]) throws -> (experiment: [String: Any], counts: [String: [String: Int]]) {
        let result = try CLI.run(arguments + ["--json", "--quiet"], environment: environment)
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        let experiment = try #require(object["experiment"] as? [String: Any])
        var counts: [String: [String: Int]] = [:]
        for phase in try #require(experiment["phases"] as? [[String: Any]]) {
            counts[phase["name"] as! String] = (phase["tracepoints"] as? [String: Int]) ?? [:]
        }
        return (experiment, counts)
    }

    @Test func memslotChurnZapsWithTheQuirkAndLessWithout() throws {
        let zaps = { (counts: [String: Int]) in (counts["kvmmmu:kvm_mmu_zap_all_fast"] ?? 0) + (counts["kvmmmu:kvm_mmu_prepare_zap_page"] ?? 0) }
        let with = try phases(["jitter", "-v", "1", "--duration", "0.3", "--warmup", "0.1"]).counts
        #expect(zaps(with["churn"] ?? [:]) > 0, "\(with)")
        guard HostCaps.zapAllQuirk == nil else { return }
        let without = try phases(["jitter", "-v", "1", "--duration", "0.3", "--warmup", "0.1", "--no-zap-all"]).counts
        #expect(zaps(without["churn"] ?? [:]) < zaps(with["churn"] ?? [:]), "with \(with), without \(without)")
    }

    /// A CPL3 dirty pass after a clear write-faults on each of its 2048
    /// pages: a fault tracepoint moves that often (kvm_page_fault where the
    /// vendor module emits it; the MMU's own spte_requested or
    /// fast_page_fault everywhere). Iteration 1 takes none: INITIALLY_SET
    /// leaves every page writable until the first clear.
    @Test func dirtyPassesAtCPL3CountFaults() throws {
        let counts = try phases(["dirty-log", "-v", "1", "-b", "8m", "-i", "3", "--trace", "faults"]).counts
        for name in ["iteration 2 dirty memory", "iteration 3 dirty memory"] {
            let events = counts[name] ?? [:]
            let faults = ["kvm:kvm_page_fault", "kvmmmu:kvm_mmu_spte_requested", "kvmmmu:fast_page_fault"].map { events[$0] ?? 0 }.max() ?? 0
            #expect(faults >= 2048, "\(name): \(events)")
        }
        #expect(counts["iteration 1 dirty memory"].map { ($0["kvmmmu:kvm_mmu_spte_requested"] ?? 0) < 2048 } ?? false, "\(counts)")
    }

    /// With a ring big enough never to fill, KVM pushes each written page
    /// once per pass: the pushes are the pages harvested.
    @Test func ringPushesAreThePagesHarvested() throws {
        let (experiment, counts) = try phases(["dirty-log", "-v", "1", "-b", "8m", "-i", "2", "--ring", "4096", "--trace", "kvm:kvm_dirty_ring_push"])
        let pushes = counts.values.reduce(0) { $0 + ($1["kvm:kvm_dirty_ring_push"] ?? 0) }
        let dirtied = try #require((experiment["metrics"] as? [[String: Any]])?.first { $0["name"] as? String == "pages_dirtied" }?["value"] as? Double)
        #expect(pushes > 0 && Double(pushes) == dirtied, "\(pushes) pushes, \(dirtied) pages dirtied: \(counts)")
    }

    @Test(.enabled(if: HostFingerprint.current().emulatesKernelMode, "CPL0 code runs natively on this host's vendor module"))
    func emulatedCPL0CountsEmulatedInstructions() throws {
        let counts = try phases(["dirty-log", "-v", "1", "-b", "2m", "-i", "1", "--cpl", "0", "--trace", "faults"]).counts
        #expect((counts["iteration 1 dirty memory"]?["kvm:kvm_emulate_insn"] ?? 0) > 512, "\(counts)")
    }

    @Test func systemScopeCountsToo() throws {
        let (experiment, counts) = try phases(["jitter", "-v", "1", "--duration", "0.3", "--warmup", "0.1", "--trace-scope", "system"])
        #expect((experiment["tracing"] as? String)?.contains("every CPU") == true)
        #expect((counts["churn"]?["kvmmmu:kvm_mmu_zap_all_fast"] ?? 0) + (counts["churn"]?["kvmmmu:kvm_mmu_prepare_zap_page"] ?? 0) > 0, "\(counts)")
    }

    @Test func anExtraEventIsCounted() throws {
        let counts = try phases(["dirty-log", "-v", "1", "-b", "4m", "-i", "1", "--trace", "kvmmmu:kvm_mmu_set_spte"]).counts
        #expect(counts.values.contains { ($0["kvmmmu:kvm_mmu_set_spte"] ?? 0) > 0 }, "\(counts)")
    }

    @Test(arguments: [(["--trace", "kvm:no_such_event"], "no such tracepoint"), (["--trace", "nocolon"], "SUBSYSTEM:NAME"),
                      (["--trace", "kvm:kvm_exit", "--no-trace"], "contradict")])
    func badEventsAreUsageErrors(flags: [String], mentions: String) throws {
        let result = try CLI.run(["exit-latency", "-n", "100"] + flags)
        #expect(result.status == 2 && result.stderr.contains(mentions), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    /// No tracefs where kvmlab looks: the run measures as ever and says why
    /// nothing was counted.
    @Test func withoutTracefsTheRunGoesOnAndSaysWhy() throws {
        let (experiment, counts) = try phases(["dirty-log", "-v", "1", "-b", "4m", "-i", "1"], environment: ["KVMLAB_TRACEFS": "/nonexistent"])
        #expect(experiment["status"] as? String == "ok")
        #expect((experiment["tracing"] as? String) == "tracepoints not counted: /nonexistent/events is missing (KVMLAB_TRACEFS)")
        #expect(counts.values.allSatisfy { $0.isEmpty })
        let text = try CLI.run(["dirty-log", "-v", "1", "-b", "4m", "-i", "1", "--quiet"], environment: ["KVMLAB_TRACEFS": "/nonexistent"])
        #expect(text.status == 0 && text.stdout.contains("tracepoints not counted: /nonexistent/events is missing"))
    }
}

/// KVM's histogram stats on the real kernel: HLT at CPL0 with an in-kernel
/// interrupt controller blocks in KVM until the watchdog's kick, and KVM
/// records the wait in halt_wait_hist (or, when it polled first, in
/// halt_poll_fail_hist).
@Suite(.serialized, .timeLimit(.minutes(1)), .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct HistogramStatsTests {
    @Test func aHaltingGuestMovesAHaltHistogram() throws {
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let image = directory + "/halt.bin"
        try Data([0xF4, 0xEB, 0xFD]).write(to: URL(fileURLWithPath: image))  // hlt; jmp back to it
        let metrics = directory + "/halt.prom"
        let result = try CLI.run(["run", "--image", image, "--cpl", "0", "--irqchip", "--timeout", "0.3", "--json", "--quiet", "--openmetrics", metrics])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        let phases = try #require((object["experiment"] as? [String: Any])?["phases"] as? [[String: Any]])
        let histograms = try #require((phases.first?["stats"] as? [String: Any])?["histograms"] as? [String: [String: Any]], "\(phases)")
        let halts = ["halt_wait_hist", "halt_poll_fail_hist"].compactMap { histograms[$0]?["counts"] as? [Int] }.map { $0.reduce(0, +) }
        #expect(halts.reduce(0, +) >= 1, "\(histograms)")
        if let problem = try SchemaValidator.problem(result.stdout) { Issue.record("schema: \(problem)") }
        // The OpenMetrics histogram: cumulative buckets that never fall, +Inf equal to _count.
        let text = try String(contentsOfFile: metrics, encoding: .utf8)
        let family = histograms["halt_wait_hist"] != nil ? "kvmlab_run_kvm_halt_wait_seconds" : "kvmlab_run_kvm_halt_poll_fail_seconds"
        let lines = text.split(separator: "\n").filter { $0.hasPrefix(family) }
        let buckets = lines.filter { $0.contains("_bucket{") }.compactMap { Double($0.split(separator: " ").last!) }
        #expect(!buckets.isEmpty && zip(buckets, buckets.dropFirst()).allSatisfy { $0 <= $1 }, "\(lines)")
        let count = lines.first { $0.hasPrefix(family + "_count") }.flatMap { Double($0.split(separator: " ").last!) }
        #expect(buckets.last == count)
        if let promtool = FleetTools.promtool {
            let check = try Tool.run(promtool, ["check", "metrics"], input: text)
            #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
        }
    }
}
