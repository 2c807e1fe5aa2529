@testable import Scenarios
import Testing
import VMM

/// The migration stream's codec: what a hostile stream can and cannot make
/// the destination do, and the pieces the two ends exchange.
@Suite(.timeLimit(.minutes(1)))
struct MigrationWireTests {
    @Test func aReaderRunningPastTheEndThrowsInsteadOfTrapping() {
        var reader = WireReader([1, 2, 3])
        #expect(throws: MigrationWireError.self) { try reader.u64() }
        var counts = WireReader([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F])
        #expect(throws: MigrationWireError.self) { try counts.count(max: 4096, of: "MSRs") }
    }

    @Test func headersAreBoundedByTheirKind() throws {
        let ok = try MigrationWire.parseHeader(MigrationWire.header(.pages, count: 2, length: 2 * 4104), maxSystemBytes: 0)
        #expect(ok.kind == .pages && ok.count == 2)
        #expect(throws: MigrationWireError.self) { try MigrationWire.parseHeader(MigrationWire.header(.pages, count: 2, length: 2 * 4104 + 1), maxSystemBytes: 0) }
        #expect(throws: MigrationWireError.self) { try MigrationWire.parseHeader(MigrationWire.header(.pages, count: 0, length: 0), maxSystemBytes: 0) }
        #expect(throws: MigrationWireError.self) { try MigrationWire.parseHeader(MigrationWire.header(.system, length: 4096 + 9), maxSystemBytes: 4096) }
        #expect(throws: MigrationWireError.self) { try MigrationWire.parseHeader(MigrationWire.header(.state, length: MigrationWire.maxMetadataBytes + 1), maxSystemBytes: 0) }
        var unknown = MigrationWire.header(.hello, length: 0)
        unknown[0] = 99
        #expect(throws: MigrationWireError.self) { try MigrationWire.parseHeader(unknown, maxSystemBytes: 0) }
    }

    @Test func aHelloRoundTripsAndOutOfBoundsFieldsAreRefused() throws {
        let hello = MigrationHello(vcpus: 2, slots: 1, testMemory: 8 << 20, systemSize: 4 << 20, backing: .anonymousTHP, tscKHz: 2_000_000,
                                   afterSeconds: 0.5, digest: true, bootID: "b", structSizes: MigrationHello.localStructSizes)
        #expect(try MigrationHello.decode(hello.encode()) == hello)
        var zeroMemory = hello
        zeroMemory.testMemory = 0
        #expect(throws: MigrationWireError.self) { try MigrationHello.decode(zeroMemory.encode()) }
        var fastTSC = hello
        fastTSC.tscKHz = .max
        #expect(throws: MigrationWireError.self) { try MigrationHello.decode(fastTSC.encode()) }
        var nan = hello
        nan.afterSeconds = .nan
        #expect(throws: MigrationWireError.self) { try MigrationHello.decode(nan.encode()) }
        #expect(throws: MigrationWireError.self) { try MigrationHello.decode(Array(hello.encode().dropLast())) }
    }

    /// Another host's stream with a hostile stop time and the fastest TSC
    /// allowed: the continued TSC is computed, not trapped on.
    @Test func aContinuedTSCNeverOverflows() {
        let hello = MigrationHello(vcpus: 1, slots: 1, testMemory: 4096, systemSize: 4096, backing: .anonymous, tscKHz: 10_000_000,
                                   afterSeconds: 0, digest: false, bootID: "another host", structSizes: [])
        for stop in [UInt64(0), .max] {
            let state = SwitchoverState(vcpus: [], tscOffset: 0, stopGuestTSC: .max, stopUnixNanos: stop, stopMonotonicNanos: 0)
            _ = MigrationDestination.continuedTSCOffset(state, hello: hello)
        }
    }

    @Test func theDestinationsReportRoundTrips() throws {
        var report = DestinationReport()
        report.resumeTSC = 10
        report.endTSC = 20
        report.msrsRefused = [0x4b56_4d06]
        report.mismatchedPages = 1
        report.examples = [[3, 7, 6]]
        report.digestChecked = true
        report.tscMethod = "KVM_VCPU_TSC_OFFSET"
        report.vcpus = [.init(writes: 5, counterSum: 5, mismatches: 0, firstBad: .max, tscBackwards: 0, outcome: "finished")]
        report.timelines = [GuestTimeline(firstSlot: 4, work: [1, 2], stalls: [.init(endTSC: 9, cycles: 3)], stallsLost: 1)]
        #expect(try DestinationReport.decode(report.encode()) == report)
    }

    /// The slot the switchover fell in was counted by both ends; the
    /// guest's count ran on, so the larger is the whole slot.
    @Test func timelinesJoinAcrossTheSwitchover() {
        let source = GuestTimeline(firstSlot: 10, work: [5, 5, 2], stalls: [.init(endTSC: 1, cycles: 1)])
        let destination = GuestTimeline(firstSlot: 12, work: [4, 5], stalls: [.init(endTSC: 2, cycles: 1)], stallsLost: 1)
        let joined = source.joined(with: destination)
        #expect(joined.firstSlot == 10)
        #expect(joined.work == [5, 5, 4, 5])
        #expect(joined.stalls.count == 2 && joined.stallsLost == 1)
        #expect(joined.work(in: 9) == 0 && joined.work(in: 14) == 0)
    }

    @Test func memoryDigestsDecodeOnlyForTheRightPageCount() throws {
        let digest = MemoryDigest(digest: 42, counters: [1, 2, 3])
        #expect(try MemoryDigest.decode(digest.encode(), pages: 3) == digest)
        #expect(throws: MigrationWireError.self) { try MemoryDigest.decode(digest.encode(), pages: 4) }
    }
}
