import VMM

/// compare's picture: one panel per metric, each round a dot per variant,
/// the medians as bars, the ratio, its interval and the verdict written in.
public enum ComparePlot {
    static let width = 1400.0
    static let columns = 3
    static let panelHeight = 150.0
    static let colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    /// Enough for every experiment's metrics; the file stays small whatever the rounds.
    static let maxPanels = 60

    public static func svg(_ comparison: Comparison, host: HostFingerprint) -> String {
        let keys = orderedKeys(comparison)
        let panels = Array(keys.prefix(maxPanels))
        let rows = (panels.count + columns - 1) / columns
        let top = 90.0
        var svg = SVG(width: width, height: top + Double(rows) * (panelHeight + 20) + 20)
        svg.text(20, 30, "kvmlab compare \(comparison.experiment): " + comparison.variants.map { "\($0.name) = \($0.flags.joined(separator: " ").isEmpty ? "(no flags)" : $0.flags.joined(separator: " "))" }.joined(separator: "  vs  "),
                 size: 18, weight: "bold")
        svg.text(20, 52, "host: \(host.kernel), \(host.mmuDescription); each dot one round; bar: median; \(comparison.method)", size: 12, fill: "#555")
        for (index, variant) in comparison.variants.enumerated() {
            svg.circle(30 + Double(index) * 160, 72, 5, fill: colours[index % colours.count])
            svg.text(40 + Double(index) * 160, 76, "\(variant.name) (\(variant.rounds) rounds)", size: 12)
        }
        let panelWidth = (width - 40) / Double(columns)
        for (index, key) in panels.enumerated() {
            let x = 20 + Double(index % columns) * panelWidth
            let y = top + Double(index / columns) * (panelHeight + 20)
            panel(&svg, comparison, key: key, x: x, y: y, w: panelWidth - 20)
        }
        if keys.count > panels.count { svg.text(20, svg.height - 6, "\(keys.count - panels.count) more metrics in the JSON", size: 11, fill: "#555") }
        return svg.document
    }

    static func orderedKeys(_ comparison: Comparison) -> [String] {
        var keys: [String] = []
        for row in comparison.metrics where !keys.contains(row.key) && !(row.a.isEmpty && row.b.isEmpty) { keys.append(row.key) }
        return keys
    }

    static func panel(_ svg: inout SVG, _ comparison: Comparison, key: String, x: Double, y: Double, w: Double) {
        let rows = comparison.metrics.filter { $0.key == key }
        guard let first = rows.first else { return }
        let series = [first.a] + rows.map(\.b)
        let values = series.flatMap { $0 }
        let low = min(0, values.min() ?? 0), high = max(values.max() ?? 1, low + 1e-300)
        let plotLeft = x + 8, plotWidth = w - 16
        func px(_ value: Double) -> Double { plotLeft + (value - low) / (high - low) * plotWidth }
        svg.rect(x, y, w, panelHeight, fill: "#fafafa", stroke: "#ddd")
        svg.text(x + 8, y + 16, key, size: 13, weight: "bold")
        let verdicts = rows.map { row in "\(row.variant)/\(row.baseline) \(row.ratio.map { Format.fixed($0, 3) } ?? "-")"
            + (row.low.map { " [\(Format.fixed($0, 3))–\(Format.fixed(row.high ?? $0, 3))]" } ?? "") + ": \(row.verdict)" }
        svg.text(x + 8, y + 32, verdicts.joined(separator: "; "), size: 11, fill: "#444")
        let laneTop = y + 44, laneHeight = (panelHeight - 78) / Double(series.count)
        for (lane, samples) in series.enumerated() {
            let cy = laneTop + (Double(lane) + 0.5) * laneHeight
            let colour = colours[lane % colours.count]
            for sample in samples { svg.circle(px(sample), cy, 4, fill: colour) }
            if let median = Statistics.median(samples) { svg.line(px(median), cy - laneHeight * 0.4, px(median), cy + laneHeight * 0.4, stroke: colour, width: 2.5) }
        }
        let axis = y + panelHeight - 30
        svg.line(plotLeft, axis, plotLeft + plotWidth, axis, stroke: "#888")
        for tick in 0...4 {
            let value = low + (high - low) * Double(tick) / 4
            let tx = px(value)
            svg.line(tx, axis, tx, axis + 4, stroke: "#888")
            svg.text(tx, axis + 17, CompareReport.value(value, first.unit), size: 10, anchor: tick == 0 ? "start" : tick == 4 ? "end" : "middle", fill: "#444")
        }
    }
}
