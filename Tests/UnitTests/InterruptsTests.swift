import Glibc
import Testing
@testable import VMM

/// The Ctrl-C watcher keeps a descriptor table of its own (a shared one made
/// every growth of the table wait for an RCU grace period, which slowed
/// creating vCPUs), holding only stdio and its pipe.
@Suite(.timeLimit(.minutes(1))) struct InterruptsTests {
    /// The descriptor table of every task (thread) of this process.
    static func tables() -> [Set<Int32>] {
        // A task that ends between the two listings has no table left: empty.
        ((try? HostFiles.list("/proc/self/task")) ?? []).filter { Int($0) != nil }.map { task in
            Set(((try? HostFiles.list("/proc/self/task/\(task)/fd")) ?? []).compactMap { Int32($0) })
        }
    }

    @Test func watcherHasAPrivateDescriptorTable() throws {
        Interrupts.shared.install()
        // Opened after install: in every shared table, never in the watcher's.
        let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
        #expect(probe >= 0)
        defer { close(probe) }
        let tables = InterruptsTests.tables()
        let shared = tables.filter { $0.contains(probe) }
        // A task that ended between the listings (an idle Dispatch worker
        // exiting) shows an empty table: a live thread holds stdio at least.
        let own = tables.filter { !$0.isEmpty && !$0.contains(probe) }
        #expect(!shared.isEmpty)
        #expect(own.count == 1, "tables without the new descriptor: \(own.count) of \(tables.count)")
        // stdio and the pipe's two ends, nothing else.
        if let watcher = own.first { #expect(watcher.count <= 5, "the watcher holds \(watcher.sorted())") }
    }
}
