import VMM

/// What shares the CPU under test with the work being measured: a probe
/// thread recording its own scheduling gaps, a bulk TCP flow over loopback
/// (the victim the seeds' users reported), or both.
public enum VictimKind: String, CaseIterable, Sendable, Codable {
    case probe, tcp, both

    public var probe: Bool { self != .tcp }
    public var tcp: Bool { self != .probe }
}

/// One flow's bytes per time slot in one window.
public struct FlowWindow: Sendable, Encodable {
    public let name: String
    public let slotSeconds: Double
    public let slotBytes: [UInt64]

    /// Each whole slot's throughput in bytes per second (Prometheus' base unit; tables show Gbit/s).
    public var rates: [Double] { slotBytes.map { Double($0) / slotSeconds } }

    /// The window's throughput: all its bytes over all its slots (nil without slots).
    public var meanRate: Double? { slotBytes.isEmpty ? nil : Double(slotBytes.reduce(0, +)) / (slotSeconds * Double(slotBytes.count)) }
}

/// A TCP flow through a run: where it ran and what it received per window.
public struct FlowRecord: Sendable, Encodable {
    /// "victim" on the CPU under test, or "control" on another.
    public let flow: String
    public let cpu: Int
    public let windows: [FlowWindow]
    /// Every byte the receiver read, and those its slots hold.
    public let bytesReceived: UInt64
    public let bytesCounted: UInt64

    /// Throughput per window (a distribution over slots, value: median) and
    /// each window's throughput (bytes over time) against the first
    /// window's, the idle one: the seeds' "9.5 → 2 Gbps" as one ratio.
    public func metrics(_ labels: [String: String]) -> [Metric] {
        let reference = windows.first?.meanRate
        return windows.flatMap { window -> [Metric] in
            let tags = labels.merging(["window": window.name, "flow": flow]) { $1 }
            var metrics = [Metric("tcp_throughput_bytes_per_second", "A loopback TCP flow's throughput per \(Int(window.slotSeconds * 1e3)) ms slot (value: median)",
                                  unit: .bytesPerSecond, better: .higher, labels: tags, distribution: Distribution(samples: window.rates, bucketBase: 1))]
            if let reference, reference > 0, let mean = window.meanRate {
                metrics.append(Metric("tcp_throughput_ratio", "The window's throughput (bytes over time) against the \(windows[0].name) window's",
                                      unit: .ratio, better: .higher, labels: tags, value: mean / reference))
            }
            return metrics
        }
    }

    /// A window this many slots long (50 ms) must see the flow move: a CPU
    /// shared by a handful of threads gives each some of that. A shorter
    /// one (a THP teardown takes milliseconds) may fall between its turns.
    public static let windowToMove = 50

    /// Every byte read lands in a slot; the flow moved in every window long
    /// enough for it to have had the CPU.
    public func checks(_ prefix: String) -> [CheckRecord] {
        let long = windows.filter { $0.slotBytes.count >= FlowRecord.windowToMove }
        return [CheckRecord.equal("\(prefix)\(flow) TCP flow: its slots add up to the bytes received", expected: bytesReceived, observed: bytesCounted),
                CheckRecord("\(prefix)\(flow) TCP flow: bytes received in every window of \(FlowRecord.windowToMove) ms or more",
                            passed: long.allSatisfy { $0.slotBytes.contains { $0 > 0 } },
                            expected: "> 0 in " + long.map(\.name).joined(separator: ", "),
                            observed: windows.map { "\($0.name) \($0.slotBytes.reduce(0, +)) in \($0.slotBytes.count) ms" }.joined(separator: ", "))]
    }
}

/// The TCP flows of one run: started before its windows, stopped after.
/// Where loopback TCP cannot be had, `note` says why and the run goes on.
final class VictimFlows: @unchecked Sendable {
    // @unchecked: `flows` and `note` are set in init; the teardown thread only calls ignore() (an atomic store), records() runs after it joined.
    static let slotSeconds = 0.001
    private var flows: [(name: String, flow: LoopbackFlow)] = []
    private(set) var note: String?

    init(kind: VictimKind, cpu: Int, controlCPU: Int?, seconds: Double) {
        guard kind.tcp else { return }
        for (name, target) in [("victim", cpu), ("control", controlCPU)] {
            guard let target else { continue }
            let flow = LoopbackFlow(cpu: target, slotSeconds: VictimFlows.slotSeconds, seconds: seconds)
            do {
                try flow.start()
                flows.append((name, flow))
            } catch {
                note = "no TCP victim: \(error)"
                stop()
                flows = []
                return
            }
        }
    }

    /// The planted fault: the victim's receiver stops counting.
    func ignore(_ on: Bool) { flows.first?.flow.ignore(on) }

    func stop() { for entry in flows { entry.flow.stop() } }

    /// Stops the flows and cuts their slots into the windows (start, end in Stopwatch.now() ns).
    func records(_ windows: [(name: String, start: UInt64, end: UInt64)]) -> [FlowRecord] {
        stop()
        return flows.map { entry in
            FlowRecord(flow: entry.name, cpu: entry.flow.cpu,
                       windows: windows.map { FlowWindow(name: $0.name, slotSeconds: VictimFlows.slotSeconds, slotBytes: entry.flow.slotBytes(from: $0.start, to: $0.end)) },
                       bytesReceived: entry.flow.bytesReceived, bytesCounted: entry.flow.bytesCounted)
        }
    }
}
