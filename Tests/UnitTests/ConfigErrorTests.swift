import Foundation
import Scenarios
import Testing
import VMM

/// The library states a bad request in its own terms (the config's fields);
/// the command line renders the same message with its flags.
@Suite(.timeLimit(.minutes(1))) struct ConfigErrorTests {
    @Test func fieldsAreNamedByTheLibraryUnlessAFrontEndNamesThem() {
        let error = ConfigError("\(field: "bytesPerVCPU") must be a multiple of \(4096) bytes; lower \(field: "vcpus") or \(field: "bytesPerVCPU")")
        #expect(error.fields == ["bytesPerVCPU", "vcpus", "bytesPerVCPU"])
        #expect(error.description == "bytesPerVCPU must be a multiple of 4096 bytes; lower vcpus or bytesPerVCPU")
        #expect(error.text { ["bytesPerVCPU": "-b"][$0] } == "-b must be a multiple of 4096 bytes; lower vcpus or -b")
    }

    @Test func aMessageInterpolatedIntoAnotherKeepsItsFields() {
        let fix: ConfigError.Message = "lower \(field: "memory")"
        let error = ConfigError("too big; \(fix)")
        #expect(error.fields == ["memory"])
        #expect(error.text { $0 == "memory" ? "--memory" : nil } == "too big; lower --memory")
    }

    @Test func aScenarioRejectsARequestInItsOwnTerms() throws {
        var config = PopulateConfig()
        config.vcpus = 1
        config.bytesPerVCPU = 6 << 10
        let error = try #require(throws: ConfigError.self) { try PopulateScenario.validate(config) }
        #expect(error.fields == ["bytesPerVCPU"])
        #expect(error.description.hasPrefix("bytesPerVCPU must be a positive multiple of 4 KiB"))
    }

    /// No ConfigError below the command line spells a flag: a message like
    /// "-b must be ..." in Scenarios or VMM fails here (the fix is
    /// `\(field: "bytesPerVCPU")` and a line in the command's `flags`).
    @Test func theLibraryNamesNoFlags() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let flag = try Regex(#"ConfigError\("([^"]*[\s('])?--?[a-zA-Z][a-z-]*([\s):,;]|$)"#)
        var offenders: [String] = []
        for layer in ["Sources/KVM", "Sources/VMM", "Sources/Scenarios"] {
            let files = FileManager.default.enumerator(atPath: root.appendingPathComponent(layer).path)?.compactMap { $0 as? String } ?? []
            for file in files where file.hasSuffix(".swift") {
                let text = try String(contentsOf: root.appendingPathComponent(layer).appendingPathComponent(file), encoding: .utf8)
                for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() where line.contains(flag) {
                    offenders.append("\(layer)/\(file):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(offenders.isEmpty, "\(offenders.joined(separator: "\n"))")
        #expect(#"throw ConfigError("-b must be a positive multiple of 4 KiB")"#.contains(flag))
        #expect(#"throw ConfigError("--ring takes a power of two")"#.contains(flag))
        #expect(!#"throw ConfigError("\(field: "pin") names CPU \(bad), but this host has CPUs 0-\(cpus - 1)")"#.contains(flag))
    }
}
