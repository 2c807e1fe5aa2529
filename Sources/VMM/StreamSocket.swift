import Glibc

/// An IPv4 address and port as given on the command line (`ADDR:PORT`).
public struct SocketAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: UInt16

    public init(host: String, port: UInt16) {
        self.host = host
        self.port = port
    }

    /// `ADDR:PORT` or `PORT` (loopback); a clear message, naming the
    /// configuration `field` the text came from, for anything else.
    public init(parsing text: String, field: String) throws(ConfigError) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        let hostPart = parts.count == 2 ? String(parts[0]) : "127.0.0.1"
        let portPart = parts.count == 2 ? String(parts[1]) : text
        guard parts.count <= 2, let port = UInt16(portPart) else {
            throw ConfigError("\(field: field) \(text): give ADDR:PORT (an IPv4 address and a port 0-65535), e.g. 127.0.0.1:4444")
        }
        var probe = in_addr()
        guard inet_pton(AF_INET, hostPart.isEmpty ? "0.0.0.0" : hostPart, &probe) == 1 else {
            throw ConfigError("\(field: field) \(text): '\(hostPart)' is not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)")
        }
        host = hostPart.isEmpty ? "0.0.0.0" : hostPart
        self.port = port
    }

    public var description: String { "\(host):\(port)" }

    fileprivate func sockaddr() -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        _ = inet_pton(AF_INET, host, &address.sin_addr)
        return address
    }
}

/// A connected TCP stream that sends and receives whole buffers, gives up
/// on a peer that went away, and can be woken from another thread (shutdown)
/// when a run is cancelled.
public final class StreamSocket: @unchecked Sendable {
    // @unchecked: one thread sends and one receives at a time; `fd` is immutable until close.
    public let fd: Int32

    public init(fd: Int32) {
        self.fd = fd
        var on: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        // Room for two whole PAGES frames in flight each way, so the sender
        // reads guest memory while the receiver writes it (the kernel caps
        // this at net.core.wmem_max/rmem_max).
        var bytes = Int32(2 * MigrationWire.maxPagesPerFrame * (8 + MigrationWire.pageBytes))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// A listening socket on `address` (port 0: any free port), CLOEXEC.
    public static func listen(on address: SocketAddress) throws(HostError) -> (fd: Int32, port: UInt16) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listener >= 0 else { throw HostError("socket: \(String(cString: strerror(errno)))") }
        var on: Int32 = 1
        _ = setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        var sockaddr = address.sockaddr()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &sockaddr) { $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { bind(listener, $0, length) } }
        guard bound == 0, Glibc.listen(listener, 1) == 0 else {
            let error = HostError("listen on \(address): \(String(cString: strerror(errno)))")
            close(listener)
            throw error
        }
        _ = withUnsafeMutablePointer(to: &sockaddr) { $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        return (listener, UInt16(bigEndian: sockaddr.sin_port))
    }

    /// Accepts one connection on `listener`, waking every 100 ms to ask
    /// `cancelled`; nil when it said so.
    public static func accept(_ listener: Int32, cancelled: () -> Bool) throws(HostError) -> StreamSocket? {
        while !cancelled() {
            var pollFD = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            let ready = poll(&pollFD, 1, 100)
            if ready < 0 && errno != EINTR { throw HostError("poll on the listening socket: \(String(cString: strerror(errno)))") }
            guard ready > 0 else { continue }
            let fd = Glibc.accept(listener, nil, nil)
            if fd >= 0 {
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return StreamSocket(fd: fd)
            }
            if errno != EINTR && errno != EAGAIN { throw HostError("accept: \(String(cString: strerror(errno)))") }
        }
        return nil
    }

    public static func connect(to address: SocketAddress) throws(HostError) -> StreamSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HostError("socket: \(String(cString: strerror(errno)))") }
        var sockaddr = address.sockaddr()
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        while true {
            let result = withUnsafePointer(to: &sockaddr) { $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) } }
            if result == 0 { return StreamSocket(fd: fd) }
            if errno == EINTR { continue }
            let error = HostError("connect to \(address): \(String(cString: strerror(errno))); is `kvmlab migrate --listen \(address)` running there?")
            close(fd)
            throw error
        }
    }

    /// Writes all `count` bytes; a peer that closed is an error, not SIGPIPE.
    public func send(_ bytes: UnsafeRawPointer, count: Int) throws(HostError) {
        var done = 0
        while done < count {
            let sent = Glibc.send(fd, bytes + done, count - done, Int32(MSG_NOSIGNAL))
            if sent > 0 {
                done += sent
            } else if sent < 0 && errno == EINTR {
                continue
            } else {
                throw HostError("the migration stream broke while sending: \(sent == 0 ? "peer closed" : String(cString: strerror(errno)))")
            }
        }
    }

    public func send(_ bytes: [UInt8]) throws(HostError) {
        var failure: HostError?
        bytes.withUnsafeBytes { raw in
            do throws(HostError) { try send(raw.baseAddress!, count: raw.count) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Reads exactly `count` bytes; false when the peer closed before the
    /// first byte (a clean end), an error when it closed in the middle.
    public func receive(into bytes: UnsafeMutableRawPointer, count: Int) throws(HostError) -> Bool {
        var done = 0
        while done < count {
            let got = recv(fd, bytes + done, count - done, 0)
            if got > 0 {
                done += got
            } else if got < 0 && errno == EINTR {
                continue
            } else if got == 0 && done == 0 {
                return false
            } else {
                throw HostError("the migration stream ended in the middle of a frame (\(done) of \(count) bytes): \(got == 0 ? "peer closed" : String(cString: strerror(errno)))")
            }
        }
        return true
    }

    /// Fills `values` whole from the stream; false when the peer closed
    /// before the first byte, an error when it closed in the middle.
    public func receive<T: BitwiseCopyable>(into values: inout [T]) throws(HostError) -> Bool {
        var failure: HostError?
        let got = values.withUnsafeMutableBytes { raw -> Bool in
            do throws(HostError) { return raw.isEmpty ? true : try receive(into: raw.baseAddress!, count: raw.count) } catch { failure = error; return false }
        }
        if let failure { throw failure }
        return got
    }

    /// Writes every byte the buffers describe (sendmsg, resumed after a
    /// partial write): a frame's header and its pages without copying them.
    public func send(_ buffers: [iovec]) throws(HostError) {
        var pending = buffers[...]
        while let first = pending.first {
            if first.iov_len == 0 { pending = pending.dropFirst(); continue }
            var message = msghdr()
            let sent = pending.withUnsafeBufferPointer { list -> Int in
                message.msg_iov = UnsafeMutablePointer(mutating: list.baseAddress)
                message.msg_iovlen = min(list.count, 1024)
                return sendmsg(fd, &message, Int32(MSG_NOSIGNAL))
            }
            if sent < 0 && errno == EINTR { continue }
            guard sent > 0 else {
                throw HostError("the migration stream broke while sending: \(sent == 0 ? "peer closed" : String(cString: strerror(errno)))")
            }
            pending = StreamSocket.advance(pending, by: sent)
        }
    }

    /// Fills every buffer (readv, resumed after a partial read); a peer
    /// that closes first is an error.
    public func receive(_ buffers: [iovec]) throws(HostError) {
        var pending = buffers[...]
        var total = 0
        while let first = pending.first {
            if first.iov_len == 0 { pending = pending.dropFirst(); continue }
            let got = pending.withUnsafeBufferPointer { list in readv(fd, list.baseAddress, Int32(min(list.count, 1024))) }
            if got < 0 && errno == EINTR { continue }
            guard got > 0 else {
                throw HostError("the migration stream ended in the middle of a frame (\(total) bytes into it): \(got == 0 ? "peer closed" : String(cString: strerror(errno)))")
            }
            total += got
            pending = StreamSocket.advance(pending, by: got)
        }
    }

    /// The buffers left after `count` bytes of them were transferred.
    static func advance(_ buffers: ArraySlice<iovec>, by count: Int) -> ArraySlice<iovec> {
        var rest = buffers
        var left = count
        while left > 0, var first = rest.first {
            if left < first.iov_len {
                first.iov_base += left
                first.iov_len -= left
                rest[rest.startIndex] = first
                return rest
            }
            left -= first.iov_len
            rest = rest.dropFirst()
        }
        return rest
    }

    /// Wakes a thread blocked in send or receive (they then fail).
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
}
