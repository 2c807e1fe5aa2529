import Foundation
@testable import Scenarios
import TestSupport
import Testing
import VMM

/// `kvmlab migrate`: real migrations between two kvmlab processes over
/// loopback TCP, judged by what the destination's guest finds in its own
/// memory, the source's digest, and the guest's TSC; hostile streams into
/// a listening destination; planted faults that the checks must catch.
@Suite(.timeLimit(.minutes(3)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct MigrateTests {
    /// Small and short: 2 vCPUs × 8 MiB, 0.1 s of baseline and after.
    static let small = ["migrate", "-v", "2", "-b", "8m", "--baseline", "0.1", "--after", "0.1", "--json"]

    struct Run {
        let status: Int32
        let stderr: String
        let experiment: [String: Any]
        let detail: [String: Any]

        var checks: [[String: Any]] { experiment["checks"] as? [[String: Any]] ?? [] }
        var failed: [[String: Any]] { checks.filter { $0["passed"] as? Bool == false } }
        func metric(_ name: String, _ labels: [String: String] = [:]) -> Double? {
            (experiment["metrics"] as? [[String: Any]])?.first { $0["name"] as? String == name && ($0["labels"] as? [String: String] ?? [:]) == labels }?["value"] as? Double
        }
    }

    func migrate(_ extra: [String], environment: [String: String] = [:]) throws -> Run {
        let result = try CLI.run(Self.small + extra, environment: environment)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        return Run(status: result.status, stderr: result.stderr, experiment: try #require(object["experiment"] as? [String: Any]),
                   detail: try #require(object["detail"] as? [String: Any]))
    }

    /// Every page verified by the guest on the destination, memory equal to
    /// the source's at the switchover, the TSC never backwards.
    func expectClean(_ run: Run) {
        #expect(run.status == 0, "\(run.stderr) \(run.failed)")
        #expect(run.experiment["status"] as? String == "ok")
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect(run.checks.contains { ($0["name"] as? String)?.contains("intact on the destination") == true })
        #expect(run.checks.contains { ($0["name"] as? String)?.contains("equals the source's") == true })
        #expect((run.detail["phases"] as? [[String: Any]])?.contains { $0["name"] as? String == "after" } == true, "the guest ran on the destination")
    }

    @Test(arguments: ["bitmap", "manual", "ring"])
    func eachDirtyTrackingModeMigratesEveryPage(_ mode: String) throws {
        let run = try migrate(["--dirty-track", mode] + (mode == "manual" ? ["--clear-chunk", "64"] : []))
        expectClean(run)
        let rounds = try #require(run.detail["rounds"] as? [[String: Any]])
        #expect(rounds.first?["pagesSent"] as? Int == 2 * 8 * 256, "round 1 sends all memory")
        // The workload wrote while round 1 was sent: tracking saw it, and
        // the guest wrote pages during pre-copy that KVM reported.
        #expect(rounds.allSatisfy { ($0["pagesDirtied"] as? Int ?? 0) > 0 })
        #expect((run.detail["guestDowntimeSeconds"] as? [Double])?.count == 2, "each vCPU saw the switchover as one gap")
    }

    @Test func aTHPSourceMigratesIntoFourKiBPages() throws {
        let run = try migrate(["-s", "anonymous_thp", "--dest-backing", "anonymous"])
        expectClean(run)
        #expect(run.detail["destinationBacking"] as? String == "anonymous")
    }

    /// --prealloc: the destination populates its memory before it accepts the VM.
    @Test func aPreallocatedDestinationPopulatesFirst() throws {
        let plain = try migrate([])
        let run = try migrate(["--prealloc"])
        expectClean(run)
        #expect((run.detail["destinationPreallocSeconds"] as? Double ?? 0) > 0)
        #expect(plain.detail["destinationPreallocSeconds"] as? Double == 0)
    }

    @Test func idleVCPUsAreMeasuredApart() throws {
        let run = try migrate(["-v", "1", "--idle-vcpus", "1"])
        expectClean(run)
        #expect((run.metric("guest_work_per_second", ["vcpus": "idle", "phase": "baseline"]) ?? 0) > 0)
        let timelines = try #require(run.detail["timelines"] as? [[String: Any]])
        #expect(timelines.map { $0["role"] as? String } == ["dirtying", "idle"])
    }

    /// Unlimited dirtying against a 20 MB/s stream cannot converge in 3 rounds.
    @Test func aWorkloadThatCannotConvergeSaysSoAndSwitchesOverAnyway() throws {
        let run = try migrate(["--dirty-rate", "unlimited", "-a", "--bandwidth", "20m", "--max-rounds", "3"])
        #expect(run.detail["converged"] as? Bool == false)
        #expect((run.detail["outcome"] as? String)?.hasPrefix("not converged: after 3 rounds") == true)
        #expect((run.detail["rounds"] as? [[String: Any]])?.count == 3)
        expectClean(run)
    }

    @Test func abortIfNotConvergedKeepsTheSourceRunning() throws {
        let run = try migrate(["--dirty-rate", "unlimited", "-a", "--bandwidth", "20m", "--max-rounds", "2", "--abort-if-not-converged"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect((run.detail["outcome"] as? String)?.contains("cancelled") == true)
        #expect(run.detail["downtimeSeconds"] == nil || run.detail["downtimeSeconds"] is NSNull, "no switchover")
        // The source's guest ran on and verified its own pages.
        #expect(run.checks.filter { ($0["name"] as? String)?.contains("intact on the source") == true }.count == 2)
        #expect(run.failed.isEmpty, "\(run.failed)")
        #expect((run.detail["phases"] as? [[String: Any]])?.contains { $0["name"] as? String == "after (source)" } == true)
    }

    /// 2 vCPUs at 20000 pages/s each dirty 8x what a 20 MB/s link sends:
    /// unthrottled, every round resends all memory; auto-converge steps the
    /// throttle up (50%, 75%, 99%) until the dirty set fits.
    @Test func autoConvergeRaisesTheThrottleUntilPreCopyConverges() throws {
        let common = ["--bandwidth", "20m", "--dirty-rate", "20000", "--baseline", "0.05", "--after", "0.05"]
        let plain = try migrate(common + ["--max-rounds", "3"])
        #expect(plain.detail["converged"] as? Bool == false)
        let throttled = try migrate(common + ["--max-rounds", "8", "--auto-converge", "--throttle-initial", "50", "--throttle-step", "25"])
        expectClean(throttled)
        #expect(throttled.detail["converged"] as? Bool == true, "\(throttled.detail["outcome"] ?? "")")
        let rounds = try #require(throttled.detail["rounds"] as? [[String: Any]])
        let steps = rounds.compactMap { $0["throttle"] as? Double }
        #expect(steps.first == 0, "no throttle before a round showed the need")
        #expect(zip(steps, steps.dropFirst()).allSatisfy { $0 <= $1 }, "the throttle only rises: \(steps)")
        #expect(steps.contains(0.5) && (steps.last ?? 0) > 0.5, "\(steps)")
        // Every vCPU slept while throttled (a round shorter than one
        // throttle cycle, up to a second at 99%, may hold no sleep).
        let sleeps = rounds.compactMap { $0["sleepSeconds"] as? [Double] }
        let asleep = zip(steps, sleeps).filter { $0.0 > 0 }.map(\.1)
        #expect((0..<2).allSatisfy { vcpu in asleep.map { $0[vcpu] }.reduce(0, +) > 0 }, "\(sleeps)")
        #expect(zip(steps, sleeps).filter { $0.0 == 0 }.allSatisfy { $0.1.allSatisfy { $0 == 0 } }, "no sleep before the throttle: \(sleeps)")
    }

    /// A dirty-limit slows the vCPU that dirties and never the one that only computes.
    @Test func dirtyLimitThrottlesTheDirtyingVCPUAndNeverTheIdleOne() throws {
        let run = try migrate(["-v", "1", "--idle-vcpus", "1", "--dirty-track", "ring", "--dirty-limit", "2000", "--bandwidth", "20m"])
        expectClean(run)
        let rounds = try #require(run.detail["rounds"] as? [[String: Any]])
        let sleeps = rounds.compactMap { $0["sleepSeconds"] as? [Double] }
        let rates = rounds.compactMap { $0["ringDirtyRates"] as? [Double] }
        #expect(sleeps.count == rounds.count && sleeps.allSatisfy { $0.count == 2 })
        #expect(sleeps.map { $0[0] }.reduce(0, +) > 0, "the dirtying vCPU slept: \(sleeps)")
        #expect(sleeps.allSatisfy { $0[1] == 0 }, "the idle vCPU never slept: \(sleeps)")
        #expect(rates.allSatisfy { $0[1] == 0 } && rates.map { $0[0] }.reduce(0, +) > 0, "\(rates)")
    }

    @Test func aSkippedPageFailsThePageCheck() throws {
        // Unlimited dirtying: the page is written again and again after round 1 sent it.
        let run = try migrate(["--dirty-rate", "unlimited"], environment: [InjectedFault.variable: InjectedFault.migrateSkipPage.rawValue])
        #expect(run.status == 1)
        #expect(run.experiment["status"] as? String == "checks_failed")
        let memory = try #require(run.failed.first { ($0["name"] as? String)?.contains("equals the source's") == true })
        #expect((memory["observed"] as? String)?.contains("1 pages differing: page ") == true, "\(memory)")
        // The guest's own check sees the lost write too: its counters no longer add up.
        #expect(run.failed.contains { ($0["name"] as? String)?.contains("intact on the destination") == true })
    }

    /// On kvm_pvm the guest's CPL3 rdtsc runs natively and reads the host's
    /// TSC whatever offset KVM holds (KVM_VCPU_TSC_OFFSET reads 0 there, and
    /// setting it to minus the host's TSC left the guest counting on: 0
    /// backward steps), so a TSC that is not carried cannot be seen there.
    @Test(.enabled(if: !HostFingerprint.current().emulatesKernelMode, "kvm_pvm: guest CPL3 rdtsc reads the host TSC, KVM's TSC offset does not apply to it"))
    func aTSCNotCarriedFailsTheMonotonicCheck() throws {
        let run = try migrate([], environment: [InjectedFault.variable: InjectedFault.tscNotCarried.rawValue])
        #expect(run.status == 1)
        #expect(run.failed.contains { ($0["name"] as? String)?.contains("TSC never went backwards") == true }, "\(run.failed)")
    }

    // MARK: - A destination of its own

    /// A free loopback port (bound, read, released).
    func freePort() throws -> UInt16 {
        let (fd, port) = try StreamSocket.listen(on: SocketAddress(host: "127.0.0.1", port: 0))
        close(fd)
        return port
    }

    /// Starts `kvmlab migrate --listen` and connects to it once it listens.
    func destination(port: UInt16) throws -> (Process, Pipe, StreamSocket) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["migrate", "--listen", "127.0.0.1:\(port)", "--quiet"]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        for _ in 0..<200 {
            if let socket = try? StreamSocket.connect(to: SocketAddress(host: "127.0.0.1", port: port)) { return (process, err, socket) }
            usleep(20_000)
        }
        process.terminate()
        throw HostError("the destination never listened on \(port)")
    }

    func finish(_ process: Process, _ err: Pipe) -> (Int32, String) {
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    var hello: MigrationHello {
        MigrationHello(vcpus: 1, slots: 1, testMemory: 4 << 20, systemSize: (try? GuestLayout(vcpus: 1, testMemorySize: 4 << 20).systemSize) ?? 0,
                       backing: .anonymous, tscKHz: 1_000_000,
                       afterSeconds: 0, digest: true, bootID: "", structSizes: MigrationHello.localStructSizes)
    }

    /// Sends `frames` to a fresh destination; returns its status and stderr.
    func feed(_ frames: [UInt8]) throws -> (Int32, String) {
        let (process, err, socket) = try destination(port: try freePort())
        try? socket.send(frames)
        socket.shutdown()
        return finish(process, err)
    }

    func frame(_ kind: FrameKind, count: UInt32 = 0, _ payload: [UInt8]) -> [UInt8] {
        MigrationWire.header(kind, count: count, length: payload.count) + payload
    }

    @Test func hostileStreamsEndTheDestinationWithOneLine() throws {
        var badMagic = hello.encode()
        badMagic[0] = 0x58
        var badVersion = hello.encode()
        badVersion[8] = 99
        var otherABI = hello
        otherABI.structSizes[0] += 8
        var page = WireWriter()
        page.u64(1 << 20)
        page.raw([UInt8](repeating: 0xAA, count: 4096))
        var pastTheEnd = WireWriter()
        pastTheEnd.u64(1024)
        pastTheEnd.raw([UInt8](repeating: 0xAA, count: 4096))
        var firstPage = WireWriter()
        firstPage.u64(0)
        firstPage.raw([UInt8](repeating: 0xAA, count: 4096))
        let readyPage = frame(.hello, hello.encode())
        let cases: [(String, [UInt8], String)] = [
            ("bad magic", frame(.hello, badMagic), "bad magic"),
            ("bad version", frame(.hello, badVersion), "stream version 99"),
            ("another ABI", frame(.hello, otherABI.encode()), "different KVM ABIs"),
            ("garbage", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), "unknown frame kind"),
            ("page outside memory", readyPage + frame(.pages, count: 1, page.bytes), "outside guest memory"),
            ("page just past the end", readyPage + frame(.pages, count: 1, pastTheEnd.bytes), "page 1024 is outside guest memory (1024 pages)"),
            ("truncated frame", readyPage + Array(frame(.pages, count: 1, firstPage.bytes).prefix(100)), "ended in the middle of a frame"),
            ("oversized frame", readyPage + MigrationWire.header(.pages, count: 5000, length: 5000 * 4104), "5000 pages"),
            ("state for the wrong VM", readyPage + frame(.state, [UInt8](repeating: 0, count: 40)), "vCPU states for a VM of 1"),
        ]
        for (name, bytes, message) in cases {
            let (status, stderr) = try feed(bytes)
            #expect(status == 1, "\(name): \(stderr)")
            let lines = stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines.first?.contains(message) == true, "\(name): expected '\(message)' in \(stderr)")
        }
    }

    /// The destination dies mid-stream: the source says so, keeps its
    /// guest running and verifies it, and exits 1.
    @Test func killingTheDestinationLeavesTheSourceRunning() throws {
        let port = try freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["migrate", "--listen", "127.0.0.1:\(port)", "--quiet"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        usleep(300_000)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) { kill(process.processIdentifier, SIGKILL) }
        // 10 MB/s for 16 MiB: round 1 alone takes longer than the kill.
        let result = try CLI.run(["migrate", "-v", "1", "-b", "16m", "--baseline", "0.1", "--after", "0.1", "--bandwidth", "10m",
                                  "--to", "127.0.0.1:\(port)", "--json"])
        process.waitUntilExit()
        #expect(result.status == 1, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        let experiment = try #require(object["experiment"] as? [String: Any])
        #expect(experiment["status"] as? String == "error")
        let problems = experiment["problems"] as? [String] ?? []
        #expect(problems.first?.contains("migration failed") == true, "\(problems)")
        let checks = try #require(experiment["checks"] as? [[String: Any]])
        #expect(checks.contains { ($0["name"] as? String)?.contains("intact on the source") == true && $0["passed"] as? Bool == true }, "\(checks)")
    }

    /// Ctrl-C on the source mid-round: the destination is told, the source
    /// reports what it measured and exits 130.
    @Test func ctrlCOnTheSourceCancelsAndReports() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["migrate", "-v", "1", "-b", "16m", "--baseline", "0.1", "--bandwidth", "5m", "--json"]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        DispatchQueue.global().asyncAfter(deadline: .now() + 1.5) { kill(process.processIdentifier, SIGINT) }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130, "\(stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(stderr)")
        let experiment = try #require(object["experiment"] as? [String: Any])
        #expect(experiment["status"] as? String == "interrupted")
        #expect(stderr.contains("the source cancelled the migration"), "the child destination was told: \(stderr)")
        let phases = try #require((object["detail"] as? [String: Any])?["phases"] as? [[String: Any]])
        #expect(phases.map { $0["name"] as? String } == ["baseline", "round 1"], "what was measured is reported")
    }

    @Test func badAddressesAreUsageErrors() throws {
        for (arguments, message) in [(["--to", "nowhere:80"], "not an IPv4 address"), (["--listen", "1.2.3.4:99999"], "ADDR:PORT"),
                                     (["--to", "127.0.0.1:1", "--listen", "127.0.0.1:2"], "contradict"),
                                     (["--dirty-limit", "100"], "--dirty-track ring"), (["--auto-converge", "--dirty-limit", "100", "--dirty-track", "ring"], "give one"),
                                     (["--dirty-rate", "nan"], "--dirty-rate"), (["--bandwidth", "0"], "from 1m"),
                                     (["--bandwidth", "9223372036854775808"], "from 1m"), (["-b", "9223372036854775808"], "at most 1t"),
                                     (["--to", "127.0.0.1:0"], "port 0")] {
            let result = try CLI.run(["migrate"] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(result.stderr)")
        }
    }
}
