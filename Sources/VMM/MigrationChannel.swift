import Glibc

/// One end of a migration stream: frames out (pages batched into PAGES
/// frames, paced to a bandwidth cap) and frames in (checked against
/// MigrationWire's rules, pages read straight into guest memory after their
/// number is checked).
public final class MigrationChannel: @unchecked Sendable {
    // @unchecked: one thread sends and one thread receives; the counters
    // are read by the sending thread only, and the socket's shutdown() may
    // come from any thread (a Ctrl-C watcher) to wake a blocked call.
    public let socket: StreamSocket
    /// Bytes per second the sender may use; nil: as fast as the socket goes.
    public let bandwidth: Double?
    /// The queued pages: their numbers, and where each lives in guest memory
    /// (sent from there, not copied).
    private var indices: [UInt64] = []
    private var pages: [iovec] = []
    public private(set) var bytesSent: UInt64 = 0
    public private(set) var pagesSent: UInt64 = 0
    private var paceStart: UInt64 = 0
    private var pacedBytes: UInt64 = 0

    public init(socket: StreamSocket, bandwidth: Double? = nil) {
        self.socket = socket
        self.bandwidth = bandwidth
        indices.reserveCapacity(MigrationWire.maxPagesPerFrame)
        pages.reserveCapacity(MigrationWire.maxPagesPerFrame)
    }

    /// Starts a pacing interval (each round is paced on its own, so the
    /// time spent harvesting between rounds is not banked as credit).
    public func restartPacing() {
        paceStart = Stopwatch.now()
        pacedBytes = 0
    }

    /// Queues test page `index` of `memory`, sending a frame when full. The
    /// page is read when the frame goes out: a write after that is caught
    /// by the dirty log and sent again.
    public func queuePage(_ index: UInt64, from memory: GuestSpan) throws(HostError) {
        let offset = Int(index) * MigrationWire.pageBytes
        precondition(offset + MigrationWire.pageBytes <= memory.bytes, "page \(index) outside a \(memory.bytes)-byte window")
        memory.withAddress { base, _ in pages.append(iovec(iov_base: base + offset, iov_len: MigrationWire.pageBytes)) }
        indices.append(index.littleEndian)
        if indices.count == MigrationWire.maxPagesPerFrame { try flushPages() }
    }

    /// Sends the queued pages as one PAGES frame: header, page numbers, pages.
    public func flushPages() throws(HostError) {
        guard !indices.isEmpty else { return }
        // Ctrl-C ends a long round at the next frame, not at its end.
        if Interrupts.shared.requested { throw HostError("interrupted") }
        let length = indices.count * (8 + MigrationWire.pageBytes)
        var head = MigrationWire.header(.pages, count: UInt32(indices.count), length: length)
        indices.withUnsafeBytes { head.append(contentsOf: $0) }
        let socket = socket, queued = pages
        var failure: HostError?
        head.withUnsafeMutableBytes { raw in
            do throws(HostError) { try socket.send([iovec(iov_base: raw.baseAddress, iov_len: raw.count)] + queued) } catch { failure = error }
        }
        if let failure { throw failure }
        account(MigrationWire.headerBytes + length)
        pagesSent += UInt64(indices.count)
        indices.removeAll(keepingCapacity: true)
        pages.removeAll(keepingCapacity: true)
    }

    /// Tells the destination the migration is off (pages still queued are dropped).
    public func cancel() throws(HostError) {
        indices.removeAll()
        pages.removeAll()
        try socket.send(MigrationWire.header(.cancel, length: 0))
    }

    /// Sends a whole frame (pages queued before it go first).
    public func send(_ kind: FrameKind, count: UInt32 = 0, payload: [UInt8] = []) throws(HostError) {
        try flushPages()
        try socket.send(MigrationWire.header(kind, count: count, length: payload.count) + payload)
        account(MigrationWire.headerBytes + payload.count)
    }

    private func account(_ bytes: Int) {
        bytesSent += UInt64(bytes)
        pacedBytes += UInt64(bytes)
        guard let bandwidth, bandwidth > 0 else { return }
        let due = Double(pacedBytes) / bandwidth
        let elapsed = Double(Stopwatch.now() &- paceStart) / 1e9
        if due > elapsed { Stopwatch.sleep(seconds: due - elapsed) }
    }

    /// The next frame's header; nil when the peer closed between frames.
    public func receiveHeader(maxSystemBytes: Int) throws -> MigrationWire.Header? {
        var bytes = [UInt8](repeating: 0, count: MigrationWire.headerBytes)
        guard try socket.receive(into: &bytes) else { return nil }
        return try MigrationWire.parseHeader(bytes, maxSystemBytes: maxSystemBytes)
    }

    /// The payload of a (non-PAGES) frame whose header was just read.
    public func receivePayload(_ header: MigrationWire.Header) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(header.length))
        guard try socket.receive(into: &bytes) else { throw HostError("the migration stream ended in the middle of a \(header.kind) frame") }
        return bytes
    }

    /// Reads a PAGES frame into `memory`: first its page numbers, each
    /// checked against `memory`, then the pages straight into guest memory
    /// (one readv): nothing is written before every number passed.
    public func receivePages(_ header: MigrationWire.Header, into memory: GuestSpan, record: (UInt64) -> Void) throws {
        let count = Int(header.count)
        let limit = UInt64(memory.bytes / MigrationWire.pageBytes)
        var numbers = [UInt64](repeating: 0, count: count)
        guard try socket.receive(into: &numbers) else { throw HostError("the migration stream ended in the middle of a PAGES frame") }
        for index in numbers.indices {
            numbers[index] = UInt64(littleEndian: numbers[index])
            guard numbers[index] < limit else {
                throw MigrationWireError("page \(numbers[index]) is outside guest memory (\(limit) pages): refused before writing it")
            }
        }
        let targets = memory.withAddress { base, bytes in
            numbers.map { page in
                // A second line behind the check above: trap rather than write outside.
                precondition(Int(page) * MigrationWire.pageBytes + MigrationWire.pageBytes <= bytes, "page \(page) outside guest memory")
                return iovec(iov_base: base + Int(page) * MigrationWire.pageBytes, iov_len: MigrationWire.pageBytes)
            }
        }
        try socket.receive(targets)
        numbers.forEach(record)
    }
}
