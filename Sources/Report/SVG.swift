/// The few SVG 1.1 elements kvmlab's pictures are made of, escaped and
/// formatted in one place. Plain SVG, no scripts.
struct SVG {
    let width: Double
    let height: Double
    private(set) var body = ""

    init(width: Double, height: Double) {
        self.width = width
        self.height = height
    }

    static func number(_ value: Double) -> String { Format.fixed(value, 1) }

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

    mutating func text(_ x: Double, _ y: Double, _ content: String, size: Double = 12, anchor: String = "start", weight: String = "normal", fill: String = "#222") {
        body += "<text x=\"\(SVG.number(x))\" y=\"\(SVG.number(y))\" font-size=\"\(SVG.number(size))\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\" fill=\"\(fill)\">\(SVG.escape(content))</text>\n"
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String = "#222", width: Double = 1) {
        body += "<line x1=\"\(SVG.number(x1))\" y1=\"\(SVG.number(y1))\" x2=\"\(SVG.number(x2))\" y2=\"\(SVG.number(y2))\" stroke=\"\(stroke)\" stroke-width=\"\(SVG.number(width))\"/>\n"
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String = "none") {
        body += "<rect x=\"\(SVG.number(x))\" y=\"\(SVG.number(y))\" width=\"\(SVG.number(max(0, w)))\" height=\"\(SVG.number(max(0, h)))\" fill=\"\(fill)\" stroke=\"\(stroke)\"/>\n"
    }

    mutating func polyline(_ points: String, stroke: String, width: Double = 1.5) {
        body += "<polyline points=\"\(points)\" fill=\"none\" stroke=\"\(stroke)\" stroke-width=\"\(SVG.number(width))\"/>\n"
    }

    mutating func circle(_ x: Double, _ y: Double, _ r: Double, fill: String) {
        body += "<circle cx=\"\(SVG.number(x))\" cy=\"\(SVG.number(y))\" r=\"\(SVG.number(r))\" fill=\"\(fill)\" fill-opacity=\"0.75\"/>\n"
    }

    var document: String {
        """
        <?xml version="1.0" encoding="UTF-8"?>
        <svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, sans-serif">
        <rect width="100%" height="100%" fill="white"/>
        \(body)</svg>

        """
    }
}
