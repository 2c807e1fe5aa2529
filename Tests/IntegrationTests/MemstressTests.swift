import Testing
@testable import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct MemstressTests {
    /// Runs `iterations` passes and checks, from the host, that every page of
    /// every vCPU's region holds exactly the word that pass should have written.
    func runAndVerify(vcpus: Int, bytesPerVCPU: UInt64, backing: Backing = .anonymous, iterations: Int = 2,
                      params: MemstressParams = MemstressParams()) throws {
        let machine = try Machine(MachineConfig(vcpus: vcpus, testMemory: bytesPerVCPU * UInt64(vcpus), backing: backing))
        let driver = try MemstressDriver(machine: machine, params: params)
        try driver.start()
        let pages = Int(bytesPerVCPU / 4096)
        for _ in 0..<iterations {
            guard let reports = driver.runIteration(timeout: 40) else {
                Issue.record("pass \(driver.iteration + 1) did not complete: \(driver.finish(timeout: 5))")
                return
            }
            for report in reports {
                #expect(report.writes + report.reads == UInt64(pages))
                #expect(driver.pagesStamped(vcpu: report.vcpu, iteration: driver.iteration) == Int(report.writes))
                if params.writePercent == 100 { #expect(report.writes == UInt64(pages)) }
                #expect(report.tscEnd >= report.tscStart)
            }
        }
        #expect(driver.finish().allSatisfy { $0.isSuccess })
    }

    @Test func oneVCPU() throws { try runAndVerify(vcpus: 1, bytesPerVCPU: 16 << 20) }

    @Test func sixtyFourVCPUs() throws { try runAndVerify(vcpus: 64, bytesPerVCPU: 1 << 20) }

    @Test func maxVCPUs() throws {
        try runAndVerify(vcpus: min(1024, KVMAvailability.maxVCPUs), bytesPerVCPU: 64 << 10)
    }

    @Test func randomOrderStillTouchesEveryPageOnce() throws {
        try runAndVerify(vcpus: 2, bytesPerVCPU: 4 << 20 + 12288, params: MemstressParams(random: true, seed: 7))
    }

    @Test func writePercentageSplitsWritesAndReads() throws {
        try runAndVerify(vcpus: 2, bytesPerVCPU: 4 << 20, iterations: 3, params: MemstressParams(writePercent: 30, random: true))
    }

    @Test(arguments: [Backing.anonymous, .anonymousTHP, .shmem])
    func backingsWithoutReservations(backing: Backing) throws {
        try runAndVerify(vcpus: 2, bytesPerVCPU: 8 << 20, backing: backing)
    }

    @Test(.enabled(if: HostCaps.hugetlb2M == nil, "\(HostCaps.hugetlb2M ?? "")"), arguments: [Backing.anonymousHugetlb2MB, .sharedHugetlb])
    func hugetlbBackingsReserveAndReturnPages(backing: Backing) throws {
        let freeBefore = HugetlbPool.pool(pageSize: 2 << 20)?.free
        let ran: Void? = try withHugetlbPool(pageSize: 2 << 20, pages: 8) {
            try runAndVerify(vcpus: 2, bytesPerVCPU: 8 << 20, backing: backing)
        }
        try #require(ran != nil, "could not reserve 2 MiB hugetlb pages on this host")
        #expect(HugetlbPool.pool(pageSize: 2 << 20)?.free == freeBefore)
    }

    @Test(.enabled(if: HostCaps.hugetlb1G == nil, "\(HostCaps.hugetlb1G ?? "")"))
    func oneGigabyteHugetlb() throws {
        let ran: Void? = try withHugetlbPool(pageSize: 1 << 30, pages: 1) {
            try runAndVerify(vcpus: 1, bytesPerVCPU: 1 << 30, backing: .anonymousHugetlb1GB, iterations: 1)
        }
        try #require(ran != nil, "the 1 GiB hugetlb pool grew once, then not again")
    }

    @Test func emptyHugetlbPoolFailsBeforeTouchingMemory() throws {
        let pool = try #require(HugetlbPool.pool(pageSize: 2 << 20))
        let huge = UInt64(pool.free + 1) * (2 << 20)
        let error = #expect(throws: (any Error).self) {
            _ = try Machine(MachineConfig(vcpus: 1, testMemory: huge, backing: .anonymousHugetlb2MB))
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("nr_hugepages"))
    }
}

/// Guest memory windows: one byte past the end of a mapping is no window.
@Suite(.timeLimit(.minutes(1)), .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct GuestMemoryBoundsTests {
    @Test func aSpanJustPastTheEndIsRefused() throws {
        let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20))
        let base = GuestLayout.testMemoryBase, size: UInt64 = 1 << 20
        #expect(machine.memory(at: base, bytes: size) != nil)
        #expect(machine.memory(at: base + size - 4096, bytes: 4096) != nil)
        #expect(machine.memory(at: base + size - 4096, bytes: 4097) == nil)
        #expect(machine.memory(at: base + size, bytes: 1) == nil)
        #expect(machine.memory(at: base - 8, bytes: 16) == nil)
        #expect(machine.memory(at: UInt64.max - 4, bytes: 8) == nil)
        let system = machine.layout.systemSize
        #expect(machine.memory(at: system - 8, bytes: 8) != nil && machine.memory(at: system - 8, bytes: 9) == nil)
    }
}
