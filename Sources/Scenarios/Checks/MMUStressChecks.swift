import Guests
import KVM
import VMM

extension CheckSuite {
    static let mmuStressChecks: [CheckCase] = [
        CheckCase("mprotect_read_only_guest_memory",
                  "like mmu_stress_test: guest writes to memory the host made read-only fail KVM_RUN with EFAULT, reads work, writes land once it is writable again",
                  quick: true) { _ in try MprotectCheck().run() },
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

    /// Calls of KVM_PRE_FAULT_MEMORY: how many, how many mapped, the first refusals.
    struct PreFaultTally {
        var calls = 0
        var mapped = 0
        var refused: [String] = []
    }

    /// A thread calling KVM_PRE_FAULT_MEMORY over `bytes` of test memory
    /// until `stop`, counting what each call did.
    static func preFaultUntilStopped(_ vcpu: VCPU, bytes: UInt64, stop: Locked<Bool>, into outcome: Locked<PreFaultTally>) throws -> JoinableThread {
        try JoinableThread {
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
        let outcome = Locked(PreFaultTally())
        let stop = Locked(false)
        let faulter = try preFaultUntilStopped(machine.vcpus[0], bytes: bytes, stop: stop, into: outcome)
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
}
