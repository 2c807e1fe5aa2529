import Glibc
import Guests
import KVM

/// Code loaded at GuestLayout.codeAddress and entered with RDI = mailbox.
public struct GuestImage: Sendable {
    public let name: String
    public let bytes: [UInt8]
    /// Offset of the instruction a guest marks (the fault guest's faulting load).
    public let marker: Int

    public init(name: String, bytes: [UInt8], marker: Int = 0) {
        self.name = name
        self.bytes = bytes
        self.marker = marker
    }

    init(name: String, blob: kvmlab_guest_blob) {
        let count = blob.end - blob.start
        self.init(name: name, bytes: Array(UnsafeBufferPointer(start: blob.start, count: count)), marker: Int(blob.marker))
    }

    /// A built-in guest: the name `kvmlab run --guest` takes, what it does,
    /// and its code (guest/NAME.S, declared by one KVMLAB_GUEST line in guests.h).
    public struct Builtin: Sendable {
        public let name: String
        public let summary: String
        let blob: @Sendable () -> kvmlab_guest_blob
    }

    /// Every built-in guest, each named once.
    public static let catalog: [Builtin] = [
        Builtin(name: "hello", summary: "prints a greeting per vCPU on the serial port and finishes", blob: kvmlab_guest_hello),
        Builtin(name: "memstress", summary: "dirties (or reads) one word per page of its region each pass", blob: kvmlab_guest_memstress),
        Builtin(name: "spin", summary: "loops forever with no exits (for watchdog tests)", blob: kvmlab_guest_spin),
        Builtin(name: "fault", summary: "reads an unmapped address and takes a #PF", blob: kvmlab_guest_fault),
        Builtin(name: "jitter", summary: "the jitter probe: times every loop with rdtsc, no exits (see kvmlab jitter)", blob: kvmlab_guest_jitter),
        Builtin(name: "ping", summary: "exits to the host in a loop, once per --iterations (exit round trips)", blob: kvmlab_guest_ping),
        Builtin(name: "passes", summary: "the pass worker: idles until the host asks it through the mailbox to write or verify a region (driven by memslot, populate, teardown)",
                blob: kvmlab_guest_passes),
        Builtin(name: "dirtier", summary: "writes random pages without pause, stamped with the host's generation (kvmlab check's concurrent harvest)", blob: kvmlab_guest_dirtier),
        Builtin(name: "migrator", summary: "kvmlab migrate's workload: writes pages at a set rate with per-page counters, or computes; records its own timeline and stalls; verifies every page on request",
                blob: kvmlab_guest_migrator),
        Builtin(name: "triple", summary: "clears the IDT and executes UD2: a triple fault (KVM_EXIT_SHUTDOWN)", blob: kvmlab_guest_triple),
        Builtin(name: "crwp", summary: "root-reload's guest: toggles CR0.WP at CPL0 when its mailbox says so, else a pass worker (driven by root-reload)",
                blob: kvmlab_guest_crwp),
    ]

    /// The built-in guests' names and what each does.
    public static var builtins: [String: String] { Dictionary(uniqueKeysWithValues: catalog.map { ($0.name, $0.summary) }) }

    public static func builtin(_ name: String) -> GuestImage? {
        catalog.first { $0.name == name }.map { GuestImage(name: name, blob: $0.blob()) }
    }

    static var exceptionStubs: GuestImage { GuestImage(name: "exceptions", blob: kvmlab_guest_exceptions()) }

    /// A user's flat 64-bit binary.
    public static func load(path: String) throws(KVMError) -> GuestImage {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw KVMError.last("open guest image \(path)", hint: "give the path of a flat 64-bit binary") }
        defer { close(fd) }
        guard let bytes = HostFiles.readAll(fd, limit: Int(GuestLayout.codeCapacity)) else { throw KVMError.last("read guest image \(path)") }
        guard !bytes.isEmpty else { throw KVMError("load guest image \(path)", errno: EINVAL, hint: "the file is empty") }
        guard bytes.count <= Int(GuestLayout.codeCapacity) else {
            throw KVMError("load guest image \(path)", errno: EFBIG, hint: "images are limited to \(Sizes.format(GuestLayout.codeCapacity))")
        }
        return GuestImage(name: path, bytes: bytes)
    }
}
