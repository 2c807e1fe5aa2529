import Scenarios
import VMM

/// `kvmlab migrate`'s table and JSON detail.
public enum MigrateReport: ExperimentReport {
    public static func detail(_ result: MigrateResult) -> MigrateDetail { MigrateDetail(result) }
    public static func svg(_ result: MigrateResult, host: HostFingerprint) -> String { MigratePlot.svg(result, host: host) }

    /// The KVM stats a round moves when the guest's writes fault on
    /// write-protected pages and huge mappings are split.
    static let roundStats = ["pf_fixed", "pf_taken", "pages_4k", "pages_2m", "remote_tlb_flush", "mmu_shadow_zapped"]

    public static func text(_ result: MigrateResult) -> String {
        let config = result.config
        var out = "migrate: \(config.vcpus) dirtying vCPU(s) × \(Sizes.format(config.bytesPerVCPU)), \(config.idleVCPUs) idle; "
        out += "\(config.backing.rawValue) → \(result.destinationBacking.isEmpty ? "?" : result.destinationBacking); "
        out += "dirty rate \(config.dirtyRate.map { "\(Int($0)) pages/s" } ?? "unlimited") per vCPU, \(config.random ? "random" : "sequential"); "
        out += "tracking \(config.track.rawValue)\(config.track == .manual ? " (clear chunk \(config.clearChunk) pages)" : "")"
        out += config.bandwidth.map { ", bandwidth cap \(Format.fixed($0 / 1e6, 1)) MB/s" } ?? ""
        out += "\n\n" + roundTable(result)
        if config.throttle != nil { out += "\n" + sleepTable(result) }
        out += "\n\(result.outcome.isEmpty ? "pre-copy did not finish" : result.outcome)\n"
        out += switchoverLines(result)
        if let total = result.totalSeconds {
            out += "total: \(Format.fixed(total, 3)) s, \(Format.fixed(Double(result.bytesSent) / 1e6, 1)) MB sent for \(Sizes.format(config.testMemory)) of memory"
            out += " (\(Format.fixed(Double(result.bytesSent) / Double(max(1, config.testMemory)), 2))×), \(Format.fixed(result.bandwidth / 1e6, 0)) MB/s\n"
        }
        out += "\n" + guestTable(result)
        return out + ExperimentFooter.text(result.experiment)
    }

    /// The pre-copy rounds, with the KVM stats each moved.
    static func roundTable(_ result: MigrateResult) -> String {
        let autoConverge = if case .autoConverge? = result.config.throttle { true } else { false }
        var rounds = Table(title: "Pre-copy rounds (the vCPUs keep running)",
                           headers: ["round"] + (autoConverge ? ["throttle %"] : []) + ["pages sent", "MB", "s", "MB/s", "dirtied", "dirtied/s", "harvest ms", "clear ms", "est. downtime ms"] + roundStats)
        for round in result.rounds {
            let stats = round.phase.stats
            rounds.add([String(round.number)] + (autoConverge ? [Format.fixed(round.throttle * 100, 0)] : []) + [ String(round.pagesSent), Format.fixed(Double(round.bytesSent) / 1e6, 1), Format.fixed(round.seconds, 3),
                        Format.fixed(Double(round.bytesSent) / max(round.seconds, 1e-9) / 1e6, 0), String(round.pagesDirtied),
                        Format.fixed(round.dirtyRate, 0),
                        Format.fixed(round.harvestSeconds * 1e3, 2), Format.fixed(round.clearSeconds * 1e3, 2), Format.fixed(round.estimatedDowntime * 1e3, 1)]
                       + roundStats.map { key in (stats?.vm[key] ?? stats?.vcpus[key]).map(Format.signed) ?? "-" })
        }
        return rounds.render()
    }

    /// The switchover: downtime as the host and the guest saw it, and what
    /// the destination did inside it.
    static func switchoverLines(_ result: MigrateResult) -> String {
        guard let downtime = result.downtime else { return "" }
        let gaps = result.guestDowntimes
        var out = "switchover: \(result.finalPages) pages with the vCPUs stopped; downtime \(Format.fixed(downtime * 1e3, 2)) ms (\(result.downtimeClock))"
        if let worst = gaps.max() { out += "; the guest saw \(Format.fixed(worst * 1e3, 2)) ms (longest gap of \(gaps.count) vCPUs)" }
        if let floor = result.downtimeFloor { out += "; floor \(Format.fixed(floor * 1e3, 2)) ms (\(Format.fixed(Double(result.switchoverBytes) / 1e6, 2)) MB at the bandwidth, state saved and loaded)" }
        out += "\n"
        if let destination = result.destination {
            out += "  destination: state loaded in \(Format.fixed(destination.loadSeconds * 1e3, 2)) ms, TSC by \(destination.tscMethod)"
            out += destination.digestChecked ? ", memory digest checked in \(Format.fixed(destination.digestSeconds * 1e3, 2)) ms (inside the downtime; --no-digest leaves it out)" : ""
            out += destination.preallocSeconds > 0 ? ", memory populated in \(Format.fixed(destination.preallocSeconds * 1e3, 1)) ms before the VM was accepted (--prealloc)" : ""
            out += destination.msrsRefused.isEmpty ? "" : ", MSRs this KVM would not load: " + destination.msrsRefused.map { "0x" + String($0, radix: 16) }.joined(separator: " ")
            out += "\n"
        }
        return out
    }

    /// Throttled runs: each vCPU's sleep per round (and its ring's dirty rate under a dirty-limit).
    static func sleepTable(_ result: MigrateResult) -> String {
        let limit = if case .dirtyLimit? = result.config.throttle { true } else { false }
        var table = Table(title: "Throttle: ms each vCPU slept per round" + (limit ? " / pages per second its dirty ring showed" : ""),
                          headers: ["round"] + (0..<result.config.totalVCPUs).map { "vCPU \($0) (\($0 < result.config.vcpus ? "dirtying" : "idle"))" })
        for round in result.rounds {
            table.add([String(round.number)] + round.sleepSeconds.indices.map { index in
                Format.fixed(round.sleepSeconds[index] * 1e3, 1) + (limit && index < round.ringDirtyRates.count ? " / " + Format.fixed(round.ringDirtyRates[index], 0) : "")
            })
        }
        return table.render()
    }

    /// The guest's own view: work per second per vCPU and stalls, per phase.
    static func guestTable(_ result: MigrateResult) -> String {
        let kinds = result.config.idleVCPUs > 0 ? [true, false] : [true]
        var headers = ["phase", "ms"]
        for dirtying in kinds {
            let kind = dirtying ? "dirtying" : "idle"
            headers += ["\(kind) work/s", "× baseline", "stalls", "p50 µs", "max µs"]
        }
        var table = Table(title: "The guest's view (its own TSC; work = pages written by dirtying vCPUs, compute units by idle ones)", headers: headers)
        let phases = result.guestPhases
        let baseline = phases.first { $0.name == "baseline" }
        let bases = kinds.map { dirtying in baseline.flatMap { result.throughput($0, dirtying: dirtying) } }
        for phase in phases {
            var row = [phase.name, Format.fixed(result.seconds(phase.end - phase.start) * 1e3, 1)]
            for (dirtying, base) in zip(kinds, bases) {
                let rate = result.throughput(phase, dirtying: dirtying)
                let stalls = result.stalls(phase, dirtying: dirtying).sorted()
                row += [rate.map { Format.fixed($0, 0) } ?? "-", rate.flatMap { rate in base.map { Format.fixed(rate / max($0, 1e-9), 3) } } ?? "-",
                        String(stalls.count), stalls.isEmpty ? "-" : Format.micros(stalls[stalls.count / 2]), stalls.last.map(Format.micros) ?? "-"]
            }
            table.add(row)
        }
        return table.render()
    }
}

/// `--json` detail: the rounds, the switchover and every vCPU's timeline.
public struct MigrateDetail: Encodable {
    struct Round: Encodable {
        let number: Int
        let pagesSent: Int
        let bytesSent: UInt64
        let seconds: Double
        let pagesDirtied: Int
        let harvestIntervalSeconds: Double
        let harvestSeconds: Double
        let clearSeconds: Double
        let estimatedDowntimeSeconds: Double
        let throttle: Double
        let sleepSeconds: [Double]
        let ringDirtyRates: [Double]
    }

    struct Phase: Encodable {
        let name: String
        /// Seconds from the timeline's start (the guest's TSC base).
        let startSeconds: Double
        let endSeconds: Double
    }

    struct Timeline: Encodable {
        let vcpu: Int
        let role: String
        let firstSlot: UInt64
        /// Work done per slot (pages written or compute units).
        let work: [UInt32]
        /// Stalls: seconds from the timeline's start at the stall's end, and its length.
        let stalls: [[Double]]
        let stallsLost: UInt64
    }

    let converged: Bool
    let outcome: String
    let slotSeconds: Double
    let rounds: [Round]
    let phases: [Phase]
    let downtimeSeconds: Double?
    let downtimeFloorSeconds: Double?
    let switchoverBytes: UInt64
    let stateSaveSeconds: Double
    let stateLoadSeconds: Double?
    let digestSeconds: Double?
    /// Seconds the destination populated its memory before accepting the VM (--prealloc).
    let destinationPreallocSeconds: Double?
    let downtimeClock: String
    let guestDowntimeSeconds: [Double]
    let destinationBacking: String
    let tscMethod: String?
    let timelines: [Timeline]

    public init(_ result: MigrateResult) {
        converged = result.converged
        outcome = result.outcome
        slotSeconds = result.config.slotSeconds
        rounds = result.rounds.map {
            Round(number: $0.number, pagesSent: $0.pagesSent, bytesSent: $0.bytesSent, seconds: $0.seconds, pagesDirtied: $0.pagesDirtied,
                  harvestIntervalSeconds: $0.harvestInterval, harvestSeconds: $0.harvestSeconds, clearSeconds: $0.clearSeconds, estimatedDowntimeSeconds: $0.estimatedDowntime,
                  throttle: $0.throttle, sleepSeconds: $0.sleepSeconds, ringDirtyRates: $0.ringDirtyRates)
        }
        let base = result.baseTSC
        let since = { (tsc: UInt64) in tsc >= base ? result.seconds(tsc - base) : -result.seconds(base - tsc) }
        phases = result.guestPhases.map { Phase(name: $0.name, startSeconds: since($0.start), endSeconds: since($0.end)) }
        downtimeSeconds = result.downtime
        downtimeFloorSeconds = result.downtimeFloor
        switchoverBytes = result.switchoverBytes
        stateSaveSeconds = result.stateSaveSeconds
        stateLoadSeconds = result.destination?.loadSeconds
        digestSeconds = result.destination.flatMap { $0.digestChecked ? $0.digestSeconds : nil }
        destinationPreallocSeconds = result.destination?.preallocSeconds
        downtimeClock = result.downtimeClock
        guestDowntimeSeconds = result.guestDowntimes
        destinationBacking = result.destinationBacking
        tscMethod = result.destination?.tscMethod
        timelines = result.timelines.enumerated().map { index, timeline in
            Timeline(vcpu: index, role: index < result.config.vcpus ? "dirtying" : "idle", firstSlot: timeline.firstSlot, work: timeline.work,
                     stalls: timeline.stalls.map { [since($0.endTSC), result.seconds($0.cycles)] }, stallsLost: timeline.stallsLost)
        }
    }
}
