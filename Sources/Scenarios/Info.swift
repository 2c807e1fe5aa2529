import KVM
import VMM

/// Everything `kvmlab info` reports about this host's KVM.
public struct KVMInfo: Sendable, Codable {
    public struct CapabilityValue: Sendable, Codable {
        public let name: String
        public let value: Int32
    }

    public let host: HostFingerprint
    public let apiVersion: Int32
    public let nrVCPUs: Int32
    public let maxVCPUs: Int32
    public let nrMemslots: Int32
    public let capabilities: [CapabilityValue]
    public let manualProtectFlags: [String]
    public let dirtyRingMaxBytes: Int32
    public let dirtyRingMaxEntries: Int
    public let dirtyRingAcqRel: Bool
    public let binaryStats: Bool
    public let disableQuirks2Mask: Int32
    public let disableableQuirks: [String]
    public let slotZapAllDisableable: Bool
    public let preFaultMemory: Bool
    public let guestMemfd: Bool
    public let vmTypes: [String]
    public let tscKHz: Int?
    public let vmStats: [String]
    public let vcpuStats: [String]
    public let tracepoints: TraceCounters.Availability
}

/// Asks /dev/kvm (and one throwaway VM with one vCPU, for the stat names and
/// VM-scoped answers) what it can do.
public enum InfoScenario {
    public static func run(device: KVMDevice? = nil) throws -> KVMInfo {
        let device = try device ?? KVMDevice()
        let vm = try device.createVM()
        let vcpu = try vm.createVCPU(id: 0)
        func vmCap(_ capability: Capability) -> Int32 { max(vm.check(capability), device.check(capability)) }
        var manual: [String] = []
        let manualFlags = ManualProtectFlags(rawValue: UInt64(vmCap(.manualDirtyLogProtect2)))
        if manualFlags.contains(.enable) { manual.append("MANUAL_PROTECT_ENABLE") }
        if manualFlags.contains(.initiallySet) { manual.append("INITIALLY_SET") }
        let quirks = vmCap(.disableQuirks2)
        let ringBytes = vmCap(.dirtyLogRing)
        let vmStats = (try? vm.statsFD().names) ?? []
        let vcpuStats = (try? vcpu.statsFD().names) ?? []
        return KVMInfo(
            host: .current(), apiVersion: device.apiVersion,
            nrVCPUs: device.check(.nrVCPUs), maxVCPUs: device.check(.maxVCPUs), nrMemslots: vmCap(.nrMemslots),
            capabilities: Capability.allCases.map { .init(name: $0.kernelName, value: vmCap($0)) },
            manualProtectFlags: manual,
            dirtyRingMaxBytes: ringBytes, dirtyRingMaxEntries: ringBytes > 0 ? device.dirtyRingLimits.maxEntries : 0,
            dirtyRingAcqRel: vmCap(.dirtyLogRingAcqRel) > 0,
            binaryStats: device.check(.binaryStatsFD) > 0,
            disableQuirks2Mask: quirks, disableableQuirks: X86Quirk.names(in: UInt64(UInt32(bitPattern: quirks))),
            slotZapAllDisableable: UInt64(UInt32(bitPattern: quirks)) & X86Quirk.slotZapAll.mask != 0,
            preFaultMemory: vmCap(.preFaultMemory) > 0, guestMemfd: vmCap(.guestMemfd) > 0,
            vmTypes: VMType.names(in: device.check(.vmTypes)), tscKHz: vcpu.tscKHz,
            vmStats: vmStats, vcpuStats: vcpuStats, tracepoints: TraceCounters.availability())
    }
}
