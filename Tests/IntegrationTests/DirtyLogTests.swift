import KVM
import Testing
@testable import Scenarios
@testable import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct DirtyLogTests {
    func config(vcpus: Int = 2, bytes: UInt64 = 8 << 20, iterations: Int = 3, _ change: (inout DirtyLogConfig) -> Void = { _ in }) -> DirtyLogConfig {
        var config = DirtyLogConfig()
        config.vcpus = vcpus
        config.bytesPerVCPU = bytes
        config.iterations = iterations
        change(&config)
        return config
    }

    /// Every iteration: the dirty pages KVM reported are exactly the pages
    /// whose contents show this iteration's write.
    func expectExact(_ result: DirtyLogResult, file: String = #fileID, line: Int = #line) {
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect(result.iterations.count > 0)
        for iteration in result.iterations {
            #expect(iteration.missed == 0 && iteration.spurious == 0, "iteration \(iteration.iteration): \(iteration)")
            #expect(iteration.pagesDirty == iteration.pagesExpected)
            if !result.sharedRegion { #expect(UInt64(iteration.pagesStamped) == iteration.pagesWritten) }
            if result.writePercent > 0 { #expect(iteration.pagesWritten > 0) }
        }
    }

    @Test func sequentialFullWrites() throws {
        let result = try DirtyLogScenario.run(config())
        expectExact(result)
        let pages = 2 * (8 << 20) / 4096
        // INITIALLY_SET: the first harvest reports every page; then exactly the writes.
        #expect(result.iterations.allSatisfy { $0.pagesDirty == pages })
    }

    @Test func randomAccessWithWritePercentage() throws {
        let result = try DirtyLogScenario.run(config { $0.random = true; $0.writePercent = 40; $0.seed = 99; $0.initiallySet = false })
        expectExact(result)
        let pages = 2 * (8 << 20) / 4096
        for iteration in result.iterations {
            #expect(iteration.pagesDirty < pages && iteration.pagesDirty > pages / 5)
        }
    }

    @Test(arguments: [(true, true), (true, false), (false, false)])
    func manualProtectAndInitiallySet(manual: Bool, initiallySet: Bool) throws {
        let result = try DirtyLogScenario.run(config { $0.manualProtect = manual; $0.initiallySet = manual ? initiallySet : nil; $0.writePercent = 50 })
        expectExact(result)
        #expect(result.initiallySet == initiallySet)
        #expect(result.iterations.allSatisfy { ($0.clearSeconds != nil) == manual })
        let pages = 2 * (8 << 20) / 4096
        // Only an INITIALLY_SET first harvest reports pages that were not written.
        #expect((result.iterations[0].pagesDirty == pages) == initiallySet)
    }

    /// The selftests' way of waiting between passes, at both privilege
    /// levels: every page still checked, the choice in the document.
    @Test(arguments: [PrivilegeLevel.user, .kernel])
    func vcpusThatSpinBetweenPasses(cpl: PrivilegeLevel) throws {
        let result = try DirtyLogScenario.run(config { $0.waiting = .spin; $0.cpl = cpl })
        expectExact(result)
        #expect(result.iterations.count == 3)
        #expect(result.experiment.config["wait"] == "spin")
    }

    @Test func severalMemslots() throws {
        let result = try DirtyLogScenario.run(config(vcpus: 3, bytes: 4 << 20) { $0.slots = 4; $0.random = true })
        expectExact(result)
    }

    @Test func sharedRegion() throws {
        let result = try DirtyLogScenario.run(config { $0.sharedRegion = true; $0.writePercent = 30; $0.initiallySet = false })
        expectExact(result)
    }

    @Test func keepRunningWhileDisabling() throws {
        let result = try DirtyLogScenario.run(config { $0.keepRunning = true })
        expectExact(result)
        #expect(result.keepRunningPass != nil && result.disable != nil)
    }

    @Test(arguments: [64, 100, 4096])
    func chunkedClearsOnASlotThatIsNotAMultipleOf64Pages(chunk: Int) throws {
        // 1 vCPU × 100 pages in one slot: the last chunk ends mid-word.
        let result = try DirtyLogScenario.run(config(vcpus: 1, bytes: 100 * 4096) { $0.clearChunk = chunk; $0.initiallySet = false })
        expectExact(result)
        #expect(result.iterations.allSatisfy { $0.pagesDirty == 100 })
    }

    @Test func misalignedClearIsRejectedByKVM() throws {
        let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20, manualProtect: [.enable, .initiallySet]))
        _ = try machine.setTestSlotFlags(.logDirtyPages)
        var bitmap = DirtyBitmap(pages: 256)
        try machine.vm.getDirtyLog(slot: Machine.firstTestSlot, into: &bitmap)
        #expect(bitmap.dirtyCount == 256)  // INITIALLY_SET
        #expect(throws: KVMError.self) {
            try machine.vm.clearDirtyLog(slot: Machine.firstTestSlot, bitmap: bitmap, ranges: [ClearRange(firstPage: 32, pageCount: 64)])
        }
        try machine.vm.clearDirtyLog(slot: Machine.firstTestSlot, bitmap: bitmap, ranges: ClearRange.chunks(slotPages: 256, chunk: 64))
        try machine.vm.getDirtyLog(slot: Machine.firstTestSlot, into: &bitmap)
        #expect(bitmap.dirtyCount == 0)
    }

    @Test func dirtyRingHarvestsEveryWrittenPage() throws {
        let result = try DirtyLogScenario.run(config { $0.ringEntries = 1024; $0.random = true })
        expectExact(result)
        #expect(result.harvest == "dirty ring")
        let pages = 2 * (8 << 20) / 4096
        #expect(result.iterations.allSatisfy { $0.pagesDirty == pages })  // 2048 pages per vCPU: the ring filled and was drained
    }

    @Test func thpMappingsAre2MBeforeAnd4KAfterWrites() throws {
        let result = try DirtyLogScenario.run(config(bytes: 16 << 20, iterations: 2) { $0.backing = .anonymousTHP; $0.initiallySet = false })
        expectExact(result)
        let populated = result.populate?.stats?.vm["pages_2m"] ?? 0
        #expect(populated > 0, "THP backing produced no 2 MiB mappings")
        // Every 2 MiB mapping populate made is gone by the end of the iterations
        // (split eagerly or on write faults), and the phases say where.
        let split = result.phases.dropFirst().reduce(Int64(0)) { $0 - ($1.stats?.vm["pages_2m"] ?? 0) }
        #expect(split >= populated)
    }

    @Test(.enabled(if: HostCaps.hugetlb2M == nil, "\(HostCaps.hugetlb2M ?? "")"))
    func hugetlbMappingsAre2MBeforeAnd4KAfterWrites() throws {
        let ran: Void? = try withHugetlbPool(pageSize: 2 << 20, pages: 8) {
            let result = try DirtyLogScenario.run(config(bytes: 8 << 20, iterations: 2) { $0.backing = .anonymousHugetlb2MB })
            expectExact(result)
            let populated = result.populate?.stats?.vm["pages_2m"] ?? 0
            #expect(populated == 8)
            let after = result.iterations.reduce(Int64(0)) { $0 + ($1.dirtyStats?.vm["pages_4k"] ?? 0) }
            #expect(after >= 4096)
        }
        try #require(ran != nil, "could not reserve 2 MiB hugetlb pages")
    }

    /// Each slot's own bitmap must be cleared and checked: with random partial
    /// writes and INITIALLY_SET off the slots' bitmaps differ, so clearing
    /// or checking one slot with another's bitmap is caught.
    @Test func severalSlotsWithRandomPartialWrites() throws {
        let result = try DirtyLogScenario.run(config(vcpus: 2, bytes: 8 << 20, iterations: 3) {
            $0.slots = 4; $0.random = true; $0.writePercent = 30; $0.initiallySet = false; $0.seed = 7
        })
        expectExact(result)
        #expect(result.iterations.allSatisfy { $0.pagesDirty > 0 && $0.pagesDirty < 2 * (8 << 20) / 4096 })
    }

    @Test func impossibleRequestsFailBeforeMemoryIsTouched() throws {
        #expect(throws: ConfigError.self) { _ = try DirtyLogScenario.run(config(vcpus: 64, bytes: 1 << 40)) }
        #expect(throws: ConfigError.self) { _ = try DirtyLogScenario.run(config(bytes: 12 << 10) { $0.slots = 4 }) }
        #expect(throws: ConfigError.self) { _ = try DirtyLogScenario.run(config { $0.ringEntries = 1000 }) }
        #expect(throws: ConfigError.self) { _ = try DirtyLogScenario.run(config { $0.manualProtect = false; $0.initiallySet = true }) }
        #expect(throws: ConfigError.self) { _ = try DirtyLogScenario.run(config { $0.pin = [0, 0, 0, 0] }) }
    }
}
