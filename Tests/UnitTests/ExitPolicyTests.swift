import KVM
import Testing
import VMM

/// Every way a vCPU's run can end or go on, from made-up exits: the run
/// loop's whole policy, without a vCPU.
@Suite(.timeLimit(.minutes(1)))
struct ExitPolicyTests {
    func action(_ exit: VCPUExit, rings: Bool = false, serves: Bool = false, rip: UInt64? = 0x1234) -> ExitAction {
        ExitPolicy.action(for: exit, vcpu: 3, harvestsRings: rings, servesMMIO: { _, _ in serves }, rip: { rip })
    }

    func crash(_ action: ExitAction) -> String? {
        if case .end(.crashed(let text)) = action { return text }
        return nil
    }

    @Test func theGuestGoesOnAfterAKickAPortOrAServedAccess() {
        let io = IOExit(port: 0xEA, isOut: true, size: 1, count: 1, value: 1, bytes: [])
        #expect(action(.interrupted) == .kicked)
        #expect(action(.io(io)) == .handleIO(io))
        #expect(action(.dirtyRingFull, rings: true) == .harvestRing)
        #expect(action(.mmio(address: 0x1000, isWrite: false, length: 8), serves: true) == .serveMMIO(isWrite: false))
        #expect(action(.mmio(address: 0x1000, isWrite: true, length: 8), serves: true) == .serveMMIO(isWrite: true))
    }

    @Test func hltFinishes() {
        #expect(action(.hlt) == .end(.finished))
    }

    @Test func everyCrashNamesTheVCPUAndWhatHappened() {
        #expect(crash(action(.dirtyRingFull)) == "vCPU 3: dirty ring full and nobody harvests it")
        #expect(crash(action(.mmio(address: 0xdead000, isWrite: true, length: 4))) == "vCPU 3: access to guest physical 0xdead000, which no memslot backs at RIP 0x1234")
        #expect(crash(action(.shutdown)) == "vCPU 3: triple fault (KVM_EXIT_SHUTDOWN) at RIP 0x1234")
        #expect(crash(action(.failEntry(hardwareReason: 0x21))) == "vCPU 3: KVM could not enter the guest (hardware reason 0x21)")
        #expect(crash(action(.internalError(suberror: 1))) == "vCPU 3: KVM internal error, suberror 1 at RIP 0x1234")
        #expect(crash(action(.unknown(reason: 99))) == "vCPU 3: unexpected exit reason 99 at RIP 0x1234")
    }

    /// Registers that cannot be read leave the RIP out rather than failing.
    @Test func anUnreadableRIPIsLeftOut() {
        #expect(crash(action(.shutdown, rip: nil)) == "vCPU 3: triple fault (KVM_EXIT_SHUTDOWN)")
    }

    /// The RIP is read only for the outcomes that quote it.
    @Test func theRIPIsReadOnlyWhenQuoted() {
        var reads = 0
        _ = ExitPolicy.action(for: .hlt, vcpu: 0, harvestsRings: false, servesMMIO: { _, _ in false }, rip: { reads += 1; return 1 })
        _ = ExitPolicy.action(for: .interrupted, vcpu: 0, harvestsRings: false, servesMMIO: { _, _ in false }, rip: { reads += 1; return 1 })
        #expect(reads == 0)
    }
}
