import VMM

/// KVM stats deltas side by side: one row per stat that any column has,
/// one column per phase, run or mode.
public func statsTable(_ title: String, keys: [String], columns: [(name: String, stats: StatsDelta?)]) -> String {
    var table = Table(title: title, headers: ["stat"] + columns.map(\.name))
    for key in keys where columns.contains(where: { $0.stats?[key] != nil }) {
        table.add([key] + columns.map { $0.stats?[key].map(Format.signed) ?? "-" })
    }
    return table.render()
}

extension StatsDelta {
    /// The sum of several deltas (e.g. every run of one experiment).
    static func total(_ deltas: [StatsDelta]) -> StatsDelta? {
        guard !deltas.isEmpty else { return nil }
        var sum = StatsDelta()
        for delta in deltas {
            sum.vm.merge(delta.vm, uniquingKeysWith: +)
            sum.vcpus.merge(delta.vcpus, uniquingKeysWith: +)
        }
        return sum
    }
}
