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

@Suite struct StatsParsingTests {
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
