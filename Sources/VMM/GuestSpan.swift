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

    /// Copies `count` bytes from `offset` out to `target` (e.g. a page into a send buffer).
    public func copy(from offset: Int, count: Int, to target: UnsafeMutableRawPointer) {
        check(offset, count)
        target.copyMemory(from: base + offset, byteCount: count)
    }

    /// Copies `count` bytes from `source` into the window at `offset`.
    public func copy(into offset: Int, from source: UnsafeRawPointer, count: Int) {
        check(offset, count)
        (base + offset).copyMemory(from: source, byteCount: count)
    }

    /// A 64-bit digest of the window's contents (FNV-1a over 8-byte words):
    /// equal windows give equal digests; a changed word changes it with
    /// overwhelming likelihood.
    public func digest() -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        let words = base.assumingMemoryBound(to: UInt64.self)
        for index in 0..<bytes / 8 { hash = (hash ^ words[index]) &* 0x100_0000_01b3 }
        return hash
    }

    /// The host address, for system calls that take one (madvise).
    func withAddress<T>(_ body: (UnsafeMutableRawPointer, Int) throws -> T) rethrows -> T { try body(base, bytes) }
}
