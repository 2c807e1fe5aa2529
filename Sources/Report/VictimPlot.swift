import Scenarios

/// The TCP victim over time: each flow's throughput (Gbit/s, averaged over
/// 10 ms so a long run stays readable) through the windows back to back,
/// the windows as bands, and marks inside them (teardown's steps).
enum VictimPlot {
    static let averageSlots = 10

    /// One wide panel per run that had flows; `marks` gives, per run and
    /// window, the seconds into the window worth a line (and its name).
    static func panels(_ runs: [(label: String, flows: [FlowRecord])],
                       marks: @escaping (String, String) -> [(seconds: Double, name: String)] = { _, _ in [] }) -> [ModelPlot.Panel] {
        runs.filter { !$0.flows.isEmpty }.map { run in
            ModelPlot.Panel(wide: true, height: 230) { svg, frame in draw(&svg, frame, run.label, run.flows, marks: { marks(run.label, $0) }) }
        }
    }

    static func draw(_ svg: inout SVG, _ frame: Charts.Frame, _ label: String, _ flows: [FlowRecord], marks: (String) -> [(seconds: Double, name: String)]) {
        Charts.frame(&svg, frame, title: "TCP over loopback through the windows (\(label)): Gbit/s, \(averageSlots) ms averages")
        guard let first = flows.first else { return }
        let slot = first.windows.first?.slotSeconds ?? 0.001
        let total = Double(first.windows.reduce(0) { $0 + $1.slotBytes.count }) * slot
        let series = flows.map { flow in
            points(flow.windows.flatMap(\.slotBytes), slotSeconds: slot).map { (seconds: $0.seconds, gbit: $0.bytesPerSecond * 8 / 1e9) }
        }
        let peak = max(1, series.joined().map(\.gbit).max() ?? 1)
        let x = Charts.Scale(low: 0, high: max(total, slot), log: false, from: frame.left, to: frame.right)
        let y = Charts.Scale(low: 0, high: peak * 1.1, log: false, from: frame.bottom, to: frame.top + 20)
        var start = 0.0
        for (index, window) in first.windows.enumerated() {
            let end = start + Double(window.slotBytes.count) * slot
            if index % 2 == 1 { svg.rect(x.map(start), frame.top + 20, max(0, x.map(end) - x.map(start)), frame.bottom - frame.top - 20, fill: "#f0f0f0") }
            svg.text(x.map(start) + 4, frame.top + 32, window.name, size: 11, fill: "#555")
            for mark in marks(window.name) where mark.seconds > 0 && start + mark.seconds < end {
                svg.line(x.map(start + mark.seconds), frame.top + 20, x.map(start + mark.seconds), frame.bottom, stroke: "#999", width: 1)
                svg.text(x.map(start + mark.seconds) + 3, frame.top + 46, mark.name, size: 10, fill: "#777")
            }
            start = end
        }
        for (index, points) in series.enumerated() {
            let path = points.map { "\(SVG.number(x.map($0.seconds))),\(SVG.number(y.map($0.gbit)))" }.joined(separator: " ")
            svg.polyline(path, stroke: Charts.palette[index % Charts.palette.count])
        }
        Charts.xAxis(&svg, frame, x, unit: .seconds, label: "time through the windows")
        Charts.yAxis(&svg, frame, y, unit: .count, label: "Gbit/s")
        Charts.legend(&svg, frame, flows.map { "\($0.flow) (CPU \($0.cpu))" })
    }

    /// Throughput averaged over `averageSlots` slots, at each group's middle.
    static func points(_ slots: [UInt64], slotSeconds: Double) -> [(seconds: Double, bytesPerSecond: Double)] {
        stride(from: 0, to: slots.count, by: averageSlots).map { start in
            let group = slots[start..<min(slots.count, start + averageSlots)]
            return ((Double(start) + Double(group.count) / 2) * slotSeconds, Double(group.reduce(0, +)) / (Double(group.count) * slotSeconds))
        }
    }
}
