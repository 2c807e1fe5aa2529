import Glibc
import Guests
import KVM

/// What a VM is built from.
public struct MachineConfig: Sendable {
    public var vcpus: Int
    /// Guest-visible test memory at GuestLayout.testMemoryBase, split evenly into `slots`.
    public var testMemory: UInt64
    public var backing: Backing
    public var slots: Int
    public var cpl: PrivilegeLevel
    /// KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, enabled before any slot exists.
    public var manualProtect: ManualProtectFlags?
    /// Dirty ring entries per vCPU (KVM_CAP_DIRTY_LOG_RING), enabled before vCPUs.
    public var dirtyRingEntries: Int?
    /// Quirks disabled with KVM_CAP_DISABLE_QUIRKS2 before any slot exists.
    public var disabledQuirks: [X86Quirk]
    /// Guest-physical bytes from testMemoryBase that the identity map covers,
    /// when more than the test memory (a slot moved beyond it stays reachable).
    public var mappedSpan: UInt64 = 0
    /// An in-kernel interrupt controller (KVM_CREATE_IRQCHIP): HLT then
    /// blocks in KVM until a signal or interrupt instead of exiting.
    public var inKernelIRQChip = false

    public init(vcpus: Int = 1, testMemory: UInt64 = 0, backing: Backing = .anonymous, slots: Int = 1,
                cpl: PrivilegeLevel = .user, manualProtect: ManualProtectFlags? = nil,
                dirtyRingEntries: Int? = nil, disabledQuirks: [X86Quirk] = []) {
        self.vcpus = vcpus
        self.testMemory = testMemory
        self.backing = backing
        self.slots = slots
        self.cpl = cpl
        self.manualProtect = manualProtect
        self.dirtyRingEntries = dirtyRingEntries
        self.disabledQuirks = disabledQuirks
    }
}

/// A VM ready to run: memory mapped and registered, page tables, GDT, IDT
/// and TSSs written, vCPUs created and placed in long mode.
public final class Machine: @unchecked Sendable {
    // @unchecked: vCPU threads only read it; `testSlots` and `loaded` change only on the main thread between runs.
    public static let systemSlot: UInt32 = 0
    public static let firstTestSlot: UInt32 = 1

    public let config: MachineConfig
    public let device: KVMDevice
    public let vm: VirtualMachine
    public let layout: GuestLayout
    public let system: GuestMemory
    public let test: GuestMemory?
    public private(set) var testSlots: [MemorySlot]
    public let vcpus: [VCPU]
    /// Seconds that registering the test slots took (KVM_SET_USER_MEMORY_REGION each).
    public let slotSetupSeconds: Double
    private var loaded = false

    public init(_ config: MachineConfig, device: KVMDevice? = nil) throws {
        let device = try device ?? KVMDevice()
        try Machine.validate(config, device: device)
        self.config = config
        self.device = device
        do {
            layout = try GuestLayout(vcpus: config.vcpus, testMemorySize: max(config.testMemory, config.mappedSpan))
        } catch {
            throw ConfigError("\(error.description)")
        }
        Resources.ensureOpenFiles(2 * config.vcpus + 64)
        // Memory first: a missing hugetlb pool fails before any VM exists.
        system = try GuestMemory(size: layout.systemSize, backing: .anonymous)
        test = config.testMemory > 0 ? try GuestMemory(size: config.testMemory, backing: config.backing) : nil
        let vm = try Machine.createVM(config, device: device)
        self.vm = vm
        try vm.setMemoryRegion(MemorySlot(slot: Machine.systemSlot, guestPhysicalAddress: 0, size: layout.systemSize, hostAddress: system.base))
        let slotClock = Stopwatch()
        testSlots = try test.map { try Machine.registerTestSlots($0, config: config, vm: vm) } ?? []
        slotSetupSeconds = slotClock.seconds
        Machine.writeSystemTables(layout, into: system.base)
        let cpuid = try device.supportedCPUID()
        vcpus = try (0..<config.vcpus).map { index in
            let vcpu = try vm.createVCPU(id: index)
            try vcpu.setCPUID(cpuid)
            return vcpu
        }
    }

    /// The VM with the capabilities the config asks for, before any memslot.
    private static func createVM(_ config: MachineConfig, device: KVMDevice) throws -> VirtualMachine {
        let vm = try device.createVM()
        if !config.disabledQuirks.isEmpty { try vm.disableQuirks(config.disabledQuirks) }
        if let flags = config.manualProtect { try vm.enableManualDirtyLogProtect(initiallySet: flags.contains(.initiallySet)) }
        if config.inKernelIRQChip { try vm.createIRQChip() }
        if let entries = config.dirtyRingEntries {
            try vm.enableCap(.dirtyLogRing, VirtualMachine.dirtyRingBytes(entries: entries))
        }
        return vm
    }

    /// The test memory as `config.slots` memslots of equal size, the last
    /// taking the remainder. `test` outlives the slots: the Machine keeps both.
    private static func registerTestSlots(_ test: GuestMemory, config: MachineConfig, vm: VirtualMachine) throws -> [MemorySlot] {
        let slotSize = slotSize(config)
        return try (0..<config.slots).map { index in
            let start = UInt64(index) * slotSize
            let size = index == config.slots - 1 ? lastSlotSize(config) : slotSize
            let slot = MemorySlot(slot: firstTestSlot + UInt32(index), guestPhysicalAddress: GuestLayout.testMemoryBase + start,
                                  size: size, hostAddress: test.base + Int(start))
            try vm.setMemoryRegion(slot)
            return slot
        }
    }

    static func validate(_ config: MachineConfig, device: KVMDevice) throws {
        let maxVCPUs = device.maxVCPUs
        guard config.vcpus >= 1 else { throw ConfigError("\(field: "vcpus") must be at least 1") }
        guard config.vcpus <= maxVCPUs else {
            throw ConfigError("\(field: "vcpus") \(config.vcpus): this host's KVM allows at most \(maxVCPUs) (KVM_CAP_MAX_VCPUS)")
        }
        guard config.slots >= 1 else { throw ConfigError("\(field: "slots") must be at least 1") }
        let maxSlots = Int(device.check(.nrMemslots))
        if maxSlots > 0, config.slots + 1 > maxSlots {
            throw ConfigError("\(field: "slots") \(config.slots): these test memslots plus the system slot exceed KVM_CAP_NR_MEMSLOTS (\(maxSlots))")
        }
        if config.testMemory > 0 {
            let page = config.backing.pageSize
            guard config.testMemory % page == 0, slotSize(config) >= page else {
                throw ConfigError("\(Sizes.format(config.testMemory)) does not split into \(config.slots) slots of whole \(Sizes.format(page)) pages for \(config.backing.rawValue)")
            }
        }
    }

    /// Every test slot but the last has this size; the last takes the rest
    /// (as memslot_perf_test splits its memory).
    public static func slotSize(_ config: MachineConfig) -> UInt64 {
        let page = config.backing.pageSize
        return config.testMemory / UInt64(config.slots) / page * page
    }

    /// The last test slot: what the others leave of the test memory.
    public static func lastSlotSize(_ config: MachineConfig) -> UInt64 {
        config.testMemory - slotSize(config) * UInt64(config.slots - 1)
    }

    /// GDT, IDT, one TSS per vCPU, exception stubs and the identity map.
    private static func writeSystemTables(_ layout: GuestLayout, into memory: UnsafeMutableRawPointer) {
        for (index, entry) in Descriptors.gdt(firstTSS: layout.tss(0)).enumerated() {
            memory.storeBytes(of: entry, toByteOffset: Int(GuestLayout.gdtAddress) + index * 8, as: UInt64.self)
        }
        let stubs = GuestImage.exceptionStubs
        stubs.bytes.withUnsafeBytes { memory.advanced(by: Int(GuestLayout.stubsAddress)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        for vector in 0..<Int(EXC_VECTORS) {
            let gate = Descriptors.interruptGate(handler: GuestLayout.stubsAddress + UInt64(vector * Int(EXC_STUB_SIZE)), ist: 1)
            memory.storeBytes(of: gate.0, toByteOffset: Int(GuestLayout.idtAddress) + vector * 16, as: UInt64.self)
            memory.storeBytes(of: gate.1, toByteOffset: Int(GuestLayout.idtAddress) + vector * 16 + 8, as: UInt64.self)
        }
        for index in 0..<layout.vcpus {
            let tss = Int(layout.tss(index))
            memory.storeBytes(of: layout.exceptionStackTop(index), toByteOffset: tss + Descriptors.tssRSP0Offset, as: UInt64.self)
            memory.storeBytes(of: layout.exceptionStackTop(index), toByteOffset: tss + Descriptors.tssIST1Offset, as: UInt64.self)
            memory.storeBytes(of: UInt16(Descriptors.ioBitmapOffset), toByteOffset: tss + Descriptors.tssIOMapOffset, as: UInt16.self)
            memory.storeBytes(of: UInt8(0xFF), toByteOffset: tss + Descriptors.ioBitmapOffset + Descriptors.ioBitmapSize, as: UInt8.self)
        }
        PageTables.build(layout, into: memory)
    }

    /// Loads guest code (once per machine) and puts every vCPU at its entry
    /// with a zeroed mailbox, at the configured privilege level unless `cpl`
    /// picks one per vCPU.
    public func load(_ image: GuestImage, cpl: ((Int) -> PrivilegeLevel)? = nil) throws {
        guard image.bytes.count <= Int(GuestLayout.codeCapacity) else {
            throw ConfigError("guest image \(image.name) is \(image.bytes.count) bytes; the limit is \(GuestLayout.codeCapacity)")
        }
        // One image per machine, so code area and mailboxes are still the
        // fresh anonymous memory's zeros: clearing them would only fault in
        // pages the guest never touches (16 per vCPU for the mailboxes).
        precondition(!loaded, "a Machine runs one guest image")
        loaded = true
        image.bytes.withUnsafeBytes { system.base.advanced(by: Int(GuestLayout.codeAddress)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        for (index, vcpu) in vcpus.enumerated() {
            mailbox(index)[MB_VCPU] = UInt64(index)
            try vcpu.setSpecialRegisters(LongMode.specialRegisters(from: vcpu.getSpecialRegisters(), layout: layout, vcpu: index, cpl: cpl?(index) ?? config.cpl))
            try vcpu.setRegisters(LongMode.registers(layout: layout, vcpu: index, entry: GuestLayout.codeAddress))
        }
    }

    /// Sets flags (e.g. dirty logging) on every test slot; returns the
    /// seconds the KVM_SET_USER_MEMORY_REGION calls took together.
    @discardableResult
    public func setTestSlotFlags(_ flags: MemorySlot.Flags) throws -> Double {
        var seconds = 0.0
        for index in testSlots.indices {
            var slot = testSlots[index]
            slot.flags = flags
            seconds += try Stopwatch.seconds { try vm.setMemoryRegion(slot) }
            testSlots[index] = slot
        }
        return seconds
    }

    /// Deletes test slot `index` from the VM for a while; its memory and
    /// bookkeeping stay, and restoreTestSlot puts it back as it was.
    public func removeTestSlot(_ index: Int) throws(KVMError) { try vm.deleteMemoryRegion(slot: testSlots[index].slot) }

    public func restoreTestSlot(_ index: Int) throws(KVMError) { try vm.setMemoryRegion(testSlots[index]) }

    /// Registers test slot `index` at guest physical `gpa` (KVM moves it:
    /// its mappings are zapped); its bookkeeping stays, so moving it to its
    /// own address or restoreTestSlot puts it back.
    public func moveTestSlot(_ index: Int, to gpa: UInt64) throws(KVMError) {
        var moved = testSlots[index]
        moved.guestPhysicalAddress = gpa
        try vm.setMemoryRegion(moved)
    }

    public func mailbox(_ vcpu: Int) -> Mailbox { Mailbox(base: system.base + Int(layout.mailbox(vcpu))) }

    /// A checked window on `bytes` of guest memory from guest physical
    /// `gpa`, if one kvmlab mapping backs all of it.
    public func memory(at gpa: UInt64, bytes: UInt64) -> GuestSpan? {
        let (end, overflow) = gpa.addingReportingOverflow(bytes)
        guard !overflow else { return nil }
        if end <= layout.systemSize { return GuestSpan(base: system.base + Int(gpa), bytes: Int(bytes)) }
        if let test, gpa >= GuestLayout.testMemoryBase, end <= GuestLayout.testMemoryBase + test.size {
            return GuestSpan(base: test.base + Int(gpa - GuestLayout.testMemoryBase), bytes: Int(bytes))
        }
        return nil
    }

    /// Drops the host pages behind `bytes` of guest memory at `gpa`
    /// (MADV_DONTNEED): KVM zaps their mappings through the MMU notifier.
    public func discard(at gpa: UInt64, bytes: UInt64) throws(KVMError) {
        guard let span = memory(at: gpa, bytes: bytes) else {
            throw KVMError("madvise(MADV_DONTNEED) at GPA 0x\(String(gpa, radix: 16))", errno: EINVAL, hint: "outside kvmlab's guest memory")
        }
        let failed = span.withAddress { madvise($0, $1, MADV_DONTNEED) != 0 }
        if failed { throw KVMError.last("madvise(MADV_DONTNEED) at GPA 0x\(String(gpa, radix: 16))") }
    }

    /// mprotect on the host mapping behind `bytes` of guest memory at `gpa`:
    /// read-only, KVM can no longer map it writable (a guest write makes
    /// KVM_RUN fail with EFAULT); writable again, the write goes through.
    public func protect(at gpa: UInt64, bytes: UInt64, writable: Bool) throws(KVMError) {
        let what = "mprotect(\(writable ? "PROT_READ|PROT_WRITE" : "PROT_READ")) at GPA 0x\(String(gpa, radix: 16))"
        guard let span = memory(at: gpa, bytes: bytes) else { throw KVMError(what, errno: EINVAL, hint: "outside kvmlab's guest memory") }
        let failed = span.withAddress { mprotect($0, $1, writable ? PROT_READ | PROT_WRITE : PROT_READ) != 0 }
        if failed { throw KVMError.last(what) }
    }

    /// Test memory for vCPU `index` when it is split evenly between vCPUs.
    public func region(of index: Int, shared: Bool = false) -> (gpa: UInt64, size: UInt64) {
        guard !shared else { return (GuestLayout.testMemoryBase, config.testMemory) }
        let size = config.testMemory / UInt64(config.vcpus) / GuestLayout.pageSize * GuestLayout.pageSize
        return (GuestLayout.testMemoryBase + UInt64(index) * size, size)
    }

}
