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
    private let buffer: UnsafeMutableRawPointer
    private let bufferBytes: Int
    private var queued = 0
    private var used = MigrationWire.headerBytes
    public private(set) var bytesSent: UInt64 = 0
    public private(set) var pagesSent: UInt64 = 0
    private var paceStart: UInt64 = 0
    private var pacedBytes: UInt64 = 0

    public init(socket: StreamSocket, bandwidth: Double? = nil) {
        self.socket = socket
        self.bandwidth = bandwidth
        bufferBytes = MigrationWire.headerBytes + MigrationWire.maxPagesPerFrame * (8 + MigrationWire.pageBytes)
        buffer = .allocate(byteCount: bufferBytes, alignment: 4096)
    }

    deinit { buffer.deallocate() }

    /// Starts a pacing interval (each round is paced on its own, so the
    /// time spent harvesting between rounds is not banked as credit).
    public func restartPacing() {
        paceStart = Stopwatch.now()
        pacedBytes = 0
    }

    /// Queues test page `index` (read from `memory` now), sending a frame when full.
    public func queuePage(_ index: UInt64, from memory: GuestSpan) throws(HostError) {
        buffer.storeBytes(of: index.littleEndian, toByteOffset: used, as: UInt64.self)
        memory.copy(from: Int(index) * MigrationWire.pageBytes, count: MigrationWire.pageBytes, to: buffer + used + 8)
        used += 8 + MigrationWire.pageBytes
        queued += 1
        if queued == MigrationWire.maxPagesPerFrame { try flushPages() }
    }

    /// Sends the queued pages as one PAGES frame.
    public func flushPages() throws(HostError) {
        guard queued > 0 else { return }
        // Ctrl-C ends a long round at the next frame, not at its end.
        if Interrupts.shared.requested { throw HostError("interrupted") }
        let header = MigrationWire.header(.pages, count: UInt32(queued), length: used - MigrationWire.headerBytes)
        header.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        try socket.send(buffer, count: used)
        account(used)
        pagesSent += UInt64(queued)
        queued = 0
        used = MigrationWire.headerBytes
    }

    /// Tells the destination the migration is off (pages still queued are dropped).
    public func cancel() throws(HostError) {
        queued = 0
        used = MigrationWire.headerBytes
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
        let socket = socket
        let got = try bytes.withUnsafeMutableBytes { raw throws in try socket.receive(into: raw.baseAddress!, count: raw.count) }
        guard got else { return nil }
        return try MigrationWire.parseHeader(bytes, maxSystemBytes: maxSystemBytes)
    }

    /// The payload of a (non-PAGES) frame whose header was just read.
    public func receivePayload(_ header: MigrationWire.Header) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(header.length))
        guard !bytes.isEmpty else { return bytes }
        let socket = socket
        let got = try bytes.withUnsafeMutableBytes { raw throws in try socket.receive(into: raw.baseAddress!, count: raw.count) }
        guard got else { throw HostError("the migration stream ended in the middle of a \(header.kind) frame") }
        return bytes
    }

    /// Reads a PAGES frame's records into `memory`, one page at a time: a
    /// page number beyond it ends the stream before its bytes are read.
    /// Returns the page numbers received.
    public func receivePages(_ header: MigrationWire.Header, into memory: GuestSpan, record: (UInt64) -> Void) throws {
        let pages = UInt64(memory.bytes / MigrationWire.pageBytes)
        var index: UInt64 = 0
        for _ in 0..<header.count {
            guard try socket.receive(into: &index, count: 8) else { throw HostError("the migration stream ended inside a PAGES frame") }
            let page = UInt64(littleEndian: index)
            guard page < pages else {
                throw MigrationWireError("page \(page) is outside guest memory (\(pages) pages): refused before writing it")
            }
            guard try socket.receive(into: buffer, count: MigrationWire.pageBytes) else { throw HostError("the migration stream ended inside a page") }
            memory.copy(into: Int(page) * MigrationWire.pageBytes, from: buffer, count: MigrationWire.pageBytes)
            record(page)
        }
    }
}
