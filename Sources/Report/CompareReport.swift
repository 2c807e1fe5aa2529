import Scenarios
import VMM

/// `kvmlab compare` as text: the cover-letter table.
public enum CompareReport {
    public static func text(_ comparison: Comparison, order: String?) -> String {
        var out = "kvmlab compare \(comparison.experiment)\n"
        for variant in comparison.variants {
            let flags = variant.flags.isEmpty ? "(no flags)" : variant.flags.joined(separator: " ")
            let statuses = Dictionary(grouping: variant.statuses, by: { $0 }).map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
            out += "  \(variant.name): \(flags) — \(variant.rounds) round\(variant.rounds == 1 ? "" : "s") (\(statuses))\n"
        }
        if let order { out += "order: \(order)\n" }
        out += "statistics: \(comparison.method)\n"
        out += hostTable(comparison)
        if !comparison.hostDifferences.isEmpty {
            out += "\nHosts differ (these change results):\n" + comparison.hostDifferences.map { "  \($0)\n" }.joined()
        }
        if !comparison.configDifferences.isEmpty {
            out += "\nSettings that differ between the sides:\n" + comparison.configDifferences.map { "  \($0)\n" }.joined()
        }
        for variant in comparison.variants.dropFirst() { out += verdictTables(comparison, variant: variant.name) }
        return out
    }

    /// Each side's host, when every side recorded one.
    static func hostTable(_ comparison: Comparison) -> String {
        let hosts = comparison.variants.compactMap(\.host)
        guard hosts.count == comparison.variants.count else { return "" }
        var table = Table(title: "\nHosts", headers: [""] + comparison.variants.map(\.name))
        table.alignNumbers = false
        table.add(["kernel"] + hosts.map(\.kernel))
        table.add(["cpu"] + hosts.map { "\($0.cpu) (\($0.onlineCPUs))" })
        table.add(["kvm module"] + hosts.map { $0.kvmModule ?? "none" })
        table.add(["mmu"] + hosts.map(\.mmuMode))
        table.add(["thp"] + hosts.map { $0.thpMode ?? "-" })
        return table.render()
    }

    /// One variant against its baseline: the metrics with their verdicts,
    /// then the KVM stats and tracepoints per phase.
    static func verdictTables(_ comparison: Comparison, variant: String) -> String {
        let rows = comparison.metrics.filter { $0.variant == variant }
        let base = rows.first?.baseline ?? comparison.variants[0].name
        let summary = comparison.tables.first { $0.variant == variant }
        var table = Table(title: "\n\(variant) against \(base): medians over rounds; \(summary?.metricsTested ?? 0) metrics tested together",
                          headers: ["metric", base, variant, "\(variant)/\(base)", "interval", "p (Holm)", "verdict"])
        for row in rows {
            table.add([row.key, value(row.aMedian, row.unit), value(row.bMedian, row.unit),
                       row.ratio.map { Format.fixed($0, 3) } ?? "-",
                       row.low.map { "\(Format.fixed($0, 3))–\(Format.fixed(row.high ?? $0, 3))" } ?? "-",
                       row.adjustedP.map { pValue($0) } ?? "-",
                       row.verdict])
        }
        var out = summary?.note.map { "\n" + $0 + "\n" } ?? ""
        out += table.render()
        let stats = comparison.stats.filter { $0.variant == variant }
        if !stats.isEmpty {
            var statsTable = Table(title: "\nKVM stats and kernel tracepoints per phase (medians of each phase's delta)", headers: ["phase", "stat", base, variant])
            for row in stats { statsTable.add([row.phase, row.stat, Format.fixed(row.a, 0), Format.fixed(row.b, 0)]) }
            out += statsTable.render()
        }
        return out
    }

    /// A p-value to two significant figures, small ones in exponent form.
    public static func pValue(_ p: Double) -> String {
        guard p < 0.001 else { return Format.fixed(p, 3) }
        var exponent = 0
        var mantissa = p
        while mantissa < 1 && exponent < 30 { mantissa *= 10; exponent += 1 }
        return "\(Format.fixed(mantissa, 1))e-\(exponent)"
    }

    /// A figure in its unit, scaled for reading (tables only; JSON keeps SI).
    static func value(_ number: Double?, _ unit: MetricUnit) -> String {
        guard let number else { return "-" }
        if number == 0 { return "0" }
        switch unit {
        case .seconds:
            let magnitude = abs(number)
            if magnitude >= 1 { return Format.fixed(number, 3) + " s" }
            if magnitude >= 1e-3 { return Format.fixed(number * 1e3, 3) + " ms" }
            if magnitude >= 1e-6 || magnitude == 0 { return Format.fixed(number * 1e6, 2) + " µs" }
            return Format.fixed(number * 1e9, 1) + " ns"
        case .bytes: return Sizes.format(UInt64(max(0, number)))
        case .ratio: return Format.fixed(number, 3)
        default: return number == number.rounded() && abs(number) < 1e15 ? String(Int64(number)) : Format.fixed(number, 2)
        }
    }
}
