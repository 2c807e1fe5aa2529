import Glibc

/// One statistic as the binary stats fd describes it.
public struct StatDescriptor: Sendable, Equatable {
    public enum Kind: UInt32, Sendable { case cumulative = 0, instant, peak, linearHistogram, logHistogram }

    public let name: String
    public let flags: UInt32
    public let exponent: Int16
    /// Number of u64 values (1 for scalars, the bucket count for histograms).
    public let count: Int
    /// Byte offset of the first value inside the data block.
    public let offset: Int
    public let bucketSize: UInt32

    public var kind: Kind? { Kind(rawValue: flags & 0xF) }
}

/// The layout of a stats fd: `struct kvm_stats_header`, the id string and the
/// descriptors (each 16 bytes plus `name_size` bytes of name).
public struct StatsSchema: Sendable, Equatable {
    public static let headerSize = 24
    public static let descriptorFixedSize = 16

    public let id: String
    public let descriptors: [StatDescriptor]
    public let dataOffset: Int
    /// Bytes from dataOffset that cover every value.
    public let dataSize: Int

    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Bytes needed from the file's start to parse everything but the values.
    public static func prefixLength(header: [UInt8]) throws(ParseError) -> Int {
        guard header.count >= headerSize else { throw ParseError(description: "stats header is \(header.count) bytes, need \(headerSize)") }
        let nameSize = Int(header.u32(at: 4)), count = Int(header.u32(at: 8))
        let idOffset = Int(header.u32(at: 12)), descOffset = Int(header.u32(at: 16))
        return max(idOffset + nameSize, descOffset + count * (descriptorFixedSize + nameSize))
    }

    /// Parses a buffer holding the file from offset 0 through the descriptors.
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> StatsSchema {
        let needed = try prefixLength(header: bytes)
        guard bytes.count >= needed else { throw ParseError(description: "stats buffer is \(bytes.count) bytes, header says \(needed)") }
        let nameSize = Int(bytes.u32(at: 4)), count = Int(bytes.u32(at: 8))
        let idOffset = Int(bytes.u32(at: 12)), descOffset = Int(bytes.u32(at: 16)), dataOffset = Int(bytes.u32(at: 20))
        guard nameSize > 0 else { throw ParseError(description: "stats header has name_size 0") }
        let stride = descriptorFixedSize + nameSize
        var descriptors: [StatDescriptor] = []
        descriptors.reserveCapacity(count)
        var dataSize = 0
        for index in 0..<count {
            let base = descOffset + index * stride
            let descriptor = StatDescriptor(
                name: bytes.cString(at: base + descriptorFixedSize, max: nameSize),
                flags: bytes.u32(at: base),
                exponent: Int16(bitPattern: bytes.u16(at: base + 4)),
                count: Int(bytes.u16(at: base + 6)),
                offset: Int(bytes.u32(at: base + 8)),
                bucketSize: bytes.u32(at: base + 12))
            dataSize = max(dataSize, descriptor.offset + descriptor.count * 8)
            descriptors.append(descriptor)
        }
        return StatsSchema(id: bytes.cString(at: idOffset, max: nameSize), descriptors: descriptors,
                           dataOffset: dataOffset, dataSize: dataSize)
    }

    /// Turns a data block into named values.
    public func snapshot(data: [UInt8]) -> StatsSnapshot {
        var values: [String: [UInt64]] = [:]
        for descriptor in descriptors {
            values[descriptor.name] = (0..<descriptor.count).map { data.u64(at: descriptor.offset + $0 * 8) }
        }
        return StatsSnapshot(values: values)
    }
}

/// Stat values at one moment, by name.
public struct StatsSnapshot: Sendable, Equatable {
    public var values: [String: [UInt64]]

    public init(values: [String: [UInt64]]) { self.values = values }

    /// A scalar's value (the first element; histograms sum their buckets).
    public subscript(name: String) -> UInt64? {
        guard let entry = values[name] else { return nil }
        return entry.count == 1 ? entry[0] : entry.reduce(0, &+)
    }

    public var names: [String] { values.keys.sorted() }

    /// Per-name change since `earlier` (signed: instant stats can fall).
    public func delta(since earlier: StatsSnapshot) -> [String: Int64] {
        var result: [String: Int64] = [:]
        for name in values.keys {
            guard let now = self[name], let before = earlier[name] else { continue }
            result[name] = Int64(bitPattern: now &- before)
        }
        return result
    }

    /// Adds up snapshots (e.g. every vCPU's) name by name.
    public static func sum(_ snapshots: [StatsSnapshot]) -> StatsSnapshot {
        var values: [String: [UInt64]] = [:]
        for snapshot in snapshots {
            for (name, entry) in snapshot.values {
                if let existing = values[name], existing.count == entry.count {
                    values[name] = zip(existing, entry).map { $0 &+ $1 }
                } else {
                    values[name] = entry
                }
            }
        }
        return StatsSnapshot(values: values)
    }
}

/// A VM's or vCPU's binary stats fd: the schema is read once, values on demand.
public final class StatsFile: @unchecked Sendable {
    // @unchecked: immutable after init; reads are pread calls on the fd.
    let fd: FileDescriptor
    public let schema: StatsSchema

    init(fd: FileDescriptor) throws(KVMError) {
        self.fd = fd
        let header = try StatsFile.read(fd.raw, offset: 0, count: StatsSchema.headerSize)
        do {
            let prefix = try StatsFile.read(fd.raw, offset: 0, count: StatsSchema.prefixLength(header: header))
            schema = try StatsSchema.parse(prefix)
        } catch let error as StatsSchema.ParseError {
            throw KVMError("parse KVM stats fd", errno: EINVAL, hint: error.description)
        } catch let error as KVMError {
            throw error
        } catch {
            throw KVMError("parse KVM stats fd", errno: EINVAL)
        }
    }

    public var names: [String] { schema.descriptors.map(\.name) }

    public func snapshot() throws(KVMError) -> StatsSnapshot {
        schema.snapshot(data: try StatsFile.read(fd.raw, offset: schema.dataOffset, count: schema.dataSize))
    }

    static func read(_ fd: Int32, offset: Int, count: Int) throws(KVMError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        let got = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard got == count else { throw KVMError.last("pread(KVM stats fd, \(count) bytes at \(offset))") }
        return buffer
    }
}

extension Array where Element == UInt8 {
    func u16(at offset: Int) -> UInt16 { UInt16(self[offset]) | UInt16(self[offset + 1]) << 8 }
    func u32(at offset: Int) -> UInt32 { (0..<4).reduce(0) { $0 | UInt32(self[offset + $1]) << (8 * UInt32($1)) } }
    func u64(at offset: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(self[offset + $1]) << (8 * UInt64($1)) } }
    func cString(at offset: Int, max: Int) -> String {
        let slice = self[offset..<Swift.min(offset + max, count)]
        return String(decoding: slice.prefix { $0 != 0 }, as: UTF8.self)
    }
}
