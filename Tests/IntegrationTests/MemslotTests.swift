import Foundation
import Guests
import KVM
import Testing
@testable import Report
@testable import Scenarios
@testable import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct MemslotTests {
    func config(_ tests: [MemslotTest], _ change: (inout MemslotConfig) -> Void = { _ in }) -> MemslotConfig {
        var config = MemslotConfig()
        config.slots = 64
        config.memory = 16 << 20
        config.seconds = 0.3
        config.runs = 1
        config.tests = tests
        change(&config)
        return config
    }

    @Test func everyExperimentIteratesAndReadsBackWhatWasWritten() throws {
        let result = try MemslotScenario.run(config(MemslotTest.allCases))
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect(result.runs.map(\.test) == MemslotTest.allCases)
        for run in result.runs {
            #expect(run.problem == nil)
            #expect(!run.iterationSeconds.isEmpty, "\(run.test) made no iteration")
            #expect(!run.operationSeconds.isEmpty, "\(run.test) timed no operation")
            #expect(run.pagesVerified > 0 && run.mismatches == 0, "\(run.test): \(run.mismatches) of \(run.pagesVerified)")
            #expect(run.slots == min(64, Int(run.areaBytes / 4096)))
        }
        let byTest = Dictionary(uniqueKeysWithValues: result.runs.map { ($0.test, $0) })
        // map: every iteration re-faults the half the host unmapped.
        let map = try #require(byTest[.map])
        #expect((map.stats?["pf_fixed"] ?? 0) >= Int64(map.iterationSeconds.count) * 4096)
        // unmap: one 4 KiB madvise per page of each 64 MiB half (slots are 2 MiB here).
        let unmap = try #require(byTest[.unmap])
        #expect(unmap.operationSeconds.count >= unmap.iterationSeconds.count * 32768)
        let chunked = try #require(byTest[.unmapChunked])
        #expect(chunked.operationSeconds.count >= chunked.iterationSeconds.count * 64)
        // A move is two ioctls; the moved slot is checked at both addresses and in host memory.
        for test in [MemslotTest.moveActive, .moveInactive] {
            let run = try #require(byTest[test])
            #expect(run.operationSeconds.count >= 2 * run.iterationSeconds.count)
            #expect(run.pagesVerified == 3 * Int(run.areaBytes / 4096 - 63 * (run.areaBytes / 64 / 4096)))
            #expect(run.guestPasses > 0)
        }
        let rw = try #require(byTest[.rw])
        #expect(rw.pagesVerified == 2 * rw.iterationSeconds.count * 4096)
    }

    @Test(.enabled(if: HostCaps.zapAllQuirk == nil, "\(HostCaps.zapAllQuirk ?? "")"))
    func zapAllQuirkZapsMoreThanWithoutIt() throws {
        let with = try MemslotScenario.run(config([.moveInactive]))
        let without = try MemslotScenario.run(config([.moveInactive]) { $0.noZapAll = true })
        #expect(with.experiment.status == .ok && without.experiment.status == .ok, "\(with.problems) \(without.problems)")
        let zappedWith = with.runs[0].stats?["mmu_shadow_zapped"] ?? 0
        let zappedWithout = without.runs[0].stats?["mmu_shadow_zapped"] ?? 0
        #expect(without.zapAllQuirk.contains("disabled"))
        if HostFingerprint.current().mmuMode == "shadow" {
            // Every move zaps all shadow pages with the quirk, only the slot's without.
            #expect(zappedWith > zappedWithout)
        } else {
            #expect(zappedWith >= zappedWithout)
        }
    }

    /// The checks can fail: a word changed behind the guest's back is found.
    @Test func verifyPassFindsACorruptedPage() throws {
        let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20))
        try machine.load(GuestImage.builtin("passes")!)
        let runner = VCPURunner(machine: machine) { _, _ in .finish }
        let driver = PassDriver(machine: machine, runner: runner)
        try runner.start()
        let base = GuestLayout.testMemoryBase
        #expect(driver.run(0, Pass(op: PASS_WRITE, gpa: base, pages: 256, offset: 8, stamp: 0x1234_0000)) == 0)
        let page = try #require(machine.memory(at: base + 77 * 4096, bytes: 4096))
        #expect(page.word(at: 8) == 0x1234_0000 + 77)
        page.store(0xdead, at: 8)
        #expect(driver.run(0, Pass(op: PASS_VERIFY, gpa: base, pages: 256, offset: 8, stamp: 0x1234_0000)) == 1)
        #expect(machine.mailbox(0)[MB_FIRST_BAD] == 77)
        let outcomes = driver.finish()
        #expect(outcomes.allSatisfy { $0 == .finished })
    }
}
