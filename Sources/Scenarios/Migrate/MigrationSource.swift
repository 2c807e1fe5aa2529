import KVM
import VMM

/// One pre-copy round as the source saw it.
public struct MigrationRound: Sendable, Equatable {
    public let number: Int
    public let pagesSent: Int
    public let bytesSent: UInt64
    /// Seconds sending took (harvests excluded).
    public let seconds: Double
    /// Pages found dirty after the round: what the guest dirtied meanwhile.
    public let pagesDirtied: Int
    /// Seconds from the harvest before (or dirty logging's start) to this
    /// round's harvest: the window the dirty pages were collected over.
    public let harvestInterval: Double
    public let harvestSeconds: Double
    public let clearSeconds: Double
    /// Pages per second the round's harvest found dirty.
    public var dirtyRate: Double { Double(pagesDirtied) / max(harvestInterval, 1e-9) }
    /// The dirty pages' bytes at the bandwidth measured so far.
    public let estimatedDowntime: Double
    /// KVM's stats and tracepoints over the round (sending and harvesting).
    public let phase: PhaseRecord
    /// auto-converge: the share of time every vCPU slept during the round.
    public let throttle: Double
    /// Per vCPU, throttled runs only: seconds it slept in the round, and
    /// (dirty-limit) the pages per second its ring showed.
    public let sleepSeconds: [Double]
    public let ringDirtyRates: [Double]
}

/// The source's half of a migration: builds the VM, runs the workload,
/// tracks dirty pages in rounds while the vCPUs run, switches over and
/// collects the destination's report.
final class MigrationSource {
    let config: MigrateConfig
    let machine: Machine
    let harvester: Harvester
    let runner: VCPURunner
    let memory: GuestSpan
    let tscOffset: Int64
    let tscHz: Double
    let baseTSC: UInt64
    private let msrs: [UInt32]
    private let throttle: VCPUThrottle?
    private var collectors: [TimelineCollector] = []
    /// The planted fault migrate-skip-page: the first page the first
    /// harvest found, which the sender then never sends again.
    private var skippedPage: UInt64?
    private var record = MigrationRecord()

    init(_ config: MigrateConfig) throws {
        try PinPlan.checkCPUs(config.pin)
        try Resources.requireRAM(config.testMemory, for: "guest memory of \(config.vcpus) dirtying vCPUs", fix: "lower \(field: "vcpus") or \(field: "bytesPerVCPU")")
        var machineConfig = MachineConfig(vcpus: config.totalVCPUs, testMemory: config.testMemory, backing: config.backing)
        switch config.track {
        case .bitmap: break
        case .manual: machineConfig.manualProtect = [.enable, .initiallySet]
        case .ring:
            let limits = try KVMDevice().dirtyRingLimits
            guard limits.maxEntries > 0 else { throw HostLacks("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING is 0): use --dirty-track bitmap or manual") }
            guard config.ringEntries <= limits.maxEntries else {
                throw ConfigError("\(field: "ringEntries") \(config.ringEntries) exceeds this host's KVM_CAP_DIRTY_LOG_RING (\(limits.maxEntries) entries)")
            }
            machineConfig.dirtyRingEntries = config.ringEntries
        }
        machine = try Machine(machineConfig)
        try machine.load(GuestImage.builtin(MigratorGuest.image)!)
        guard let khz = machine.vcpus[0].tscKHz else { throw HostLacks("KVM_GET_TSC_KHZ failed: the guest's TSC rate is unknown") }
        tscHz = Double(khz) * 1000
        tscOffset = try MigratorGuest.tscOffset(machine.vcpus[0])
        baseTSC = MigratorGuest.guestTSC(offset: tscOffset)
        MigratorGuest.configure(machine, config, tscHz: tscHz, baseTSC: baseTSC)
        msrs = machine.vcpus[0].readableMSRs(try machine.device.msrIndexList())
        harvester = try Harvester(machine: machine, manualProtect: config.track == .manual, clearChunk: config.clearChunk,
                                  ringEntries: config.track == .ring ? config.ringEntries : nil)
        let runner = VCPURunner(machine: machine) { _, _ in .resume }
        self.runner = runner
        let harvester = harvester
        let throttle = config.throttle.map { VCPUThrottle(policy: $0, runner: runner, harvester: harvester, vcpus: config.totalVCPUs) }
        self.throttle = throttle
        if let throttle { runner.onKick = { throttle.pay($0) } }
        if config.track == .ring {
            runner.onDirtyRingFull = { vcpu in
                _ = try harvester.drainRing(vcpu: vcpu)
                throttle?.pay(vcpu)
            }
        }
        memory = machine.memory(at: GuestLayout.testMemoryBase, bytes: config.testMemory)!
        self.config = config
    }

    /// Runs the whole migration over `connect()`'s stream. Never throws once
    /// the guest runs: a failure from then on is reported in the result
    /// with everything measured until it.
    func run(connect: () throws -> StreamSocket) throws -> MigrateResult {
        let channel = MigrationChannel(socket: try connect(), bandwidth: config.bandwidth)
        try handshake(channel)
        // Opened before the vCPUs run: KVM_GET_STATS_FD waits for a vCPU's
        // mutex, which a vCPU in KVM_RUN holds.
        let timer = PhaseTimer(machine: machine)
        try runner.start(pin: config.pin)
        collectors = machine.vcpus.indices.map { TimelineCollector(mailbox: machine.mailbox($0)) }
        guard MigratorGuest.waitWarm(machine, runner, dirtying: config.vcpus) else {
            return finish(problem: "the workload did not start (stopped, or a vCPU ended: \(runner.wait(timeout: 5).compactMap(\.problem).first ?? "interrupted"))", channel: channel)
        }
        mark("baseline")
        MigratorGuest.run(runner, collecting: collectors, for: config.baselineSeconds)
        do {
            let converged = try precopy(channel, timer: timer)
            if !converged && config.abortIfNotConverged {
                record.outcome = "not converged: cancelled (--abort-if-not-converged); the source kept running"
                try? channel.cancel()
                return continueOnSource(problem: nil, channel: channel)
            }
            return try switchover(channel)
        } catch {
            if Interrupts.shared.requested {
                try? channel.cancel()
                return finish(problem: nil, channel: channel, interrupted: true)
            }
            return continueOnSource(problem: "migration failed: \(error)", channel: channel)
        }
    }

    private func handshake(_ channel: MigrationChannel) throws {
        let hello = MigrationHello(vcpus: config.totalVCPUs, slots: machine.testSlots.count, testMemory: config.testMemory,
                                   systemSize: machine.layout.systemSize, backing: config.backing, tscKHz: UInt64(tscHz / 1000),
                                   afterSeconds: config.afterSeconds, digest: config.digest, bootID: MigratorGuest.bootID,
                                   structSizes: MigrationHello.localStructSizes)
        try channel.send(.hello, payload: hello.encode())
        guard let header = try channel.receiveHeader(maxSystemBytes: 0), header.kind == .ready else {
            throw HostError("the destination closed the stream instead of accepting the VM (see its message above)")
        }
        record.destinationBacking = String(decoding: try channel.receivePayload(header), as: UTF8.self)
    }

    private func mark(_ name: String) { record.marks.append(PhaseMark(name: name, tsc: MigratorGuest.guestTSC(offset: tscOffset))) }

    /// Rounds until the estimated downtime fits or --max-rounds; true if it converged.
    private func precopy(_ channel: MigrationChannel, timer: PhaseTimer) throws -> Bool {
        mark("round 1")
        var phaseStart = timer.begin("round 1")
        // Pages count as dirtied from the moment logging is on.
        var clock = RoundClock(lastHarvest: Stopwatch.now())
        record.trackingStartSeconds = try Stopwatch.seconds { try machine.setTestSlotFlags(.logDirtyPages) }
        try throttle?.start()
        clock.throttleBefore = throttle?.totals
        var pending: [DirtyBitmap]? = nil
        var round = 1
        while true {
            if Interrupts.shared.requested { throw HostError("interrupted") }
            let (measured, dirty) = try sendRound(round, pending: pending, channel: channel, timer: timer, since: phaseStart, clock: &clock)
            pending = dirty
            let estimate = measured.estimatedDowntime
            if estimate <= config.downtimeLimit {
                record.outcome = "converged: \(measured.pagesDirtied) dirty pages would take \(MigrateResult.millis(estimate)) at \(MigrateResult.rate(record.bandwidth)), within --downtime-limit \(MigrateResult.millis(config.downtimeLimit))"
                record.converged = true
                record.pendingAtSwitchover = dirty
                return true
            }
            if round >= config.maxRounds {
                record.outcome = "not converged: after \(round) rounds \(measured.pagesDirtied) pages were still dirty (\(MigrateResult.millis(estimate)) at \(MigrateResult.rate(record.bandwidth)); --downtime-limit \(MigrateResult.millis(config.downtimeLimit)))"
                record.pendingAtSwitchover = dirty
                return false
            }
            round += 1
            mark("round \(round)")
            phaseStart = timer.begin("round \(round)")
        }
    }

    /// What carries from one round to the next: when the last harvest was,
    /// the seconds spent sending so far (the bandwidth), the throttle's totals.
    private struct RoundClock {
        var lastHarvest: UInt64
        var sendSeconds = 0.0
        var throttleBefore: VCPUThrottle.Totals?
    }

    /// One round: send the pending pages (all of them in round 1), harvest
    /// what the guest dirtied meanwhile, record it, then adjust the throttle
    /// (which compares it with the round before).
    private func sendRound(_ round: Int, pending: [DirtyBitmap]?, channel: MigrationChannel, timer: PhaseTimer,
                           since phaseStart: PhaseTimer.Start, clock: inout RoundClock) throws -> (MigrationRound, [DirtyBitmap]) {
        channel.restartPacing()
        let bytesBefore = channel.bytesSent
        let sent = try send(pending, channel: channel)
        try channel.send(.roundEnd, count: UInt32(round))
        clock.sendSeconds += sent.seconds
        collectors.forEach { $0.collect() }
        let harvest = try harvestDirty()
        let harvested = Stopwatch.now()
        let interval = Double(harvested - clock.lastHarvest) / 1e9
        clock.lastHarvest = harvested
        let dirty = harvest.bitmaps.reduce(0) { $0 + $1.dirtyCount }
        record.bandwidth = Double(channel.bytesSent) / max(clock.sendSeconds, 1e-9)
        let estimate = Double(dirty * (8 + MigrationWire.pageBytes)) / record.bandwidth
        let roundSeconds = sent.seconds + harvest.seconds
        let phase = timer.end("round \(round)", since: phaseStart, seconds: roundSeconds)
        let after = throttle?.totals
        let before = clock.throttleBefore
        clock.throttleBefore = after
        let measured = MigrationRound(number: round, pagesSent: sent.pages, bytesSent: channel.bytesSent - bytesBefore, seconds: sent.seconds,
                                      pagesDirtied: dirty, harvestInterval: interval, harvestSeconds: harvest.seconds, clearSeconds: sent.clearSeconds + harvest.clearSeconds,
                                      estimatedDowntime: estimate, phase: phase, throttle: throttle?.currentShare ?? 0,
                                      sleepSeconds: zip(after?.slept ?? [], before?.slept ?? []).map { $0 - $1 },
                                      ringDirtyRates: zip(after?.dirtied ?? [], before?.dirtied ?? []).map { Double($0 - $1) / max(roundSeconds, 1e-9) })
        record.rounds.append(measured)
        adjustThrottle(dirtyBytes: Double(dirty * MigrationWire.pageBytes), sentBytes: Double(channel.bytesSent - bytesBefore))
        return (measured, harvest.bitmaps)
    }

    /// auto-converge: once a round dirties more than half of what it sent
    /// (QEMU's throttle-trigger-threshold: the link then cannot keep up,
    /// and a dirty set capped by the guest's memory hides how far),
    /// throttle; tighten after every round that did not shrink the dirty set.
    private func adjustThrottle(dirtyBytes: Double, sentBytes: Double) {
        guard let throttle, case .autoConverge(let initial, let step) = throttle.policy, dirtyBytes > 0.5 * sentBytes else { return }
        let rounds = record.rounds
        if throttle.currentShare == 0 {
            throttle.currentShare = initial
        } else if rounds.count >= 2, rounds[rounds.count - 1].pagesDirtied >= rounds[rounds.count - 2].pagesDirtied {
            throttle.currentShare = min(0.99, throttle.currentShare + step)
        }
    }

    /// The pages dirtied since the last harvest, as one bitmap per slot.
    private func harvestDirty() throws -> (bitmaps: [DirtyBitmap], seconds: Double, clearSeconds: Double) {
        let seconds = try harvester.get()
        if InjectedFault.on(.migrateSkipPage) && skippedPage == nil {
            skippedPage = (0..<harvester.bitmaps[0].pages).first { harvester.bitmaps[0][$0] }.map(UInt64.init)
        }
        // A ring's entries are reset (re-protected) before the pages are
        // read; a bitmap get already re-protected; manual mode clears each
        // chunk just before sending it.
        let clearSeconds = config.track == .ring ? try harvester.clear() : 0
        return (harvester.bitmaps, seconds, clearSeconds)
    }

    /// Sends every page (round 1, `dirty` nil) or those in `dirty`. Round 1
    /// starts with all of system memory (code, tables, mailboxes), paced and
    /// timed with the pages; the switchover sends only the vCPU areas, where
    /// the guest writes. At the switchover nothing is cleared (the vCPUs are
    /// stopped). The planted fault's page is never sent.
    private func send(_ dirty: [DirtyBitmap]?, channel: MigrationChannel, switchover: Bool = false) throws -> (pages: Int, seconds: Double, clearSeconds: Double) {
        var pages = 0
        var clearSeconds = 0.0
        let clearChunks = config.track == .manual && !switchover
        let clock = Stopwatch()
        if dirty == nil { try channel.send(.system, payload: systemBytes(from: 0, count: Int(machine.layout.systemSize))) }
        let bitmaps: [DirtyBitmap]
        if let dirty {
            bitmaps = dirty
        } else if config.track == .manual {
            // Round 1 with initially-set bits: the first get says "all dirty".
            try harvester.get()
            bitmaps = harvester.bitmaps
        } else {
            for page in 0..<UInt64(memory.bytes / MigrationWire.pageBytes) { try channel.queuePage(page, from: memory) }
            try channel.flushPages()
            return (memory.bytes / MigrationWire.pageBytes, clock.seconds, 0)
        }
        for (index, slot) in machine.testSlots.enumerated() {
            let first = UInt64((slot.guestPhysicalAddress - GuestLayout.testMemoryBase) / GuestLayout.pageSize)
            let ranges = config.track == .manual ? harvester.clearRanges[index] : [ClearRange(firstPage: 0, pageCount: bitmaps[index].pages)]
            for range in ranges {
                let set = (range.firstPage..<range.firstPage + range.pageCount).filter { bitmaps[index][$0] }
                guard !set.isEmpty else { continue }
                if clearChunks {
                    clearSeconds += try Stopwatch.seconds { try machine.vm.clearDirtyLog(slot: slot.slot, bitmap: bitmaps[index], ranges: [range]) }
                }
                for page in set where first + UInt64(page) != skippedPage {
                    try channel.queuePage(first + UInt64(page), from: memory)
                    pages += 1
                }
            }
        }
        try channel.flushPages()
        return (pages, clock.seconds - clearSeconds, clearSeconds)
    }

    private func switchover(_ channel: MigrationChannel) throws -> MigrateResult {
        throttle?.stop()
        mark("switchover")
        let stopClock = Stopwatch()
        runner.stop(.host)
        let outcomes = runner.wait(timeout: 30)
        let stopMonotonic = Stopwatch.now()
        let stopTSC = MigratorGuest.guestTSC(offset: tscOffset)
        if let problem = outcomes.compactMap(\.problem).first { throw HostError("a vCPU did not stop cleanly: \(problem)") }
        collectors.forEach { $0.collect(final: true) }
        let sentBefore = channel.bytesSent
        let sent = try send(try finalDirtyPages(), channel: channel, switchover: true)
        try channel.send(.system, payload: systemBytes(from: GuestLayout.vcpuAreaBase, count: Int(GuestLayout.vcpuStride) * machine.vcpus.count))
        let saveClock = Stopwatch()
        let states = try machine.vcpus.map { vcpu throws in try vcpu.saveState(msrs: msrs, xsaveBytes: machine.device.xsaveBytes) }
        record.stateSaveSeconds = saveClock.seconds
        try channel.send(.state, payload: SwitchoverState(vcpus: states, tscOffset: tscOffset, stopGuestTSC: stopTSC,
                                                          stopUnixNanos: UInt64(HostClock.unixTime() * 1e9), stopMonotonicNanos: stopMonotonic).encode())
        record.switchoverSendSeconds = sent.seconds
        record.switchoverBytes = channel.bytesSent - sentBefore
        guard let header = try channel.receiveHeader(maxSystemBytes: 0), header.kind == .resumed else {
            throw HostError("the destination did not resume the VM (see its message above)")
        }
        let resumed = try ResumeNotice.decode(try channel.receivePayload(header))
        let ackSeconds = stopClock.seconds
        record.downtime = resumed.monotonicNanos > stopMonotonic ? Double(resumed.monotonicNanos - stopMonotonic) / 1e9 : ackSeconds
        record.downtimeClock = resumed.monotonicNanos > stopMonotonic ? "CLOCK_MONOTONIC on this host" : "stop until the destination's acknowledgement"
        record.stopTSC = stopTSC
        return try finish(channel)
    }

    /// The last harvest, with the vCPUs stopped, joined with what the last
    /// round left dirty: every page the destination does not have yet.
    private func finalDirtyPages() throws -> [DirtyBitmap] {
        record.finalHarvestSeconds = try harvester.get()
        var dirty = harvester.bitmaps
        for (index, pending) in (record.pendingAtSwitchover ?? []).enumerated() {
            for word in dirty[index].words.indices { dirty[index].words[word] |= pending.words[word] }
        }
        record.finalPages = dirty.reduce(0) { $0 + $1.dirtyCount }
        return dirty
    }

    /// After the resume: the source's frozen memory's digest goes out while
    /// the guest runs on, and the destination's report comes back.
    private func finish(_ channel: MigrationChannel) throws -> MigrateResult {
        try channel.send(.digest, payload: MemoryDigest.of(memory).encode())
        guard let resultHeader = try channel.receiveHeader(maxSystemBytes: 0), resultHeader.kind == .result else {
            throw HostError("the destination ended without its report")
        }
        record.destination = try DestinationReport.decode(try channel.receivePayload(resultHeader))
        record.totalBytes = channel.bytesSent
        return result(problem: record.destination?.problem.isEmpty == false ? "destination: \(record.destination!.problem)" : nil, interrupted: false)
    }

    /// A SYSTEM frame's payload: `count` bytes of system memory from `gpa`.
    private func systemBytes(from gpa: UInt64, count: Int) -> [UInt8] {
        var writer = WireWriter()
        writer.u64(gpa)
        var area = [UInt8](repeating: 0, count: count)
        let span = machine.memory(at: gpa, bytes: UInt64(count))!
        area.withUnsafeMutableBytes { span.copy(from: 0, count: count, to: $0.baseAddress!) }
        writer.raw(area)
        return writer.bytes
    }

    /// After a cancelled or failed migration: logging off, the workload runs
    /// on here for --after seconds and then verifies its own pages.
    private func continueOnSource(problem: String?, channel: MigrationChannel) -> MigrateResult {
        throttle?.stop()
        channel.socket.shutdown()
        _ = try? machine.setTestSlotFlags([])
        mark("after (source)")
        MigratorGuest.run(runner, collecting: collectors, for: config.afterSeconds)
        return finish(problem: problem, channel: channel)
    }

    private func finish(problem: String?, channel: MigrationChannel, interrupted: Bool = false) -> MigrateResult {
        throttle?.stop()
        let end = MigratorGuest.guestTSC(offset: tscOffset)
        let verdicts = interrupted ? [] : MigratorGuest.verify(machine, runner, pagesPerVCPU: config.bytesPerVCPU / GuestLayout.pageSize)
        if interrupted { _ = runner.wait(timeout: 10) }
        collectors.forEach { $0.collect(final: true) }
        record.sourceVerdicts = verdicts
        record.sourceEndTSC = end
        record.totalBytes = channel.bytesSent
        return result(problem: problem, interrupted: interrupted)
    }

    private func result(problem: String?, interrupted: Bool) -> MigrateResult {
        MigrateResult(config: config, record: record, timelines: collectors.map(\.timeline), tscHz: tscHz, baseTSC: baseTSC,
                      problem: problem ?? throttle?.problem, interrupted: interrupted)
    }
}

/// A boundary between phases of the guest's view, in guest TSC.
public struct PhaseMark: Sendable, Equatable {
    public let name: String
    public let tsc: UInt64
}

/// What the source recorded as it went, for the result.
struct MigrationRecord {
    var marks: [PhaseMark] = []
    var rounds: [MigrationRound] = []
    var converged = false
    var outcome = ""
    var bandwidth = 0.0
    var trackingStartSeconds = 0.0
    var pendingAtSwitchover: [DirtyBitmap]?
    var finalPages = 0
    var finalHarvestSeconds = 0.0
    var switchoverSendSeconds = 0.0
    /// Bytes sent with the vCPUs stopped (pages, vCPU areas, state), and the state's save time.
    var switchoverBytes: UInt64 = 0
    var stateSaveSeconds = 0.0
    var downtime: Double?
    var downtimeClock = ""
    var stopTSC: UInt64?
    var totalBytes: UInt64 = 0
    var destinationBacking = ""
    var destination: DestinationReport?
    var sourceVerdicts: [DestinationReport.VCPUVerdict] = []
    var sourceEndTSC: UInt64 = 0
}
