import Glibc
import Guests
import KVM
import VMM

extension CheckSuite {
    static let mmuStressChecks: [CheckCase] = [
        CheckCase("mprotect_read_only_guest_memory",
                  "like mmu_stress_test: guest writes to memory the host made read-only fail KVM_RUN with EFAULT, reads work, writes land once it is writable again",
                  quick: true) { _ in try mprotectCheck() },
        CheckCase("memslot_deleted_under_writes",
                  "like mmu_stress_test: the vCPUs' memslot is deleted and re-created while they write; once it is back every write lands",
                  quick: true) { _ in try slotChurnCheck() },
        CheckCase("pre_fault_memory_racing_deletion", "like pre_fault_memory_test: KVM_PRE_FAULT_MEMORY while the memslot is deleted and re-created",
                  quick: true) { _ in try preFaultRaceCheck() },
    ]

    /// Two CPL3 vCPUs rewrite their regions in a loop while the host deletes
    /// and re-creates their memslot 20 times (accesses in between exit as
    /// MMIO and are dropped). After the loop one more write pass must land
    /// on every page, through the re-created slot, as the guest then verifies.
    static func slotChurnCheck() throws -> CheckVerdict {
        let pages: UInt64 = 256
        let machine = try Machine(MachineConfig(vcpus: 2, testMemory: 2 * pages * GuestLayout.pageSize))
        let mmio = Locked(0)
        let driver = try PassDriver.load(on: machine)
        let runner = driver.runner
        runner.onMMIO = { _, _, _ in mmio.withLock { $0 += 1 }; return true }
        try runner.start()
        defer { _ = driver.finish() }
        func stamp(_ vcpu: Int, _ pass: Int) -> Stamp { Stamp(tag: UInt16(vcpu + 1), sequence: pass) }
        for vcpu in 0..<2 { driver.begin(vcpu, Pass(op: PASS_WRITE_LOOP, gpa: machine.region(of: vcpu).gpa, pages: pages, stamp: stamp(vcpu, 1).base)) }
        let rounds = 20
        for round in 0..<rounds {
            try machine.removeTestSlot(0)
            Stopwatch.sleep(seconds: 0.001)
            if !(InjectedFault.on(.slotNotRestored) && round == rounds - 1) { try machine.restoreTestSlot(0) }
            Stopwatch.sleep(seconds: 0.001)
        }
        guard (0..<2).allSatisfy({ driver.endLoop($0) }) else { return .fail(["the write loop did not end: \(runner.stopRequested.map { "\($0)" } ?? "guest stopped answering")"]) }
        var landed = 0
        for vcpu in 0..<2 {
            let region = machine.region(of: vcpu)
            guard driver.run(vcpu, Pass(op: PASS_WRITE, gpa: region.gpa, pages: pages, stamp: stamp(vcpu, 2).base)) != nil else { continue }
            let memory = machine.memory(at: region.gpa, bytes: pages * GuestLayout.pageSize)!
            landed += (0..<Int(pages)).filter { memory.word(at: $0 * Int(GuestLayout.pageSize)) == stamp(vcpu, 2).word(page: $0) }.count
        }
        let exits = mmio.withLock { $0 }
        return expect(landed == 2 * Int(pages), "writes after \(rounds) deletions and re-creations", expected: "\(2 * pages) pages carry the last pass's stamp",
                      observed: "\(landed) do; \(exits) accesses met the deleted slot (MMIO exits)")
    }

    /// KVM_PRE_FAULT_MEMORY over the slot from one thread while the main
    /// thread deletes and re-creates it: every call returns (mapped, or an
    /// error for the missing slot), and the memory works afterwards.
    static func preFaultRaceCheck() throws -> CheckVerdict {
        let device = try KVMDevice()
        guard device.check(.preFaultMemory) > 0 else {
            throw HostLacks("KVM_CAP_PRE_FAULT_MEMORY is 0 on this host (it needs Linux 6.11+ and the TDP MMU)")
        }
        let bytes: UInt64 = 4 << 20
        let machine = try Machine(MachineConfig(vcpus: 1, testMemory: bytes), device: device)
        try machine.load(GuestImage.builtin("passes")!)
        let outcome = Locked((calls: 0, mapped: 0, refused: [String]()))
        let stop = Locked(false)
        let vcpu = machine.vcpus[0]
        let faulter = try JoinableThread {
            while !stop.withLock({ $0 }) {
                let result: String?
                do {
                    try vcpu.preFault(gpa: GuestLayout.testMemoryBase, size: bytes)
                    result = nil
                } catch {
                    result = "\(error)"
                }
                outcome.withLock { state in
                    state.calls += 1
                    if let result { if state.refused.count < 3 { state.refused.append(result) } } else { state.mapped += 1 }
                }
            }
        }
        for _ in 0..<50 {
            try machine.removeTestSlot(0)
            try machine.restoreTestSlot(0)
        }
        stop.withLock { $0 = true }
        faulter.join()
        let runner = VCPURunner(machine: machine) { _, _ in .finish }
        let driver = PassDriver(machine: machine, runner: runner)
        try runner.start()
        let mismatches = driver.run(0, Pass(op: PASS_WRITE, gpa: GuestLayout.testMemoryBase, pages: bytes / GuestLayout.pageSize, stamp: 0))
            .flatMap { _ in driver.run(0, Pass(op: PASS_VERIFY, gpa: GuestLayout.testMemoryBase, pages: bytes / GuestLayout.pageSize, stamp: 0)) }
        _ = driver.finish()
        let state = outcome.withLock { $0 }
        return expect(state.calls > 0 && mismatches == 0, "KVM_PRE_FAULT_MEMORY racing 50 deletions",
                      expected: "every call returns; afterwards a write and verify pass over the slot agree",
                      observed: "\(state.calls) calls (\(state.mapped) mapped; refused e.g. \(state.refused.joined(separator: "; "))), verify \(mismatches.map { "\($0) mismatches" } ?? "did not complete")")
    }

    /// Two CPL3 vCPUs write their regions; the host mprotects all test
    /// memory read-only; a verify pass (reads) must complete; a write pass
    /// must stop with EFAULT and change nothing; after PROT_READ|PROT_WRITE
    /// the same pass must complete and every page carry its stamp.
    static func mprotectCheck() throws -> CheckVerdict {
        let pages: UInt64 = 512
        let machine = try Machine(MachineConfig(vcpus: 2, testMemory: 2 * pages * GuestLayout.pageSize))
        try machine.load(GuestImage.builtin("passes")!)
        let faults = Locked([Int](repeating: 0, count: 2))
        let runner = VCPURunner(machine: machine) { _, _ in .finish }
        runner.onRunFault = { vcpu in
            faults.withLock { $0[vcpu] += 1 }
            usleep(200)  // the host restores the mapping soon; re-entering at once would only fault again
            return true
        }
        let driver = PassDriver(machine: machine, runner: runner)
        try runner.start()
        func stamp(_ vcpu: Int, _ pass: Int) -> Stamp { Stamp(tag: UInt16(vcpu + 1), sequence: pass) }
        func each(_ op: Int32, pass: Int) { for vcpu in 0..<2 { driver.begin(vcpu, Pass(op: op, gpa: machine.region(of: vcpu).gpa, pages: pages, stamp: stamp(vcpu, pass).base)) } }
        func carried(_ pass: Int) -> Int {
            (0..<2).reduce(0) { total, vcpu in
                let memory = machine.memory(at: machine.region(of: vcpu).gpa, bytes: pages * GuestLayout.pageSize)!
                return total + (0..<Int(pages)).filter { memory.word(at: $0 * Int(GuestLayout.pageSize)) == stamp(vcpu, pass).word(page: $0) }.count
            }
        }
        var lines: [String] = []
        var failed = false
        func note(_ ok: Bool, _ what: String, expected: String, observed: String) {
            lines += ok ? ["\(what): \(observed)"] : ["\(what):", "  expected \(expected)", "  observed \(observed)"]
            failed = failed || !ok
        }
        let test = machine.testSlots[0]
        func protect(writable: Bool) throws {
            if InjectedFault.on(.skipMprotect) && !writable { return }
            try machine.protect(at: test.guestPhysicalAddress, bytes: test.size, writable: writable)
        }
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
        // Wait for each vCPU's first EFAULT (or its pass to finish, which is the failure).
        // The write pass is each vCPU's third request (write, verify, write).
        let deadline = Stopwatch.now() + 10_000_000_000
        while faults.withLock({ $0.contains(0) }) && Stopwatch.now() < deadline
            && (0..<2).contains(where: { machine.mailbox($0)[MB_DONE_ITERATION] != 3 }) && runner.endedCount == 0 {
            usleep(1000)
        }
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
}
