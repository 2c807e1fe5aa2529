/// A request that cannot be satisfied as asked: bad sizes, too many vCPUs or
/// slots. The CLI reports these as usage errors (exit status 2).
///
/// The message speaks the library's language: it names the configuration's
/// fields (`"\(field: "bytesPerVCPU") must be ..."`), never a flag. A front
/// end that sets those fields its own way (the command line's flags)
/// renders the same message in its terms with `text(naming:)`.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    /// Text with the configuration fields it names kept apart.
    public struct Message: ExpressibleByStringInterpolation, Sendable {
        enum Part: Sendable, Equatable {
            case text(String)
            case field(String)
        }

        var parts: [Part]

        public struct StringInterpolation: StringInterpolationProtocol {
            var parts: [Part] = []
            public init(literalCapacity: Int, interpolationCount: Int) {}
            public mutating func appendLiteral(_ literal: String) { parts.append(.text(literal)) }
            public mutating func appendInterpolation<T>(_ value: T) { parts.append(.text("\(value)")) }
            /// A configuration field, by its name in the library.
            public mutating func appendInterpolation(field name: String) { parts.append(.field(name)) }
            /// Another message, its fields kept.
            public mutating func appendInterpolation(_ message: Message) { parts += message.parts }
        }

        public init(stringLiteral value: String) { parts = [.text(value)] }
        public init(stringInterpolation: StringInterpolation) { parts = stringInterpolation.parts }

        /// Each field by `name(field)`, or by its own name where that is nil.
        public func text(naming name: (String) -> String?) -> String {
            parts.map { part in
                switch part {
                case .text(let text): return text
                case .field(let field): return name(field) ?? field
                }
            }.joined()
        }
    }

    public let message: Message
    public init(_ message: Message) { self.message = message }

    /// The configuration fields the message names, in order.
    public var fields: [String] {
        message.parts.compactMap { if case .field(let name) = $0 { return name } else { return nil } }
    }

    /// In the library's terms: each field by its own name.
    public var description: String { message.text { _ in nil } }

    /// With each field named by `name` (the flag that sets it), or by its
    /// own name where `name` gives nil.
    public func text(naming name: (String) -> String?) -> String { message.text(naming: name) }

    /// A vCPU count outside what an experiment takes.
    public static func vcpus(_ count: Int, _ limit: ClosedRange<Int>, _ why: String = "") -> ConfigError {
        ConfigError("\(field: "vcpus") must be between \(limit.lowerBound) and \(limit.upperBound), not \(count)\(why)")
    }
}

/// The host refused something kvmlab needed while running (a thread, a
/// file): a runtime failure (exit status 1), not a bad request.
public struct HostError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A capability this host's KVM lacks (no dirty ring, a quirk it cannot
/// disable). The CLI reports it like a request that cannot be satisfied
/// (exit status 2); `kvmlab check` reports it as a SKIP that names it,
/// while a check's own bad request (a ConfigError) fails.
public struct HostLacks: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
