import CKVM

/// The KVM capabilities kvmlab asks about, with their ABI numbers.
public enum Capability: Int32, CaseIterable, Sendable {
    case nrVCPUs = 9
    case nrMemslots = 10
    case maxVCPUs = 66
    case readonlyMem = 81
    case disableQuirks = 116
    case manualDirtyLogProtect2 = 168
    case dirtyLogRing = 192
    case binaryStatsFD = 203
    case disableQuirks2 = 213
    case xsave2 = 208
    case dirtyLogRingAcqRel = 223
    case dirtyLogRingWithBitmap = 225
    case userMemory2 = 231
    case guestMemfd = 234
    case vmTypes = 235
    case preFaultMemory = 236
    case guestMemfdFlags = 244

    /// The name as it is spelled in <linux/kvm.h>.
    public var kernelName: String {
        switch self {
        case .nrVCPUs: return "KVM_CAP_NR_VCPUS"
        case .nrMemslots: return "KVM_CAP_NR_MEMSLOTS"
        case .maxVCPUs: return "KVM_CAP_MAX_VCPUS"
        case .readonlyMem: return "KVM_CAP_READONLY_MEM"
        case .disableQuirks: return "KVM_CAP_DISABLE_QUIRKS"
        case .manualDirtyLogProtect2: return "KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"
        case .dirtyLogRing: return "KVM_CAP_DIRTY_LOG_RING"
        case .binaryStatsFD: return "KVM_CAP_BINARY_STATS_FD"
        case .disableQuirks2: return "KVM_CAP_DISABLE_QUIRKS2"
        case .xsave2: return "KVM_CAP_XSAVE2"
        case .dirtyLogRingAcqRel: return "KVM_CAP_DIRTY_LOG_RING_ACQ_REL"
        case .dirtyLogRingWithBitmap: return "KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP"
        case .userMemory2: return "KVM_CAP_USER_MEMORY2"
        case .guestMemfd: return "KVM_CAP_GUEST_MEMFD"
        case .vmTypes: return "KVM_CAP_VM_TYPES"
        case .preFaultMemory: return "KVM_CAP_PRE_FAULT_MEMORY"
        case .guestMemfdFlags: return "KVM_CAP_GUEST_MEMFD_FLAGS"
        }
    }
}

/// Bits of KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2.
public struct ManualProtectFlags: OptionSet, Sendable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE: KVM_GET_DIRTY_LOG no longer re-protects;
    /// KVM_CLEAR_DIRTY_LOG does, range by range.
    public static let enable = ManualProtectFlags(rawValue: UInt64(KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE))
    /// KVM_DIRTY_LOG_INITIALLY_SET: a slot starts with every bit set and its pages
    /// writable, so nothing is write-protected until the first clear.
    public static let initiallySet = ManualProtectFlags(rawValue: UInt64(KVM_DIRTY_LOG_INITIALLY_SET))
}

/// x86 quirks that KVM_CAP_DISABLE_QUIRKS2 can turn off.
public enum X86Quirk: Int, CaseIterable, Sendable {
    case lint0Reenabled = 0, cdNwCleared, lapicMmioHole, out7eIncRip, miscEnableNoMwait,
        fixHypercallInsn, mwaitNeverUDFaults, slotZapAll, stuffFeatureMSRs, ignoreGuestPAT

    /// The quirk's bit in KVM_CAP_DISABLE_QUIRKS2's mask.
    public var mask: UInt64 { 1 << UInt64(rawValue) }

    /// The KVM_X86_QUIRK_ suffix the kernel headers use.
    public var kernelName: String {
        switch self {
        case .lint0Reenabled: return "LINT0_REENABLED"
        case .cdNwCleared: return "CD_NW_CLEARED"
        case .lapicMmioHole: return "LAPIC_MMIO_HOLE"
        case .out7eIncRip: return "OUT_7E_INC_RIP"
        case .miscEnableNoMwait: return "MISC_ENABLE_NO_MWAIT"
        case .fixHypercallInsn: return "FIX_HYPERCALL_INSN"
        case .mwaitNeverUDFaults: return "MWAIT_NEVER_UD_FAULTS"
        case .slotZapAll: return "SLOT_ZAP_ALL"
        case .stuffFeatureMSRs: return "STUFF_FEATURE_MSRS"
        case .ignoreGuestPAT: return "IGNORE_GUEST_PAT"
        }
    }

    /// The kernel names of the quirks whose bits `mask` sets.
    public static func names(in mask: UInt64) -> [String] {
        allCases.filter { mask & $0.mask != 0 }.map(\.kernelName)
    }
}

/// The VM types KVM_CAP_VM_TYPES reports as a bit mask.
public enum VMType: Int, CaseIterable, Sendable {
    case defaultVM = 0, swProtected, sevVM, sevESVM, snpVM, tdxVM

    /// The KVM_X86_*_VM name the kernel headers use.
    public var kernelName: String {
        switch self {
        case .defaultVM: return "KVM_X86_DEFAULT_VM"
        case .swProtected: return "KVM_X86_SW_PROTECTED_VM"
        case .sevVM: return "KVM_X86_SEV_VM"
        case .sevESVM: return "KVM_X86_SEV_ES_VM"
        case .snpVM: return "KVM_X86_SNP_VM"
        case .tdxVM: return "KVM_X86_TDX_VM"
        }
    }

    /// The kernel names of the VM types whose bits `mask` sets.
    public static func names(in mask: Int32) -> [String] {
        allCases.filter { mask & (1 << Int32($0.rawValue)) != 0 }.map(\.kernelName)
    }
}
