import Foundation
import TestSupport
import Testing

/// Validates documents against schema/kvmlab-2.schema.json with Python's
/// jsonschema (the reference implementation of JSON Schema).
enum SchemaValidator {
    static var schemaPath: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("schema/kvmlab-2.schema.json").path
    }

    static let missing: String? = {
        let result = try? Tool.run("/usr/bin/env", ["python3", "-c", "import jsonschema"])
        return result?.status == 0 ? nil : "needs python3 with jsonschema (pip install jsonschema; .ci/run installs it)"
    }()

    /// nil when `document` is valid, else the validator's complaint.
    static func problem(_ document: String) throws -> String? {
        let script = """
        import json, sys, jsonschema
        schema = json.load(open(sys.argv[1]))
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(json.loads(sys.stdin.read()), schema, cls=jsonschema.Draft202012Validator)
        """
        let result = try Tool.run("/usr/bin/env", ["python3", "-c", script, schemaPath], input: document)
        return result.status == 0 ? nil : result.stderr.split(separator: "\n").suffix(3).joined(separator: " | ")
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"),
       .enabled(if: SchemaValidator.missing == nil, "\(SchemaValidator.missing ?? "")"))
struct SchemaTests {
    @Test(arguments: [["info"]] + CLI.smallestRuns)
    func everyCommandsJSONMatchesTheSchema(arguments: [String]) throws {
        let result = try CLI.run(arguments + ["--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let problem = try SchemaValidator.problem(result.stdout)
        #expect(problem == nil, "\(problem ?? "")")
    }

    /// The validator is not a rubber stamp: a broken document is refused.
    @Test func aDocumentMissingItsExperimentIsRefused() throws {
        let result = try CLI.run(["exit-latency", "-n", "100", "--json"])
        var object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        object["experiment"] = nil
        let broken = String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
        #expect(try SchemaValidator.problem(broken) != nil)
        var badStatus = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        var experiment = try #require(badStatus["experiment"] as? [String: Any])
        experiment["status"] = "fine"
        badStatus["experiment"] = experiment
        #expect(try SchemaValidator.problem(String(decoding: try JSONSerialization.data(withJSONObject: badStatus), as: UTF8.self)) != nil)
    }
}
