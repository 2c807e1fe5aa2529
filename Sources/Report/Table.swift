/// A plain-text table with aligned columns: numbers right, text left.
public struct Table: Sendable {
    public var title: String?
    public var headers: [String]
    public var rows: [[String]] = []
    /// Right-align cells that start with a digit (off for key/value lists).
    public var alignNumbers = true

    public init(title: String? = nil, headers: [String]) {
        self.title = title
        self.headers = headers
    }

    public mutating func add(_ row: [String]) { rows.append(row) }

    public func render() -> String {
        let columns = max(headers.count, rows.map(\.count).max() ?? 0)
        var widths = [Int](repeating: 0, count: columns)
        for row in [headers] + rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ row: [String]) -> String {
            row.enumerated().map { index, cell in
                let pad = String(repeating: " ", count: widths[index] - cell.count)
                return alignNumbers && Table.isNumeric(cell) ? pad + cell : cell + pad
            }.joined(separator: "  ").trimmedRight()
        }
        var out: [String] = []
        if let title { out.append(title) }
        if !headers.isEmpty {
            out.append(line(headers))
            out.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        }
        out += rows.map(line)
        return out.joined(separator: "\n") + "\n"
    }

    static func isNumeric(_ cell: String) -> Bool {
        guard let first = cell.first else { return false }
        return first.isNumber || ((first == "-" || first == "+") && cell.dropFirst().first?.isNumber == true)
    }
}

/// Two-column "key  value" listing.
public func keyValues(_ title: String?, _ pairs: [(String, String)]) -> String {
    var table = Table(title: title, headers: [])
    table.alignNumbers = false
    for (key, value) in pairs { table.add([key, value]) }
    return table.render()
}

extension String {
    func trimmedRight() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}
