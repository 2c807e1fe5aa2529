import ArgumentParser
import Report
import VMM

struct CompareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Before/after tables with statistics: two settings, module parameters, kernels or hosts.",
        discussion: """
        Live, on this host:
          kvmlab compare EXPERIMENT [shared flags] --a 'FLAGS' --b 'FLAGS' [--rounds N]
        runs the variants interleaved in ABBA order, N rounds each (default 7),
        every round a fresh kvmlab process and VM. A variant's flags may set a
        module parameter for its rounds, e.g. 'param:kvm.eager_page_split=N';
        the original value is put back on every path. --variant NAME='FLAGS'
        (repeatable) adds more variants, each compared with the first.

        Offline, from saved --json documents:
          kvmlab compare before.json after.json
          kvmlab compare runs/kernel-a/ runs/kernel-b/      (every *.json in each)

        Options of compare itself: --a, --b, --variant, --rounds, --noise PCT,
        --json, --svg FILE, --openmetrics FILE, --fail-if 'METRIC>1.10'
        (repeatable), --any-config (offline: allow different settings), --quiet.
        Every other flag is the experiment's and applies to every variant.

        For every metric: the medians, B/A, an exact permutation (rank-sum) test
        of the rounds with Holm's correction over the table (5% for the whole
        table, not per metric), the interval of B/A that test implies, and a
        verdict in the metric's own direction (faster, slower, better, worse,
        no significant change; no meaningful change below --noise, default 5%).
        Too few rounds to show anything are said in one line instead of
        verdicts. Then the KVM stats per phase.

        Exit status: 0 every round ok, 1 a round failed a check or could not
        measure, 2 usage, 130 interrupted. With --fail-if it is the verdict, as
        git bisect run reads it: 0 good, 1 a threshold crossed, 125 could not measure.

        Examples:
          kvmlab compare jitter --duration 2 --a '' --b '--no-zap-all'
          kvmlab compare dirty-log -v 2 -b 256m --a '-s anonymous' --b '-s anonymous_thp'
          kvmlab compare dirty-log -b 1g --a 'param:kvm.eager_page_split=N' --b 'param:kvm.eager_page_split=Y'
          kvmlab compare runs/6.12/ runs/6.18/ --fail-if 'get_dirty_log_seconds>1.10'
        """)

    @Argument(parsing: .captureForPassthrough, help: "EXPERIMENT and its flags, or saved documents and folders.") var words: [String] = []

    func run() throws {
        // Passthrough parsing captures help flags too: before an experiment they are compare's.
        if let first = words.first, ["-h", "--help"].contains(first) { throw CleanExit.helpRequest(Self.self) }
        let options = try CompareOptions(words)
        Progress.shared.enable(quiet: options.quiet)
        guard let first = options.rest.first else { throw ConfigError("compare needs an experiment (\(CompareOptions.experiments.joined(separator: ", "))) or saved documents") }
        let outcome: CompareRun.Outcome
        if CompareOptions.experiments.contains(first) {
            outcome = try CompareRun(options: options, experiment: first).execute()
        } else {
            guard options.variants.isEmpty else { throw ConfigError("'\(first)' is not an experiment; --a/--b/--variant need one of \(CompareOptions.experiments.joined(separator: ", "))") }
            outcome = .init(variants: try SavedRuns.load(options.rest, anyConfig: options.anyConfig), order: nil, interrupted: false)
        }
        try CompareOutput.emit(outcome, options: options)
    }
}

/// Saved documents: each path (a file, or a folder of *.json) is one side.
enum SavedRuns {
    static func load(_ paths: [String], anyConfig: Bool) throws -> [ComparedVariant] {
        guard paths.count >= 2 else { throw ConfigError("offline compare needs two or more documents or folders, one per side") }
        var sides: [ComparedVariant] = []
        for (path, name) in zip(paths, sideNames(paths)) {
            let files = try HostFiles.isDirectory(path) ? HostFiles.list(path).filter { $0.hasSuffix(".json") }.sorted().map { path + "/" + $0 } : [path]
            guard !files.isEmpty else { throw ConfigError("\(path) holds no .json documents") }
            let documents = try files.map(document)
            sides.append(ComparedVariant(name: name, flags: [], documents: documents))
            try requireOneConfig(documents, files: files)
        }
        try requireComparable(sides, anyConfig: anyConfig)
        return sides
    }

    /// Each side's name: the path's last component, or as many trailing
    /// components as tell the sides apart (6.12/runs and 6.18/runs); a path
    /// given twice gets " (2)". Names label table columns, metrics and
    /// results keyed by side, so they must differ and print on one line.
    static func sideNames(_ paths: [String]) -> [String] {
        let parts = paths.map { path in
            let components = path.split(separator: "/").map { component in
                String(String.UnicodeScalarView(component.unicodeScalars.map { VariantName.breaksLine($0) ? "?" : $0 }))
            }
            return components.isEmpty ? [path] : components
        }
        var names = parts.map { $0.last! }
        for depth in 2...max(2, parts.map(\.count).max()!) where Set(names).count < names.count {
            names = parts.map { $0.suffix(depth).joined(separator: "/") }
        }
        var seen: [String: Int] = [:]
        return names.map { name in
            seen[name, default: 0] += 1
            return seen[name]! == 1 ? name : "\(name) (\(seen[name]!))"
        }
    }

    static func document(_ path: String) throws -> SavedDocument {
        guard let bytes = HostFiles.readBytes(path) else { throw ConfigError("cannot read \(path)") }
        let document: SavedDocument
        do { document = try SavedDocument.decode(bytes) } catch { throw ConfigError("\(path) is not a kvmlab --json document (\(error))") }
        guard document.schema == JSONDocument<String>.schema else { throw ConfigError("\(path) has schema \(document.schema); this kvmlab reads \(JSONDocument<String>.schema)") }
        guard document.experiment != nil else { throw ConfigError("\(path) is a '\(document.command)' document, not an experiment's") }
        return document
    }

    static func requireOneConfig(_ documents: [SavedDocument], files: [String]) throws {
        let first = documents[0].experiment!
        for (document, file) in zip(documents, files) {
            let experiment = document.experiment!
            guard experiment.experiment == first.experiment else { throw ConfigError("\(file) is a \(experiment.experiment) run; \(files[0]) is \(first.experiment)") }
            if let key = first.config.keys.sorted().first(where: { first.config[$0] != experiment.config[$0] }) {
                throw ConfigError("\(file) has \(key)=\(experiment.config[key] ?? "-") where \(files[0]) has \(first.config[key] ?? "-"): one side must hold runs of one setting")
            }
        }
    }

    static func requireComparable(_ sides: [ComparedVariant], anyConfig: Bool) throws {
        let base = sides[0].documents[0].experiment!
        for side in sides.dropFirst() {
            let other = side.documents[0].experiment!
            guard other.experiment == base.experiment else {
                throw ConfigError("cannot compare \(base.experiment) runs (\(sides[0].name)) with \(other.experiment) runs (\(side.name))")
            }
            if !anyConfig, let key = Set(base.config.keys).union(other.config.keys).sorted().first(where: { base.config[$0] != other.config[$0] }) {
                throw ConfigError("\(side.name) ran with \(key)=\(other.config[key] ?? "-"), \(sides[0].name) with \(base.config[key] ?? "-"); give --any-config to compare different settings")
            }
        }
    }
}
