import Foundation
import TestSupport
import Testing

/// Real tools where users use them: promtool and node_exporter for the
/// metrics, the dist binary under an empty environment, a pty for progress.
enum FleetTools {
    static func which(_ tool: String) -> String? {
        for directory in ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"] where FileManager.default.isExecutableFile(atPath: "\(directory)/\(tool)") {
            return "\(directory)/\(tool)"
        }
        return nil
    }

    static let promtool = which("promtool")
    static let nodeExporter = which("prometheus-node-exporter") ?? which("node_exporter")
    static let script = which("script")
    static let setpriv = which("setpriv")

    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "kvmlab-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct OpenMetricsTests {
    @Test(.enabled(if: FleetTools.promtool != nil, "needs promtool (Debian package prometheus; .ci/run installs it)"),
          arguments: CLI.smallestRuns)
    func promtoolAcceptsEveryCommandsMetrics(arguments: [String]) throws {
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/kvmlab.prom"
        // A file already there is replaced by a rename (a new inode), never
        // rewritten in place where the textfile collector could read half of it.
        try "old\n".write(toFile: file, atomically: false, encoding: .utf8)
        let inode = try #require(try FileManager.default.attributesOfItem(atPath: file)[.systemFileNumber] as? UInt64)
        let result = try CLI.run(arguments + ["--openmetrics", file])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: file)[.systemFileNumber] as? UInt64 != inode)
        let text = try String(contentsOfFile: file, encoding: .utf8)
        if let problem = OpenMetricsHistograms.problem(text) { Issue.record("\(arguments[0]): \(problem)") }
        let experiment = arguments[0].replacingOccurrences(of: "-", with: "_")
        #expect(text.contains("# TYPE kvmlab_\(experiment)_"))
        #expect(text.contains("kvmlab_run_status{experiment=\"\(arguments[0])\""))
        #expect(text.contains(",status=\"ok\"} 1"))
        let check = try Tool.run(FleetTools.promtool!, ["check", "metrics"], input: text)
        #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
        // Atomic write: no temporary file is left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["kvmlab.prom"])
    }

    /// The histogram checker itself: a non-cumulative histogram, or a +Inf
    /// bucket that is not the count, is caught; a well-formed one is not.
    @Test func theHistogramCheckerCatchesNonCumulativeBuckets() {
        let good = "h_bucket{a=\"x\",le=\"1\"} 2\nh_bucket{a=\"x\",le=\"2\"} 5\nh_bucket{a=\"x\",le=\"+Inf\"} 5\nh_count{a=\"x\"} 5\n"
        #expect(OpenMetricsHistograms.problem(good) == nil)
        #expect(OpenMetricsHistograms.problem(good.replacingOccurrences(of: "le=\"2\"} 5", with: "le=\"2\"} 1")) != nil)
        #expect(OpenMetricsHistograms.problem(good.replacingOccurrences(of: "h_count{a=\"x\"} 5", with: "h_count{a=\"x\"} 6")) != nil)
    }

    /// A variant's name is the user's text and becomes a label value: quotes
    /// and backslashes in it are escaped, and promtool reads the file back.
    /// (Without the quote escape promtool rejects the file.)
    @Test(.enabled(if: FleetTools.promtool != nil, "needs promtool (Debian package prometheus; .ci/run installs it)"))
    func oddVariantNamesStayValidLabels() throws {
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/compare.prom"
        let result = try CLI.run(["compare", "exit-latency", "-n", "200", "--rounds", "1", "--quiet",
                                  "--variant", "say \"hi\" \\o/=", "--variant", "plain=", "--openmetrics", file])
        #expect(result.status == 0, "\(result.stderr)")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        #expect(text.contains("variant=\"say \\\"hi\\\" \\\\o/\""))
        let check = try Tool.run(FleetTools.promtool!, ["check", "metrics"], input: text)
        #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
    }

    /// node_exporter's textfile collector publishes kvmlab's figures as written.
    @Test(.enabled(if: FleetTools.nodeExporter != nil, "needs prometheus-node-exporter (.ci/run installs it)"))
    func nodeExporterServesTheMetrics() throws {
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try CLI.run(["exit-latency", "-n", "1000", "--openmetrics", directory + "/kvmlab.prom", "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        let metrics = try #require((document["experiment"] as? [String: Any])?["metrics"] as? [[String: Any]])
        let perExit = try #require(metrics.first { $0["name"] as? String == "seconds_per_exit" }?["value"] as? Double)

        let port = 19_100 + Int(getpid() % 500)
        let exporter = Process()
        exporter.executableURL = URL(fileURLWithPath: FleetTools.nodeExporter!)
        exporter.arguments = ["--collector.disable-defaults", "--collector.textfile", "--collector.textfile.directory=\(directory)",
                              "--web.listen-address=127.0.0.1:\(port)"]
        exporter.standardOutput = FileHandle.nullDevice
        exporter.standardError = FileHandle.nullDevice
        try exporter.run()
        defer { exporter.terminate(); exporter.waitUntilExit() }
        var body: String?
        for _ in 0..<50 where body == nil {
            Thread.sleep(forTimeInterval: 0.1)
            let scrape = try Tool.run("/usr/bin/env", ["python3", "-c",
                "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen('http://127.0.0.1:\(port)/metrics', timeout=2).read().decode())"])
            if scrape.status == 0 { body = scrape.stdout }
        }
        let scraped = try #require(body, "node_exporter did not answer on 127.0.0.1:\(port)")
        let line = try #require(scraped.split(separator: "\n").first { $0.hasPrefix("kvmlab_exit_latency_seconds_per_exit{") })
        let value = try #require(Double(line.split(separator: " ").last.map(String.init) ?? ""))
        #expect(abs(value - perExit) <= perExit * 1e-9)
        #expect(scraped.contains("kvmlab_run_status{"))
        #expect(scraped.contains("node_textfile_scrape_error 0"))
    }

    /// An interrupted run still publishes what it measured, with its status.
    @Test func anInterruptedRunStillWritesItsMetrics() throws {
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["jitter", "-v", "1", "--duration", "20", "--warmup", "0.1", "--openmetrics", directory + "/j.prom"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: 1)
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        #expect(process.terminationStatus == 130)
        let text = try String(contentsOfFile: directory + "/j.prom", encoding: .utf8)
        #expect(text.contains("status=\"interrupted\"} 1"))
        #expect(text.contains("kvmlab_jitter_stalls{"))
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct ToolBehaviourTests {
    /// Progress goes to a terminal's stderr only, and --quiet silences it.
    @Test(.enabled(if: FleetTools.script != nil, "needs script(1) for a pseudo-terminal"))
    func progressOnlyOnATerminal() throws {
        let command = "\(CLI.binary) jitter -v 1 --duration 1.6 --warmup 0.1 > /dev/null"
        let tty = try Tool.run(FleetTools.script!, ["-q", "-e", "-c", command, "/dev/null"])
        #expect(tty.status == 0)
        #expect(tty.stdout.contains("kvmlab: baseline"), "\(tty.stdout)")
        let quiet = try Tool.run(FleetTools.script!, ["-q", "-e", "-c", command + " --quiet", "/dev/null"])
        #expect(!quiet.stdout.contains("kvmlab: baseline"))
        let piped = try CLI.run(["jitter", "-v", "1", "--duration", "1.6", "--warmup", "0.1"])
        #expect(!piped.stderr.contains("kvmlab: "))
    }

    /// Without /dev/kvm access: the host part, then one line, exit 1.
    @Test(.enabled(if: FleetTools.setpriv != nil && getuid() == 0, "needs root and setpriv to drop to nobody"))
    func infoWithoutAccessSaysWhatItCan() throws {
        let result = try Tool.run(FleetTools.setpriv!, ["--reuid=65534", "--regid=65534", "--clear-groups", CLI.binary, "info"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("kernel") && result.stdout.contains("kvm module"))
        #expect(!result.stdout.contains("KVM_CAP_MAX_VCPUS"))
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("need root or the kvm group"))
    }
}

/// The dist binary (`make dist`, which `make test` builds first).
enum DistBinary {
    static var root: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    static var path: String? {
        let directory = root + "/dist"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.first { $0.hasPrefix("kvmlab-") && $0.hasSuffix("-linux-x86_64") }.map { directory + "/" + $0 }
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"),
       .enabled(if: DistBinary.path != nil, "no dist/kvmlab-*: run make dist (make test does)"))
struct DistTests {
    @Test func runsFromAnEmptyDirectoryWithAnEmptyEnvironment() throws {
        let binary = try #require(DistBinary.path)
        let directory = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let run = try Tool.run("/usr/bin/env", ["-i", binary, "run", "-v", "2"], environment: [:], directory: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("Hello from a kvmlab guest on vCPU 1"))
        let info = try Tool.run("/usr/bin/env", ["-i", binary, "info"], environment: [:], directory: directory)
        #expect(info.status == 0 && info.stdout.contains("KVM_CAP_MAX_VCPUS"))
        let version = try Tool.run("/usr/bin/env", ["-i", binary, "--version"], environment: [:], directory: directory)
        #expect(version.stdout.hasPrefix("kvmlab ") && version.stdout.contains("Swift 6") && !version.stdout.contains("commit unknown"))
    }

    @Test func isSmallSelfContainedAndChecksummed() throws {
        let binary = try #require(DistBinary.path)
        let size = try #require(try FileManager.default.attributesOfItem(atPath: binary)[.size] as? Int)
        #expect(size <= 20 << 20, "dist binary is \(size) bytes")
        let libraries = try Tool.run("/usr/bin/ldd", [binary])
        #expect(!libraries.stdout.contains("libswift") && !libraries.stdout.contains("libFoundation") && !libraries.stdout.contains("icu"))
        let sum = try Tool.run("/usr/bin/sha256sum", ["-c", URL(fileURLWithPath: binary).lastPathComponent + ".sha256"],
                               directory: URL(fileURLWithPath: binary).deletingLastPathComponent().path)
        #expect(sum.status == 0, "\(sum.stdout)")
    }

    @Test func installPutsTheBinaryAndCompletionsUnderThePrefix() throws {
        let prefix = try FleetTools.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: prefix) }
        // `make install` builds the dist binary first where it is stale (a
        // release build: minutes, not the 110 s a kvmlab run gets).
        let make = try Tool.run("/usr/bin/env", ["make", "-s", "-C", DistBinary.root, "install", "PREFIX=\(prefix)"], limit: 900)
        #expect(make.status == 0, "\(make.stderr)")
        #expect(try Tool.run(prefix + "/bin/kvmlab", ["--version"]).status == 0)
        for path in ["share/bash-completion/completions/kvmlab", "share/zsh/site-functions/_kvmlab", "share/fish/vendor_completions.d/kvmlab.fish"] {
            let text = try String(contentsOfFile: prefix + "/" + path, encoding: .utf8)
            #expect(text.contains("dirty-log"), "\(path)")
        }
    }
}

/// Every histogram in a metrics file: buckets cumulative (never falling as
/// `le` rises) and the +Inf bucket equal to `_count`. promtool accepts
/// files that break either.
enum OpenMetricsHistograms {
    static func problem(_ text: String) -> String? {
        var buckets: [String: [(le: Double, value: Double)]] = [:], counts: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            let sample = String(line[..<space])
            if let range = sample.range(of: "_bucket{") {
                let labels = String(sample[range.upperBound...])
                // The le label: after a comma, or first (not the end of kvm_module=).
                guard let le = labels.range(of: ",le=\"") ?? (labels.hasPrefix("le=\"") ? labels.range(of: "le=\"") : nil) else {
                    return "a bucket without le: \(line)"
                }
                let bound = labels[le.upperBound...].prefix { $0 != "\"" }
                let series = String(sample[..<range.lowerBound]) + "{" + labels.replacingOccurrences(of: "le=\"\(bound)\"", with: "")
                buckets[series, default: []].append((bound == "+Inf" ? .infinity : Double(bound) ?? .nan, value))
            } else if let range = sample.range(of: "_count{") {
                counts[String(sample[..<range.lowerBound]) + "{" + sample[range.upperBound...]] = value
            }
        }
        for (series, rows) in buckets {
            let sorted = rows.sorted { $0.le < $1.le }
            if zip(sorted, sorted.dropFirst()).contains(where: { $0.value > $1.value }) { return "\(series): buckets fall as le rises: \(sorted.map(\.value))" }
            let key = series.replacingOccurrences(of: ",}", with: "}").replacingOccurrences(of: "{,", with: "{")
            let count = counts.first { $0.key.replacingOccurrences(of: ",}", with: "}") == key }?.value
            if sorted.last?.le != .infinity || sorted.last?.value != count { return "\(series): +Inf bucket \(sorted.last.map { "\($0.value)" } ?? "-") against _count \(count.map { "\($0)" } ?? "-")" }
        }
        return nil
    }
}
