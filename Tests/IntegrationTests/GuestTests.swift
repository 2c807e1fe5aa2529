import Dispatch
import Glibc
import Guests
import KVM
import Testing
@testable import Scenarios
@testable import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct GuestTests {
    func run(_ guest: String, vcpus: Int = 1, timeout: Double = 10, serial: CapturedSerial = CapturedSerial(), cpl: PrivilegeLevel = .user) throws -> [VCPUOutcome] {
        let machine = try Machine(MachineConfig(vcpus: vcpus, testMemory: 2 << 20, cpl: cpl))
        try machine.load(GuestImage.builtin(guest)!)
        let runner = VCPURunner(machine: machine, console: SerialConsole(sink: serial.sink)) { _, _ in .resume }
        try runner.start()
        return runner.wait(timeout: timeout)
    }

    @Test(arguments: [PrivilegeLevel.user, .kernel])
    func helloArrivesIntactFromEveryVCPU(cpl: PrivilegeLevel) throws {
        let serial = CapturedSerial()
        let outcomes = try run("hello", vcpus: 8, serial: serial, cpl: cpl)
        #expect(outcomes.allSatisfy { $0.isSuccess })
        let lines = serial.lines
        #expect(lines.count == 8)
        for (vcpu, text) in lines { #expect(text == "Hello from a kvmlab guest on vCPU \(vcpu)") }
        #expect(Set(lines.map(\.vcpu)) == Set(0..<8))
    }

    @Test func faultIsReportedWithVectorRIPAndCR2() throws {
        let outcomes = try run("fault", vcpus: 2)
        let marker = GuestImage.builtin("fault")!.marker
        #expect(marker > 0)
        for (index, outcome) in outcomes.enumerated() {
            guard case .exception(let report) = outcome else {
                Issue.record("vCPU \(index) ended with \(outcome), not an exception")
                continue
            }
            #expect(report.vcpu == index)
            #expect(report.vector == 14)
            #expect(report.rip == GuestLayout.codeAddress + UInt64(marker))
            #expect(report.cr2 == 0x7fff_0000_0000)
            #expect(report.errorCode & 0x4 != 0)  // U/S: the fault came from CPL3
            #expect(report.cs & 3 == 3)
            #expect(report.registers.first { $0.0 == "RAX" }?.1 == 0x7fff_0000_0000)
        }
    }

    @Test func watchdogEndsAGuestThatSpinsForever() throws {
        let clock = ContinuousClock()
        let start = clock.now
        let outcomes = try run("spin", vcpus: 2, timeout: 0.5)
        #expect(outcomes == [.stopped(.timeout), .stopped(.timeout)])
        #expect(clock.now - start < .seconds(20))  // it returned at all; not a speed check
    }

    /// A parent may start kvmlab with the kick signal blocked; vCPU threads
    /// must still take it, or a stop never reaches a vCPU inside KVM_RUN.
    @Test func vcpuThreadsTakeTheKickSignalWhenTheStarterBlocksIt() throws {
        var kick = sigset_t(), saved = sigset_t()
        sigemptyset(&kick)
        sigaddset(&kick, VCPURunner.kickSignal)
        pthread_sigmask(SIG_BLOCK, &kick, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        let machine = try Machine(MachineConfig(vcpus: 2, testMemory: 2 << 20))
        try machine.load(GuestImage.builtin("spin")!)
        // A thread that starts with the signal blocked never enters the guest
        // (its outcome says .host), so a regression fails here instead of hanging.
        let runner = VCPURunner(machine: machine, prologue: { _ in
            var mask = sigset_t()
            pthread_sigmask(SIG_SETMASK, nil, &mask)
            return sigismember(&mask, VCPURunner.kickSignal) == 0
        }) { _, _ in .resume }
        try runner.start()
        #expect(runner.wait(timeout: 0.5) == [.stopped(.timeout), .stopped(.timeout)])
    }

    /// A vCPU thread that never comes back (here held in its prologue, as a
    /// kernel that never returns from KVM_RUN would hold it) is reported
    /// stuck after the grace period instead of hanging the wait.
    @Test func aVCPUThatNeverReturnsIsReportedNotWaitedFor() throws {
        let machine = try Machine(MachineConfig(vcpus: 2, testMemory: 2 << 20))
        try machine.load(GuestImage.builtin("spin")!)
        let release = DispatchSemaphore(value: 0)
        let runner = VCPURunner(machine: machine, prologue: { index in
            if index == 1 { release.wait() }
            return true
        }) { _, _ in .resume }
        try runner.start()
        let outcomes = runner.wait(timeout: 0.2, grace: 0.3)
        release.signal()
        VCPURunner.joinAbandoned()
        #expect(outcomes.first == .stopped(.timeout))
        guard case .error(let message) = outcomes.last else { Issue.record("\(outcomes)"); return }
        #expect(message.contains("vCPU 1 did not leave KVM_RUN") && message.contains("stuck"))
    }

    /// KVM_RUN's EFAULT goes to onRunFault, and `true` re-enters: here the
    /// hook makes the read-only memory writable again and the guest's
    /// write pass then completes.
    @Test func aRunFaultTheHostMendsIsRetried() throws {
        let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20))
        try machine.load(GuestImage.builtin("passes")!)
        try machine.protect(at: GuestLayout.testMemoryBase, bytes: 1 << 20, writable: false)
        let faults = Locked(0)
        let runner = VCPURunner(machine: machine) { _, _ in .finish }
        runner.onRunFault = { _ in
            faults.withLock { $0 += 1 }
            return (try? machine.protect(at: GuestLayout.testMemoryBase, bytes: 1 << 20, writable: true)) != nil
        }
        let driver = PassDriver(machine: machine, runner: runner)
        try runner.start()
        let done = driver.run(0, Pass(op: PASS_WRITE, gpa: GuestLayout.testMemoryBase, pages: 256, stamp: Stamp(tag: 1, sequence: 1).base))
        _ = driver.finish()
        let count = faults.withLock { $0 }
        #expect(done != nil && count >= 1, "pass \(done == nil ? "not done" : "done"), \(count) faults")
        #expect(machine.memory(at: GuestLayout.testMemoryBase, bytes: 8)?.word(at: 0) == Stamp(tag: 1, sequence: 1).word(page: 0))
    }

    @Test func userImageRunsFromAFile() throws {
        // mov $'K', %al; mov $0x3f8, %dx; out %al, %dx; mov $'\n', %al; out %al, %dx; mov $2, %al; out %al, $0xea
        let code: [UInt8] = [0xB0, 0x4B, 0x66, 0xBA, 0xF8, 0x03, 0xEE, 0xB0, 0x0A, 0xEE, 0xB0, 0x02, 0xE6, 0xEA]
        let path = "/tmp/kvmlab-test-image-\(getpid()).bin"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        _ = code.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        defer { unlink(path) }
        let machine = try Machine(MachineConfig(vcpus: 1))
        try machine.load(try GuestImage.load(path: path))
        let serial = CapturedSerial()
        let runner = VCPURunner(machine: machine, console: SerialConsole(sink: serial.sink)) { _, _ in .resume }
        try runner.start()
        #expect(runner.wait(timeout: 10) == [.finished])
        #expect(serial.lines.map(\.text) == ["K"])
    }

    @Test func statsMoveWhenTheGuestTouchesMemory() throws {
        let machine = try Machine(MachineConfig(vcpus: 2, testMemory: 8 << 20))
        let probe = try StatsProbe(machine: machine)
        #expect(probe.vmNames.contains("pages_4k") || probe.vmNames.contains("pages_2m"))
        #expect(probe.vcpuNames.contains("pf_fixed"))
        let driver = try MemstressDriver(machine: machine, params: MemstressParams())
        let before = try probe.sample()
        try driver.start()
        #expect(driver.runIteration(timeout: 20) != nil)
        #expect(driver.finish().allSatisfy { $0.isSuccess })
        let delta = try probe.sample().delta(since: before)
        #expect((delta["pf_fixed"] ?? 0) > 0)
        #expect((delta["pages_4k"] ?? 0) + (delta["pages_2m"] ?? 0) > 0)
    }
}
