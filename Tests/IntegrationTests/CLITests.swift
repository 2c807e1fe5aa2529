import Foundation
import TestSupport
import Testing
import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct CLITests {
    @Test func helloSucceeds() throws {
        let result = try CLI.run(["run", "-v", "2"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("Hello from a kvmlab guest on vCPU 1"))
        #expect(result.stdout.contains("status  finished"))
    }

    @Test func faultExitsFourWithARegisterDump() throws {
        let result = try CLI.run(["run", "--guest", "fault"])
        #expect(result.status == 4)
        #expect(result.stdout.contains("#PF (vector 14)"))
        #expect(result.stdout.contains("CR2 0x7fff00000000"))
    }

    @Test func pingEndsAfterItsIterations() throws {
        let result = try CLI.run(["run", "-v", "2", "--guest", "ping", "-i", "5", "--timeout", "20"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("2 finished"))
        #expect(result.stdout.contains("vcpu.io_exits") || result.stdout.contains("vcpu.exits"))
    }

    @Test func timeoutExitsFive() throws {
        let result = try CLI.run(["run", "--guest", "spin", "--timeout", "0.5"])
        #expect(result.status == 5)
        #expect(result.stdout.contains("timed_out"))
    }

    @Test func memstressJSONIsOneDocumentWithVerifiedPages() throws {
        let result = try CLI.run(["run", "-v", "4", "--guest", "memstress", "-m", "16m", "-i", "2", "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(object["schema"] as? String == "kvmlab/2")
        let passes = try #require((object["detail"] as? [String: Any])?["passes"] as? [[String: Any]])
        #expect(passes.count == 2)
        for pass in passes { #expect(pass["pagesVerified"] as? Int == 4096) }
    }

    @Test(arguments: [
        ["memslot", "-s", "16", "--memory", "4m", "-l", "0.2", "-r", "1", "--test", "move-active", "--test", "rw"],
        ["populate", "-v", "1", "-b", "4m"],
        ["root-reload", "--dirtiers", "1", "--working-set", "1m", "--duration", "0.2"],
        ["teardown", "-v", "1", "--memory", "16m", "--baseline", "0.05", "--order", "memory-first"],
    ])
    func mmuExperimentsPrintOneJSONDocument(arguments: [String]) throws {
        let result = try CLI.run(arguments + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(object["schema"] as? String == "kvmlab/2")
        #expect(object["command"] as? String == arguments[0])
        #expect((object["experiment"] as? [String: Any])?["status"] as? String == "ok")
        let text = try CLI.run(arguments)
        #expect(text.status == 0 && text.stdout.contains("status: ok"))
    }

    @Test func infoJSONReportsLimits() throws {
        let result = try CLI.run(["info", "--json"])
        #expect(result.status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let info = try #require(object["detail"] as? [String: Any])
        #expect((info["maxVCPUs"] as? Int ?? 0) >= 1)
        #expect((info["vcpuStats"] as? [String])?.contains("pf_fixed") == true)
        #expect(((object["host"] as? [String: Any])?["mmuMode"] as? String) != nil)
    }

    /// Bad input: one line on stderr, the right status, nothing on stdout.
    /// A scenario's validation names its config's fields; the line must
    /// name the flag the user typed instead (ExperimentCommand.flags).
    @Test(arguments: [
        (["run", "-v", "100000"], Int32(2), "--vcpus 100000: this host's KVM allows at most"),
        (["run", "--guest", "nosuch"], 2, "unknown guest"),
        (["run", "--guest", "memstress", "-w", "100", "--memory", "4k", "-v", "2"], 2, "test memory"),
        (["run", "--image", "/nonexistent/kvmlab.bin"], 1, "ENOENT"),
        (["dirty-log", "-v", "2", "-b", "12k", "-x", "4"], 2, "does not split evenly into 4 slots of whole 4 KiB anonymous pages; change -b or -x"),
        (["dirty-log", "-b", "1m", "--ring", "1000"], 2, "--ring takes a power of two"),
        (["dirty-log", "-b", "1m", "-g", "--ring", "1024"], 2, "--ring harvests the dirty ring, which plain KVM_GET_DIRTY_LOG cannot go with: it needs manual protect (drop -g)"),
        (["dirty-log", "-v", "64", "-b", "1t"], 2, "of RAM; lower -v or -b"),
        (["dirty-log", "-b", "1m", "-g", "--initially-set", "on"], 2, "--initially-set needs manual protect (drop -g)"),
        (["run", "-c", "4095"], 2, "-c names CPU 4095"),
        (["exit-latency", "-c", "4095"], 2, "-c names CPU 4095"),
        (["memslot", "-s", "0"], 2, "-s must be at least 1"),
        (["memslot", "-s", "1000000"], 2, "-s 1000000: this host's KVM allows"),
        (["memslot", "--test", "move-active", "--memory", "1m", "-s", "256"], 2, "lower -s or raise --memory"),
        (["populate", "-b", "6k"], 2, "-b must be a positive multiple of 4 KiB"),
        (["populate", "-b", "3m", "-s", "anonymous_hugetlb_2mb"], 2, "multiple of 2 MiB"),
        (["teardown", "--cpu", "4095"], 2, "--cpu names CPU 4095"),
        (["teardown", "--control-cpu", "4095", "--victim", "tcp"], 2, "--control-cpu names CPU 4095"),
        (["teardown", "--control-cpu", "0"], 2, "--control-cpu runs a second TCP flow: it needs --victim tcp or both"),
        (["teardown", "-v", "2", "--memory", "6k"], 2, "--memory must be a positive multiple"),
        (["memslot", "--memory", "64t"], 2, "of RAM; lower --memory"),
        (["populate", "-v", "64", "-b", "1t"], 2, "of RAM; lower -v or -b"),
        (["teardown", "--memory", "64t"], 2, "RAM"),
        (["root-reload", "--dirtiers", "64", "--working-set", "1t"], 2, "of RAM; lower --dirtiers or --working-set"),
        (["jitter", "--victim", "tcp"], 2, "--victim tcp runs its TCP flow on vCPU 0's CPU: pin the vCPUs (-c)"),
        (["jitter", "--host-probe", "4095"], 2, "--host-probe names CPU 4095"),
        (["migrate", "--to", "127.0.0.1:notaport"], 2, "--to 127.0.0.1:notaport: give ADDR:PORT"),
        (["dirty-log", "--trace", "nocolon"], 2, "--trace nocolon: write SUBSYSTEM:NAME"),
        (["jitter", "--duration", "1", "--events", "/nonexistent/dir/stalls.csv"], 2, "not writable"),
        (["compare", "exit-latency", "--variant", "two\nlines=", "--variant", "B="], 2, "control character"),
    ])
    func badInputGivesOneClearLine(arguments: [String], status: Int32, mentions: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == status)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.lowercased().contains(mentions.lowercased()))
        #expect(result.stdout.isEmpty)
    }

    @Test func emptyHugetlbPoolIsARuntimeErrorNamingThePool() throws {
        let pool = try #require(HugetlbPool.pool(pageSize: 2 << 20))
        let size = (pool.free + 1) * 2
        let result = try CLI.run(["run", "-s", "anonymous_hugetlb_2mb", "-m", "\(size)m"])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("/proc/sys/vm/nr_hugepages"))
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct InterruptTests {
    /// Starts kvmlab, signals it after `delay` seconds, returns status and stdout.
    func interrupt(_ arguments: [String], signal: Int32, after delay: Double) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = arguments
        let out = Pipe()
        process.standardOutput = out
        process.standardError = Pipe()
        try process.run()
        Thread.sleep(forTimeInterval: delay)
        kill(process.processIdentifier, signal)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: stdout, as: UTF8.self))
    }

    @Test func ctrlCStopsASpinningGuestAndStillReports() throws {
        let (status, stdout) = try interrupt(["run", "-v", "2", "--guest", "spin", "--timeout", "60"], signal: SIGINT, after: 0.5)
        #expect(status == 130)
        #expect(stdout.contains("status  interrupted"))
        #expect(stdout.contains("2 stopped"))
    }

    @Test func sigtermStopsMemstressBetweenPassesAndReportsThem() throws {
        let (status, stdout) = try interrupt(["run", "-v", "2", "--guest", "memstress", "-m", "64m", "-i", "100000", "--json"],
                                             signal: SIGTERM, after: 1.5)
        #expect(status == 130)
        let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as! [String: Any]
        let result = try #require(object["detail"] as? [String: Any])
        #expect((object["experiment"] as? [String: Any])?["status"] as? String == "interrupted")
        let passes = try #require(result["passes"] as? [[String: Any]])
        #expect(!passes.isEmpty)
        for pass in passes { #expect(pass["pagesVerified"] as? Int == 16384) }
    }
}
