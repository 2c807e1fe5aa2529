import CHost
import Dispatch
import Glibc
import Guests
import KVM
import Synchronization

/// Runs every vCPU of a machine on its own pthread until each finishes,
/// fails, faults or is stopped (by the host, the watchdog or Ctrl-C).
public final class VCPURunner: @unchecked Sendable {
    // @unchecked: the hooks below are set before start() and only read
    // afterwards; everything shared while threads run is Locked or Atomic.
    public typealias Handler = @Sendable (_ vcpu: Int, _ event: GuestEvent) -> Resume

    /// The signal that kicks a vCPU thread out of KVM_RUN.
    public static let kickSignal = SIGUSR1

    public let machine: Machine
    private let handler: Handler
    private let console: SerialConsole
    private let stopReason = Atomic<Int>(0)
    /// Threads started and not yet joined. Appended by start(), read by
    /// stop() on any thread (a vCPU's, the Ctrl-C watcher's), emptied by
    /// wait(); `joined` makes a stop after wait() a no-op.
    private let threads = Locked<(running: [JoinableThread], joined: Bool)>(([], false))
    private let outcomes: Locked<[VCPUOutcome?]>
    private let finished = DispatchSemaphore(value: 0)
    private let stopHooks = Locked<[@Sendable () -> Void]>([])
    /// Called on a vCPU thread whose dirty ring is full, before it re-enters;
    /// an error ends that vCPU (the ring would fill again at once).
    public var onDirtyRingFull: (@Sendable (_ vcpu: Int) throws -> Void)?
    /// Decides about a guest access to an address no memslot backs (e.g. a
    /// slot being moved): true resumes the guest (a read gets zeroes, a
    /// write is dropped), false ends the vCPU with an error. Unset: an error.
    public var onMMIO: (@Sendable (_ vcpu: Int, _ address: UInt64, _ isWrite: Bool) -> Bool)?
    /// Decides about KVM_RUN failing with EFAULT (the guest touched memory
    /// the host mapping does not allow, e.g. a write to a page made
    /// read-only): true re-enters the guest, which retries the access;
    /// false, or unset, ends the vCPU with the error.
    public var onRunFault: (@Sendable (_ vcpu: Int) -> Bool)?
    /// Called on a vCPU thread each time a kick (see kick()) or another
    /// signal brought it out of KVM_RUN, before it re-enters: where a
    /// throttle makes the vCPU sleep outside the guest.
    public var onKick: (@Sendable (_ vcpu: Int) -> Void)?
    /// Ctrl-C stops this run from start() until wait() returns.
    private let interruptToken = Locked<Int?>(nil)

    private let prologue: (@Sendable (_ vcpu: Int) -> Bool)?
    private let ended = Atomic<Int>(0)

    /// `prologue` runs on each vCPU thread before its first KVM_RUN; if it
    /// returns false the vCPU never enters the guest (the run was stopped).
    public init(machine: Machine, console: SerialConsole = SerialConsole(),
                prologue: (@Sendable (_ vcpu: Int) -> Bool)? = nil, handler: @escaping Handler) {
        self.machine = machine
        self.console = console
        self.prologue = prologue
        self.handler = handler
        outcomes = Locked([VCPUOutcome?](repeating: nil, count: machine.vcpus.count))
    }

    /// Called once when a stop is requested, e.g. to release vCPU threads
    /// that wait for the host between iterations.
    public func onStop(_ hook: @escaping @Sendable () -> Void) { stopHooks.withLock { $0.append(hook) } }

    /// Starts one thread per vCPU, pinned to `pin[i % pin.count]` if given.
    /// A thread that cannot be created stops the run and is a runtime error.
    public func start(pin: [Int] = []) throws {
        Interrupts.shared.install()
        let token = Interrupts.shared.add { [weak self] in self?.stop(.interrupted) }
        interruptToken.withLock { $0 = token }
        // Cleared before any thread exists: a stop() from here on sets them
        // again, and a thread created after that stop enters and leaves at once.
        for vcpu in machine.vcpus { vcpu.setImmediateExit(false) }
        // vCPU threads start with the kick signal unblocked, even if kvmlab
        // inherited a mask that blocks it (a parent may spawn it so).
        var mask = sigset_t()
        host_mask_without(VCPURunner.kickSignal, &mask)
        for index in machine.vcpus.indices {
            let thread: JoinableThread
            do {
                thread = try JoinableThread(pinTo: pin.isEmpty ? nil : pin[index % pin.count], signalMask: mask) { [self] in vcpuThread(index) }
            } catch {
                // The vCPUs without a thread still owe an outcome to wait().
                for missing in index..<machine.vcpus.count {
                    outcomes.withLock { $0[missing] = .error("vCPU \(missing): no thread: \(error)") }
                    finished.signal()
                }
                stop(.error)
                throw error
            }
            threads.withLock { $0.running.append(thread) }
        }
    }

    private func vcpuThread(_ index: Int) {
        let outcome = prologue?(index) == false ? .stopped(stopRequested ?? .host) : runLoop(index)
        outcomes.withLock { $0[index] = outcome }
        ended.add(1, ordering: .releasing)
        finished.signal()
    }

    /// vCPU threads that have ended so far.
    public var endedCount: Int { ended.load(ordering: .acquiring) }

    public var stopRequested: StopReason? { StopReason(code: stopReason.load(ordering: .acquiring)) }

    /// Asks every vCPU to leave KVM_RUN: immediate_exit for threads about to
    /// enter, a kick signal for threads inside. A no-op after wait().
    public func stop(_ reason: StopReason) {
        let code = reason.code
        // acquiringAndReleasing: the winner's reason is what every vCPU
        // thread reads after it sees immediate_exit (a release store).
        guard stopReason.compareExchange(expected: 0, desired: code, ordering: .acquiringAndReleasing).exchanged else { return }
        for hook in stopHooks.withLock({ $0 }) { hook() }
        for vcpu in machine.vcpus { vcpu.setImmediateExit(true) }
        // Signalled under the lock, so wait() cannot join (and free) a
        // thread between the snapshot and its pthread_kill.
        threads.withLock { state in
            guard !state.joined else { return }
            for thread in state.running { thread.signal(VCPURunner.kickSignal) }
        }
    }

    /// Brings vCPU `index` out of KVM_RUN once (the kick signal), so that
    /// onKick runs on its thread. A kick that lands while the thread is
    /// outside KVM_RUN is lost: callers kick periodically. A no-op after wait().
    public func kick(_ index: Int) {
        threads.withLock { state in
            guard !state.joined, state.running.indices.contains(index) else { return }
            state.running[index].signal(VCPURunner.kickSignal)
        }
    }

    /// Runners whose vCPU threads never left KVM_RUN: kept alive for ever,
    /// so a thread that does return one day finds its machine still there.
    private static let abandoned = Locked<[(runner: VCPURunner, threads: [JoinableThread])]>([])

    /// Joins the threads of runners left behind (they must have come back
    /// out of the kernel by now): for tests that release such a thread.
    public static func joinAbandoned() {
        for entry in abandoned.withLock({ all in defer { all.removeAll() }; return all }) { for thread in entry.threads { thread.join() } }
    }

    /// Waits for every vCPU; after `timeout` seconds the watchdog stops the
    /// rest, and a vCPU that has not left KVM_RUN `grace` seconds after that
    /// is reported stuck (its thread is left behind, not joined: a kernel
    /// that never returns from KVM_RUN must not hang kvmlab). Joins every
    /// other thread before returning.
    public func wait(timeout: Double? = nil, grace: Double = 10) -> [VCPUOutcome] {
        defer {
            if let token = interruptToken.withLock({ $0 }) { Interrupts.shared.remove(token) }
        }
        let deadline = timeout.map { DispatchTime.now() + $0 }
        var stuck = false
        for _ in machine.vcpus {
            if let deadline {
                if finished.wait(timeout: deadline) == .timedOut {
                    stop(.timeout)
                    if finished.wait(timeout: .now() + grace) == .timedOut {
                        stuck = true
                        break
                    }
                }
            } else {
                finished.wait()
            }
        }
        let running = threads.withLock { state in
            defer { state = ([], true) }
            return state.running
        }
        let ended = outcomes.withLock { $0.map { $0 != nil } }
        for (index, thread) in running.enumerated() where !stuck || ended[index] { thread.join() }
        if stuck {
            let left = running.indices.filter { !ended[$0] }.map { running[$0] }
            VCPURunner.abandoned.withLock { $0.append((self, left)) }
        }
        console.flush()
        return outcomes.withLock { outcomes in
            outcomes.indices.map { index in
                outcomes[index] ?? .error(stuck ? "vCPU \(index) did not leave KVM_RUN within \(grace) s of being stopped: it is stuck in the kernel"
                                                : "vCPU thread ended without an outcome")
            }
        }
    }

    private func runLoop(_ index: Int) -> VCPUOutcome {
        let vcpu = machine.vcpus[index]
        while true {
            if let reason = stopRequested { return .stopped(reason) }
            let exit: VCPUExit
            do {
                exit = try vcpu.enter()
            } catch where error.errno == EFAULT && onRunFault?(index) == true {
                continue
            } catch {
                stop(.error)
                return .error(error.description)
            }
            let action = ExitPolicy.action(for: exit, vcpu: index, harvestsRings: onDirtyRingFull != nil,
                                           servesMMIO: { onMMIO?(index, $0, $1) ?? false }, rip: { try? vcpu.getRegisters().rip })
            switch action {
            case .kicked:
                onKick?(index)
            case .handleIO(let io):
                if let outcome = handleIO(io, vcpu: vcpu, index: index) { return outcome }
            case .harvestRing:
                do {
                    try onDirtyRingFull?(index)
                } catch {
                    stop(.error)
                    return .error("vCPU \(index): harvesting its full dirty ring failed: \(error)")
                }
            case .serveMMIO(let isWrite):
                if !isWrite { vcpu.completeMMIOReadWithZeroes() }
            case .end(let outcome):
                return outcome
            }
        }
    }

    /// nil: resume the guest; else how this vCPU ended.
    private func handleIO(_ io: IOExit, vcpu: VCPU, index: Int) -> VCPUOutcome? {
        switch Int32(io.port) {
        case KVMLAB_PORT_SERIAL where io.isOut:
            console.write(vcpu: index, bytes: io.data)
            return nil
        case KVMLAB_PORT_EVENT:
            switch decode(code: io.firstByte, mailbox: machine.mailbox(index)) {
            case .done: return .finished
            case .fail(let status): return .failed(status: status)
            case let event:
                // A handler released by a stop (not by the guest) reports the stop.
                if handler(index, event) == .finish { return stopRequested.map { .stopped($0) } ?? .finished }
                return nil
            }
        case KVMLAB_PORT_EXCEPTION:
            return exception(vcpu: vcpu, index: index)
        default:
            return .crashed("vCPU \(index): \(io.isOut ? "out to" : "in from") unknown port 0x\(hex(UInt64(io.port)))\(ripSuffix(vcpu))")
        }
    }

    private func decode(code: UInt8, mailbox: Mailbox) -> GuestEvent {
        switch Int32(code) {
        case KVMLAB_EVENT_ITERATION: return .iteration
        case KVMLAB_EVENT_DONE: return .done
        case KVMLAB_EVENT_FAIL: return .fail(status: mailbox[MB_STATUS])
        default: return .other(code: code)
        }
    }

    private func ripSuffix(_ vcpu: VCPU) -> String {
        (try? vcpu.getRegisters()).map { " at RIP 0x\(hex($0.rip))" } ?? ""
    }

    /// Reads the stub's frame (RAX, vector, error, RIP, CS, RFLAGS, RSP, SS).
    private func exception(vcpu: VCPU, index: Int) -> VCPUOutcome {
        do {
            let regs = try vcpu.getRegisters()
            let sregs = try vcpu.getSpecialRegisters()
            guard let frame = machine.memory(at: regs.rsp, bytes: UInt64(EXC_FRAME_SLOTS) * 8), regs.rsp < machine.layout.systemSize else {
                return .crashed("vCPU \(index): exception frame at 0x\(hex(regs.rsp)) is outside guest memory")
            }
            let slot = { (i: Int) in frame.word(at: i * 8) }
            let registers: [(String, UInt64)] = [
                ("RAX", slot(0)), ("RBX", regs.rbx), ("RCX", regs.rcx), ("RDX", regs.rdx),
                ("RSI", regs.rsi), ("RDI", regs.rdi), ("RBP", regs.rbp), ("RSP", slot(6)),
                ("R8", regs.r8), ("R9", regs.r9), ("R10", regs.r10), ("R11", regs.r11),
                ("R12", regs.r12), ("R13", regs.r13), ("R14", regs.r14), ("R15", regs.r15),
            ]
            return .exception(ExceptionReport(vcpu: index, vector: Int(slot(1)), errorCode: slot(2), rip: slot(3),
                                              cs: slot(4), rflags: slot(5), rsp: slot(6), cr2: sregs.cr2, registers: registers))
        } catch {
            return .error(error.description)
        }
    }
}
