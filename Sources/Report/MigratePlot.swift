import Scenarios
import VMM

/// migrate's picture: the guest's throughput over the whole migration, as
/// it counted it, per kind of vCPU against its baseline, with the rounds
/// as bands (bytes sent, dirty rate), the switchover gap marked and the
/// throttle as a line; then pages sent and dirtied per round; then the
/// model's panels.
public enum MigratePlot {
    /// At most this many points per line: the file stays small whatever the run's length.
    static let maxPoints = 600

    public static func svg(_ result: MigrateResult, host: HostFingerprint) -> String {
        let panels = [ModelPlot.Panel(wide: true, height: 300) { svg, frame in timeline(&svg, frame, result) },
                      ModelPlot.Panel(wide: true, height: 240) { svg, frame in rounds(&svg, frame, result) }]
        return ModelPlot.svg(result.experiment, host: host, extra: panels, title: result.outcome)
    }

    static func timeline(_ svg: inout SVG, _ frame: Charts.Frame, _ result: MigrateResult) {
        Charts.frame(&svg, frame, title: "The guest's throughput per vCPU against its baseline (its own TSC), the rounds, the switchover and the throttle")
        let phases = result.guestPhases
        guard let first = phases.first, let last = phases.last, last.end > first.start else { return }
        let seconds = { (tsc: UInt64) in result.seconds(tsc &- first.start) }
        let x = Charts.Scale(low: 0, high: seconds(last.end), log: false, from: frame.left, to: frame.right)
        let y = Charts.Scale(low: 0, high: 1.3, log: false, from: frame.bottom, to: frame.top + 34)
        drawPhaseBands(&svg, frame, result, x: x, seconds: seconds)
        var names: [String] = []
        for dirtying in [true, false] where dirtying || result.config.idleVCPUs > 0 {
            guard let points = throughputLine(result, dirtying: dirtying, from: first.start, to: last.end, x: x, y: y, seconds: seconds) else { continue }
            svg.polyline(points, stroke: Charts.palette[names.count])
            names.append(dirtying ? "dirtying vCPUs (pages written)" : "idle vCPUs (compute)")
        }
        if result.config.throttle != nil {
            var points: [String] = []
            for (phase, round) in zip(phases.filter { $0.name.hasPrefix("round") }, result.rounds) {
                points.append("\(SVG.number(x.map(seconds(phase.start)))),\(SVG.number(y.map(round.throttle)))")
                points.append("\(SVG.number(x.map(seconds(phase.end)))),\(SVG.number(y.map(round.throttle)))")
            }
            svg.polyline(points.joined(separator: " "), stroke: Charts.palette[2], width: 2.5)
            names.append("throttle (share of time asleep)")
        }
        Charts.xAxis(&svg, frame, x, unit: .seconds, label: "time since the baseline began")
        Charts.yAxis(&svg, frame, y, unit: .ratio, label: "× baseline")
        Charts.legend(&svg, frame, names)
    }

    /// One band per phase (rounds alternate, the switchover red), each
    /// round labelled with its bytes and dirty rate.
    static func drawPhaseBands(_ svg: inout SVG, _ frame: Charts.Frame, _ result: MigrateResult, x: Charts.Scale, seconds: (UInt64) -> Double) {
        for (index, phase) in result.guestPhases.enumerated() {
            let left = x.map(seconds(phase.start)), right = x.map(seconds(phase.end))
            let fill = phase.name == "switchover" ? "#f8d0d0" : phase.name.hasPrefix("round") && index % 2 == 1 ? "#eef2f8" : "#ffffff"
            svg.rect(left, frame.top + 34, right - left, frame.bottom - frame.top - 34, fill: fill)
            svg.text(left + 3, frame.top + 46, phase.name, size: 10, fill: "#555")
            if let round = result.rounds.first(where: { "round \($0.number)" == phase.name }) {
                svg.text(left + 3, frame.top + 58, "\(Format.fixed(Double(round.bytesSent) / 1e6, 1)) MB, \(Format.fixed(round.dirtyRate, 0)) pages/s dirtied",
                         size: 9, fill: "#777")
            }
        }
    }

    /// The work of one kind of vCPU per time bin as a share of its
    /// baseline, as polyline points; nil without a baseline.
    static func throughputLine(_ result: MigrateResult, dirtying: Bool, from startTSC: UInt64, to endTSC: UInt64,
                               x: Charts.Scale, y: Charts.Scale, seconds: (UInt64) -> Double) -> String? {
        guard let baselinePhase = result.guestPhases.first(where: { $0.name == "baseline" }),
              let baseline = result.throughput(baselinePhase, dirtying: dirtying), baseline > 0 else { return nil }
        let slotCycles = max(1, UInt64(result.config.slotSeconds * result.tscHz))
        let vcpus = dirtying ? Array(0..<result.config.vcpus) : Array(result.config.vcpus..<result.config.totalVCPUs)
        let firstSlot = (startTSC &- result.baseTSC) / slotCycles, lastSlot = (endTSC &- result.baseTSC) / slotCycles
        // At least 3 slots a point: single slots show the pacing, not the trend.
        let bin = max(3, (lastSlot - firstSlot) / UInt64(maxPoints))
        var points: [String] = []
        for start in stride(from: firstSlot, to: lastSlot, by: Int(bin)) {
            let end = min(lastSlot, start + bin)
            var work: UInt64 = 0
            for vcpu in vcpus where vcpu < result.timelines.count { for slot in start..<end { work += UInt64(result.timelines[vcpu].work(in: slot)) } }
            let rate = Double(work) / (Double(end - start) * result.config.slotSeconds * Double(vcpus.count))
            let middle = result.baseTSC &+ (start * slotCycles + (end - start) * slotCycles / 2)
            points.append("\(SVG.number(x.map(seconds(middle)))),\(SVG.number(y.map(min(1.3, rate / baseline))))")
        }
        return points.joined(separator: " ")
    }

    static func rounds(_ svg: inout SVG, _ frame: Charts.Frame, _ result: MigrateResult) {
        Charts.frame(&svg, frame, title: "Pages sent and pages found dirty, per round (the switchover's pages last)")
        let bars = result.rounds.map { ("round \($0.number)", Double($0.pagesSent), Double($0.pagesDirtied)) }
            + (result.downtime != nil ? [("switchover", Double(result.finalPages), 0)] : [])
        guard !bars.isEmpty else { return }
        let peak = max(1, bars.map { max($0.1, $0.2) }.max() ?? 1)
        let y = Charts.Scale(low: 0, high: peak * 1.15, log: false, from: frame.bottom, to: frame.top + 20)
        let slot = (frame.right - frame.left) / Double(bars.count)
        let width = min(40, slot * 0.35)
        for (index, bar) in bars.enumerated() {
            let left = frame.left + Double(index) * slot + slot / 2 - width
            svg.rect(left, y.map(bar.1), width, frame.bottom - y.map(bar.1), fill: Charts.palette[0])
            svg.rect(left + width, y.map(bar.2), width, frame.bottom - y.map(bar.2), fill: Charts.palette[1])
            if bars.count <= 40 { svg.text(left + width, frame.bottom + 14, bar.0, size: 10, anchor: "middle", fill: "#333") }
        }
        Charts.yAxis(&svg, frame, y, unit: .pages, label: "pages")
        Charts.legend(&svg, frame, ["pages sent", "pages dirtied meanwhile"])
    }
}
