import Glibc

/// An owned file descriptor, closed exactly once when its owner goes away.
public final class FileDescriptor: @unchecked Sendable {
    // @unchecked: an immutable fd number, closed once in deinit.
    public let raw: Int32

    public init(_ raw: Int32) { self.raw = raw }

    deinit { close(raw) }
}
