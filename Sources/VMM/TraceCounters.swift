import CHost
import Glibc

/// Kernel tracepoint counts for the phases of a run: one perf_event_open
/// counter per event (PERF_TYPE_TRACEPOINT, counting, never sampling),
/// read before and after every phase by the phase timer.
///
/// Scope `process`: one counter per event on this process with `inherit`,
/// opened before any vCPU thread exists, so it also counts every thread
/// created later (the vCPU threads are), and a read sums the live ones.
/// That is what kvmlab's own threads made the kernel do. Scope `system`:
/// one counter per event and online CPU, everything that ran there,
/// kernel workers (and other processes) included.
public final class TraceCounters: @unchecked Sendable {
    // @unchecked: the descriptors are fixed after init and closed in deinit; each read is its own syscall.
    public enum Scope: String, CaseIterable, Sendable {
        case process, system
    }

    /// Counted by default: the seeds' mechanisms that fire per MMU event,
    /// not per page: the fast zap, shadow pages made and zapped, huge-page
    /// splits, dirty-ring resets and ring-full exits. Counting them costs
    /// nothing measurable (BENCHMARKS.md).
    public static let defaultEvents = [
        "kvmmmu:kvm_mmu_zap_all_fast", "kvmmmu:kvm_mmu_get_page", "kvmmmu:kvm_mmu_prepare_zap_page", "kvmmmu:kvm_mmu_split_huge_page",
        "kvm:kvm_dirty_ring_reset", "kvm:kvm_dirty_ring_exit",
    ]

    /// `--trace faults`: the ones that fire per fault, per written page or
    /// per emulated instruction. Each hit costs the counting (tens of ns),
    /// so a CPL3 dirty pass on a host with 1 µs faults took 7% longer with
    /// them: asked for, not default.
    public static let faultEvents = [
        "kvm:kvm_page_fault", "kvmmmu:fast_page_fault", "kvmmmu:kvm_mmu_spte_requested", "kvmmmu:kvm_tdp_mmu_spte_changed",
        "kvm:kvm_emulate_insn", "kvm:kvm_dirty_ring_push",
    ]

    /// --trace's names: an event, or `faults` for every per-fault event.
    public static func expand(_ names: [String]) -> [String] { names.flatMap { $0 == "faults" ? faultEvents : [$0] } }

    /// The counters the command line opened for this process; nil counts nothing.
    public static let current = Locked<TraceCounters?>(nil)

    public let scope: Scope
    /// Events counted, in order.
    public let events: [String]
    /// Why nothing, or not everything asked for, is counted (one line), if so.
    public let note: String?
    private let descriptors: [[Int32]]

    /// Opens a counter per event that exists; an event named with --trace
    /// that tracefs does not list is a usage error, a default one missing
    /// from this kernel is left out (and said). No tracefs, or no
    /// permission, counts nothing and says why: tracing never fails a run.
    public init(events requested: [String], scope: Scope, explicit: [String]) throws(ConfigError) {
        self.scope = scope
        let explicit = TraceCounters.expand(explicit)
        for event in explicit where TraceCounters.parse(event) == nil {
            throw ConfigError("\(field: "events") \(event): write SUBSYSTEM:NAME, e.g. kvmmmu:kvm_mmu_split_huge_page")
        }
        let located = TraceCounters.tracefs()
        guard let tracefs = located.path else {
            events = []
            descriptors = []
            note = "tracepoints not counted: \(located.note ?? "no tracefs")"
            return
        }
        var opened: [String] = [], descriptors: [[Int32]] = [], missing: [String] = []
        var failure: String?
        // Online CPUs as the kernel lists them (they need not be 0..n-1).
        let cpus = HostFiles.trimmed("/sys/devices/system/cpu/online").flatMap(CPUList.parse) ?? Array(0..<Resources.onlineCPUs)
        for event in requested + explicit where !opened.contains(event) && !missing.contains(event) {
            guard let id = TraceCounters.id(of: event, tracefs: tracefs) else {
                if explicit.contains(event) {
                    throw ConfigError("\(field: "events") \(event): \(tracefs)/events has no such tracepoint (kvmlab info lists the MMU ones this kernel has)")
                }
                missing.append(event)
                continue
            }
            switch TraceCounters.open(id, event: event, scope: scope, cpus: cpus) {
            case .success(let fds): descriptors.append(fds)
            case .failure(let error): failure = error.description
            }
            if failure != nil { break }
            opened.append(event)
        }
        if let failure {
            for fd in descriptors.joined() { close(fd) }
            events = []
            self.descriptors = []
            note = "tracepoints not counted: \(failure)"
            return
        }
        events = opened
        self.descriptors = descriptors
        let mounted = located.note.map { "; \($0)" } ?? ""
        note = missing.isEmpty ? (mounted.isEmpty ? nil : String(mounted.dropFirst(2))) : "not in this kernel: \(missing.joined(separator: ", "))\(mounted)"
    }

    /// One counter per target: this process (inheriting to its threads), or
    /// every online CPU. On a failure the ones opened are closed again.
    private static func open(_ id: UInt64, event: String, scope: Scope, cpus: [Int]) -> Result<[Int32], HostError> {
        let targets = scope == .process ? [(pid: Int32(0), cpu: Int32(-1))] : cpus.map { (pid: Int32(-1), cpu: Int32($0)) }
        var fds: [Int32] = []
        for target in targets {
            let fd = host_perf_tracepoint_open(id, target.pid, target.cpu, scope == .process ? 1 : 0)
            if fd < 0 {
                let failure = HostError("perf_event_open(\(event)) failed: \(String(cString: strerror(errno)))"
                    + (errno == EACCES || errno == EPERM ? "; run as root or lower /proc/sys/kernel/perf_event_paranoid" : ""))
                for fd in fds { close(fd) }
                return .failure(failure)
            }
            fds.append(fd)
        }
        return .success(fds)
    }

    deinit { for fd in descriptors.joined() { close(fd) } }

    /// Every event's count so far (summed over CPUs with scope system).
    public func sample() -> [String: Int64] {
        var counts: [String: Int64] = [:]
        for (event, fds) in zip(events, descriptors) {
            var total: Int64 = 0
            for fd in fds {
                var value: UInt64 = 0
                if read(fd, &value, 8) == 8 { total &+= Int64(bitPattern: value) }
            }
            counts[event] = total
        }
        return counts
    }

    /// The current counters' counts, if any are open.
    public static func sampleCurrent() -> [String: Int64]? { current.withLock { $0 }.map { $0.sample() } }

    /// What a phase made the kernel do: after − before, only events that moved.
    public static func delta(_ before: [String: Int64]?, _ after: [String: Int64]?) -> [String: Int64]? {
        guard let before, let after else { return nil }
        return after.reduce(into: [:]) { moved, entry in
            let change = entry.value - (before[entry.key] ?? 0)
            if change != 0 { moved[entry.key] = change }
        }
    }

    /// One line for reports: the scope and events, or why nothing was counted.
    public var summary: String {
        guard !events.isEmpty else { return note ?? "tracepoints not counted" }
        return "tracepoints: \(events.count) counted per phase, \(scope == .process ? "this process and its threads" : "every CPU (kernel workers and other processes included)")"
            + (note.map { "; \($0)" } ?? "")
    }

    /// What `kvmlab info` shows: every MMU tracepoint (kvmmmu:*) and the
    /// default kvm:* ones this kernel has, each tried with perf_event_open.
    public struct Availability: Sendable, Codable {
        public struct Event: Sendable, Codable {
            public let name: String
            public let countable: Bool
        }
        public let tracefs: String?
        public let note: String?
        public let events: [Event]
    }

    public static func availability() -> Availability {
        let located = tracefs()
        guard let path = located.path else { return Availability(tracefs: nil, note: located.note, events: []) }
        let mmu = ((try? HostFiles.list(path + "/events/kvmmmu")) ?? []).map { "kvmmmu:" + $0 }.filter { id(of: $0, tracefs: path) != nil }
        let names = (mmu + (defaultEvents + faultEvents).filter { $0.hasPrefix("kvm:") && id(of: $0, tracefs: path) != nil }).sorted()
        let events = names.map { name -> Availability.Event in
            let fd = host_perf_tracepoint_open(id(of: name, tracefs: path)!, 0, -1, 1)
            if fd >= 0 { close(fd) }
            return Availability.Event(name: name, countable: fd >= 0)
        }
        return Availability(tracefs: path, note: located.note, events: events)
    }

    static func parse(_ event: String) -> (subsystem: String, name: String)? {
        let parts = event.split(separator: ":", omittingEmptySubsequences: false)
        let allowed = { (part: Substring) in !part.isEmpty && part.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") } }
        guard parts.count == 2, allowed(parts[0]), allowed(parts[1]) else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    /// The event's id under tracefs, nil if this kernel has no such tracepoint.
    public static func id(of event: String, tracefs: String) -> UInt64? {
        guard let (subsystem, name) = parse(event) else { return nil }
        return HostFiles.trimmed("\(tracefs)/events/\(subsystem)/\(name)/id").flatMap { UInt64($0) }
    }

    /// Where tracefs is: $KVMLAB_TRACEFS, else the usual places; as root,
    /// where none is mounted, kvmlab mounts it at /sys/kernel/tracing (its
    /// standard place; it stays mounted) and says so.
    public static func tracefs() -> (path: String?, note: String?) {
        if let override = getenv("KVMLAB_TRACEFS").map({ String(cString: $0) }) {
            return HostFiles.exists(override + "/events") ? (override, nil) : (nil, "\(override)/events is missing (KVMLAB_TRACEFS)")
        }
        for path in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] where HostFiles.exists(path + "/events") { return (path, nil) }
        let standard = "/sys/kernel/tracing"
        guard getuid() == 0 else { return (nil, "tracefs is not mounted and only root can mount it (mount -t tracefs nodev \(standard))") }
        guard mount("nodev", standard, "tracefs", 0, nil) == 0, HostFiles.exists(standard + "/events") else {
            return (nil, "tracefs is not mounted and mounting it at \(standard) failed: \(String(cString: strerror(errno)))")
        }
        return (standard, "kvmlab mounted tracefs at \(standard)")
    }
}
