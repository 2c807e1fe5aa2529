import ArgumentParser
import VMM

/// A byte size flag: "4096", "64k", "32M", "1G".
struct ByteSize: ExpressibleByArgument, Sendable {
    let bytes: UInt64

    init?(argument: String) {
        guard let bytes = try? Sizes.parse(argument) else { return nil }
        self.bytes = bytes
    }

    /// For `@Option(transform:)`: a bad size says why.
    static func parse(_ text: String) throws -> ByteSize {
        do {
            return ByteSize(bytes: try Sizes.parse(text))
        } catch {
            throw ValidationError(error.description)
        }
    }

    init(bytes: UInt64) { self.bytes = bytes }

    static var defaultCompletionKind: CompletionKind { .default }
}

extension Backing: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

extension IterationGate.Waiting: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}

/// A CPU list flag: "0,2,4-7".
struct CPUListArgument: ExpressibleByArgument, Sendable {
    let cpus: [Int]

    init?(argument: String) {
        guard let cpus = CPUList.parse(argument) else { return nil }
        self.cpus = cpus
    }
}

extension PrivilegeLevel: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "0": self = .kernel
        case "3": self = .user
        default: return nil
        }
    }
    public static var allValueStrings: [String] { ["0", "3"] }
}
