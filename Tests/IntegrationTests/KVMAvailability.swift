import Foundation
import KVM
import VMM

/// Whether this machine can run the integration tests, and why not.
enum KVMAvailability {
    static let problem: String? = {
        do {
            _ = try KVMDevice()
            return nil
        } catch {
            return "needs a usable /dev/kvm (run as root, see README): \(error)"
        }
    }()

    static var usable: Bool { problem == nil }

    static var maxVCPUs: Int { (try? KVMDevice().maxVCPUs) ?? 1 }
}

/// Collects serial lines in memory for assertions.
final class CapturedSerial: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [(Int, String)] = []

    var sink: SerialConsole.Sink {
        { [self] vcpu, line in
            lock.lock()
            storage.append((vcpu, line))
            lock.unlock()
        }
    }

    var lines: [(vcpu: Int, text: String)] {
        lock.lock()
        defer { lock.unlock() }
        return storage.map { (vcpu: $0.0, text: $0.1) }
    }
}

/// Sets a hugetlb pool for a test and restores it afterwards.
func withHugetlbPool<T>(pageSize: UInt64, pages: Int, _ body: () throws -> T) throws -> T? {
    guard let before = HugetlbPool.pool(pageSize: pageSize) else { return nil }
    defer { HugetlbPool.setTotal(before.total, pageSize: pageSize) }
    guard let now = HugetlbPool.setTotal(before.total + pages, pageSize: pageSize), now >= before.total + pages else { return nil }
    return try body()
}

/// Host capabilities some tests need, each nil where present or the reason
/// it is missing: a test that needs one is skipped with that reason.
enum HostCaps {
    static let zapAllQuirk: String? = {
        guard let device = try? KVMDevice() else { return KVMAvailability.problem }
        return device.canDisable(.slotZapAll) ? nil : "this kernel cannot disable KVM_X86_QUIRK_SLOT_ZAP_ALL (KVM_CAP_DISABLE_QUIRKS2)"
    }()

    /// Tracing needs tracefs and perf_event_open on kvm's tracepoints.
    static let tracing: String? = {
        let availability = TraceCounters.availability()
        guard availability.tracefs != nil else { return "no tracefs: \(availability.note ?? "")" }
        return availability.events.contains { $0.name == "kvmmmu:kvm_mmu_zap_all_fast" && $0.countable } ? nil : "kvm's MMU tracepoints cannot be counted here"
    }()

    static let hugetlb2M: String? = poolCanGrow(pageSize: 2 << 20, pages: 8)
    static let hugetlb1G: String? = poolCanGrow(pageSize: 1 << 30, pages: 1)

    /// Grows the pool and shrinks it back: growing needs root and, for
    /// 1 GiB pages, a free aligned gigabyte the kernel may not find.
    static func poolCanGrow(pageSize: UInt64, pages: Int) -> String? {
        let name = Sizes.format(pageSize)
        guard let before = HugetlbPool.pool(pageSize: pageSize) else { return "this kernel has no \(name) hugetlb pool" }
        defer { HugetlbPool.setTotal(before.total, pageSize: pageSize) }
        guard let now = HugetlbPool.setTotal(before.total + pages, pageSize: pageSize), now >= before.total + pages else {
            return "the \(name) hugetlb pool could not grow by \(pages) page\(pages == 1 ? "" : "s") on this host"
        }
        return nil
    }
}
