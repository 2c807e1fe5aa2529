import Glibc
import Scenarios
import VMM

/// jitter's picture. A timeline binned per column (each cell coloured by the
/// worst stall in it; beyond 16 vCPUs a row holds a group of vCPUs, so the
/// file stays small whatever the duration and vCPU count), the memslot
/// operations per column above it, the host probe's row where there is
/// one; then the CDF of stall durations, baseline against churn, on a log
/// scale; and every gap's log2 histogram per phase.
public enum JitterPlot {
    static let bins = 300
    static let maxRows = 16

    public static func svg(_ result: JitterResult, host: HostFingerprint) -> String {
        let experiment = result.experiment
        let analysis = JitterAnalysis(result)
        let timeline = ModelPlot.Panel(wide: true, height: 120 + Double(rows(result).count) * 18) { svg, frame in
            drawTimeline(&svg, frame, result, analysis)
        }
        let cdf = ModelPlot.Panel { svg, frame in
            var series: [(name: String, values: [Double])] = result.phases.map { phase in (phase.name, phase.stalls.map { analysis.seconds($0.cycles) }) }
            if result.config.hostProbeCPU != nil {
                series += result.phases.map { phase in ("\(phase.name), host probe", phase.hostStalls.map { analysis.seconds($0.cycles) }) }
            }
            Charts.cdf(&svg, frame, title: "stall durations: does the tail move? (CDF)", unit: .seconds, series: series)
        }
        let histograms = ModelPlot.Panel { svg, frame in drawHistograms(&svg, frame, result, analysis) }
        let summary = Experiment(experiment: experiment.experiment, config: experiment.config, metrics: [], phases: experiment.phases,
                                 checks: experiment.checks, problems: experiment.problems, interrupted: experiment.status == .interrupted)
        return ModelPlot.svg(summary, host: host, extra: [timeline] + VictimPlot.panels([("jitter", result.flows)]) + [cdf, histograms],
                             title: "\(result.config.vcpus) vCPUs, \(result.config.operation.rawValue) at \(Int(result.config.rate))/s, SLOT_ZAP_ALL \(result.zapAllQuirk)")
    }

    /// The timeline's rows: vCPU ranges (one vCPU each up to 16), then the host probe.
    static func rows(_ result: JitterResult) -> [(label: String, vcpus: ClosedRange<Int>)] {
        let count = result.config.vcpus
        let groups = min(count, maxRows)
        var rows = (0..<groups).map { group -> (String, ClosedRange<Int>) in
            let first = group * count / groups, last = (group + 1) * count / groups - 1
            return (first == last ? "vCPU \(first)" : "vCPUs \(first)-\(last)", first...last)
        }
        if result.config.hostProbeCPU != nil { rows.append(("host probe", -1 ... -1)) }
        return rows
    }

    static func colour(_ micros: Double, threshold: Double, top: Double) -> String {
        let t = max(0, min(1, log10(max(micros, threshold) / threshold) / max(log10(top / threshold), 1e-9)))
        let r = 255, g = Int(230 - 200 * t), b = Int(120 - 110 * t)
        return "#" + [r, g, b].map { String($0, radix: 16).leftPadded(2) }.joined()
    }

    /// One row per vCPU group (and the host probe), one cell per time slice
    /// coloured by its worst stall, the memslot operations as ticks above.
    static func drawTimeline(_ svg: inout SVG, _ frame: Charts.Frame, _ result: JitterResult, _ analysis: JitterAnalysis) {
        let rows = rows(result)
        Charts.frame(&svg, frame, title: "stalls over time: each cell the worst stall among its vCPUs in that slice (colour, log µs); red ticks: memslot operations per slice")
        let left = frame.x + 110, right = frame.x + frame.w - 20, top = frame.y + 60
        let span = max(analysis.time(result.phases.last!.endTSC), 1e-9)
        let binWidth = (right - left) / Double(bins)
        let bin = { (tsc: UInt64) in max(0, min(bins - 1, Int(analysis.time(tsc) / span * Double(bins)))) }
        if let churn = result.churn {
            let x = left + analysis.time(churn.startTSC) / span * (right - left)
            svg.rect(x, top - 26, right - x, Double(rows.count) * 18 + 26, fill: "#fff4e0")
            svg.text(x + 4, top - 14, "churn", size: 11)
        }
        svg.text(left + 4, top - 14, "baseline", size: 11)
        var opCounts = [Int](repeating: 0, count: bins)
        for phase in result.phases { for op in phase.ops { opCounts[bin(op.startTSC)] += 1 } }
        let busiest = Double(opCounts.max() ?? 1)
        for (index, count) in opCounts.enumerated() where count > 0 {
            let height = 8 * Double(count) / max(busiest, 1)
            svg.rect(left + Double(index) * binWidth, top - 2 - height, max(binWidth - 0.5, 0.5), height, fill: "#c00")
        }
        let all = result.phases.flatMap { $0.stalls + $0.hostStalls }
        let topMicros = max(analysis.seconds(all.map(\.cycles).max() ?? 1) * 1e6, result.config.thresholdMicros * 10)
        for (row, entry) in rows.enumerated() {
            let y = top + Double(row) * 18
            svg.text(left - 6, y + 13, entry.label, size: 10, anchor: "end")
            for (index, cycles) in worstPerSlice(result, vcpus: entry.vcpus, bin: bin).enumerated() where cycles > 0 {
                svg.rect(left + Double(index) * binWidth, y + 2, max(binWidth, 0.5), 14,
                         fill: colour(analysis.seconds(cycles) * 1e6, threshold: result.config.thresholdMicros, top: topMicros))
            }
        }
        drawTimeAxis(&svg, y: top + Double(rows.count) * 18 + 4, left: left, right: right, span: span,
                     threshold: result.config.thresholdMicros, topMicros: topMicros)
    }

    /// The longest stall of `vcpus` (the host probe's for -1) in each slice.
    static func worstPerSlice(_ result: JitterResult, vcpus: ClosedRange<Int>, bin: (UInt64) -> Int) -> [UInt64] {
        var worst = [UInt64](repeating: 0, count: bins)
        for phase in result.phases {
            for stall in vcpus.lowerBound < 0 ? phase.hostStalls : phase.stalls where vcpus.contains(stall.vcpu) {
                let cell = bin(stall.endTSC)
                worst[cell] = max(worst[cell], stall.cycles)
            }
        }
        return worst
    }

    /// Seconds along the bottom, and the colour key at its right.
    static func drawTimeAxis(_ svg: inout SVG, y axisY: Double, left: Double, right: Double, span: Double, threshold: Double, topMicros: Double) {
        let scale = Charts.Scale(low: 0, high: span, log: false, from: left, to: right)
        svg.line(left, axisY, right, axisY, stroke: "#666")
        for tick in Charts.ticks(low: 0, high: span, log: false) {
            svg.line(scale.map(tick), axisY, scale.map(tick), axisY + 4, stroke: "#666")
            svg.text(scale.map(tick), axisY + 16, "\(Format.fixed(tick, tick == tick.rounded() ? 0 : 1)) s", size: 10, anchor: "middle")
        }
        for (index, micros) in [threshold, sqrt(threshold * topMicros), topMicros].enumerated() {
            let x = right - 260 + Double(index) * 90
            svg.rect(x, axisY + 24, 12, 12, fill: colour(micros, threshold: threshold, top: topMicros))
            svg.text(x + 16, axisY + 34, "≤ \(Charts.formatValue(micros / 1e6, unit: .seconds))", size: 10)
        }
    }

    /// log2 gap histograms, bar height ~ log10(count + 1), with y labels.
    static func drawHistograms(_ svg: inout SVG, _ frame: Charts.Frame, _ result: JitterResult, _ analysis: JitterAnalysis) {
        Charts.frame(&svg, frame, title: "every gap between probe loops, per log2 bucket (count, log scale)")
        let histograms = result.phases.map { JitterAnalysis.total($0.buckets) }
        let used = histograms.flatMap { $0.enumerated().filter { $0.element > 0 }.map(\.offset) }
        guard let first = used.min(), let last = used.max() else { return }
        let topCount = Double(histograms.flatMap { $0 }.max() ?? 1)
        let ys = Charts.Scale(low: 1, high: max(topCount + 1, 10), log: true, from: frame.bottom, to: frame.top + 20)
        Charts.yAxis(&svg, frame, ys, unit: .count, label: "")
        let slots = Double(last - first + 1)
        let groupWidth = (frame.right - frame.left) / slots
        svg.line(frame.left, frame.bottom, frame.right, frame.bottom, stroke: "#666")
        let labelEvery = max(1, Int((slots / 8).rounded(.up)))
        for bucket in first...last {
            let x = frame.left + Double(bucket - first) * groupWidth
            for (phase, histogram) in histograms.enumerated() where histogram[bucket] > 0 {
                let barWidth = groupWidth / Double(histograms.count)
                let y = ys.map(Double(histogram[bucket]) + 1)
                svg.rect(x + Double(phase) * barWidth, y, max(barWidth - 1, 0.5), frame.bottom - y, fill: Charts.palette[phase])
            }
            if (bucket - first) % labelEvery == 0 {
                let seconds = Double(UInt64(1) << UInt64(min(bucket, 62))) / (Double(result.tscKHz) * 1000)
                svg.text(x + groupWidth / 2, frame.bottom + 16, Charts.formatValue(seconds, unit: .seconds), size: 10, anchor: "middle")
            }
        }
        Charts.legend(&svg, frame, result.phases.map(\.name))
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: "0", count: width - count) + self }
}
