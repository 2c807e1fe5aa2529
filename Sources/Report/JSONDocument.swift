import Foundation
import VMM

/// The one JSON document every command prints with `--json`: a schema
/// version, the command, the host fingerprint and the result in SI units.
public struct JSONDocument<Result: Encodable>: Encodable {
    public static var schema: String { "kvmlab/1" }

    public let schema: String
    public let command: String
    public let host: HostFingerprint
    public let result: Result

    public init(command: String, host: HostFingerprint = .current(), result: Result) {
        schema = JSONDocument.schema
        self.command = command
        self.host = host
        self.result = result
    }

    public func render() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }
}
