import Glibc

/// An owned file descriptor, closed exactly once when its owner goes away.
public final class FileDescriptor: @unchecked Sendable {
    // @unchecked: an immutable fd number, closed once in deinit.
    /// The descriptor number, valid while this object lives.
    public let raw: Int32

    /// Takes ownership of `raw` (an open descriptor): it is closed in deinit.
    public init(_ raw: Int32) { self.raw = raw }

    deinit { close(raw) }
}
