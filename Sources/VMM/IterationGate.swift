import Glibc

/// Where vCPU threads wait between iterations for the host to start the next
/// one, outside the guest, so that idle vCPUs burn no CPU.
public final class IterationGate: @unchecked Sendable {
    // @unchecked: `current` and `cancelled` are only read or written with
    // `mutex` held. The mutex and condition live on the heap: pthread
    // objects must not move, and a Swift stored property has no fixed address.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var current = 0
    private var cancelled = false

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Starts iteration `number` (they count up from 1).
    public func open(_ number: Int) {
        pthread_mutex_lock(mutex)
        current = number
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Releases every waiter for good: the run is over.
    public func cancel() {
        pthread_mutex_lock(mutex)
        cancelled = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until an iteration after `done` opens; nil once cancelled.
    public func wait(after done: Int) -> Int? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while current <= done && !cancelled { pthread_cond_wait(condition, mutex) }
        return cancelled ? nil : current
    }
}
