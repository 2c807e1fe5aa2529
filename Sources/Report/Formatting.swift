import Foundation

/// Number formatting shared by every table.
public enum Format {
    public static func seconds(_ value: Double) -> String { String(format: "%.6f", value) }
    public static func micros(_ seconds: Double) -> String { String(format: "%.1f", seconds * 1e6) }
    public static func fixed(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

    /// "1 GiB" style for byte counts.
    public static func bytes(_ value: UInt64) -> String {
        for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] where value >= 1 << shift {
            let scaled = Double(value) / Double(UInt64(1) << UInt64(shift))
            return scaled == scaled.rounded() ? "\(Int(scaled)) \(unit)" : String(format: "%.1f %@", scaled, unit)
        }
        return "\(value) B"
    }

    public static func signed(_ value: Int64) -> String { value > 0 ? "+\(value)" : "\(value)" }
}
