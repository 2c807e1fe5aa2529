/// A bounds-checked window on guest memory as the host sees it: every
/// access is checked against the window, so a wrong page index traps with a
/// message instead of reading or writing outside the mapping.
public struct GuestSpan: @unchecked Sendable {
    // @unchecked: a view on memory the Machine owns; callers read words the
    // guest may be writing, which is the point of a VMM.
    private let base: UnsafeMutableRawPointer
    public let bytes: Int

    init(base: UnsafeMutableRawPointer, bytes: Int) {
        self.base = base
        self.bytes = bytes
    }

    private func check(_ offset: Int, _ width: Int) {
        precondition(offset >= 0 && offset <= bytes - width, "guest memory access at +\(offset) outside a \(bytes)-byte window")
    }

    public func word(at offset: Int) -> UInt64 {
        check(offset, 8)
        return base.load(fromByteOffset: offset, as: UInt64.self)
    }

    public func store(_ value: UInt64, at offset: Int) {
        check(offset, 8)
        base.storeBytes(of: value, toByteOffset: offset, as: UInt64.self)
    }

    /// A sub-window starting `offset` bytes in.
    public func slice(from offset: Int, bytes count: Int) -> GuestSpan {
        precondition(offset >= 0 && count >= 0 && offset <= bytes - count, "guest memory slice +\(offset)/\(count) outside a \(bytes)-byte window")
        return GuestSpan(base: base + offset, bytes: count)
    }

    /// The host address, for system calls that take one (madvise).
    public func withAddress<T>(_ body: (UnsafeMutableRawPointer, Int) throws -> T) rethrows -> T { try body(base, bytes) }
}
