import Glibc
import Synchronization

/// A bulk TCP stream over loopback, sender and receiver threads pinned to
/// one CPU: the victim the seeds' users measured ("the teardown causes TCP
/// throughput to drop from 9.5Gbps to about 2Gbps"). The sender writes
/// large buffers as a bulk flow does; the receiver counts the bytes it
/// reads into fixed time slots (CLOCK_MONOTONIC), so the throughput of any
/// window is the slots inside it. Unlike a probe thread's gaps, this feels
/// softirq and wakeup latency too, as a real flow does.
public final class LoopbackFlow: @unchecked Sendable {
    // @unchecked: only the receiver thread writes `slots`, publishing each
    // count with a release store of `received`; readers load it acquiring
    // after stop() joined the threads (or tolerate a slot still filling).
    public let cpu: Int
    public let slotNanos: UInt64
    public let capacity: Int
    private let slots: UnsafeMutablePointer<UInt64>
    private let received = Atomic<UInt64>(0)
    private let counted = Atomic<UInt64>(0)
    private let stopping = Atomic<Bool>(false)
    /// While set, the receiver reads without counting into slots (a planted fault).
    private let ignoring = Atomic<Bool>(false)
    private var startNanos: UInt64 = 0
    private var sender: JoinableThread?
    private var receiver: JoinableThread?
    private var sendFD: Int32 = -1
    private var receiveFD: Int32 = -1
    static let bufferBytes = 256 << 10

    /// Slots of `slotSeconds` for up to `seconds` of flow.
    public init(cpu: Int, slotSeconds: Double, seconds: Double) {
        self.cpu = cpu
        slotNanos = UInt64(max(1e-5, slotSeconds) * 1e9)
        capacity = max(1, Int(min(seconds, 86_400) * 1e9 / Double(slotNanos)) + 1)
        slots = .allocate(capacity: capacity)
        slots.initialize(repeating: 0, count: capacity)
    }

    deinit {
        stop()
        slots.deallocate()
    }

    /// Connects the two ends over 127.0.0.1 and starts both threads. A host
    /// without loopback TCP (no `lo`, a firewall) throws, with the reason.
    public func start() throws(HostError) {
        let (client, server) = try LoopbackFlow.connectedPair()
        sendFD = client
        receiveFD = server
        startNanos = Stopwatch.now()
        do {
            receiver = try JoinableThread(pinTo: cpu) { [self] in receive() }
            sender = try JoinableThread(pinTo: cpu) { [self] in send() }
        } catch {
            stop()
            throw HostError("TCP victim threads on CPU \(cpu): \(error)")
        }
    }

    /// Stops both threads (shutting the sockets down wakes them) and joins them.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        if sendFD >= 0 { shutdown(sendFD, Int32(SHUT_RDWR)) }
        if receiveFD >= 0 { shutdown(receiveFD, Int32(SHUT_RDWR)) }
        sender?.join()
        receiver?.join()
        sender = nil
        receiver = nil
        for fd in [sendFD, receiveFD] where fd >= 0 { close(fd) }
        sendFD = -1
        receiveFD = -1
    }

    /// The receiver reads but does not count (the fault the tests plant).
    public func ignore(_ on: Bool) { ignoring.store(on, ordering: .relaxed) }

    private func send() {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: LoopbackFlow.bufferBytes, alignment: 4096)
        defer { buffer.deallocate() }
        memset(buffer, 0x5A, LoopbackFlow.bufferBytes)
        while !stopping.load(ordering: .relaxed) {
            if Glibc.send(sendFD, buffer, LoopbackFlow.bufferBytes, Int32(MSG_NOSIGNAL)) <= 0 && errno != EINTR { break }
        }
    }

    private func receive() {
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: LoopbackFlow.bufferBytes, alignment: 4096)
        defer { buffer.deallocate() }
        while !stopping.load(ordering: .relaxed) {
            let got = recv(receiveFD, buffer, LoopbackFlow.bufferBytes, 0)
            if got <= 0 {
                if got < 0 && errno == EINTR { continue }
                break
            }
            let slot = Int((Stopwatch.now() &- startNanos) / slotNanos)
            if !ignoring.load(ordering: .relaxed), slot < capacity {
                slots[slot] &+= UInt64(got)
                counted.wrappingAdd(UInt64(got), ordering: .releasing)
            }
            received.wrappingAdd(UInt64(got), ordering: .releasing)
        }
    }

    /// Every byte the receiver read, and those it counted into slots.
    public var bytesReceived: UInt64 { received.load(ordering: .acquiring) }
    public var bytesCounted: UInt64 { counted.load(ordering: .acquiring) }

    /// The bytes of every whole slot inside [start, end) (Stopwatch.now()
    /// nanoseconds); partial slots at the edges are left out.
    public func slotBytes(from start: UInt64, to end: UInt64) -> [UInt64] {
        guard start >= startNanos, end > start else { return [] }
        let first = Int((start - startNanos + slotNanos - 1) / slotNanos)
        let last = min(capacity, Int((end - startNanos) / slotNanos))
        return first < last ? (first..<last).map { slots[$0] } : []
    }

    /// Each whole slot's start (seconds since the flow began) and bytes, up to now.
    public func allSlots(until end: UInt64) -> [(seconds: Double, bytes: UInt64)] {
        let last = min(capacity, Int((end &- startNanos) / slotNanos))
        return (0..<max(0, last)).map { (Double($0) * Double(slotNanos) / 1e9, slots[$0]) }
    }

    public var startedAt: UInt64 { startNanos }

    /// A listening socket on 127.0.0.1, a client connected to it, the accepted end.
    static func connectedPair() throws(HostError) -> (client: Int32, server: Int32) {
        func fail(_ what: String) -> HostError { HostError("loopback TCP for the victim: \(what) failed: \(String(cString: strerror(errno)))") }
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw fail("socket") }
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0 else { throw fail("bind 127.0.0.1") }
        guard listen(listener, 1) == 0 else { throw fail("listen") }
        let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        guard named == 0 else { throw fail("getsockname") }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard client >= 0 else { throw fail("socket") }
        let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
        guard connected == 0 else {
            let error = fail("connect to 127.0.0.1:\(UInt16(bigEndian: address.sin_port))")
            close(client)
            throw error
        }
        let server = accept(listener, nil, nil)
        guard server >= 0 else {
            let error = fail("accept")
            close(client)
            throw error
        }
        _ = fcntl(server, F_SETFD, FD_CLOEXEC)
        return (client, server)
    }
}
