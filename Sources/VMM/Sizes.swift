/// Byte sizes as users type them ("4096", "64k", "32M", "1G", "2T").
public enum Sizes {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    public static func parse(_ text: String) throws(ParseError) -> UInt64 {
        let trimmed = text.lowercased().trimmingCharacters(in: " ")
        let unitShift: [Character: UInt64] = ["k": 10, "m": 20, "g": 30, "t": 40]
        var digits = Substring(trimmed)
        if digits.hasSuffix("ib") { digits = digits.dropLast(2) } else if digits.hasSuffix("b") && digits.count > 1 { digits = digits.dropLast() }
        var shift: UInt64 = 0
        if let last = digits.last, let unit = unitShift[last] {
            shift = unit
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isNumber), let value = UInt64(digits) else {
            throw ParseError(description: "'\(text)' is not a size; use a number with an optional k, m, g or t suffix (e.g. 64m)")
        }
        let (result, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw ParseError(description: "'\(text)' is too large") }
        return result
    }

    /// "1 GiB", "64 MiB", "12 KiB", "4097 B": exact binary units where they fit.
    public static func format(_ bytes: UInt64) -> String {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] where bytes >= 1 << shift {
            let whole = bytes >> UInt64(shift)
            if whole << UInt64(shift) == bytes { return "\(whole) \(unit)" }
            let value = Double(bytes) / Double(UInt64(1) << UInt64(shift))
            let tenths = Int((value * 10).rounded())
            return "\(tenths / 10).\(tenths % 10) \(unit)"
        }
        return "\(bytes) B"
    }
}
