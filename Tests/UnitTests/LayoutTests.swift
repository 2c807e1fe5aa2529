import Testing
@testable import VMM

@Suite(.timeLimit(.minutes(1))) struct LayoutTests {
    @Test func vcpuAreasAreDisjointAndBelowPageTables() throws {
        let layout = try GuestLayout(vcpus: 1024, testMemorySize: 1 << 30)
        #expect(layout.vcpuArea(1) - layout.vcpuArea(0) == GuestLayout.vcpuStride)
        #expect(layout.userStackTop(0) <= layout.vcpuArea(1))
        #expect(layout.pml4Address >= layout.vcpuArea(1023) + GuestLayout.vcpuStride)
        #expect(layout.systemSize % GuestLayout.hugePageSize == 0)
        #expect(layout.systemSize <= GuestLayout.testMemoryBase)
    }

    @Test func tablesCoverTestMemory() throws {
        let layout = try GuestLayout(vcpus: 2, testMemorySize: 3 << 30 + 4096)
        #expect(layout.mappedEnd == 8 << 30)
        #expect(layout.pdCount == 8)
        #expect(layout.pdptCount == 1)
        let big = try GuestLayout(vcpus: 1, testMemorySize: 600 << 30)
        #expect(big.pdptCount == 2)
    }

    @Test func rejectsBadRequests() {
        #expect(throws: GuestLayout.LayoutError.self) { try GuestLayout(vcpus: 0, testMemorySize: 0) }
        #expect(throws: GuestLayout.LayoutError.self) { try GuestLayout(vcpus: 1, testMemorySize: 100) }
    }

    @Test func identityMapTranslatesEveryGigabyte() throws {
        let layout = try GuestLayout(vcpus: 4, testMemorySize: 2 << 30)
        let memory = UnsafeMutableRawPointer.allocate(byteCount: Int(layout.systemSize), alignment: 4096)
        defer { memory.deallocate() }
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: Int(layout.systemSize))
        PageTables.build(layout, into: memory)
        for address: UInt64 in [0, 0x1234, GuestLayout.codeAddress + 7, GuestLayout.testMemoryBase, GuestLayout.testMemoryBase + (2 << 30) - 8] {
            #expect(PageTables.translate(address, layout: layout, memory: memory) == address)
        }
        #expect(PageTables.translate(layout.mappedEnd, layout: layout, memory: memory) == nil)
        #expect(PageTables.translate(0x7fff_0000_0000, layout: layout, memory: memory) == nil)
        let pde = memory.load(fromByteOffset: Int(layout.pdAddress) + 8, as: UInt64.self)
        #expect(pde == (2 << 20) | 0x87)
    }
}

@Suite(.timeLimit(.minutes(1))) struct DescriptorTests {
    @Test func flatSegmentsMatchTheArchitecturalEncodings() {
        #expect(Descriptors.segment(code: true, dpl: 0) == 0x00AF_9B00_0000_FFFF)
        #expect(Descriptors.segment(code: false, dpl: 0) == 0x00CF_9300_0000_FFFF)
        #expect(Descriptors.segment(code: false, dpl: 3) == 0x00CF_F300_0000_FFFF)
        #expect(Descriptors.segment(code: true, dpl: 3) == 0x00AF_FB00_0000_FFFF)
    }

    @Test func tssDescriptorSplitsTheBase() {
        let (low, high) = Descriptors.taskStateDescriptor(base: 0x1_2345_6789)
        #expect(low & 0xFFFF == UInt64(Descriptors.tssLimit))
        #expect((low >> 16) & 0xFF_FFFF == 0x45_6789)
        #expect((low >> 40) & 0xFF == 0x89)
        #expect((low >> 56) & 0xFF == 0x23)
        #expect(high == 0x1)
    }

    @Test func interruptGatePointsAtTheHandlerOnIST1() {
        let (low, high) = Descriptors.interruptGate(handler: 0x1_2345_6789, ist: 1)
        #expect(low & 0xFFFF == 0x6789)
        #expect((low >> 16) & 0xFFFF == UInt64(Descriptors.kernelCode))
        #expect((low >> 32) & 7 == 1)
        #expect((low >> 40) & 0xFF == 0x8E)
        #expect(low >> 48 == 0x2345)
        #expect(high == 1)
    }

    @Test func gdtSelectorsIndexTheRightEntries() {
        let gdt = Descriptors.gdt(firstTSS: 0x21_0000)
        #expect(gdt.count == Descriptors.gdtEntries)
        #expect(gdt[Int(Descriptors.kernelCode) >> 3] == Descriptors.segment(code: true, dpl: 0))
        #expect(gdt[Int(Descriptors.userCode) >> 3] == Descriptors.segment(code: true, dpl: 3))
        #expect(gdt[Int(Descriptors.userData) >> 3] == Descriptors.segment(code: false, dpl: 3))
        #expect(gdt[Int(Descriptors.taskState) >> 3] == Descriptors.taskStateDescriptor(base: 0x21_0000).0)
    }
}
