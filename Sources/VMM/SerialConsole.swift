import Glibc

/// Collects bytes the guests write to port 0x3F8, one line buffer per vCPU,
/// and emits whole lines so that many vCPUs never interleave mid-line.
public final class SerialConsole: Sendable {
    public typealias Sink = @Sendable (_ vcpu: Int, _ line: String) -> Void

    private let buffers: Locked<[Int: [UInt8]]> = Locked([:])
    private let sink: Sink

    public init(sink: @escaping Sink = SerialConsole.standardOutput) { self.sink = sink }

    public static let standardOutput: Sink = { _, line in
        let text = line + "\n"
        _ = text.withCString { Glibc.write(STDOUT_FILENO, $0, strlen($0)) }
    }

    /// Bytes a vCPU wrote to the serial port; whole lines go to the sink.
    public func write(vcpu: Int, bytes: [UInt8]) {
        var lines: [String] = []
        buffers.withLock { all in
            var buffer = all[vcpu] ?? []
            for byte in bytes {
                if byte == UInt8(ascii: "\n") {
                    lines.append(String(decoding: buffer, as: UTF8.self))
                    buffer.removeAll(keepingCapacity: true)
                } else {
                    buffer.append(byte)
                }
            }
            all[vcpu] = buffer
        }
        for line in lines { sink(vcpu, line) }
    }

    /// Emits unterminated output at the end of a run.
    public func flush() {
        let pending = buffers.withLock { all in
            defer { all.removeAll() }
            return all.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
        }
        for (vcpu, bytes) in pending { sink(vcpu, String(decoding: bytes, as: UTF8.self)) }
    }
}
