import Foundation
import Scenarios
import TestSupport
import Testing

/// kvmlab's checks can fail: each deliberate fault in its own host side
/// (KVMLAB_INJECT_FAULT) must turn a run into checks_failed (exit 1) with
/// the check that caught it, and what it expected and saw.
@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct FaultInjectionTests {
    func run(_ fault: InjectedFault, _ arguments: [String]) throws -> (status: Int32, experiment: [String: Any], failed: [[String: Any]]) {
        let result = try CLI.run(arguments + ["--json"], environment: [InjectedFault.variable: fault.rawValue])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        let experiment = try #require(object["experiment"] as? [String: Any])
        let checks = try #require(experiment["checks"] as? [[String: Any]])
        return (result.status, experiment, checks.filter { $0["passed"] as? Bool == false })
    }

    @Test func aDroppedDirtyBitIsAMissedPage() throws {
        let (status, experiment, failed) = try run(.dropDirtyBit, ["dirty-log", "-v", "2", "-b", "4m", "-i", "2"])
        #expect(status == 1)
        #expect(experiment["status"] as? String == "checks_failed")
        let first = try #require(failed.first)
        #expect((first["name"] as? String)?.contains("dirty pages match written pages") == true)
        #expect((first["observed"] as? String)?.contains("1 missed, 0 spurious") == true)
        #expect((first["observed"] as? String)?.contains("written but not dirty") == true)
    }

    @Test func anExtraDirtyBitIsASpuriousPage() throws {
        let (status, _, failed) = try run(.extraDirtyBit, ["dirty-log", "-v", "1", "-b", "4m", "-i", "2", "-w", "50", "-a", "--initially-set", "off"])
        #expect(status == 1)
        #expect(failed.contains { ($0["observed"] as? String)?.contains("0 missed, 1 spurious") == true })
    }

    @Test func aSkippedClearLeavesLastPassPagesDirty() throws {
        // Half the pages change each pass: without KVM_CLEAR_DIRTY_LOG the
        // other half still reads dirty from the pass before.
        let (status, _, failed) = try run(.skipClear, ["dirty-log", "-v", "1", "-b", "4m", "-i", "3", "-w", "50", "-a", "--initially-set", "off"])
        #expect(status == 1)
        #expect(failed.contains { ($0["observed"] as? String)?.contains("dirty but not written") == true })
    }

    @Test func aCorruptedPageFailsMemslotsReadBack() throws {
        let (status, _, failed) = try run(.corruptPage, ["memslot", "-s", "8", "--memory", "4m", "-l", "0.1", "-r", "1", "--test", "rw"])
        #expect(status == 1)
        let check = try #require(failed.first)
        #expect((check["name"] as? String)?.contains("everything written reads back") == true)
        #expect((check["expected"] as? String) == "0" && (check["observed"] as? String) != "0")
    }

    @Test func aCorruptedPageFailsPopulatesSecondPass() throws {
        let (status, _, failed) = try run(.corruptPage, ["populate", "-v", "1", "-b", "4m", "--mode", "demand"])
        #expect(status == 1)
        #expect(failed.first?["observed"] as? String == "1")
    }

    @Test func aCorruptedPageFailsRunsVerification() throws {
        let (status, _, failed) = try run(.corruptPage, ["run", "--guest", "memstress", "-m", "4m", "-i", "1"])
        #expect(status == 1)
        #expect((failed.first?["name"] as? String)?.contains("holds its stamp") == true)
    }

    /// memslot rw: the guest checks the host's words; one wrong one is a mismatch.
    @Test func aWrongHostWriteIsSeenByTheGuest() throws {
        let (status, _, failed) = try run(.corruptHostWrite, ["memslot", "-s", "8", "--memory", "4m", "-l", "0.1", "-r", "1", "--test", "rw"])
        #expect(status == 1)
        let check = try #require(failed.first)
        #expect((check["name"] as? String)?.contains("everything written reads back") == true)
        #expect((check["expected"] as? String) == "0" && (check["observed"] as? String) != "0")
    }

    /// root-reload's guest reads CR0 back after each flip: a flip of a bit
    /// that never sticks (CR0.ET) fails the run instead of counting toggles.
    @Test func aCR0FlipThatDoesNotStickFailsRootReload() throws {
        let result = try CLI.run(["root-reload", "--duration", "0.2", "--dirtiers", "1", "--json"],
                                 environment: [InjectedFault.variable: InjectedFault.cr0FlipThatNeverSticks.rawValue])
        #expect(result.status == 1, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        let experiment = try #require(object["experiment"] as? [String: Any])
        #expect(experiment["status"] as? String != "ok")
        #expect(((experiment["problems"] as? [String]) ?? []).joined().contains("status 1"), "\(experiment["problems"] ?? "")")
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct HostFaultTests {
    /// A triple fault is a crash (exit 4), never a finished vCPU.
    @Test(arguments: ["3", "0"]) func aTripleFaultIsReportedAsACrash(cpl: String) throws {
        let result = try CLI.run(["run", "--guest", "triple", "--cpl", cpl])
        #expect(result.status == 4)
        #expect(result.stdout.contains("triple fault (KVM_EXIT_SHUTDOWN)"))
        #expect(result.stdout.contains("1 crashed"))
    }

    /// Destroying the VM closes one fd per vCPU plus the VM's: the count grows with vCPUs.
    @Test func teardownClosesMoreFdsForMoreVCPUs() throws {
        func closed(_ vcpus: Int) throws -> (destroy: Int, unmap: Int) {
            let result = try CLI.run(["teardown", "-v", "\(vcpus)", "--memory", "\(vcpus * 4)m", "--baseline", "0.01", "--order", "vm-first", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            let runs = try #require((object["detail"] as? [String: Any])?["runs"] as? [[String: Any]])
            let steps = try #require(runs.first?["steps"] as? [[String: Any]])
            let destroy = steps.first { ($0["name"] as? String)?.hasPrefix("destroy") == true }?["descriptorsClosed"] as? Int
            let unmap = steps.first { ($0["name"] as? String)?.hasPrefix("unmap") == true }?["descriptorsClosed"] as? Int
            return (try #require(destroy), try #require(unmap))
        }
        let one = try closed(1), four = try closed(4)
        #expect(one.destroy >= 2 && four.destroy >= 5)
        #expect(four.destroy - one.destroy == 3)
        #expect(one.unmap == 0 && four.unmap == 0)
    }

    /// Ctrl-C while dirty-log populates: status interrupted, exit 130.
    @Test func ctrlCDuringPopulateIsAnInterruption() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["dirty-log", "-v", "2", "-b", "2g", "-i", "1", "--json"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 0.6)
        kill(process.processIdentifier, SIGINT)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let object = try #require(try JSONSerialization.jsonObject(with: stdout) as? [String: Any])
        #expect((object["experiment"] as? [String: Any])?["status"] as? String == "interrupted")
    }

    @Test(arguments: [
        (["dirty-log", "-b", "1m", "--ring", "64"], "power of two from"),
        (["dirty-log", "-b", "1m", "--ring", "4096", "-g"], "-g"),
        (["exit-latency", "-v", "64", "-n", "50000000"], "RAM"),
    ])
    func badRequestsNeedingTheHostGiveOneLine(arguments: [String], mentions: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains(mentions), "\(result.stderr)")
    }
}
