import Glibc
import Guests
import Scenarios

/// An SVG of a jitter run: a timeline with one row per vCPU (stall marks
/// whose height grows with log10 of the stall) and the host operations as
/// ticks on top, then the gap histograms of both phases side by side.
public enum JitterPlot {
    static let width = 1000.0
    static let left = 60.0
    static let right = 20.0
    static let maxRows = 64

    public static func svg(_ result: JitterResult) -> String {
        let analysis = JitterAnalysis(result)
        let rows = min(result.config.vcpus, maxRows)
        let rowHeight = rows <= 16 ? 24.0 : 12.0
        let timelineTop = 70.0
        let timelineHeight = Double(rows) * rowHeight
        let histogramTop = timelineTop + timelineHeight + 60
        let histogramHeight = 180.0
        let height = histogramTop + histogramHeight + 50
        let span = max(analysis.time(result.phases.last!.endTSC), 1e-9)
        let plotWidth = width - left - right
        func x(_ seconds: Double) -> Double { left + seconds / span * plotWidth }

        var svg = """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="sans-serif" font-size="11">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(left)" y="20" font-size="14">\(escape("kvmlab jitter: \(result.config.vcpus) vCPUs, \(result.config.operation.rawValue) at \(Int(result.config.rate))/s, SLOT_ZAP_ALL \(result.zapAllQuirk)"))</text>
        <text x="\(left)" y="38">stalls above \(fmt(result.config.thresholdMicros)) µs per vCPU (mark height ~ log10 µs); host operations as red ticks</text>

        """
        let churnStart = x(analysis.time((result.churn ?? result.baseline).startTSC))
        if result.churn != nil { svg += "<rect x=\"\(fmt(churnStart))\" y=\"\(fmt(timelineTop))\" width=\"\(fmt(left + plotWidth - churnStart))\" height=\"\(fmt(timelineHeight))\" fill=\"#fff4e0\"/>\n" }
        svg += "<text x=\"\(fmt(left + 4))\" y=\"\(fmt(timelineTop - 4))\">baseline</text><text x=\"\(fmt(churnStart + 4))\" y=\"\(fmt(timelineTop - 4))\">churn</text>\n"
        for row in 0..<rows where rows <= 16 || row % 8 == 0 {
            svg += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(timelineTop + (Double(row) + 0.8) * rowHeight))\" text-anchor=\"end\">vCPU \(row)</text>\n"
        }
        for phase in result.phases {
            for op in phase.ops {
                svg += "<line x1=\"\(fmt(x(analysis.time(op.startTSC))))\" y1=\"\(fmt(timelineTop - 2))\" x2=\"\(fmt(x(analysis.time(op.startTSC))))\" y2=\"\(fmt(timelineTop + 4))\" stroke=\"#c00\" stroke-width=\"0.5\"/>\n"
            }
            for stall in phase.stalls {
                let row = Double(stall.vcpu % maxRows)
                let micros = analysis.seconds(stall.cycles) * 1e6
                let mark = min(rowHeight - 2, max(2, log10(max(micros, 1)) * 3))
                let base = timelineTop + (row + 1) * rowHeight - 1
                let sx = fmt(x(analysis.time(stall.endTSC)))
                svg += "<line x1=\"\(sx)\" y1=\"\(fmt(base))\" x2=\"\(sx)\" y2=\"\(fmt(base - mark))\" stroke=\"#1f4e9c\" stroke-width=\"1\"/>\n"
            }
        }
        svg += axis(top: timelineTop + timelineHeight, span: span, x: x)

        // Histograms: log2 gap buckets, bar height ~ log10(count + 1).
        let phases = result.phases
        let histograms = phases.map { JitterAnalysis.total($0.buckets) }
        let used = histograms.flatMap { $0.enumerated().filter { $0.element > 0 }.map(\.offset) }
        let first = used.min() ?? 0, last = used.max() ?? 0
        let bucketCount = Double(last - first + 1)
        let panelWidth = (plotWidth - 40) / 2
        let topCount = log10(Double(histograms.flatMap { $0 }.max() ?? 1) + 1)
        for (index, histogram) in histograms.enumerated() {
            let panelLeft = left + Double(index) * (panelWidth + 40)
            svg += "<text x=\"\(fmt(panelLeft))\" y=\"\(fmt(histogramTop - 8))\">\(phases[index].name): gaps per log2 bucket (log10 count)</text>\n"
            svg += "<line x1=\"\(fmt(panelLeft))\" y1=\"\(fmt(histogramTop + histogramHeight))\" x2=\"\(fmt(panelLeft + panelWidth))\" y2=\"\(fmt(histogramTop + histogramHeight))\" stroke=\"black\"/>\n"
            let barWidth = panelWidth / bucketCount
            for bucket in first...last {
                let count = histogram[bucket]
                let barHeight = count == 0 ? 0 : log10(Double(count) + 1) / max(topCount, 1e-9) * histogramHeight
                let bx = panelLeft + Double(bucket - first) * barWidth
                svg += "<rect x=\"\(fmt(bx))\" y=\"\(fmt(histogramTop + histogramHeight - barHeight))\" width=\"\(fmt(max(1, barWidth - 1)))\" height=\"\(fmt(barHeight))\" fill=\"\(index == 0 ? "#6a9" : "#d84")\"><title>\(escape(bucketLabel(bucket, khz: result.tscKHz))): \(count)</title></rect>\n"
                if (bucket - first) % max(1, Int(bucketCount / 6)) == 0 {
                    svg += "<text x=\"\(fmt(bx))\" y=\"\(fmt(histogramTop + histogramHeight + 14))\">\(escape(bucketLabel(bucket, khz: result.tscKHz)))</text>\n"
                }
            }
        }
        svg += "</svg>\n"
        return svg
    }

    static func axis(top: Double, span: Double, x: (Double) -> Double) -> String {
        var out = "<line x1=\"\(fmt(x(0)))\" y1=\"\(fmt(top))\" x2=\"\(fmt(x(span)))\" y2=\"\(fmt(top))\" stroke=\"black\"/>\n"
        let step = max(1, (span / 10).rounded(.up))
        var tick = 0.0
        while tick <= span {
            out += "<line x1=\"\(fmt(x(tick)))\" y1=\"\(fmt(top))\" x2=\"\(fmt(x(tick)))\" y2=\"\(fmt(top + 4))\" stroke=\"black\"/>"
            out += "<text x=\"\(fmt(x(tick)))\" y=\"\(fmt(top + 16))\" text-anchor=\"middle\">\(Int(tick)) s</text>\n"
            tick += step
        }
        return out
    }

    /// A bucket's lower bound as a time.
    static func bucketLabel(_ bucket: Int, khz: Int) -> String {
        let seconds = Double(UInt64(1) << UInt64(min(bucket, 62))) / (Double(khz) * 1000)
        if seconds < 1e-6 { return "\(Int((seconds * 1e9).rounded())) ns" }
        if seconds < 1e-3 { return "\(fmt(seconds * 1e6)) µs" }
        return "\(fmt(seconds * 1e3)) ms"
    }

    static func fmt(_ value: Double) -> String { Format.fixed(value, 1) }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}
