import Glibc
import Report
import VMM

/// A live comparison: the variants' rounds interleaved ABBA, each a fresh
/// kvmlab process (and so a fresh VM), module parameters set per variant
/// and put back on every path.
struct CompareRun {
    struct Outcome {
        let variants: [ComparedVariant]
        let order: String?
        let interrupted: Bool
    }

    let options: CompareOptions
    let experiment: String

    init(options: CompareOptions, experiment: String) throws {
        guard options.variants.count >= 2 else { throw ConfigError("a live compare needs --a and --b, or two or more --variant") }
        for flag in options.rest.dropFirst() + options.variants.flatMap(\.flags) where ["--json", "--openmetrics", "--svg", "--events", "--quiet"].contains(CompareOptions.split(flag).0) {
            throw ConfigError("\(flag) is compare's to give, not the experiment's")
        }
        for (parameter, _) in options.variants.flatMap(\.parameters) { try parameter.requireWritable() }
        self.options = options
        self.experiment = experiment
    }

    func execute() throws -> Outcome {
        let parameters = ModuleParameterGuard()
        Interrupts.shared.install()
        Interrupts.shared.beforeExit { parameters.restoreAll() }
        let token = Interrupts.shared.add { HostProcess.signalChild(SIGINT) }
        defer {
            Interrupts.shared.remove(token)
            for failure in parameters.restoreAll() { Exit.error("kvmlab: warning: \(failure)") }
        }
        var documents = [[SavedDocument]](repeating: [], count: options.variants.count)
        var interrupted = false
        rounds: for round in 0..<options.rounds {
            // ABBA: every other round runs the variants in reverse, so drift
            // over the sitting weighs on every variant alike.
            let order = round % 2 == 0 ? Array(options.variants.indices) : options.variants.indices.reversed()
            for index in order {
                if Interrupts.shared.requested { interrupted = true; break rounds }
                let variant = options.variants[index]
                parameters.restoreAll()
                for (parameter, value) in variant.parameters { try parameters.set(parameter, to: value) }
                Progress.shared.begin("round \(round + 1)/\(options.rounds): \(variant.name)")
                let result = try runRound(variant)
                Progress.shared.end()
                if let document = result { documents[index].append(document) } else { interrupted = true; break rounds }
            }
        }
        let variants = options.variants.indices.map {
            ComparedVariant(name: options.variants[$0].name, flags: [options.variants[$0].text], documents: documents[$0])
        }
        let names = options.variants.map(\.name)
        return Outcome(variants: variants, order: "\(names.joined()) then \(names.reversed().joined()), alternating; \(options.rounds) rounds; one process and VM per round",
                       interrupted: interrupted || Interrupts.shared.requested)
    }

    /// One round in a child kvmlab; nil when Ctrl-C ended it before it measured.
    private func runRound(_ variant: CompareOptions.VariantSpec) throws -> SavedDocument? {
        let arguments = [experiment] + Array(options.rest.dropFirst()) + variant.flags + ["--json", "--quiet"]
        let result = try HostProcess.run(HostProcess.selfPath, arguments)
        let stderr = String(decoding: result.stderr, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        if result.status == Exit.usage {
            throw ConfigError("variant \(variant.name): \(stderr.replacingOccurrences(of: "kvmlab: error: ", with: ""))")
        }
        guard let document = try? SavedDocument.decode(result.stdout), document.experiment != nil else {
            if result.status == Exit.interrupted { return nil }
            throw RoundFailure(description: "variant \(variant.name): kvmlab \(arguments.joined(separator: " ")) exited \(result.status) without a document: \(stderr)")
        }
        return document
    }
}

/// A round that produced nothing to compare (not a bad setting: the host failed).
struct RoundFailure: Error, CustomStringConvertible {
    let description: String
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var out = ""
        var rest = Substring(self)
        while let range = rest.firstRange(of: target) {
            out += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return out + rest
    }
}
