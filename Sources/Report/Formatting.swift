import Foundation

/// Number formatting shared by every table.
public enum Format {
    public static func seconds(_ value: Double) -> String { String(format: "%.6f", value) }
    public static func micros(_ seconds: Double) -> String { String(format: "%.1f", seconds * 1e6) }
    public static func fixed(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }

    public static func signed(_ value: Int64) -> String { value > 0 ? "+\(value)" : "\(value)" }
}
