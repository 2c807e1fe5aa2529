import Testing
@testable import KVM

/// A stats file built byte by byte the way the kernel lays it out.
func syntheticStatsFile(names: [String], values: [[UInt64]], nameSize: Int = 48) -> (prefix: [UInt8], data: [UInt8]) {
    func u32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    func u16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xFF), UInt8(v >> 8)] }
    let idOffset = 24, descOffset = idOffset + nameSize
    let descSize = 16 + nameSize
    let dataOffset = descOffset + names.count * descSize
    var bytes = u32(0) + u32(UInt32(nameSize)) + u32(UInt32(names.count)) + u32(UInt32(idOffset)) + u32(UInt32(descOffset)) + u32(UInt32(dataOffset))
    bytes += Array("kvm-1234/vcpu-0".utf8) + [UInt8](repeating: 0, count: nameSize - 15)
    var offset = 0
    var data: [UInt8] = []
    for (name, entry) in zip(names, values) {
        let flags: UInt32 = entry.count > 1 ? 4 : 0  // log histogram vs cumulative
        bytes += u32(flags) + u16(0) + u16(UInt16(entry.count)) + u32(UInt32(offset)) + u32(0)
        bytes += Array(name.utf8) + [UInt8](repeating: 0, count: nameSize - name.utf8.count)
        for value in entry { data += (0..<8).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
        offset += entry.count * 8
    }
    return (bytes, data)
}

@Suite(.timeLimit(.minutes(1))) struct StatsParsingTests {
    @Test func parsesHeaderDescriptorsAndValues() throws {
        let file = syntheticStatsFile(names: ["pages_4k", "pf_fixed", "halt_poll_hist"], values: [[17], [40_000], [1, 2, 3]])
        #expect(try StatsSchema.prefixLength(header: Array(file.prefix[0..<24])) == file.prefix.count)
        let schema = try StatsSchema.parse(file.prefix)
        #expect(schema.id == "kvm-1234/vcpu-0")
        #expect(schema.descriptors.map(\.name) == ["pages_4k", "pf_fixed", "halt_poll_hist"])
        #expect(schema.descriptors[2].kind == .logHistogram)
        #expect(schema.dataSize == file.data.count)
        let snapshot = schema.snapshot(data: file.data)
        #expect(snapshot["pages_4k"] == 17)
        #expect(snapshot["pf_fixed"] == 40_000)
        #expect(snapshot["halt_poll_hist"] == 6)
        #expect(snapshot["missing"] == nil)
    }

    @Test func deltasAndSumsWorkByName() {
        let a = StatsSnapshot(values: ["x": [5], "y": [10]])
        let b = StatsSnapshot(values: ["x": [8], "y": [4]])
        #expect(b.delta(since: a) == ["x": 3, "y": -6])
        #expect(StatsSnapshot.sum([a, b])["x"] == 13)
    }

    @Test func truncatedBuffersAreErrorsNotCrashes() {
        let file = syntheticStatsFile(names: ["a"], values: [[1]])
        #expect(throws: StatsSchema.ParseError.self) { try StatsSchema.parse(Array(file.prefix.prefix(30))) }
        #expect(throws: StatsSchema.ParseError.self) { try StatsSchema.parse([1, 2, 3]) }
    }
}

/// Histogram stats: the descriptor's type, unit and exponent give each
/// bucket's bounds; deltas keep the buckets.
@Suite(.timeLimit(.minutes(1))) struct StatsHistogramTests {
    /// halt_wait_hist as the kernel describes it: LOG_HIST (4), unit
    /// seconds (2 << 4), base 10, exponent -9 (nanoseconds), 32 buckets.
    static let logHist = StatDescriptor(name: "halt_wait_hist", flags: 4 | 2 << 4, exponent: -9, count: 32, offset: 0, bucketSize: 0)

    @Test func aLogHistogramsBucketsAreLog2() throws {
        let layout = try #require(Self.logHist.histogram)
        #expect(layout.logarithmic && layout.unit == "seconds" && layout.buckets == 32)
        let bounds = layout.upperBounds
        // Bucket 0 holds 0; bucket i holds [2^(i-1), 2^i) ns; the last is open.
        #expect(bounds[0] == 0 && abs(bounds[1] - 1e-9) < 1e-18 && abs(bounds[10] - 1023e-9) < 1e-15)
        #expect(bounds[31] == .infinity && abs(bounds[30] - Double((1 << 30) - 1) * 1e-9) < 1e-12)
        #expect(StatDescriptor(name: "pf_fixed", flags: 0, exponent: 0, count: 1, offset: 0, bucketSize: 0).histogram == nil)
    }

    @Test func aLinearHistogramsBucketsAreEven() throws {
        let layout = try #require(StatDescriptor(name: "x_hist", flags: 3, exponent: 0, count: 4, offset: 0, bucketSize: 10).histogram)
        #expect(!layout.logarithmic && layout.unit == "count" && layout.upperBounds == [9, 19, 29, .infinity])
    }

    @Test func deltasKeepBucketsAndQuantilesFindTheirBucket() throws {
        let layout = try #require(Self.logHist.histogram)
        let zero = [UInt64](repeating: 0, count: 32)
        var later = zero
        later[3] = 2   // [4, 8) ns
        later[20] = 8  // [2^19, 2^20) ns, about 0.5-1 ms
        let before = StatsSnapshot(values: ["halt_wait_hist": zero], histograms: ["halt_wait_hist": layout])
        let after = StatsSnapshot(values: ["halt_wait_hist": later], histograms: ["halt_wait_hist": layout])
        let delta = try #require(after.histogramDelta(since: before)["halt_wait_hist"])
        #expect(delta.total == 10 && delta.counts[20] == 8)
        #expect(delta.quantile(0.1) == layout.upperBounds[3] && delta.quantile(0.5) == layout.upperBounds[20])
        #expect(before.histogramDelta(since: before).isEmpty)
        // Summing vCPUs keeps the layout.
        #expect(StatsSnapshot.sum([after, after]).histograms["halt_wait_hist"] == layout)
    }

    @Test func aSyntheticFilesHistogramIsDecoded() throws {
        let file = syntheticStatsFile(names: ["pf_fixed", "halt_poll_hist"], values: [[7], [1, 2, 3]])
        let schema = try StatsSchema.parse(file.prefix)
        let snapshot = schema.snapshot(data: file.data)
        #expect(snapshot.histograms["halt_poll_hist"]?.buckets == 3 && snapshot.histograms["pf_fixed"] == nil)
    }
}
