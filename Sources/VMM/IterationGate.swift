import CHost
import Synchronization

/// Where vCPU threads wait between iterations for the host to start the next
/// one, outside the guest: asleep (idle vCPUs burn no CPU) or spinning.
public final class IterationGate: @unchecked Sendable {
    // @unchecked: the state is one Atomic; the mutex and condition only let
    // sleepers wait for a change of it. They live on the heap: pthread
    // objects must not move, and a Swift stored property has no fixed address.

    /// How waiters wait. `spin` is what the kernel selftests' vCPU threads
    /// do: their CPUs never go idle while the host works, which changes
    /// what host-side work costs where waking an idle CPU is expensive
    /// (a memslot update here; see BENCHMARKS.md). With more vCPUs than
    /// CPUs, spinners take CPU time from the host thread.
    public enum Waiting: String, CaseIterable, Sendable, Codable {
        case sleep, spin
    }

    public let waiting: Waiting
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    /// The open iteration, or -1 for good once cancelled. Changed with the
    /// mutex held (so a sleeper cannot miss the broadcast) and a release
    /// store after the host wrote the mailboxes; loaded with acquire, so a
    /// released vCPU sees them before it enters.
    private let state = Atomic<Int>(0)

    public init(waiting: Waiting = .sleep) {
        self.waiting = waiting
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Starts iteration `number` (they count up from 1); none after cancel().
    public func open(_ number: Int) {
        pthread_mutex_lock(mutex)
        if state.load(ordering: .relaxed) >= 0 { state.store(number, ordering: .releasing) }
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Releases every waiter for good: the run is over.
    public func cancel() {
        pthread_mutex_lock(mutex)
        state.store(-1, ordering: .releasing)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    /// Blocks until an iteration after `done` opens; nil once cancelled.
    public func wait(after done: Int) -> Int? {
        let sleeps = waiting == .sleep
        if sleeps { pthread_mutex_lock(mutex) }
        defer { if sleeps { pthread_mutex_unlock(mutex) } }
        while true {
            let now = state.load(ordering: .acquiring)
            if now < 0 { return nil }
            if now > done { return now }
            if sleeps { pthread_cond_wait(condition, mutex) } else { host_cpu_relax() }
        }
    }
}
