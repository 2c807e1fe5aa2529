import Glibc
import Guests
import VMM

/// Two CPL3 vCPUs write their regions; the host mprotects all test memory
/// read-only; a verify pass (reads) must complete; a write pass must stop
/// with EFAULT and change nothing; after PROT_READ|PROT_WRITE the same pass
/// must complete and every page carry its stamp.
final class MprotectCheck {
    static let pages: UInt64 = 512
    let machine: Machine
    let runner: VCPURunner
    let driver: PassDriver
    /// EFAULTs per vCPU, counted on the vCPU threads.
    let faults = Locked([Int](repeating: 0, count: 2))
    private var lines: [String] = []
    private var failed = false

    init() throws {
        machine = try Machine(MachineConfig(vcpus: 2, testMemory: 2 * Self.pages * GuestLayout.pageSize))
        try machine.load(GuestImage.builtin("passes")!)
        runner = VCPURunner(machine: machine) { _, _ in .finish }
        let faults = faults
        runner.onRunFault = { vcpu in
            faults.withLock { $0[vcpu] += 1 }
            usleep(200)  // the host restores the mapping soon; re-entering at once would only fault again
            return true
        }
        driver = PassDriver(machine: machine, runner: runner)
    }

    func run() throws -> CheckVerdict {
        try runner.start()
        defer { _ = driver.finish() }
        each(PASS_WRITE, pass: 1)
        let first = (0..<2).compactMap { driver.wait($0) }.count
        note(first == 2 && carried(1) == 1024, "first write pass", expected: "1024 pages written", observed: "\(carried(1)) pages written")
        try protect(writable: false)
        each(PASS_VERIFY, pass: 1)
        let mismatches = (0..<2).compactMap { driver.wait($0) }
        note(mismatches == [0, 0], "reads of read-only memory", expected: "both verify passes complete, 0 mismatches",
             observed: mismatches.count == 2 ? "\(mismatches[0] + mismatches[1]) mismatches" : "a verify pass did not complete")
        each(PASS_WRITE, pass: 2)
        waitForFirstFaults()
        let efaults = faults.withLock { $0 }
        let writtenWhileReadOnly = carried(2)
        note(efaults.allSatisfy { $0 > 0 } && writtenWhileReadOnly == 0, "writes to read-only memory",
             expected: "KVM_RUN fails with EFAULT on both vCPUs, no page written",
             observed: "EFAULTs per vCPU \(efaults), \(writtenWhileReadOnly) pages written")
        try protect(writable: true)
        let completed = (0..<2).compactMap { driver.wait($0) }.count
        note(completed == 2 && carried(2) == 1024, "writes after PROT_READ|PROT_WRITE", expected: "both passes complete, 1024 pages written",
             observed: "\(completed) passes complete, \(carried(2)) pages written")
        return failed ? .fail(lines) : .pass(lines)
    }

    /// Each vCPU's first EFAULT (or its pass finishing, which is the
    /// failure): the write pass is each vCPU's third request (write, verify, write).
    private func waitForFirstFaults() {
        let deadline = Stopwatch.now() + 10_000_000_000
        while faults.withLock({ $0.contains(0) }) && Stopwatch.now() < deadline
            && (0..<2).contains(where: { machine.mailbox($0)[MB_DONE_ITERATION] != 3 }) && runner.endedCount == 0 {
            usleep(1000)
        }
    }

    private func stamp(_ vcpu: Int, _ pass: Int) -> Stamp { Stamp(tag: UInt16(vcpu + 1), sequence: pass) }

    private func each(_ op: Int32, pass: Int) {
        for vcpu in 0..<2 { driver.begin(vcpu, Pass(op: op, gpa: machine.region(of: vcpu).gpa, pages: Self.pages, stamp: stamp(vcpu, pass).base)) }
    }

    /// Pages of both regions that carry pass `pass`'s stamp.
    private func carried(_ pass: Int) -> Int {
        (0..<2).reduce(0) { total, vcpu in
            let memory = machine.memory(at: machine.region(of: vcpu).gpa, bytes: Self.pages * GuestLayout.pageSize)!
            return total + (0..<Int(Self.pages)).filter { memory.word(at: $0 * Int(GuestLayout.pageSize)) == stamp(vcpu, pass).word(page: $0) }.count
        }
    }

    private func note(_ ok: Bool, _ what: String, expected: String, observed: String) {
        lines += ok ? ["\(what): \(observed)"] : ["\(what):", "  expected \(expected)", "  observed \(observed)"]
        failed = failed || !ok
    }

    private func protect(writable: Bool) throws {
        if InjectedFault.on(.skipMprotect) && !writable { return }
        let test = machine.testSlots[0]
        try machine.protect(at: test.guestPhysicalAddress, bytes: test.size, writable: writable)
    }
}
