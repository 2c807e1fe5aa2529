import Synchronization
import VMM

/// How the source slows its guest down so that pre-copy converges.
public enum ThrottlePolicy: Sendable, Equatable {
    /// Every vCPU sleeps a share of its time (QEMU's auto-converge): the
    /// share starts at `initial` once a round dirties faster than the link
    /// sends and grows by `step` per round that does not shrink the dirty
    /// set, up to 99%.
    case autoConverge(initial: Double, step: Double)
    /// Each vCPU whose dirty ring shows more than `pagesPerSecond` sleeps
    /// long enough to come down to it; the others never sleep (QEMU's
    /// dirty-limit).
    case dirtyLimit(pagesPerSecond: Double)
}

/// The host thread that throttles vCPUs: every period it decides how long
/// each vCPU owes to sleep and kicks it out of KVM_RUN; the vCPU's own
/// thread pays the sleep outside the guest (VCPURunner.onKick and, for
/// dirty rings, after a ring-full exit). With a dirty-limit it also
/// harvests every ring each period, which is how it measures each vCPU's
/// dirty rate.
final class VCPUThrottle: @unchecked Sendable {
    // @unchecked: `thread` is set and joined by the main thread only; every
    // other field shared with the throttler and vCPU threads is an Atomic
    // or Locked.
    static let timeslice = 0.01
    let policy: ThrottlePolicy
    private let runner: VCPURunner
    private let harvester: Harvester
    private let vcpus: Int
    /// auto-converge's share of time asleep, in millionths: set by the main
    /// thread between rounds, read by the throttler (relaxed: a period late
    /// at worst, and nothing else is published with it).
    private let share = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    /// Per vCPU: nanoseconds owed, nanoseconds slept, pages seen dirtied.
    private let owed: Locked<[UInt64]>
    private let slept: Locked<[UInt64]>
    private let dirtied: Locked<[UInt64]>
    private let failure = Locked<String?>(nil)
    private var thread: JoinableThread?

    init(policy: ThrottlePolicy, runner: VCPURunner, harvester: Harvester, vcpus: Int) {
        self.policy = policy
        self.runner = runner
        self.harvester = harvester
        self.vcpus = vcpus
        owed = Locked([UInt64](repeating: 0, count: vcpus))
        slept = Locked([UInt64](repeating: 0, count: vcpus))
        dirtied = Locked([UInt64](repeating: 0, count: vcpus))
    }

    /// The current auto-converge share (0...0.99).
    var currentShare: Double {
        get { Double(share.load(ordering: .relaxed)) / 1e6 }
        set { share.store(Int(min(0.99, max(0, newValue)) * 1e6), ordering: .relaxed) }
    }

    /// On a vCPU's thread: sleep whatever it owes.
    func pay(_ vcpu: Int) {
        let nanos = owed.withLock { all in defer { all[vcpu] = 0 }; return all[vcpu] }
        guard nanos > 0 else { return }
        Stopwatch.sleep(seconds: Double(nanos) / 1e9)
        slept.withLock { $0[vcpu] += nanos }
    }

    /// Per vCPU so far: seconds slept, and pages its ring showed dirtied (dirty-limit).
    typealias Totals = (slept: [Double], dirtied: [UInt64])

    var totals: Totals {
        (slept.withLock { $0.map { Double($0) / 1e9 } }, dirtied.withLock { $0 })
    }

    /// A ring harvest that failed on the throttler thread, if any.
    var problem: String? { failure.withLock { $0 } }

    func start() throws {
        thread = try JoinableThread { [self] in loop() }
    }

    func stop() {
        stopping.store(true, ordering: .relaxed)
        thread?.join()
        thread = nil
        // Nothing is owed once throttling ends.
        owed.withLock { all in for index in all.indices { all[index] = 0 } }
    }

    private func loop() {
        switch policy {
        case .autoConverge: autoConvergeLoop()
        case .dirtyLimit(let limit): dirtyLimitLoop(limit)
        }
    }

    /// QEMU's rhythm: run a timeslice, then every vCPU sleeps share/(1-share) of one.
    private func autoConvergeLoop() {
        while !stopping.load(ordering: .relaxed) {
            let share = currentShare
            Stopwatch.sleep(seconds: VCPUThrottle.timeslice)
            guard share > 0 else { continue }
            let nanos = UInt64(share / (1 - share) * VCPUThrottle.timeslice * 1e9)
            owed.withLock { all in for index in all.indices { all[index] = nanos } }
            for index in 0..<vcpus { runner.kick(index) }
            Stopwatch.sleep(seconds: share / (1 - share) * VCPUThrottle.timeslice)
        }
    }

    /// Each period, every vCPU's ring is harvested; a vCPU above the limit
    /// owes the share of the next period that brings it down, adapted to
    /// its dirty rate while awake (what it would dirty unthrottled).
    private func dirtyLimitLoop(_ limit: Double) {
        let period = 5 * VCPUThrottle.timeslice
        var shares = [Double](repeating: 0, count: vcpus)
        while !stopping.load(ordering: .relaxed) {
            let clock = Stopwatch()
            Stopwatch.sleep(seconds: period)
            let seconds = clock.seconds
            for index in 0..<vcpus {
                let count: Int
                do {
                    count = try harvester.drainRing(vcpu: index)
                } catch {
                    failure.withLock { $0 = "dirty-limit harvest: \(error)" }
                    return
                }
                dirtied.withLock { $0[index] += UInt64(count) }
                let awakeRate = Double(count) / max(seconds * (1 - shares[index]), 1e-9)
                // Asleep for (1 - limit/rate) of the next period brings it to the limit.
                shares[index] = awakeRate > limit ? min(0.99, 1 - limit / awakeRate) : 0
                guard shares[index] > 0 else { continue }
                owed.withLock { $0[index] = UInt64(shares[index] * period * 1e9) }
                runner.kick(index)
            }
        }
    }
}
