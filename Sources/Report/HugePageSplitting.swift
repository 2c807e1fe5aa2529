import Scenarios
import VMM

/// Reads huge-page splitting out of the pages_2m / pages_4k deltas, in words.
enum HugePageSplitting {
    /// The phases of a dirty-log run in which KVM may split huge pages, and how it would there.
    static func explain(_ result: DirtyLogResult) -> [String] {
        var phases: [(name: String, kind: String, stats: StatsDelta?)] = [
            ("Enabling dirty logging", "eager splitting when logging is enabled", result.enable?.stats)]
        for iteration in result.iterations {
            phases.append(("Iteration \(iteration.iteration) dirty memory", "split on the guest's write faults", iteration.dirtyStats))
            phases.append(("Iteration \(iteration.iteration) clear dirty log", "eager splitting on KVM_CLEAR_DIRTY_LOG (INITIALLY_SET)", iteration.clearStats))
        }
        return explain(populate: result.populate?.stats, phases: phases, backing: result.backing)
    }

    static func explain(populate: StatsDelta?, phases: [(name: String, kind: String, stats: StatsDelta?)], backing: Backing) -> [String] {
        guard let populate, populate.vm["pages_2m"] != nil else {
            return ["KVM's binary stats (pages_2m) are not available here, so splitting cannot be observed."]
        }
        let mapped2M = populate.vm["pages_2m"] ?? 0
        let mapped1G = populate.vm["pages_1g"] ?? 0
        if mapped2M <= 0 && mapped1G <= 0 {
            return ["Populating mapped no huge pages (\(backing.rawValue) backing gives 4 KiB host pages), so there was nothing to split."]
        }
        var lines = ["Populating mapped \(mapped2M) 2 MiB" + (mapped1G > 0 ? " and \(mapped1G) 1 GiB" : "") + " pages."]
        for phase in phases {
            let split = -(phase.stats?.vm["pages_2m"] ?? 0)
            guard split > 0 else { continue }
            let small = phase.stats?.vm["pages_4k"] ?? 0
            lines.append("\(phase.name): \(split) 2 MiB mappings gone, pages_4k \(small > 0 ? "+" : "")\(small): \(phase.kind).")
        }
        if lines.count == 1 {
            lines.append("No 2 MiB mapping was split (nothing was written, or logging never write-protected them).")
        } else if !phases.contains(where: { $0.kind.hasPrefix("eager") && -($0.stats?.vm["pages_2m"] ?? 0) > 0 }) {
            lines.append("None were split eagerly: splitting waited for guest writes (shadow MMU, or kvm.eager_page_split=N).")
        }
        return lines
    }
}
