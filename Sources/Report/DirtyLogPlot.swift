import Scenarios
import VMM

/// dirty-log's picture: each phase's time per iteration, every vCPU's pass
/// time as a dot, and where the 4 KiB and 2 MiB mappings went, phase by phase.
public enum DirtyLogPlot {
    public static func svg(_ result: DirtyLogResult, host: HostFingerprint) -> String {
        let iterations = result.iterations
        func perIteration(_ title: String, _ value: @escaping (DirtyLogIteration) -> Double?) -> ModelPlot.Panel {
            ModelPlot.Panel { svg, frame in
                Charts.bars(&svg, frame, title: title, unit: .seconds, stacked: false,
                            groups: iterations.compactMap { iteration in value(iteration).map { ("iteration \(iteration.iteration)", [(title, $0)]) } })
            }
        }
        let phases = result.phases
        let short = phases.map { phase -> String in
            let words = phase.name.split(separator: " ")
            if phase.name.hasPrefix("iteration"), words.count > 2 { return "\(words[1])\(words[2].prefix(1))" }
            return String(words.first?.prefix(4) ?? "")
        }
        var running = (k4: 0.0, m2: 0.0)
        var k4: [Double] = [], m2: [Double] = []
        for phase in phases {
            running.k4 += Double(phase.stats?.vm["pages_4k"] ?? 0)
            running.m2 += Double(phase.stats?.vm["pages_2m"] ?? 0)
            k4.append(running.k4)
            m2.append(running.m2)
        }
        let panels = [
            perIteration("dirty memory time") { $0.dirtyMemorySeconds },
            perIteration("get dirty log time") { $0.getSeconds },
            perIteration("clear dirty log time") { $0.clearSeconds },
            ModelPlot.Panel { svg, frame in
                Charts.dots(&svg, frame, title: "each vCPU's pass time (TSC), per iteration", unit: .seconds,
                            columns: iterations.map { ("\($0.iteration)", $0.vcpuPassSeconds) })
            },
            ModelPlot.Panel(wide: true) { svg, frame in
                Charts.steps(&svg, frame, title: "KVM mappings through the phases (pages_4k and pages_2m, running total; pop = populate, 2d/2g/2c = iteration 2 dirty/get/clear)",
                             unit: .count, labels: short, series: [("pages_4k", k4), ("pages_2m", m2)])
            },
        ]
        var experiment = result.experiment
        experiment = Experiment(experiment: experiment.experiment, config: experiment.config, metrics: [], phases: experiment.phases,
                                checks: experiment.checks, problems: experiment.problems, interrupted: experiment.status == .interrupted)
        return ModelPlot.svg(experiment, host: host, extra: panels, title: "\(result.vcpus) vCPUs × \(Sizes.format(result.bytesPerVCPU)) \(result.backing.rawValue), \(result.harvest)")
    }
}

/// populate's picture: per mode, population and first pass stacked (what
/// "ready" costs), then the model's panels.
public enum PopulatePlot {
    public static func svg(_ result: PopulateResult, host: HostFingerprint) -> String {
        let groups = result.modes.filter { $0.unsupported == nil }.map { mode in
            (mode.mode.rawValue, [("population", mode.population?.seconds ?? 0), ("first pass", mode.firstPass?.seconds ?? 0)])
        }
        let stacked = ModelPlot.Panel(wide: true) { svg, frame in
            Charts.bars(&svg, frame, title: "ready: population + first pass, per mode", unit: .seconds, stacked: true, groups: groups)
        }
        return ModelPlot.svg(result.experiment, host: host, extra: [stacked])
    }
}
