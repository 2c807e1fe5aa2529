import Glibc

/// One statistic as the binary stats fd describes it.
public struct StatDescriptor: Sendable, Equatable {
    /// KVM_STATS_TYPE_*: how the value behaves over time.
    public enum Kind: UInt32, Sendable { case cumulative = 0, instant, peak, linearHistogram, logHistogram }

    /// The stat's name, e.g. "pf_fixed".
    public let name: String
    /// KVM_STATS_TYPE_* | KVM_STATS_UNIT_* | KVM_STATS_BASE_*, as the descriptor packs them.
    public let flags: UInt32
    /// The unit's exponent in its base (nanoseconds: -9 in base 10).
    public let exponent: Int16
    /// Number of u64 values (1 for scalars, the bucket count for histograms).
    public let count: Int
    /// Byte offset of the first value inside the data block.
    public let offset: Int
    /// A linear histogram's bucket width (0 for anything else).
    public let bucketSize: UInt32

    /// The type from `flags`; nil for a type this kvmlab does not know.
    public var kind: Kind? { Kind(rawValue: flags & 0xF) }

    /// A histogram's bucket layout; nil for scalars.
    public var histogram: HistogramLayout? {
        guard kind == .logHistogram || kind == .linearHistogram, count > 0 else { return nil }
        return HistogramLayout(logarithmic: kind == .logHistogram, buckets: count, bucketSize: bucketSize, unitFlags: flags >> 4 & 0xF,
                               base: flags >> 8 & 0xF, exponent: exponent)
    }
}

/// Where a histogram stat's buckets begin and end (KVM_STATS_TYPE_LOG_HIST
/// and LINEAR_HIST, Documentation/virt/kvm/api.rst):
///   log:    bucket 0 holds 0, bucket i holds [2^(i-1), 2^i), the last [2^(n-2), ∞);
///   linear: bucket i holds [size·i, size·(i+1)), the last [size·(n-1), ∞).
/// Values are integers in the stat's unit, so a bucket's inclusive upper
/// bound is its end less one.
public struct HistogramLayout: Sendable, Equatable {
    /// Log2 buckets (LOG_HIST) rather than equal widths (LINEAR_HIST).
    public let logarithmic: Bool
    /// How many buckets, the last open-ended.
    public let buckets: Int
    /// A linear histogram's bucket width in raw units.
    public let bucketSize: UInt32
    /// KVM_STATS_UNIT_*: 0 none, 1 bytes, 2 seconds, 3 cycles, 4 boolean.
    public let unitFlags: UInt32
    /// KVM_STATS_BASE_*: 0 powers of ten, 1 powers of two.
    public let base: UInt32
    /// The unit's exponent in `base`.
    public let exponent: Int16

    /// The SI unit the bounds are given in: seconds, bytes, or a plain count.
    public var unit: String { unitFlags == 2 ? "seconds" : unitFlags == 1 ? "bytes" : "count" }

    /// What one unit of the raw value is in `unit` (ns → 1e-9 s).
    public var scale: Double {
        guard unitFlags == 1 || unitFlags == 2 else { return 1 }
        var value = 1.0
        for _ in 0..<abs(Int(exponent)) { value *= base == 1 ? 2 : 10 }
        return exponent < 0 ? 1 / value : value
    }

    /// Each bucket's inclusive upper bound in `unit`; the last is infinity.
    public var upperBounds: [Double] {
        (0..<buckets).map { index in
            if index == buckets - 1 { return .infinity }
            let end = logarithmic ? (index == 0 ? 1 : Double(UInt64(1) << UInt64(min(index, 63)))) : Double(bucketSize) * Double(index + 1)
            return (end - 1) * scale
        }
    }
}

/// The layout of a stats fd: `struct kvm_stats_header`, the id string and the
/// descriptors (each 16 bytes plus `name_size` bytes of name).
public struct StatsSchema: Sendable, Equatable {
    /// sizeof(struct kvm_stats_header).
    public static let headerSize = 24
    /// sizeof(struct kvm_stats_desc) before its name.
    public static let descriptorFixedSize = 16

    /// The header's id string (e.g. "kvm-1234" or "kvm-1234/vcpu-0").
    public let id: String
    /// Every stat, in the file's order.
    public let descriptors: [StatDescriptor]
    /// Where the values start in the file.
    public let dataOffset: Int
    /// Bytes from dataOffset that cover every value.
    public let dataSize: Int

    /// A header or descriptor block that does not hold together.
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

    /// Turns a data block into named values (with each histogram's layout).
    public func snapshot(data: [UInt8]) -> StatsSnapshot {
        var values: [String: [UInt64]] = [:]
        var layouts: [String: HistogramLayout] = [:]
        for descriptor in descriptors {
            values[descriptor.name] = (0..<descriptor.count).map { data.u64(at: descriptor.offset + $0 * 8) }
            if let layout = descriptor.histogram { layouts[descriptor.name] = layout }
        }
        return StatsSnapshot(values: values, histograms: layouts)
    }
}

/// Stat values at one moment, by name.
public struct StatsSnapshot: Sendable, Equatable {
    /// Each stat's raw u64 values by name (one for scalars, one per bucket).
    public var values: [String: [UInt64]]
    /// The layout of each histogram stat among `values`.
    public var histograms: [String: HistogramLayout]

    /// A snapshot of raw values (tests build them by hand; StatsFile reads them).
    public init(values: [String: [UInt64]], histograms: [String: HistogramLayout] = [:]) {
        self.values = values
        self.histograms = histograms
    }

    /// A scalar's value (the first element; histograms sum their buckets).
    public subscript(name: String) -> UInt64? {
        guard let entry = values[name] else { return nil }
        return entry.count == 1 ? entry[0] : entry.reduce(0, &+)
    }

    /// The stats it holds, sorted.
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

    /// Each histogram's per-bucket change since `earlier`, for those that moved.
    public func histogramDelta(since earlier: StatsSnapshot) -> [String: StatsHistogram] {
        var result: [String: StatsHistogram] = [:]
        for (name, layout) in histograms {
            guard let now = values[name], let before = earlier.values[name], now.count == before.count, now.count == layout.buckets else { continue }
            let counts = zip(now, before).map { Int64(bitPattern: $0 &- $1) }
            if counts.contains(where: { $0 != 0 }) { result[name] = StatsHistogram(unit: layout.unit, upperBounds: layout.upperBounds, counts: counts) }
        }
        return result
    }

    /// Adds up snapshots (e.g. every vCPU's) name by name.
    public static func sum(_ snapshots: [StatsSnapshot]) -> StatsSnapshot {
        var values: [String: [UInt64]] = [:]
        var layouts: [String: HistogramLayout] = [:]
        for snapshot in snapshots {
            layouts.merge(snapshot.histograms) { first, _ in first }
            for (name, entry) in snapshot.values {
                if let existing = values[name], existing.count == entry.count {
                    values[name] = zip(existing, entry).map { $0 &+ $1 }
                } else {
                    values[name] = entry
                }
            }
        }
        return StatsSnapshot(values: values, histograms: layouts)
    }
}

/// A histogram stat's change over a phase: per-bucket counts and each
/// bucket's inclusive upper bound in SI units (the last infinite).
public struct StatsHistogram: Sendable, Equatable, Codable {
    /// "seconds", "bytes" or "count".
    public let unit: String
    /// Each bucket's inclusive upper bound in `unit`; the last is infinity.
    public let upperBounds: [Double]
    /// Samples per bucket (a delta between two snapshots).
    public let counts: [Int64]

    /// A histogram from its bounds and counts (one count per bound).
    public init(unit: String, upperBounds: [Double], counts: [Int64]) {
        self.unit = unit
        self.upperBounds = upperBounds
        self.counts = counts
    }

    /// Samples in all buckets.
    public var total: Int64 { counts.reduce(0, +) }

    /// The upper bound of the bucket holding quantile `q` (an upper bound on
    /// the true quantile); infinity when it falls in the open last bucket.
    public func quantile(_ q: Double) -> Double? {
        let total = self.total
        guard total > 0 else { return nil }
        var cumulative: Int64 = 0
        for (count, bound) in zip(counts, upperBounds) {
            cumulative += max(0, count)
            if Double(cumulative) >= q * Double(total) { return bound }
        }
        return upperBounds.last
    }
}

/// A VM's or vCPU's binary stats fd: the schema is read once, values on demand.
public final class StatsFile: @unchecked Sendable {
    // @unchecked: immutable after init; reads are pread calls on the fd.
    let fd: FileDescriptor
    /// The descriptors read once when the fd was opened; values are read per snapshot.
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

    /// Every stat this fd describes, in the kernel's order.
    public var names: [String] { schema.descriptors.map(\.name) }

    /// pread of every stat's values from the stats fd; throws if the read fails.
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
