import CHost
import Glibc

/// A pthread running a Swift closure. vCPUs block in KVM_RUN, so they get
/// real threads, never Swift concurrency's cooperative pool.
public final class JoinableThread: @unchecked Sendable {
    // @unchecked: `handle` and `context` are immutable; `joined` is only
    // touched by the one thread that owns this object and joins it.
    private final class Context {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    public let handle: pthread_t
    /// Also held here, so the thread's release of its reference is not the
    /// last one: a first free() on a thread gives it a malloc arena and
    /// cache (mmap, munmap, mprotect), which vCPU threads never need.
    private let context: Context
    private var joined = false

    /// Starts `body` on a new thread, pinned to `cpu` first if one is given,
    /// with `signalMask` as its signal mask if one is given (else the
    /// creating thread's).
    public init(stackSize: Int = 512 << 10, pinTo cpu: Int? = nil, signalMask: sigset_t? = nil,
                _ body: @escaping @Sendable () -> Void) throws(HostError) {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        if var mask = signalMask {
            let error = host_attr_set_sigmask(&attributes, &mask)
            guard error == 0 else { throw HostError("cannot set a new thread's signal mask: \(String(cString: strerror(error)))") }
        }
        context = Context {
            if let cpu { _ = JoinableThread.pinCurrent(to: cpu) }
            body()
        }
        let retained = Unmanaged.passRetained(context).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, &attributes, { raw in
            Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, retained)
        guard result == 0 else {
            Unmanaged<Context>.fromOpaque(retained).release()
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
    public static func pinCurrent(to cpu: Int) -> Bool { host_pin_self(Int32(cpu)) == 0 }
}
