import Glibc
import Testing
@testable import VMM

/// The Ctrl-C watcher keeps a descriptor table of its own (a shared one made
/// every growth of the table wait for an RCU grace period, which slowed
/// creating vCPUs), holding only stdio and its pipe.
struct InterruptsTests {
    /// The descriptors /proc lists for one task of this process.
    static func descriptors(task: String) -> Set<Int32>? {
        guard let directory = opendir("/proc/self/task/\(task)/fd") else { return nil }
        defer { closedir(directory) }
        var numbers = Set<Int32>()
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if let number = Int32(name) { numbers.insert(number) }
        }
        return numbers
    }

    static func tasks() -> [String] {
        guard let directory = opendir("/proc/self/task") else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if Int(name) != nil { names.append(name) }
        }
        return names
    }

    @Test func watcherHasAPrivateDescriptorTable() throws {
        Interrupts.shared.install()
        // Opened after install: in every shared table, never in the watcher's.
        let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
        #expect(probe >= 0)
        defer { close(probe) }
        let tables = InterruptsTests.tasks().compactMap { InterruptsTests.descriptors(task: $0) }
        let shared = tables.filter { $0.contains(probe) }
        let own = tables.filter { !$0.contains(probe) }
        #expect(!shared.isEmpty)
        #expect(own.count == 1, "tables without the new descriptor: \(own.count) of \(tables.count)")
        // stdio and the pipe's two ends, nothing else.
        if let watcher = own.first { #expect(watcher.count <= 5, "the watcher holds \(watcher.sorted())") }
    }
}
