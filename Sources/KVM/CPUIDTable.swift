import CKVM

/// A `struct kvm_cpuid2` with room for `capacity` entries (a C flexible array).
public final class CPUIDTable: @unchecked Sendable {
    // @unchecked: filled once by KVM_GET_SUPPORTED_CPUID, read-only afterwards.
    let pointer: UnsafeMutableRawPointer

    init(capacity: Int) {
        let bytes = MemoryLayout<kvm_cpuid2>.size + capacity * MemoryLayout<kvm_cpuid_entry2>.stride
        pointer = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 8)
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
        pointer.assumingMemoryBound(to: kvm_cpuid2.self).pointee.nent = UInt32(capacity)
    }

    deinit { pointer.deallocate() }
}
