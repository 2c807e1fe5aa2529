/// Number formatting shared by every table, without Foundation (the
/// binary links FoundationEssentials only).
public enum Format {
    public static func seconds(_ value: Double) -> String { fixed(value, 6) }
    public static func micros(_ seconds: Double) -> String { fixed(seconds * 1e6, 1) }

    public static func signed(_ value: Int64) -> String { value > 0 ? "+\(value)" : "\(value)" }

    /// `value` with exactly `digits` decimals, rounded half away from zero;
    /// nan, inf and -inf spelled out; magnitudes beyond 1e15 in plain %g style.
    public static func fixed(_ value: Double, _ digits: Int = 2) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : value < 0 ? "-inf" : "inf" }
        let digits = max(0, min(digits, 9))
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = (abs(value) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9e15 else { return "\(value)" }
        let whole = UInt64(scaled)
        let unit = UInt64(scale)
        let integer = String(whole / unit)
        let sign = value < 0 && whole > 0 ? "-" : ""
        guard digits > 0 else { return sign + integer }
        let fraction = String(whole % unit)
        return sign + integer + "." + String(repeating: "0", count: digits - fraction.count) + fraction
    }
}
