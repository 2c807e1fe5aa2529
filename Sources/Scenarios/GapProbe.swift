import Synchronization
import VMM

/// A host thread that does nothing but read a clock in a loop, pinned to one
/// CPU, and records every gap between two reads longer than a threshold:
/// the time something else (a thread, or the kernel on its behalf) kept it
/// off that CPU. Teardown runs it on CLOCK_MONOTONIC nanoseconds, jitter on
/// the TSC, so its gaps line up with the vCPUs' stalls.
final class GapProbe: @unchecked Sendable {
    // @unchecked: only the probe thread writes the buffers, publishing each
    // entry with a release store of `recorded`; readers load it acquiring.
    let threshold: UInt64
    let capacity: Int
    private let clock: @Sendable () -> UInt64
    private let ends: UnsafeMutablePointer<UInt64>
    private let lengths: UnsafeMutablePointer<UInt64>
    private let recorded = Atomic<Int>(0)
    private let loops = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: JoinableThread?

    /// `threshold` and every time are in `clock`'s ticks.
    init(threshold: UInt64, capacity: Int = 1 << 20, clock: @escaping @Sendable () -> UInt64) {
        self.threshold = threshold
        self.capacity = capacity
        self.clock = clock
        ends = .allocate(capacity: capacity)
        lengths = .allocate(capacity: capacity)
    }

    deinit {
        stop()
        ends.deallocate()
        lengths.deallocate()
    }

    func start(cpu: Int) throws {
        thread = try JoinableThread(pinTo: cpu) { [self] in probe() }
    }

    private func probe() {
        var last = clock()
        var count = 0
        var iterations: UInt64 = 0
        while !stopping.load(ordering: .relaxed) {
            let now = clock()
            let gap = now &- last
            if gap > threshold && count < capacity {
                ends[count] = now
                lengths[count] = gap
                count += 1
                recorded.store(count, ordering: .releasing)
            }
            last = now
            iterations &+= 1
            if iterations & 1023 == 0 { loops.store(iterations, ordering: .relaxed) }
        }
        loops.store(iterations, ordering: .relaxed)
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        thread = nil
    }

    var loopCount: UInt64 { loops.load(ordering: .relaxed) }
    /// True when the buffer filled and later gaps went unrecorded.
    var overflowed: Bool { recorded.load(ordering: .acquiring) >= capacity }

    /// Gaps (end, length in ticks) that overlap [start, end].
    func gaps(from start: UInt64, to end: UInt64) -> [(end: UInt64, length: UInt64)] {
        var result: [(end: UInt64, length: UInt64)] = []
        for index in 0..<recorded.load(ordering: .acquiring) where ends[index] > start && ends[index] - lengths[index] < end {
            result.append((ends[index], lengths[index]))
        }
        return result
    }
}
