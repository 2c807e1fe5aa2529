/// A migration, as the source reports it: the rounds, the switchover, the
/// destination's checks and the guest's own timeline.
public struct MigrateResult: Sendable {
    public let config: MigrateConfig
    let record: MigrationRecord
    /// Each vCPU's timeline: the source's half joined with the destination's.
    public let timelines: [GuestTimeline]
    public let tscHz: Double
    public let baseTSC: UInt64
    public let problem: String?
    public let interrupted: Bool

    init(config: MigrateConfig, record: MigrationRecord, timelines: [GuestTimeline], tscHz: Double, baseTSC: UInt64,
         problem: String?, interrupted: Bool) {
        self.config = config
        self.record = record
        let later = record.destination?.timelines ?? []
        self.timelines = timelines.enumerated().map { index, mine in index < later.count ? mine.joined(with: later[index]) : mine }
        self.tscHz = tscHz
        self.baseTSC = baseTSC
        self.problem = problem
        self.interrupted = interrupted
    }

    public var rounds: [MigrationRound] { record.rounds }
    public var converged: Bool { record.converged }
    /// Why pre-copy ended, in one line.
    public var outcome: String { record.outcome }
    public var destination: DestinationReport? { record.destination }
    /// Source vCPUs stopped → destination vCPUs running, and how it was timed.
    public var downtime: Double? { record.downtime }
    public var downtimeClock: String { record.downtimeClock }
    public var finalPages: Int { record.finalPages }
    /// Bytes sent with the vCPUs stopped, and the seconds saving the vCPUs' state took.
    public var switchoverBytes: UInt64 { record.switchoverBytes }
    public var stateSaveSeconds: Double { record.stateSaveSeconds }
    /// What the downtime cannot go below: the switchover's bytes at the
    /// measured bandwidth, plus saving and loading the vCPUs' state.
    public var downtimeFloor: Double? {
        guard downtime != nil, bandwidth > 0 else { return nil }
        return Double(switchoverBytes) / bandwidth + stateSaveSeconds + (destination?.loadSeconds ?? 0)
    }
    public var bytesSent: UInt64 { record.totalBytes }
    public var bandwidth: Double { record.bandwidth }
    public var destinationBacking: String { record.destinationBacking }
    public var switchedOver: Bool { record.destination != nil }

    /// Tracking start → destination running (or the last round's end).
    public var totalSeconds: Double? {
        guard let start = record.marks.first(where: { $0.name == "round 1" })?.tsc else { return nil }
        let end = record.destination?.resumeTSC ?? record.marks.last?.tsc ?? start
        return end > start ? seconds(end - start) : nil
    }

    public func seconds(_ cycles: UInt64) -> Double { Double(cycles) / tscHz }

    /// The guest's phases, in guest TSC: baseline, each round, the
    /// switchover gap, and the time after it (on the destination, or on the
    /// source when the migration was cancelled).
    public var guestPhases: [GuestPhase] {
        var phases: [GuestPhase] = []
        let marks = record.marks
        let end = record.destination?.endTSC ?? record.sourceEndTSC
        for (index, mark) in marks.enumerated() {
            var stop = index + 1 < marks.count ? marks[index + 1].tsc : end
            if mark.name == "switchover", let resume = record.destination?.resumeTSC {
                stop = resume
                phases.append(GuestPhase(name: mark.name, start: mark.tsc, end: stop))
                phases.append(GuestPhase(name: "after", start: resume, end: end))
                continue
            }
            phases.append(GuestPhase(name: mark.name, start: mark.tsc, end: stop))
        }
        return phases.filter { $0.end > $0.start }
    }

    /// Work per second per vCPU of one kind in a phase, from the slots wholly inside it.
    public func throughput(_ phase: GuestPhase, dirtying: Bool) -> Double? {
        let vcpus = dirtying ? Array(0..<config.vcpus) : Array(config.vcpus..<config.totalVCPUs)
        let slotCycles = max(1, UInt64(config.slotSeconds * tscHz))
        guard !vcpus.isEmpty, phase.start >= baseTSC else { return nil }
        let first = (phase.start - baseTSC + slotCycles - 1) / slotCycles
        let last = phase.end > baseTSC ? (phase.end - baseTSC) / slotCycles : 0
        guard last > first else { return nil }
        var work: UInt64 = 0
        for vcpu in vcpus where vcpu < timelines.count {
            for slot in first..<last { work += UInt64(timelines[vcpu].work(in: slot)) }
        }
        return Double(work) / (Double(last - first) * config.slotSeconds * Double(vcpus.count))
    }

    /// The stalls (seconds) whose end falls in the phase, for one kind of
    /// vCPU; the gap across the switchover belongs to the switchover.
    public func stalls(_ phase: GuestPhase, dirtying: Bool) -> [Double] {
        let vcpus = dirtying ? 0..<config.vcpus : config.vcpus..<config.totalVCPUs
        return vcpus.filter { $0 < timelines.count }.flatMap { vcpu in
            timelines[vcpu].stalls.filter { $0.endTSC >= phase.start && $0.endTSC < phase.end && !spansSwitchover($0) }.map { seconds($0.cycles) }
        }
    }

    private func spansSwitchover(_ stall: GuestTimeline.Stall) -> Bool {
        guard let stop = record.stopTSC, let resume = record.destination?.resumeTSC else { return false }
        return stall.endTSC >= resume && stall.endTSC &- stall.cycles <= stop
    }

    /// The gap each vCPU saw across the switchover: the stall that spans
    /// the source's stop and ends after the destination resumed.
    public var guestDowntimes: [Double] {
        guard record.stopTSC != nil, record.destination != nil else { return [] }
        return timelines.compactMap { timeline in timeline.stalls.first(where: spansSwitchover).map { seconds($0.cycles) } }
    }

    /// Every vCPU's verdict on its pages: the destination's, or the source's
    /// after a cancelled migration.
    public var verdicts: [DestinationReport.VCPUVerdict] { record.destination?.vcpus ?? record.sourceVerdicts }

    static func millis(_ seconds: Double) -> String {
        let value = (seconds * 1e4).rounded() / 10
        return "\(value) ms"
    }

    static func rate(_ bytesPerSecond: Double) -> String {
        "\(Int((bytesPerSecond / 1e6).rounded())) MB/s"
    }
}

/// A span of the guest's run, in its TSC.
public struct GuestPhase: Sendable, Equatable {
    public let name: String
    public let start: UInt64
    public let end: UInt64
}

extension MigrateResult: ExperimentResult {
    public var experiment: Experiment {
        var metrics: [Metric] = []
        metrics.append(Metric("rounds", "Pre-copy rounds", unit: .count, better: .neither, value: Double(rounds.count)))
        metrics.append(Metric("total_seconds", "Dirty tracking start to the destination running", unit: .seconds, better: .lower, value: totalSeconds))
        metrics.append(Metric("downtime_seconds", "Source vCPUs stopped to destination vCPUs running (host clock)", unit: .seconds, better: .lower, value: downtime))
        let guestGaps = guestDowntimes
        metrics.append(Metric("guest_downtime_seconds", "The longest gap a vCPU saw across the switchover (guest TSC)", unit: .seconds, better: .lower,
                              value: guestGaps.max()))
        metrics.append(Metric("bytes_sent", "Bytes on the wire, source to destination", unit: .bytes, better: .lower, value: Double(bytesSent)))
        metrics.append(Metric("bytes_per_memory", "Bytes on the wire per byte of guest memory", unit: .ratio, better: .lower,
                              value: Double(bytesSent) / Double(max(1, config.testMemory))))
        metrics.append(Metric("bandwidth_bytes_per_second", "Stream bandwidth while sending", unit: .bytesPerSecond, better: .higher, value: bandwidth))
        metrics.append(Metric("downtime_floor_seconds", "The switchover's bytes at the measured bandwidth plus saving and loading vCPU state", unit: .seconds,
                              better: .lower, value: downtimeFloor))
        metrics.append(Metric("final_dirty_pages", "Pages sent with the vCPUs stopped", unit: .pages, better: .lower, value: Double(finalPages)))
        let dirtyRates = rounds.map(\.dirtyRate)
        if !dirtyRates.isEmpty {
            metrics.append(Metric("dirty_rate_pages_per_second", "Pages found dirty per second of a round (value: median over rounds)",
                                  unit: .pagesPerSecond, better: .neither, distribution: Distribution(samples: dirtyRates, bucketBase: 1)))
        }
        metrics.append(Metric("harvest_seconds", "Dirty-log harvests during pre-copy, summed", unit: .seconds, better: .lower, value: rounds.reduce(0) { $0 + $1.harvestSeconds }))
        metrics.append(Metric("clear_seconds", "Re-protection (KVM_CLEAR_DIRTY_LOG or ring reset), summed", unit: .seconds, better: .lower,
                              value: rounds.reduce(0) { $0 + $1.clearSeconds }))
        if let destination, destination.digestChecked {
            metrics.append(Metric("digest_seconds", "Destination's check of all memory before resuming (part of the downtime)", unit: .seconds, better: .lower,
                                  value: destination.digestSeconds))
        }
        if config.throttle != nil {
            metrics.append(Metric("throttle_ratio", "auto-converge's share of time asleep in the last round", unit: .ratio, better: .lower, value: rounds.last?.throttle))
            for dirtying in [true, false] where dirtying || config.idleVCPUs > 0 {
                let vcpus = dirtying ? 0..<config.vcpus : config.vcpus..<config.totalVCPUs
                let slept = rounds.reduce(0.0) { total, round in total + vcpus.reduce(0.0) { $0 + (round.sleepSeconds.indices.contains($1) ? round.sleepSeconds[$1] : 0) } }
                metrics.append(Metric("throttle_sleep_seconds", "Seconds the throttle kept vCPUs of a kind asleep during pre-copy, summed", unit: .seconds, better: .lower,
                                      labels: ["vcpus": dirtying ? "dirtying" : "idle"], value: slept))
            }
        }
        metrics += guestMetrics
        return Experiment(.migrate, config: config.described, metrics: metrics, phases: phaseRecords, checks: checks,
                          problems: [problem].compactMap { $0 }, interrupted: interrupted)
    }

    /// The guest's throughput and stalls: baseline, tracking (every round), after.
    private var guestMetrics: [Metric] {
        let phases = guestPhases
        let rounds = phases.filter { $0.name.hasPrefix("round") }
        let tracking = rounds.isEmpty ? nil : GuestPhase(name: "tracking", start: rounds.first!.start, end: rounds.last!.end)
        let views = [phases.first { $0.name == "baseline" }, tracking, phases.first { $0.name.hasPrefix("after") }].compactMap { $0 }
        var metrics: [Metric] = []
        for dirtying in [true, false] where dirtying || config.idleVCPUs > 0 {
            let kind = dirtying ? "dirtying" : "idle"
            let baseline = views.first.flatMap { throughput($0, dirtying: dirtying) }
            for view in views {
                let name = view.name.hasPrefix("after") ? "after" : view.name
                let rate = throughput(view, dirtying: dirtying)
                metrics.append(Metric("guest_work_per_second", "Work per second per vCPU, as the guest counted it (pages written, or compute units)",
                                      unit: .perSecond, better: .higher, labels: ["vcpus": kind, "phase": name], value: rate))
                if name != "baseline", let rate, let baseline, baseline > 0 {
                    metrics.append(Metric("guest_throughput_ratio", "Throughput against the baseline (1 = no slowdown)", unit: .ratio, better: .higher,
                                          labels: ["vcpus": kind, "phase": name], value: rate / baseline))
                }
                metrics.append(Metric("guest_stall_seconds", "Gaps in a vCPU's loop above the threshold (value: median)", unit: .seconds, better: .lower,
                                      labels: ["vcpus": kind, "phase": name], distribution: Distribution(samples: stalls(view, dirtying: dirtying))))
            }
        }
        return metrics
    }

    private var phaseRecords: [PhaseRecord] {
        var records = rounds.map(\.phase)
        if let downtime { records.append(PhaseRecord(name: "switchover", seconds: downtime, stats: nil)) }
        return records
    }

    private var checks: [CheckRecord] {
        var checks: [CheckRecord] = []
        for (index, verdict) in verdicts.enumerated() where index < config.vcpus {
            let where_ = record.destination == nil ? "on the source" : "on the destination"
            checks.append(CheckRecord("vCPU \(index): every page it wrote is intact \(where_)", passed: verdict.mismatches == 0 && verdict.counterSum == verdict.writes && verdict.outcome == "finished",
                                      expected: "0 bad pages, counters summing to \(verdict.writes) writes",
                                      observed: "\(verdict.mismatches) bad pages\(verdict.mismatches > 0 ? " (first: page \(verdict.firstBad))" : ""), counters sum to \(verdict.counterSum)"
                                        + (verdict.outcome == "finished" ? "" : "; \(verdict.outcome)")))
        }
        for (index, verdict) in verdicts.enumerated() {
            checks.append(CheckRecord.equal("vCPU \(index): the guest's TSC never went backwards", expected: UInt64(0), observed: verdict.tscBackwards))
        }
        if let destination, destination.digestChecked {
            let examples = destination.examples.map { "page \($0[0]): source counter \($0[1]), destination \($0[2])" }.joined(separator: "; ")
            checks.append(CheckRecord("memory at the switchover equals the source's", passed: destination.digestEqual && destination.mismatchedPages == 0,
                                      expected: "equal digests, 0 pages differing",
                                      observed: (destination.digestEqual ? "equal digests" : "different digests") + ", \(destination.mismatchedPages) pages differing"
                                        + (examples.isEmpty ? "" : ": " + examples)))
        }
        return checks
    }
}
