import Guests
import VMM

/// One pass of the pass worker guest over `pages` pages from `gpa`.
struct Pass {
    var op: Int32
    var gpa: UInt64
    var pages: UInt64
    var offset: UInt64 = 0
    var stamp: UInt64 = 0
}

/// Host side of the pass worker guest: asks a vCPU for passes through its
/// mailbox and waits by polling the mailbox, so a pass costs no exit.
final class PassDriver {
    let machine: Machine
    let runner: VCPURunner
    private var requested: [UInt64]

    init(machine: Machine, runner: VCPURunner) {
        self.machine = machine
        self.runner = runner
        requested = [UInt64](repeating: 0, count: machine.vcpus.count)
    }

    /// The pass worker on `machine`: loads the passes guest and makes the
    /// runner whose vCPUs it drives (not started: set its hooks first).
    static func load(on machine: Machine) throws -> PassDriver {
        try machine.load(GuestImage.builtin("passes")!)
        return PassDriver(machine: machine, runner: VCPURunner(machine: machine) { _, _ in .finish })
    }

    /// Sets the pass's parameters, then raises MB_ITERATION (the guest
    /// reads the parameters after it sees the new iteration).
    func begin(_ vcpu: Int, _ pass: Pass) {
        let mailbox = machine.mailbox(vcpu)
        mailbox[MB_OP] = UInt64(pass.op)
        mailbox[MB_REGION] = pass.gpa
        mailbox[MB_PAGES] = pass.pages
        mailbox[MB_PAGE_SIZE] = GuestLayout.pageSize
        mailbox[MB_OFFSET] = pass.offset
        mailbox[MB_STAMP] = pass.stamp
        requested[vcpu] += 1
        mailbox[MB_ITERATION] = requested[vcpu]
    }

    /// Waits for the vCPU's latest pass and returns its mismatch count, or
    /// nil if the run ended first or `timeout` seconds passed (then the
    /// watchdog stops the run).
    func wait(_ vcpu: Int, timeout: Double = 30) -> UInt64? {
        let mailbox = machine.mailbox(vcpu)
        let deadline = Stopwatch.now() + UInt64(timeout * 1e9)
        var spins = 0
        while mailbox[MB_DONE_ITERATION] != requested[vcpu] {
            spins &+= 1
            if spins & 4095 == 0 {
                if runner.endedCount > 0 || runner.stopRequested != nil { return nil }
                if Stopwatch.now() > deadline {
                    runner.stop(.timeout)
                    return nil
                }
                // Leave the CPU to a vCPU thread that shares it.
                Spin.yield()
            }
            Spin.pause()
        }
        return mailbox[MB_MISMATCHES]
    }

    func run(_ vcpu: Int, _ pass: Pass) -> UInt64? {
        begin(vcpu, pass)
        return wait(vcpu)
    }

    /// Ends a PASS_WRITE_LOOP: the guest finishes its current pass, then
    /// makes an empty one, which this waits for.
    func endLoop(_ vcpu: Int) -> Bool {
        run(vcpu, Pass(op: PASS_VERIFY, gpa: 0, pages: 0)) != nil
    }

    /// Passes completed by the vCPU so far.
    func passes(_ vcpu: Int) -> UInt64 { machine.mailbox(vcpu)[MB_LOOPS] }

    /// Stops the guests and joins their threads.
    func finish(timeout: Double = 30) -> [VCPUOutcome] {
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_COMMAND] = 1 }
        return runner.wait(timeout: timeout)
    }

    /// Stops the guests, joins their threads and says what ended the run,
    /// if anything: Ctrl-C first, then `known` (a failure the host saw),
    /// then the first vCPU's own problem, then, if the run did not
    /// complete, a guest that stopped answering.
    func finish(known: String?, complete: Bool) -> RunEnding {
        let outcomes = finish()
        if runner.stopRequested == .interrupted || outcomes.worst == .interrupted { return RunEnding(problem: nil, interrupted: true) }
        return RunEnding(problem: known ?? outcomes.firstProblem ?? (complete ? nil : "the guest stopped answering"), interrupted: false)
    }
}

/// How a run of pass workers ended: interrupted (what was measured stands),
/// or with a problem (it could not measure), or neither.
struct RunEnding: Sendable {
    let problem: String?
    let interrupted: Bool
}
