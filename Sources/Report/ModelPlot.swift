import Scenarios
import VMM

/// A picture of any experiment, read from the model alone: one panel per
/// metric name; distributions as CDFs (one line per label set), figures as
/// bars. Experiment-specific pictures add their own panels in front.
public enum ModelPlot {
    static let columns = 2
    static let panelHeight = 250.0

    public static func svg(_ experiment: Experiment, host: HostFingerprint, extra: [Panel] = [], title: String = "") -> String {
        let panels = extra + panels(for: experiment)
        let panelWidth = (Charts.width - 40) / Double(columns)
        var y = 95.0
        var placed: [(Panel, Charts.Frame)] = []
        var column = 0
        for panel in panels {
            let width = panel.wide ? Charts.width - 40 : panelWidth - 10
            if panel.wide && column != 0 { y += panelHeight + 10; column = 0 }
            let frame = Charts.Frame(x: 20 + Double(column) * panelWidth, y: y, w: width, h: panel.height ?? panelHeight)
            placed.append((panel, frame))
            if panel.wide || column == columns - 1 { y += (panel.height ?? panelHeight) + 10; column = 0 } else { column += 1 }
        }
        if column != 0 { y += panelHeight + 10 }
        var svg = SVG(width: Charts.width, height: max(y + 10, 200))
        Charts.header(&svg, experiment: experiment, host: host, extra: title)
        for (panel, frame) in placed { panel.draw(&svg, frame) }
        return svg.document
    }

    /// A panel: where it goes (a full row or a column) and how it draws.
    public struct Panel {
        let wide: Bool
        let height: Double?
        let draw: (inout SVG, Charts.Frame) -> Void

        init(wide: Bool = false, height: Double? = nil, _ draw: @escaping (inout SVG, Charts.Frame) -> Void) {
            self.wide = wide
            self.height = height
            self.draw = draw
        }
    }

    static func label(_ metric: Metric) -> String {
        metric.labels.isEmpty ? metric.name : metric.labels.sorted { $0.key < $1.key }.map(\.value).joined(separator: " ")
    }

    static func panels(for experiment: Experiment) -> [Panel] {
        var names: [String] = []
        for metric in experiment.metrics where !names.contains(metric.name) { names.append(metric.name) }
        return names.compactMap { name in
            let metrics = experiment.metrics.filter { $0.name == name }
            guard let first = metrics.first else { return nil }
            let title = "\(name): \(first.help)"
            if metrics.contains(where: { $0.distribution != nil }) {
                let series = metrics.compactMap { metric in metric.distribution.map { (label(metric), samples($0)) } }
                return Panel { svg, frame in Charts.cdf(&svg, frame, title: title, unit: first.unit, series: series) }
            }
            let groups = metrics.compactMap { metric in metric.value.map { (label(metric), [(name, $0)]) } }
            guard !groups.isEmpty else { return nil }
            return Panel { svg, frame in Charts.bars(&svg, frame, title: title, unit: first.unit, stacked: false, groups: groups) }
        }
    }

    /// The samples, or (beyond the kept ones) points spread by the buckets.
    static func samples(_ distribution: Distribution) -> [Double] {
        if let samples = distribution.samples { return samples }
        var points: [Double] = []
        let total = max(1, distribution.count)
        for bucket in distribution.buckets {
            let share = max(1, Int((Double(bucket.count) / Double(total) * Double(Charts.cdfPoints)).rounded()))
            points += [Double](repeating: bucket.le, count: share)
        }
        return points
    }
}
