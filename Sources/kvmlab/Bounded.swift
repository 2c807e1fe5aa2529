import ArgumentParser

/// Every numeric flag goes through one of these: NaN, infinities, values out
/// of range and numbers that do not parse are refused with the flag's bound
/// in the message (exit status 2), never trapped on later.
enum Bounded {
    static func double(_ flag: String, _ range: ClosedRange<Double>, unit: String = "") -> @Sendable (String) throws -> Double {
        { text in
            let suffix = unit.isEmpty ? "" : " \(unit)"
            guard let value = Double(text), value.isFinite else {
                throw ValidationError("\(flag) takes a number from \(show(range.lowerBound)) to \(show(range.upperBound))\(suffix), not '\(text)'")
            }
            guard range.contains(value) else {
                throw ValidationError("\(flag) must be between \(show(range.lowerBound)) and \(show(range.upperBound))\(suffix), not \(text)")
            }
            return value
        }
    }

    static func int(_ flag: String, _ range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
        { text in
            guard let value = Int(text), range.contains(value) else {
                throw ValidationError("\(flag) takes a whole number from \(range.lowerBound) to \(range.upperBound), not '\(text)'")
            }
            return value
        }
    }

    static func show(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : "\(value)"
    }
}
