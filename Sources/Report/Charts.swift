import Glibc
import Scenarios
import VMM

/// Chart panels every picture is built from: a titled frame, axes with
/// unit-formatted ticks that fit, CDFs (linear or log x), bars (grouped or
/// stacked) and a legend. Sizes are in SVG user units at 1400 wide.
enum Charts {
    static let width = 1400.0
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
    /// CDFs keep at most this many points: the file stays small whatever the samples.
    static let cdfPoints = 300

    struct Frame {
        let x, y, w, h: Double
        var left: Double { x + 70 }
        var right: Double { x + w - 20 }
        var top: Double { y + 30 }
        var bottom: Double { y + h - 40 }
    }

    /// The title every picture carries: experiment, config, host.
    static func header(_ svg: inout SVG, experiment: Experiment, host: HostFingerprint, extra: String = "") {
        svg.text(20, 30, "kvmlab \(experiment.experiment)" + (extra.isEmpty ? "" : ": \(extra)"), size: 20, weight: "bold")
        // The settings, wrapped to the width (about 190 characters a line at 12 px).
        var lines: [String] = [""]
        for setting in experiment.config.sorted(by: { $0.key < $1.key }).map({ "\($0.key)=\($0.value)" }) {
            if lines[lines.count - 1].count + setting.count > 190 { lines.append("") }
            lines[lines.count - 1] += (lines[lines.count - 1].isEmpty ? "" : "  ") + setting
        }
        for (index, line) in lines.prefix(2).enumerated() { svg.text(20, 50 + Double(index) * 14, line, size: 11, fill: "#444") }
        svg.text(20, 80, "host: \(host.kernel), \(host.cpu), \(host.mmuDescription); status \(experiment.status.rawValue)", size: 11, fill: "#444")
    }

    static func formatValue(_ value: Double, unit: MetricUnit) -> String { CompareReport.value(value, unit) }

    /// Linear ticks at 1-2-5 steps, or decades on a log axis.
    static func ticks(low: Double, high: Double, log: Bool) -> [Double] {
        if log {
            var tick = pow(10, floor(log10(max(low, 1e-300))))
            var out: [Double] = []
            while tick <= high * 1.0001 && out.count < 20 { if tick >= low * 0.9999 { out.append(tick) }; tick *= 10 }
            return out.isEmpty ? [low, high] : out
        }
        let span = max(high - low, 1e-300)
        let raw = span / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? magnitude * 10
        var tick = ceil(low / step) * step
        var out: [Double] = []
        while tick <= high + step * 1e-9 && out.count < 12 { out.append(tick); tick += step }
        return out
    }

    struct Scale {
        let low, high: Double
        let log: Bool
        let from, to: Double
        func map(_ value: Double) -> Double {
            if log {
                let v = Glibc.log10(max(value, low)), a = Glibc.log10(low), b = Glibc.log10(high)
                return from + (v - a) / max(b - a, 1e-12) * (to - from)
            }
            return from + (value - low) / max(high - low, 1e-300) * (to - from)
        }
    }

    static func frame(_ svg: inout SVG, _ frame: Frame, title: String) {
        svg.rect(frame.x, frame.y, frame.w, frame.h, fill: "#fcfcfc", stroke: "#ddd")
        svg.text(frame.x + 10, frame.y + 18, title, size: 13, weight: "bold")
    }

    static func xAxis(_ svg: inout SVG, _ frame: Frame, _ scale: Scale, unit: MetricUnit, label: String) {
        svg.line(frame.left, frame.bottom, frame.right, frame.bottom, stroke: "#666")
        let ticks = Charts.ticks(low: scale.low, high: scale.high, log: scale.log)
        for (index, tick) in ticks.enumerated() {
            let x = scale.map(tick)
            svg.line(x, frame.bottom, x, frame.bottom + 4, stroke: "#666")
            let anchor = index == ticks.count - 1 && x > frame.right - 30 ? "end" : index == 0 && x < frame.left + 30 ? "start" : "middle"
            svg.text(x, frame.bottom + 16, formatValue(tick, unit: unit), size: 10, anchor: anchor, fill: "#333")
        }
        svg.text((frame.left + frame.right) / 2, frame.bottom + 32, label, size: 11, anchor: "middle", fill: "#333")
    }

    static func yAxis(_ svg: inout SVG, _ frame: Frame, _ scale: Scale, unit: MetricUnit, label: String) {
        svg.line(frame.left, frame.top, frame.left, frame.bottom, stroke: "#666")
        for tick in Charts.ticks(low: scale.low, high: scale.high, log: scale.log) {
            let y = scale.map(tick)
            svg.line(frame.left - 4, y, frame.left, y, stroke: "#666")
            svg.text(frame.left - 6, y + 4, formatValue(tick, unit: unit), size: 10, anchor: "end", fill: "#333")
        }
        svg.text(frame.x + 12, (frame.top + frame.bottom) / 2 - 8, label, size: 11, fill: "#333")
    }

    /// Swatches and names along the top of the plot, wrapping within the frame.
    static func legend(_ svg: inout SVG, _ frame: Frame, _ names: [String]) {
        var x = frame.left + 10, y = frame.top + 2
        for (index, name) in names.enumerated() {
            let width = 24 + Double(name.count) * 6.5
            if x + width > frame.right && x > frame.left + 10 { x = frame.left + 10; y += 14 }
            svg.rect(x, y, 10, 10, fill: palette[index % palette.count])
            svg.text(x + 14, y + 9, name, size: 11)
            x += width
        }
    }

    /// Cumulative distributions, one line per series; log x when the values
    /// span more than two decades.
    static func cdf(_ svg: inout SVG, _ frame: Frame, title: String, unit: MetricUnit, series: [(name: String, values: [Double])]) {
        Charts.frame(&svg, frame, title: title)
        let all = series.flatMap(\.values).filter { $0.isFinite }
        guard let lowest = all.min(), let highest = all.max() else { svg.text(frame.left, frame.top + 30, "no samples", size: 11); return }
        let positive = all.filter { $0 > 0 }
        let log = (positive.min().map { highest / $0 > 100 } ?? false)
        let low = log ? positive.min()! : min(0, lowest), high = max(highest, low + 1e-300)
        let xs = Scale(low: low, high: high, log: log, from: frame.left, to: frame.right)
        let ys = Scale(low: 0, high: 1, log: false, from: frame.bottom, to: frame.top + 20)
        xAxis(&svg, frame, xs, unit: unit, label: log ? "log scale" : "")
        yAxis(&svg, frame, ys, unit: .ratio, label: "")
        for (index, entry) in series.enumerated() {
            let sorted = entry.values.filter { $0.isFinite }.sorted()
            guard !sorted.isEmpty else { continue }
            let step = max(1, sorted.count / cdfPoints)
            var points: [String] = []
            for rank in stride(from: 0, to: sorted.count, by: step) + [sorted.count - 1] {
                let x = xs.map(sorted[rank]), y = ys.map(Double(rank + 1) / Double(sorted.count))
                points.append("\(SVG.number(x)),\(SVG.number(y))")
            }
            svg.polyline(points.joined(separator: " "), stroke: palette[index % palette.count])
        }
        legend(&svg, frame, series.map { "\($0.name) (\($0.values.count))" })
    }

    /// Horizontal bars: one group per row, each with its segments side by
    /// side, or stacked end to end.
    static func bars(_ svg: inout SVG, _ frame: Frame, title: String, unit: MetricUnit, stacked: Bool,
                     groups: [(name: String, segments: [(name: String, value: Double)])]) {
        Charts.frame(&svg, frame, title: title)
        let totals = groups.map { group in stacked ? group.segments.reduce(0) { $0 + max(0, $1.value) } : (group.segments.map(\.value).max() ?? 0) }
        let high = max(totals.max() ?? 1, 1e-300)
        // Room on the left for the longest name, on the right for the value after the longest bar.
        let labelWidth = min(220, max(80, Double(groups.map(\.name.count).max() ?? 0) * 6.2 + 10))
        let xs = Scale(low: 0, high: high * 1.2, log: false, from: frame.x + labelWidth + 10, to: frame.right)
        let rowHeight = (frame.bottom - frame.top - 20) / Double(max(1, groups.count))
        let names = Array(Set(groups.flatMap { $0.segments.map(\.name) })).sorted()
        for (row, group) in groups.enumerated() {
            let top = frame.top + 20 + Double(row) * rowHeight
            svg.text(frame.x + labelWidth + 4, top + rowHeight / 2 + 4, group.name, size: 11, anchor: "end")
            var start = 0.0
            let count = Double(max(1, group.segments.count))
            for (index, segment) in group.segments.enumerated() {
                let colour = palette[(names.firstIndex(of: segment.name) ?? index) % palette.count]
                let value = max(0, segment.value)
                if stacked {
                    svg.rect(xs.map(start), top + 4, xs.map(start + value) - xs.map(start), rowHeight - 8, fill: colour)
                    start += value
                } else {
                    let barHeight = (rowHeight - 8) / count
                    svg.rect(xs.map(0), top + 4 + Double(index) * barHeight, xs.map(value) - xs.map(0), barHeight - 1, fill: colour)
                    svg.text(xs.map(value) + 4, top + 4 + Double(index) * barHeight + barHeight / 2 + 4, formatValue(segment.value, unit: unit), size: 10)
                }
            }
            if stacked { svg.text(xs.map(start) + 4, top + rowHeight / 2 + 4, formatValue(start, unit: unit), size: 10) }
        }
        xAxis(&svg, frame, xs, unit: unit, label: "")
        if names.count > 1 || stacked { legend(&svg, frame, names) }
    }
}

extension Charts {
    /// Categories along x (short labels), values up y: each value a dot.
    static func dots(_ svg: inout SVG, _ frame: Frame, title: String, unit: MetricUnit, columns: [(label: String, values: [Double])]) {
        Charts.frame(&svg, frame, title: title)
        let all = columns.flatMap(\.values)
        guard let high = all.max() else { svg.text(frame.left, frame.top + 30, "no samples", size: 11); return }
        let ys = Scale(low: 0, high: max(high * 1.05, 1e-300), log: false, from: frame.bottom, to: frame.top + 10)
        yAxis(&svg, frame, ys, unit: unit, label: "")
        let slot = (frame.right - frame.left) / Double(max(1, columns.count))
        svg.line(frame.left, frame.bottom, frame.right, frame.bottom, stroke: "#666")
        for (index, column) in columns.enumerated() {
            let x = frame.left + slot * (Double(index) + 0.5)
            for value in column.values { svg.circle(x, ys.map(value), 3.5, fill: palette[0]) }
            svg.text(x, frame.bottom + 16, column.label, size: 10, anchor: "middle", fill: "#333")
        }
    }

    /// Step lines over named steps (e.g. a stat's running total through the phases).
    static func steps(_ svg: inout SVG, _ frame: Frame, title: String, unit: MetricUnit, labels: [String], series: [(name: String, values: [Double])]) {
        Charts.frame(&svg, frame, title: title)
        let all = series.flatMap(\.values)
        guard let high = all.max(), let low = all.min(), !labels.isEmpty else { svg.text(frame.left, frame.top + 30, "no stats", size: 11); return }
        let ys = Scale(low: min(0, low), high: max(high * 1.05, min(0, low) + 1), log: false, from: frame.bottom, to: frame.top + 20)
        yAxis(&svg, frame, ys, unit: unit, label: "")
        let slot = (frame.right - frame.left) / Double(labels.count)
        svg.line(frame.left, frame.bottom, frame.right, frame.bottom, stroke: "#666")
        for (index, label) in labels.enumerated() where labels.count <= 16 || index % (labels.count / 16 + 1) == 0 {
            svg.text(frame.left + slot * (Double(index) + 0.5), frame.bottom + 16, label, size: 10, anchor: "middle", fill: "#333")
        }
        for (index, entry) in series.enumerated() {
            var points: [String] = []
            for (step, value) in entry.values.enumerated() {
                let y = SVG.number(ys.map(value))
                points.append("\(SVG.number(frame.left + slot * Double(step))),\(y)")
                points.append("\(SVG.number(frame.left + slot * Double(step + 1))),\(y)")
            }
            svg.polyline(points.joined(separator: " "), stroke: palette[index % palette.count], width: 2)
        }
        legend(&svg, frame, series.map(\.name))
    }
}
