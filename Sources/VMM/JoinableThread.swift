import CKVM
import Glibc

/// A pthread running a Swift closure. vCPUs block in KVM_RUN, so they get
/// real threads, never Swift concurrency's cooperative pool.
public final class JoinableThread: @unchecked Sendable {
    // @unchecked: `handle` is immutable; `joined` is only touched by the one
    // thread that owns this object and joins it.
    private final class Context {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    public let handle: pthread_t
    private var joined = false

    /// Starts `body` on a new thread, pinned to `cpu` first if one is given.
    public init(stackSize: Int = 512 << 10, pinTo cpu: Int? = nil, _ body: @escaping @Sendable () -> Void) throws(HostError) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        let context = Unmanaged.passRetained(Context {
            if let cpu { _ = JoinableThread.pinCurrent(to: cpu) }
            body()
        }).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { raw in
            Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<Context>.fromOpaque(context).release()
            throw HostError("cannot start a thread: \(String(cString: strerror(result))); lower --vcpus or raise the thread limit (ulimit -u)")
        }
        handle = thread
    }

    public func join() {
        guard !joined else { return }
        pthread_join(handle, nil)
        joined = true
    }

    /// Sends `signal` (the kick signal) so a blocking KVM_RUN returns EINTR.
    public func signal(_ signal: Int32) { pthread_kill(handle, signal) }

    /// Pins the calling thread (e.g. the main thread with `-c`).
    @discardableResult
    public static func pinCurrent(to cpu: Int) -> Bool { ckvm_pin_self(Int32(cpu)) == 0 }
}
