import Report
import VMM

/// compare's own options, picked out of everything after `compare`; every
/// other word belongs to the experiment and goes to every variant.
struct CompareOptions {
    struct VariantSpec {
        let name: String
        /// kvmlab flags for this variant, and the module parameters it sets.
        let flags: [String]
        let parameters: [(ModuleParameter, String)]
        let text: String
    }

    struct Threshold {
        enum Relation: String { case above = ">", atLeast = ">=", below = "<", atMost = "<=" }
        let metric: String
        let relation: Relation
        let limit: Double

        func crossed(by ratio: Double) -> Bool {
            switch relation {
            case .above: return ratio > limit
            case .atLeast: return ratio >= limit
            case .below: return ratio < limit
            case .atMost: return ratio <= limit
            }
        }

        var description: String { "\(metric)\(relation.rawValue)\(limit)" }
    }

    var variants: [VariantSpec] = []
    /// Seven untied rounds a side reach p = 2/C(14, 7) ≈ 0.0006, which
    /// Holm's first step over up to 86 metrics accepts at 5% (memslot has
    /// 24); six (0.0022) would fall short at 24.
    var rounds = 7
    /// Significant changes below this share are "no meaningful change".
    var noise = Comparison.Settings().noise
    var json = false
    var quiet = false
    var anyConfig = false
    var svg: String?
    var openmetrics: String?
    var thresholds: [Threshold] = []
    /// The experiment (live) or the documents and folders (offline), then its shared flags.
    var rest: [String] = []

    static var experiments: [String] { Registry.names }

    init(_ words: [String]) throws {
        var index = 0
        var a: String?, b: String?
        var named: [(String, String)] = []
        func value(_ flag: String) throws -> String {
            index += 1
            guard index < words.count else { throw ConfigError("\(flag) needs a value") }
            return words[index]
        }
        while index < words.count {
            let word = words[index]
            let (flag, inline) = CompareOptions.split(word)
            func take() throws -> String { try inline ?? value(flag) }
            switch flag {
            case "--a": a = try take()
            case "--b": b = try take()
            case "--variant": named.append(try CompareOptions.namedVariant(try take()))
            case "--rounds": rounds = try CompareOptions.rounds(try take())
            case "--noise": noise = try CompareOptions.noise(try take())
            case "--json": json = true
            case "--quiet": quiet = true
            case "--any-config": anyConfig = true
            case "--svg": svg = try take()
            case "--openmetrics": openmetrics = try take()
            case "--fail-if": thresholds.append(try CompareOptions.threshold(try take()))
            default: rest.append(word)
            }
            index += 1
        }
        if (a == nil) != (b == nil) { throw ConfigError("give both --a and --b (either may be '')") }
        let specs = [a.map { ("A", $0) }, b.map { ("B", $0) }].compactMap { $0 } + named
        variants = try specs.map { try CompareOptions.variant(name: $0.0, text: $0.1) }
        if Set(variants.map(\.name)).count != variants.count { throw ConfigError("two variants share a name; give each --variant its own") }
        for path in [svg, openmetrics].compactMap({ $0 }) where !HostFiles.canCreate(path) {
            throw ConfigError("cannot write \(path): its directory is missing or not writable")
        }
    }

    /// `--variant NAME='FLAGS'`: the name and the flags, still one string.
    static func namedVariant(_ spec: String) throws -> (String, String) {
        guard let equals = spec.firstIndex(of: "="), equals != spec.startIndex else {
            throw ConfigError("--variant takes NAME='FLAGS', not '\(spec)'")
        }
        return (String(spec[..<equals]), String(spec[spec.index(after: equals)...]))
    }

    static func rounds(_ text: String) throws -> Int {
        guard let count = Int(text), (1...1000).contains(count) else { throw ConfigError("--rounds takes a whole number from 1 to 1000, not '\(text)'") }
        return count
    }

    /// `--noise PERCENT` as a fraction.
    static func noise(_ text: String) throws -> Double {
        guard let percent = Double(text), percent.isFinite, (0...100).contains(percent) else {
            throw ConfigError("--noise takes a percentage from 0 to 100, not '\(text)'")
        }
        return percent / 100
    }

    static func split(_ word: String) -> (String, String?) {
        guard word.hasPrefix("--"), let equals = word.firstIndex(of: "=") else { return (word, nil) }
        return (String(word[..<equals]), String(word[word.index(after: equals)...]))
    }

    static func variant(name: String, text: String) throws -> VariantSpec {
        if name.unicodeScalars.contains(where: VariantName.breaksLine) {
            throw ConfigError("variant name \(name.debugDescription) contains a control character (newline, tab, ...); use printable text")
        }
        var flags: [String] = []
        var parameters: [(ModuleParameter, String)] = []
        for word in try ShellWords.split(text) {
            guard word.hasPrefix("param:") else { flags.append(word); continue }
            let assignment = word.dropFirst("param:".count)
            guard let equals = assignment.firstIndex(of: "=") else { throw ConfigError("\(word): write param:MODULE.NAME=VALUE") }
            parameters.append((try ModuleParameter(String(assignment[..<equals])), String(assignment[assignment.index(after: equals)...])))
        }
        return VariantSpec(name: name, flags: flags, parameters: parameters, text: text)
    }

    static func threshold(_ text: String) throws -> Threshold {
        for relation in [Threshold.Relation.atLeast, .atMost, .above, .below] {
            guard let at = text.firstIndex(of: relation.rawValue.first!) else { continue }
            let end = text.index(at, offsetBy: relation.rawValue.count, limitedBy: text.endIndex) ?? text.endIndex
            guard text[at..<end] == relation.rawValue else { continue }
            let metric = String(text[..<at]), number = String(text[end...])
            guard !metric.isEmpty, let limit = Double(number), limit.isFinite, limit > 0 else { break }
            return Threshold(metric: metric, relation: relation, limit: limit)
        }
        throw ConfigError("--fail-if takes METRIC>RATIO (or <, >=, <=) with a positive ratio, e.g. 'get_dirty_log_seconds>1.10', not '\(text)'")
    }
}

/// Splits a variant's flags like a shell would: spaces separate words,
/// single and double quotes group them.
enum ShellWords {
    static func split(_ text: String) throws -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current); current = ""; inWord = false }
            } else {
                current.append(character)
                inWord = true
            }
        }
        if quote != nil { throw ConfigError("unbalanced quote in '\(text)'") }
        if inWord { words.append(current) }
        return words
    }
}

/// What a variant's name may hold: it heads table rows and columns and
/// labels samples, one line each.
enum VariantName {
    /// A control character (newline, tab, ...) breaks the line a name is printed on.
    static func breaksLine(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.generalCategory == .control }
}
