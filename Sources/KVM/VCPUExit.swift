import CKVM

/// Why KVM_RUN returned, decoded from `struct kvm_run` so that the VMM's run
/// loop holds policy only and never reads the shared page itself.
public enum VCPUExit: Sendable, Equatable {
    /// `in`/`out` to a port. `value` holds the first (up to 8) data bytes,
    /// little-endian; `bytes` all of them where there were more.
    case io(IOExit)
    /// A guest access to guest-physical memory no memslot backs.
    case mmio(address: UInt64, isWrite: Bool, length: Int)
    case hlt
    /// Triple fault.
    case shutdown
    case dirtyRingFull
    /// KVM_RUN returned EINTR/EAGAIN or KVM_EXIT_INTR: a kick or immediate_exit.
    case interrupted
    case failEntry(hardwareReason: UInt64)
    case internalError(suberror: UInt32)
    case unknown(reason: UInt32)
}

/// A KVM_EXIT_IO, decoded.
public struct IOExit: Sendable, Equatable {
    /// The I/O port.
    public let port: UInt16
    /// `out` (guest to host) rather than `in`.
    public let isOut: Bool
    /// Bytes per access (1, 2 or 4).
    public let size: Int
    /// Accesses (more than 1 for `rep outs`/`ins`).
    public let count: Int
    /// The first up to 8 data bytes, little-endian.
    public let value: UInt64
    /// Every data byte, where there were more than 8; else empty.
    public let bytes: [UInt8]

    /// An exit as KVM would report it (tests make them up).
    public init(port: UInt16, isOut: Bool, size: Int, count: Int, value: UInt64, bytes: [UInt8]) {
        self.port = port
        self.isOut = isOut
        self.size = size
        self.count = count
        self.value = value
        self.bytes = bytes
    }

    /// The data as bytes (the common single-byte case allocates nothing until asked).
    public var data: [UInt8] {
        if !bytes.isEmpty { return bytes }
        return (0..<min(8, size * count)).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
    }

    /// The first data byte (kvmlab's event codes).
    public var firstByte: UInt8 { UInt8(truncatingIfNeeded: value) }
}

extension VCPU {
    /// Decodes the exit KVM left in kvm_run after a successful KVM_RUN.
    func decodeExit() -> VCPUExit {
        let run = self.run
        switch Int32(run.pointee.exit_reason) {
        case KVM_EXIT_IO:
            let io = run.pointee.io
            let length = Int(io.size) * Int(io.count)
            let data = UnsafeRawBufferPointer(start: ckvm_io_data(run), count: min(length, mmapSize))
            var value: UInt64 = 0
            for (index, byte) in data.prefix(8).enumerated() { value |= UInt64(byte) << (8 * UInt64(index)) }
            return .io(IOExit(port: io.port, isOut: io.direction == UInt8(CKVM_EXIT_IO_OUT), size: Int(io.size), count: Int(io.count),
                              value: value, bytes: length > 8 ? Array(data) : []))
        case KVM_EXIT_MMIO:
            return .mmio(address: run.pointee.mmio.phys_addr, isWrite: run.pointee.mmio.is_write != 0, length: Int(run.pointee.mmio.len))
        case KVM_EXIT_HLT: return .hlt
        case KVM_EXIT_SHUTDOWN: return .shutdown
        case KVM_EXIT_DIRTY_RING_FULL: return .dirtyRingFull
        case KVM_EXIT_INTR: return .interrupted
        case KVM_EXIT_FAIL_ENTRY: return .failEntry(hardwareReason: run.pointee.fail_entry.hardware_entry_failure_reason)
        case KVM_EXIT_INTERNAL_ERROR: return .internalError(suberror: run.pointee.internal.suberror)
        default: return .unknown(reason: run.pointee.exit_reason)
        }
    }
}
