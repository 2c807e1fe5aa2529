/// A strict reader of flat KTAP version 1 (what `kvmlab check` prints):
/// the version line first, one plan, results numbered 1..N in order, '#'
/// lines as diagnostics, nothing else.
public struct KTAPDocument: Sendable {
    public struct Result: Sendable {
        public let number: Int
        public let ok: Bool
        public let name: String
        public let skip: String?
        /// The diagnostic lines just before this result.
        public let diagnostics: [String]
    }

    public let plan: Int
    public let results: [Result]
    public let leading: [String]

    public struct Malformed: Error, CustomStringConvertible {
        public let description: String
    }

    public init(_ text: String) throws {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard lines.first == "KTAP version 1" else { throw Malformed(description: "first line is '\(lines.first ?? "")', not 'KTAP version 1'") }
        var plan: Int?
        var results: [Result] = []
        var pending: [String] = []
        var leading: [String] = []
        for (index, line) in lines.enumerated().dropFirst() {
            if line.hasPrefix("#") {
                pending.append(String(line.dropFirst(line.hasPrefix("# ") ? 2 : 1)))
            } else if line.hasPrefix("1..") {
                guard plan == nil, results.isEmpty, let count = Int(line.dropFirst(3)) else { throw Malformed(description: "line \(index + 1): bad or second plan '\(line)'") }
                plan = count
                leading = pending
                pending = []
            } else if line.hasPrefix("ok ") || line.hasPrefix("not ok ") {
                let ok = line.hasPrefix("ok ")
                let rest = line.dropFirst(ok ? 3 : 7)
                let parts = rest.split(separator: " ", maxSplits: 1).map(String.init)
                guard let number = parts.first.flatMap({ Int($0) }), number == results.count + 1, parts.count == 2 else {
                    throw Malformed(description: "line \(index + 1): result '\(line)' is not numbered \(results.count + 1) with a name")
                }
                let pieces = parts[1].components(separatedBy: " # ")
                var skip: String?
                if pieces.count > 1 {
                    guard pieces[1].hasPrefix("SKIP"), ok else { throw Malformed(description: "line \(index + 1): unknown directive '\(pieces[1])'") }
                    skip = String(pieces[1].dropFirst(4)).trimmingCharacters(in: " ")
                }
                results.append(Result(number: number, ok: ok, name: pieces[0], skip: skip, diagnostics: pending))
                pending = []
            } else {
                throw Malformed(description: "line \(index + 1): '\(line)' is not KTAP")
            }
        }
        guard let plan else { throw Malformed(description: "no plan line") }
        guard plan == results.count else { throw Malformed(description: "plan says \(plan) tests, \(results.count) results") }
        self.plan = plan
        self.results = results
        self.leading = leading
    }
}

extension String {
    func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(String(rest[..<range.lowerBound]))
            rest = rest[range.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, set.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
