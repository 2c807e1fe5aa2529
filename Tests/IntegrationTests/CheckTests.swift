import Foundation
import Scenarios
import TestSupport
import Testing

/// `kvmlab check` on the real KVM: valid KTAP whatever this kernel's bugs,
/// and every deliberate fault caught by the right check with its detail.
@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct CheckTests {
    /// The quick suite's KTAP is valid and every `not ok` says what it expected and saw;
    /// whether this kernel passes every check is a finding, not this test's business.
    @Test func quickSuitePrintsValidKTAP() throws {
        let result = try CLI.run(["check", "--quick"])
        let document = try KTAPDocument(result.stdout)
        #expect(document.plan == CheckSuite.all.filter(\.quick).count)
        #expect(document.leading.contains { $0.hasPrefix("host: kernel") })
        for failed in document.results where !failed.ok {
            let detail = failed.diagnostics.joined(separator: "\n")
            #expect(detail.contains("expected") && detail.contains("observed") || detail.contains("could not measure"), "\(failed.name): \(detail)")
        }
        let anyFailed = document.results.contains { !$0.ok }
        #expect(result.status == (anyFailed ? 1 : 0))
        for skipped in document.results where skipped.skip != nil { #expect(!(skipped.skip ?? "").isEmpty, "\(skipped.name) skipped without a reason") }
    }

    @Test func jsonIsOneExperimentDocument() throws {
        let result = try CLI.run(["check", "--only", "dirty_bitmap_sequential", "--only", "pre_fault_memory", "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let experiment = try #require(object["experiment"] as? [String: Any])
        #expect(experiment["experiment"] as? String == "check")
        #expect((experiment["checks"] as? [Any])?.count == 2)
        if SchemaValidator.missing == nil, let problem = try SchemaValidator.problem(result.stdout) { Issue.record("schema: \(problem)") }
    }

    @Test func listNamesEveryCheck() throws {
        let result = try CLI.run(["check", "--list"])
        #expect(result.status == 0)
        for check in CheckSuite.all { #expect(result.stdout.contains(check.name)) }
    }

    @Test(arguments: [
        (InjectedFault.dropDirtyBit, "dirty_bitmap_sequential", "1 missed"),
        (.dropDirtyBit, "concurrent_harvest_bitmap_cpl3", "lost pages"),
        (.extraDirtyBit, "dirty_bitmap_partial_writes", "1 spurious"),
        (.skipClear, "dirty_bitmap_several_slots", "dirty but not written"),
        (.corruptPage, "memslot_move_integrity", "everything written reads back"),
        // CPL3: its ring-full path is exact on these hosts, so the planted fault is all that fails.
        (.dropFullRingEntry, "dirty_ring_full_cpl3", "lost"),
        (.skipRingReset, "dirty_ring_full_cpl3", "KVM_RESET_DIRTY_RINGS counts"),
        (.skipMprotect, "mprotect_read_only_guest_memory", "EFAULT"),
        (.slotNotRestored, "memslot_deleted_under_writes", "carry the last pass's stamp"),
        (.skipHolePunch, "guest_memfd_bind_and_punch", "still 0x"),
    ])
    func aFaultMakesTheRightCheckFailWithDetail(fault: InjectedFault, check: String, detail: String) throws {
        let result = try CLI.run(["check", "--only", check, "--seconds", "0.5"], environment: [InjectedFault.variable: fault.rawValue])
        #expect(result.status == 1, "\(result.stdout)\(result.stderr)")
        let document = try KTAPDocument(result.stdout)
        let failed = try #require(document.results.first)
        #expect(!failed.ok && failed.name == check)
        let lines = failed.diagnostics.joined(separator: "\n")
        #expect(lines.contains(detail) && lines.contains("expected") && lines.contains("observed"), "\(lines)")
    }

    @Test func badSelectionsAreUsageErrors() throws {
        let unknown = try CLI.run(["check", "--only", "nosuch"])
        #expect(unknown.status == 2 && unknown.stderr.contains("no check named 'nosuch'"))
        #expect(try CLI.run(["check", "--quick", "--full"]).status == 2)
    }
}
