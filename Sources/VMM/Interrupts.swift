import CHost
import Dispatch
import Glibc
import Synchronization

/// Ctrl-C and SIGTERM handling: the first one asks every active run to stop
/// cleanly (so it can still report what it measured); a second one exits.
public final class Interrupts: Sendable {
    public static let shared = Interrupts()

    private let handlers = Locked<[Int: @Sendable () -> Void]>([:])
    /// Run even when a second signal exits at once (e.g. putting module
    /// parameters back): they must be quick and safe to run twice.
    private let lastWords = Locked<[@Sendable () -> Void]>([])
    private let nextToken = Atomic<Int>(0)
    private let count = Atomic<Int>(0)
    private let installed = Atomic<Bool>(false)

    /// True once SIGINT or SIGTERM has arrived.
    public var requested: Bool { count.load(ordering: .acquiring) > 0 }

    /// Routes the signals through a pipe to a watcher thread. Idempotent.
    public func install() {
        guard installed.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        host_install_kick_handler(VCPURunner.kickSignal)
        host_unblock_signal(SIGINT)
        host_unblock_signal(SIGTERM)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { return }
        let readFD = fds[0]
        guard host_install_stop_signals(fds[1]) == 0 else { return }
        let writeFD = fds[1]
        let unshared = DispatchSemaphore(value: 0)
        let watcher = try? JoinableThread(stackSize: 64 << 10) { [self] in
            // A private descriptor table: while another thread shares it,
            // every growth of the table (at 64, 128, 256, ... descriptors:
            // one per vCPU) waits for an RCU grace period, 8-19 ms here,
            // which made creating 256 vCPUs 40% slower than the C
            // reference. This thread keeps only its pipe's two ends (the
            // signal handler may run here and write the pipe) and stdio;
            // handlers must not use other descriptors.
            _ = host_unshare_files_keeping(UInt32(readFD), UInt32(writeFD))
            unshared.signal()
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) == 1 {
                if count.add(1, ordering: .acquiringAndReleasing).newValue > 1 {
                    let line = "kvmlab: interrupted again, exiting without cleanup\n"
                    _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
                    for hook in lastWords.withLock({ $0 }) { hook() }
                    _exit(130)
                }
                for handler in handlers.withLock({ Array($0.values) }) { handler() }
            }
        }
        // The main thread's table is unshared from here on (no grace periods).
        if watcher != nil { unshared.wait() }
    }

    /// Registers `stop` for the duration of a run; returns a token for `remove`.
    public func add(_ stop: @escaping @Sendable () -> Void) -> Int {
        let token = nextToken.add(1, ordering: .relaxed).newValue
        handlers.withLock { $0[token] = stop }
        if requested { stop() }
        return token
    }

    /// `hook` runs before a second Ctrl-C/SIGTERM ends the process.
    public func beforeExit(_ hook: @escaping @Sendable () -> Void) { lastWords.withLock { $0.append(hook) } }

    public func remove(_ token: Int) { _ = handlers.withLock { $0.removeValue(forKey: token) } }
}
