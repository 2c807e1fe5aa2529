import Glibc
import TestSupport
import Testing
@testable import Scenarios
@testable import VMM

@Suite(.timeLimit(.minutes(1))) struct InputTests {
    @Test(arguments: [("4096", 4096), ("64k", 65536), ("32M", 32 << 20), ("1g", 1 << 30), ("2GiB", 2 << 30), ("1t", 1 << 40)])
    func sizesParse(text: String, bytes: UInt64) throws {
        #expect(try Sizes.parse(text) == bytes)
    }

    @Test(arguments: ["", "12x", "-1", "1.5g", "k", "99999999999999999999", "16777216t"])
    func badSizesAreRejected(text: String) {
        #expect(throws: Sizes.ParseError.self) { try Sizes.parse(text) }
    }

    @Test func sizesFormat() {
        #expect(Sizes.format(1 << 30) == "1 GiB")
        #expect(Sizes.format(3 << 19) == "1.5 MiB")
        #expect(Sizes.format(100) == "100 B")
    }

    @Test func cpuLists() {
        #expect(CPUList.parse("0,2,4-6") == [0, 2, 4, 5, 6])
        #expect(CPUList.parse("1") == [1])
        #expect(CPUList.parse("3-1") == nil)
        #expect(CPUList.parse("a") == nil)
        #expect(CPUList.parse("1,,2") == nil)
    }

    @Test func outcomesRankFromTheWorst() {
        #expect([VCPUOutcome.finished, .finished].worst == .finished)
        #expect([VCPUOutcome.finished, .stopped(.timeout)].worst == .timedOut)
        #expect([VCPUOutcome.stopped(.timeout), .failed(status: 1)].worst == .failed)
        #expect([VCPUOutcome.crashed("x"), .failed(status: 1)].worst == .faulted)
        #expect([VCPUOutcome.stopped(.interrupted), .finished].worst == .interrupted)
        #expect([VCPUOutcome.stopped(.interrupted), .finished].runProblem == nil)
        #expect([VCPUOutcome.finished, .crashed("triple fault")].runProblem == "triple fault")
    }

    @Test func mmuModeDetection() {
        #expect(HostFingerprint.mmu(module: "kvm_pvm", parameters: [:]).0 == "shadow")
        #expect(HostFingerprint.mmu(module: "kvm_intel", parameters: ["kvm.tdp_mmu": "Y", "kvm_intel.ept": "Y"]).0 == "tdp_mmu")
        #expect(HostFingerprint.mmu(module: "kvm_intel", parameters: ["kvm.tdp_mmu": "N", "kvm_intel.ept": "Y"]).0 == "tdp_legacy")
        #expect(HostFingerprint.mmu(module: "kvm_amd", parameters: ["kvm.tdp_mmu": "Y", "kvm_amd.npt": "0"]).0 == "shadow")
        #expect(HostFingerprint.mmu(module: nil, parameters: [:]).0 == "unknown")
        #expect(HostFingerprint.bracketed("always [madvise] never") == "madvise")
    }
}

/// The tests' program runner kills what does not end: a looping kvmlab
/// fails its test instead of hanging the suite.
@Suite(.timeLimit(.minutes(1))) struct ToolTests {
    @Test func aProgramThatDoesNotEndIsKilled() throws {
        let result = try Tool.run("/bin/sleep", ["100"], limit: 0.5)
        #expect(result.status == SIGKILL && result.stderr.contains("killed after"))
    }
}
