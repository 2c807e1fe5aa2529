import CHost

/// A vCPU's mailbox, seen from the host. Words are accessed atomically
/// because a running guest may be reading or writing them.
public struct Mailbox: @unchecked Sendable {
    // @unchecked: every word goes through an atomic load or store (host_load_u64/host_store_u64); the pointer never leaves VMM.
    let base: UnsafeMutableRawPointer

    public subscript(_ offset: Int32) -> UInt64 {
        get { host_load_u64(base + Int(offset)) }
        nonmutating set { host_store_u64(base + Int(offset), newValue) }
    }
}
