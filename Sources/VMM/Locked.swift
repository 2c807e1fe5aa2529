import Glibc

/// A value behind a pthread mutex. kvmlab's threads are pthreads, and
/// ThreadSanitizer understands pthread locks (it does not see inside the
/// Synchronization module's Mutex, whose futex fast path is not
/// instrumented), so `make tsan` checks every lock kvmlab takes.
public final class Locked<Value>: @unchecked Sendable {
    // @unchecked: `value` is only read or written with `mutex` held; the
    // mutex lives on the heap because pthread objects must not move.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
