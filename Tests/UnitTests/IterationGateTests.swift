import CHost
import CKVM
import Glibc
import Synchronization
import Testing
@testable import VMM

/// A waiter really sleeps or really spins: its scheduler state in
/// /proc/self/task/TID/stat is S (asleep) or R (on or waiting for a CPU).
@Suite(.timeLimit(.minutes(1))) struct IterationGateTests {
    /// The third field of the thread's stat line ("pid (comm) S ...").
    static func state(of tid: Int32) -> Character? {
        guard let line = HostFiles.read("/proc/self/task/\(tid)/stat"), let close = line.lastIndex(of: ")") else { return nil }
        return line[line.index(after: close)...].first { $0 != " " }
    }

    /// Starts a waiter for iteration 1, samples its state, opens (or
    /// cancels) the gate; returns what the waiter got and the states seen.
    func observe(_ waiting: IterationGate.Waiting, cancel: Bool = false) throws -> (got: Int?, states: [Character]) {
        let gate = IterationGate(waiting: waiting)
        let tid = Atomic<Int32>(0)
        let got = Atomic<Int>(-2)
        let thread = try JoinableThread {
            tid.store(host_gettid(), ordering: .releasing)
            got.store(gate.wait(after: 0) ?? -1, ordering: .releasing)
        }
        while tid.load(ordering: .acquiring) == 0 { sched_yield() }
        var states: [Character] = []
        // Up to 2 s for a sleeper to reach its wait; a spinner never leaves R.
        for _ in 0..<2000 {
            if let state = IterationGateTests.state(of: tid.load(ordering: .acquiring)) { states.append(state) }
            if states.last == "S" || (waiting == .spin && states.count >= 50) { break }
            usleep(1000)
        }
        if cancel { gate.cancel() } else { gate.open(1) }
        thread.join()
        let value = got.load(ordering: .acquiring)
        return (value == -1 ? nil : value, states)
    }

    @Test func sleepersSleep() throws {
        let (got, states) = try observe(.sleep)
        #expect(got == 1)
        #expect(states.last == "S")
    }

    @Test func spinnersNeverSleep() throws {
        let (got, states) = try observe(.spin)
        #expect(got == 1)
        #expect(states.count >= 50)
        #expect(states.allSatisfy { $0 == "R" }, "states seen: \(String(states))")
    }

    @Test(arguments: IterationGate.Waiting.allCases)
    func cancelReleasesEveryWaiter(waiting: IterationGate.Waiting) throws {
        #expect(try observe(waiting, cancel: true).got == nil)
    }
}
