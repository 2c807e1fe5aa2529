import CKVM
import Glibc

extension FileDescriptor {
    /// The one way the KVM layer issues an ioctl: the kernel's result
    /// (zero or a count or a new fd), retried while the call fails with
    /// EINTR (a signal landed first; every request wrapped here can simply
    /// be made again), otherwise a KVMError naming `operation` with the
    /// errno and `hint(errno)`. KVM_RUN alone is issued directly: its EINTR
    /// is a kick that its caller must see.
    func ioctl(_ request: UInt, _ argument: UnsafeMutableRawPointer?, _ operation: @autoclosure () -> String,
               hint: (Int32) -> String? = { _ in nil }) throws(KVMError) -> Int32 {
        while true {
            let result = ckvm_ioctl_ptr(raw, request, argument)
            if result >= 0 { return result }
            let err = Glibc.errno
            if err == EINTR { continue }
            throw KVMError(operation(), errno: err, hint: hint(err))
        }
    }

    /// An ioctl whose argument is a number, not a pointer.
    func ioctl(_ request: UInt, value: UInt, _ operation: @autoclosure () -> String,
               hint: (Int32) -> String? = { _ in nil }) throws(KVMError) -> Int32 {
        try ioctl(request, UnsafeMutableRawPointer(bitPattern: value), operation(), hint: hint)
    }

    /// An ioctl on one fixed-size struct, in or out.
    func ioctl<T: BitwiseCopyable>(_ request: UInt, _ value: inout T, _ operation: @autoclosure () -> String,
                                   hint: (Int32) -> String? = { _ in nil }) throws(KVMError) -> Int32 {
        var failure: KVMError?
        let result = withUnsafeMutableBytes(of: &value) { raw -> Int32 in
            do throws(KVMError) { return try ioctl(request, raw.baseAddress, operation(), hint: hint) } catch { failure = error; return -1 }
        }
        if let failure { throw failure }
        return result
    }

    /// An ioctl on a variable-size buffer (e.g. an XSAVE area).
    func ioctl(_ request: UInt, bytes: inout [UInt8], _ operation: @autoclosure () -> String) throws(KVMError) {
        var failure: KVMError?
        bytes.withUnsafeMutableBytes { raw in
            do throws(KVMError) { _ = try ioctl(request, raw.baseAddress, operation()) } catch { failure = error }
        }
        if let failure { throw failure }
    }
}
