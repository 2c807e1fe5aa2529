import KVM

/// What the run loop does after KVM_RUN returned.
public enum ExitAction: Sendable, Equatable {
    /// A kick or immediate_exit: run onKick, then re-enter.
    case kicked
    /// A port access: the guest↔host protocol, the serial console.
    case handleIO(IOExit)
    /// The dirty ring is full: the host harvests it, then re-enters.
    case harvestRing
    /// An access to unbacked memory the host chose to serve (a read gets zeroes).
    case serveMMIO(isWrite: Bool)
    /// The vCPU is done, in the words every output uses.
    case end(VCPUOutcome)
}

/// The exit → action mapping of VCPURunner as a pure function, so that
/// every outcome the runner reports is tested without a live vCPU.
public enum ExitPolicy {
    /// `harvestsRings`: someone empties a full dirty ring; `servesMMIO`:
    /// whether the host serves an access to (address, isWrite) no memslot
    /// backs; `rip` is asked only by outcomes that quote the guest's RIP.
    public static func action(for exit: VCPUExit, vcpu index: Int, harvestsRings: Bool,
                              servesMMIO: (UInt64, Bool) -> Bool, rip: () -> UInt64?) -> ExitAction {
        func at() -> String { rip().map { " at RIP 0x\(hex($0))" } ?? "" }
        switch exit {
        case .interrupted: return .kicked
        case .io(let io): return .handleIO(io)
        case .hlt: return .end(.finished)
        case .dirtyRingFull:
            return harvestsRings ? .harvestRing : .end(.crashed("vCPU \(index): dirty ring full and nobody harvests it"))
        case .mmio(let address, let isWrite, _):
            if servesMMIO(address, isWrite) { return .serveMMIO(isWrite: isWrite) }
            return .end(.crashed("vCPU \(index): access to guest physical 0x\(hex(address)), which no memslot backs\(at())"))
        case .shutdown: return .end(.crashed("vCPU \(index): triple fault (KVM_EXIT_SHUTDOWN)\(at())"))
        case .failEntry(let reason): return .end(.crashed("vCPU \(index): KVM could not enter the guest (hardware reason 0x\(hex(reason)))"))
        case .internalError(let suberror): return .end(.crashed("vCPU \(index): KVM internal error, suberror \(suberror)\(at())"))
        case .unknown(let reason): return .end(.crashed("vCPU \(index): unexpected exit reason \(reason)\(at())"))
        }
    }
}
