import Foundation
import Scenarios
import TestSupport
import Testing

/// Every experiment is declared once (ExperimentKind); everything that
/// lists experiments must agree with it. Removing one from any list (the
/// command registry, compare, the schema, the README, the tests' own list)
/// fails here.
@Suite(.timeLimit(.minutes(1))) struct RegistryTests {
    static let names = ExperimentKind.allCases.map(\.rawValue)

    static var repository: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    @Test func everyExperimentIsASubcommand() throws {
        let help = try CLI.run(["--help"])
        let subcommands = help.stdout.components(separatedBy: "SUBCOMMANDS:").last ?? ""
        let listed = Set(subcommands.split(separator: "\n").compactMap { $0.hasPrefix("  ") && !$0.hasPrefix("   ") ? $0.split(separator: " ").first.map(String.init) : nil })
        #expect(Set(Self.names).isSubset(of: listed), "missing: \(Set(Self.names).subtracting(listed))")
        for name in Self.names { #expect(try CLI.run([name, "--help"]).stdout.contains("USAGE: kvmlab \(name)")) }
    }

    @Test func compareTakesEveryExperimentAndNoOther() throws {
        let result = try CLI.run(["compare"])
        #expect(result.status == 2)
        let list = try #require(result.stderr.range(of: "an experiment (")).upperBound
        let names = result.stderr[list...].prefix { $0 != ")" }.components(separatedBy: ", ")
        #expect(names.sorted() == Self.names.sorted(), "\(result.stderr)")
    }

    @Test func theSchemaNamesEveryExperiment() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.repository + "/schema/kvmlab-2.schema.json"))) as? [String: Any])
        let command = try #require((schema["properties"] as? [String: Any])?["command"] as? [String: Any])
        let listed = Set(try #require(command["enum"] as? [String]))
        #expect(Set(Self.names).isSubset(of: listed), "missing: \(Set(Self.names).subtracting(listed))")
        #expect(listed.subtracting(Self.names) == ["info", "check", "compare"])
    }

    @Test func theReadmeDocumentsEveryExperiment() throws {
        let readme = try String(contentsOfFile: Self.repository + "/README.md", encoding: .utf8)
        for name in Self.names { #expect(readme.contains("### `kvmlab \(name)`"), "README has no section for \(name)") }
    }

    @Test func theTestsRunEveryExperiment() {
        #expect(CLI.smallestRuns.map { $0[0] }.sorted() == Self.names.sorted())
    }
}
