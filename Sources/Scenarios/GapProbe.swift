import Glibc
import Synchronization
import VMM

/// A host thread that does nothing but read the clock in a loop, pinned to
/// one CPU, and records every gap between two reads longer than a
/// threshold: the time something else (a thread or the kernel on its
/// behalf) kept it off that CPU.
final class GapProbe: @unchecked Sendable {
    // @unchecked: only the probe thread writes the buffers, publishing each entry with a release store of `recorded`.
    let thresholdNanos: UInt64
    let capacity: Int
    private let ends: UnsafeMutablePointer<UInt64>
    private let lengths: UnsafeMutablePointer<UInt64>
    private let recorded = Atomic<Int>(0)
    private let loops = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    private var thread: JoinableThread?

    init(thresholdNanos: UInt64, capacity: Int = 1 << 20) {
        self.thresholdNanos = thresholdNanos
        self.capacity = capacity
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
        var last = Stopwatch.now()
        var count = 0
        var iterations: UInt64 = 0
        while !stopping.load(ordering: .relaxed) {
            let now = Stopwatch.now()
            let gap = now - last
            if gap > thresholdNanos && count < capacity {
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

    /// Gaps (ns) that overlap [start, end] in CLOCK_MONOTONIC nanoseconds.
    func gaps(from start: UInt64, to end: UInt64) -> [UInt64] {
        var result: [UInt64] = []
        for index in 0..<recorded.load(ordering: .acquiring) where ends[index] > start && ends[index] - lengths[index] < end {
            result.append(lengths[index])
        }
        return result
    }
}
