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

    /// The built-in guests, by the names `kvmlab run --guest` accepts.
    public static let builtins: [String: String] = [
        "hello": "prints a greeting per vCPU on the serial port and finishes",
        "memstress": "dirties (or reads) one word per page of its region each pass",
        "spin": "loops forever with no exits (for watchdog tests)",
        "fault": "reads an unmapped address and takes a #PF",
        "jitter": "the jitter probe: times every loop with rdtsc, no exits (see kvmlab jitter)",
        "ping": "exits to the host in a loop, once per --iterations (exit round trips)",
        "passes": "the pass worker: idles until the host asks it through the mailbox to write or verify a region (driven by memslot, populate, teardown)",
        "dirtier": "writes random pages without pause, stamped with the host's generation (kvmlab check's concurrent harvest)",
        "triple": "clears the IDT and executes UD2: a triple fault (KVM_EXIT_SHUTDOWN)",
        "crwp": "root-reload's guest: toggles CR0.WP at CPL0 when its mailbox says so, else a pass worker (driven by root-reload)",
    ]

    public static func builtin(_ name: String) -> GuestImage? {
        switch name {
        case "hello": return GuestImage(name: name, blob: kvmlab_guest_hello())
        case "memstress": return GuestImage(name: name, blob: kvmlab_guest_memstress())
        case "spin": return GuestImage(name: name, blob: kvmlab_guest_spin())
        case "fault": return GuestImage(name: name, blob: kvmlab_guest_fault())
        case "ping": return GuestImage(name: name, blob: kvmlab_guest_ping())
        case "jitter": return GuestImage(name: name, blob: kvmlab_guest_jitter())
        case "passes": return GuestImage(name: name, blob: kvmlab_guest_passes())
        case "crwp": return GuestImage(name: name, blob: kvmlab_guest_crwp())
        case "triple": return GuestImage(name: name, blob: kvmlab_guest_triple())
        case "dirtier": return GuestImage(name: name, blob: kvmlab_guest_dirtier())
        default: return nil
        }
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
