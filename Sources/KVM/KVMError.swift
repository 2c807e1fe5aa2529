import Glibc

/// A failed KVM or host operation: what was attempted, the errno it failed
/// with, and what the user can do about it.
public struct KVMError: Error, CustomStringConvertible, Sendable {
    /// What was attempted, e.g. "KVM_SET_USER_MEMORY_REGION(slot 1)".
    public let operation: String
    /// The errno it failed with.
    public let errno: Int32
    /// What the user can do about it, where kvmlab knows.
    public let hint: String?

    /// An error for `operation` failing with `errno`; without a hint, the
    /// errno's usual cause and fix (EACCES: run as root, ...) where there is one.
    public init(_ operation: String, errno: Int32, hint: String? = nil) {
        self.operation = operation
        self.errno = errno
        self.hint = hint ?? KVMError.defaultHint(errno: errno)
    }

    /// Captures the calling thread's errno right after a failed call.
    public static func last(_ operation: String, hint: String? = nil) -> KVMError {
        KVMError(operation, errno: Glibc.errno, hint: hint)
    }

    /// The errno's symbolic name (EINVAL, ENOMEM, ...).
    public var errnoName: String { KVMError.name(of: errno) }

    /// strerror's text for the errno.
    public var message: String { String(cString: strerror(errno)) }

    /// One line: the operation, the errno by name and text, then the hint.
    public var description: String {
        var text = "\(operation) failed: \(errnoName) (\(message))"
        if let hint { text += "; \(hint)" }
        return text
    }

    static func defaultHint(errno: Int32) -> String? {
        switch errno {
        case EACCES, EPERM: return "run as root or join the kvm group"
        case ENOMEM: return "the host is out of memory for this request; ask for less"
        case EMFILE, ENFILE: return "too many open files; raise the limit with ulimit -n"
        default: return nil
        }
    }

    /// Symbolic errno names for the values KVM and mmap actually return.
    public static func name(of errno: Int32) -> String {
        switch errno {
        case EPERM: return "EPERM"
        case ENOENT: return "ENOENT"
        case EINTR: return "EINTR"
        case EIO: return "EIO"
        case ENXIO: return "ENXIO"
        case E2BIG: return "E2BIG"
        case EBADF: return "EBADF"
        case EAGAIN: return "EAGAIN"
        case ENOMEM: return "ENOMEM"
        case EACCES: return "EACCES"
        case EFAULT: return "EFAULT"
        case EBUSY: return "EBUSY"
        case EEXIST: return "EEXIST"
        case ENODEV: return "ENODEV"
        case EINVAL: return "EINVAL"
        case ENFILE: return "ENFILE"
        case EMFILE: return "EMFILE"
        case ENOTTY: return "ENOTTY"
        case ENOSPC: return "ENOSPC"
        case ERANGE: return "ERANGE"
        case ENOSYS: return "ENOSYS"
        case EOPNOTSUPP: return "EOPNOTSUPP"
        default: return "errno \(errno)"
        }
    }
}
