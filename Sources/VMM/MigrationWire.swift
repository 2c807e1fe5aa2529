/// kvmlab's migration stream: frames of {u32 kind, u32 count, u64 length}
/// and a payload, little-endian. The destination treats every byte as
/// hostile: each frame's length is bounded by its kind before anything is
/// read, every page number is checked against guest memory before its 4 KiB
/// are read into it, and a frame that breaks a rule ends the stream with one
/// line naming the rule (MigrationWireError).
public enum FrameKind: UInt32, Sendable, CaseIterable {
    // Source → destination.
    case hello = 1
    case pages = 2
    case system = 3
    case roundEnd = 4
    case state = 5
    case digest = 6
    case cancel = 7
    // Destination → source.
    case ready = 16
    case resumed = 17
    case result = 18
}

public struct MigrationWireError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public enum MigrationWire {
    public static let magic: [UInt8] = Array("KVMLABMG".utf8)
    public static let version: UInt32 = 1
    public static let headerBytes = 16
    public static let pageBytes = 4096
    /// A PAGES frame carries at most this many pages: their u64 numbers
    /// first, then their 4 KiB each, in the same order.
    public static let maxPagesPerFrame = 1024
    /// Any other frame's payload is at most this long.
    public static let maxMetadataBytes = 64 << 20

    public struct Header: Sendable, Equatable {
        public let kind: FrameKind
        public let count: UInt32
        public let length: UInt64
    }

    public static func header(_ kind: FrameKind, count: UInt32 = 0, length: Int) -> [UInt8] {
        var writer = WireWriter()
        writer.u32(kind.rawValue)
        writer.u32(count)
        writer.u64(UInt64(length))
        return writer.bytes
    }

    /// Checks a received header against the frame rules; `maxSystemBytes`
    /// bounds a SYSTEM frame (the destination's system memory).
    public static func parseHeader(_ bytes: [UInt8], maxSystemBytes: Int) throws(MigrationWireError) -> Header {
        var reader = WireReader(bytes)
        let rawKind = try reader.u32()
        let count = try reader.u32()
        let length = try reader.u64()
        guard let kind = FrameKind(rawValue: rawKind) else {
            throw MigrationWireError("unknown frame kind \(rawKind): not a kvmlab migration stream, or a newer one")
        }
        switch kind {
        case .pages:
            guard count >= 1, count <= UInt32(maxPagesPerFrame) else {
                throw MigrationWireError("a PAGES frame with \(count) pages (1 to \(maxPagesPerFrame) allowed)")
            }
            guard length == UInt64(count) * UInt64(8 + pageBytes) else {
                throw MigrationWireError("a PAGES frame of \(count) pages must be \(UInt64(count) * UInt64(8 + pageBytes)) bytes, not \(length)")
            }
        case .system:
            guard length >= 8, length <= UInt64(maxSystemBytes) + 8 else {
                throw MigrationWireError("a SYSTEM frame of \(length) bytes (at most \(maxSystemBytes + 8))")
            }
        default:
            guard length <= UInt64(maxMetadataBytes) else {
                throw MigrationWireError("a \(kind) frame of \(length) bytes (at most \(maxMetadataBytes))")
            }
        }
        return Header(kind: kind, count: count, length: length)
    }
}

/// Little-endian encoding of a frame's fields.
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    public init() {}

    public mutating func u8(_ value: UInt8) { bytes.append(value) }
    public mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func i64(_ value: Int64) { u64(UInt64(bitPattern: value)) }
    public mutating func f64(_ value: Double) { u64(value.bitPattern) }
    public mutating func raw(_ data: [UInt8]) { bytes.append(contentsOf: data) }
    /// A length-prefixed blob.
    public mutating func blob(_ data: [UInt8]) {
        u64(UInt64(data.count))
        raw(data)
    }
    /// A kernel struct, as its bytes.
    public mutating func value<T>(_ value: T) { withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) } }
    public mutating func string(_ text: String) { blob(Array(text.utf8)) }
}

/// Reads what WireWriter wrote; running past the end is an error, never a trap.
public struct WireReader: Sendable {
    private let bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var remaining: Int { bytes.count - offset }

    public mutating func raw(_ count: Int) throws(MigrationWireError) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else {
            throw MigrationWireError("a frame ends early: \(count) more bytes wanted at offset \(offset), \(remaining) left")
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    public mutating func u8() throws(MigrationWireError) -> UInt8 { try raw(1).first! }

    public mutating func u32() throws(MigrationWireError) -> UInt32 {
        try raw(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    public mutating func u64() throws(MigrationWireError) -> UInt64 {
        try raw(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }

    public mutating func i64() throws(MigrationWireError) -> Int64 { Int64(bitPattern: try u64()) }
    public mutating func f64() throws(MigrationWireError) -> Double { Double(bitPattern: try u64()) }

    /// A count that sizes what follows, bounded so a hostile one cannot make us allocate.
    public mutating func count(max: Int, of what: String) throws(MigrationWireError) -> Int {
        let value = try u64()
        guard value <= UInt64(max) else { throw MigrationWireError("\(value) \(what) in a frame (at most \(max))") }
        return Int(value)
    }

    public mutating func blob(max: Int, of what: String) throws(MigrationWireError) -> [UInt8] {
        Array(try raw(try count(max: max, of: "bytes of " + what)))
    }

    /// A kernel struct of exactly its size.
    public mutating func value<T>(_ type: T.Type, zero: T) throws(MigrationWireError) -> T {
        let data = try raw(MemoryLayout<T>.size)
        var result = zero
        withUnsafeMutableBytes(of: &result) { target in data.withUnsafeBytes { target.copyMemory(from: $0) } }
        return result
    }

    public mutating func string(max: Int = 4096) throws(MigrationWireError) -> String {
        String(decoding: try blob(max: max, of: "text"), as: UTF8.self)
    }
}
