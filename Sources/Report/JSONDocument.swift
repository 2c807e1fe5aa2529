import FoundationEssentials
import Scenarios
import VMM

/// The one JSON document every command prints with `--json` (schema
/// `kvmlab/2`, written down in schema/kvmlab-2.schema.json): the command,
/// the host fingerprint, the run in the experiment model (what compare and
/// every other reader use) and the experiment's own detail.
public struct JSONDocument<Detail: Encodable>: Encodable {
    public static var schema: String { "kvmlab/2" }

    public let schema: String
    public let command: String
    public let host: HostFingerprint
    public let experiment: Experiment?
    public let detail: Detail

    public init(command: String, host: HostFingerprint = .current(), experiment: Experiment?, detail: Detail) {
        schema = JSONDocument.schema
        self.command = command
        self.host = host
        self.experiment = experiment
        self.detail = detail
    }

    public func render() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }
}

/// A document read back (compare reads saved runs).
public struct SavedDocument: Decodable, Sendable {
    public let schema: String
    public let command: String
    public let host: HostFingerprint
    public let experiment: Experiment?

    public static func decode(_ bytes: [UInt8]) throws -> SavedDocument {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try decoder.decode(SavedDocument.self, from: Data(bytes))
    }
}
