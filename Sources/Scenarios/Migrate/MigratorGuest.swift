import Guests
import KVM
import VMM

/// The host's side of the migrator guest's mailbox protocol, on either end.
enum MigratorGuest {
    static let image = "migrator"

    /// Writes each vCPU's parameters before its first run: dirtying vCPUs
    /// take consecutive regions of `bytesPerVCPU`, idle ones none.
    static func configure(_ machine: Machine, _ config: MigrateConfig, tscHz: Double, baseTSC: UInt64) {
        let pages = config.bytesPerVCPU / GuestLayout.pageSize
        let active = max(1, UInt64((Double(pages) * config.hotSetPercent / 100).rounded(.down)))
        for index in machine.vcpus.indices {
            let mailbox = machine.mailbox(index)
            let dirtying = index < config.vcpus
            mailbox[MB_MIG_ROLE] = dirtying ? 0 : UInt64(MIG_ROLE_IDLE)
            mailbox[MB_REGION] = dirtying ? GuestLayout.testMemoryBase + UInt64(index) * config.bytesPerVCPU : 0
            mailbox[MB_PAGES] = dirtying ? pages : 0
            mailbox[MB_MIG_ACTIVE] = dirtying ? min(active, pages) : 1
            mailbox[MB_MIG_INTERVAL] = config.dirtyRate.map { UInt64(max(1, tscHz / $0)) } ?? 0
            mailbox[MB_MIG_SLOT_CYCLES] = max(1, UInt64(config.slotSeconds * tscHz))
            mailbox[MB_MIG_TSC_BASE] = baseTSC
            mailbox[MB_THRESHOLD] = UInt64(config.stallThreshold * tscHz)
            mailbox[MB_RANDOM] = config.random ? 1 : 0
            mailbox[MB_SEED] = 0x9E37_79B9_7F4A_7C15 &* UInt64(index + 1)
            mailbox[MB_STAMP] = 0x6B76_6D6C_0000_0000 | UInt64(index)
        }
    }

    /// Waits until every dirtying vCPU wrote its whole region once; false
    /// if the run was stopped or a vCPU ended first.
    static func waitWarm(_ machine: Machine, _ runner: VCPURunner, dirtying: Int, limit: Double = 120) -> Bool {
        let clock = Stopwatch()
        while (0..<dirtying).contains(where: { machine.mailbox($0)[MB_MIG_WARM] == 0 }) {
            if runner.endedCount > 0 || runner.stopRequested != nil || Interrupts.shared.requested || clock.seconds > limit { return false }
            Stopwatch.sleep(seconds: 0.001)
        }
        return true
    }

    /// Lets the workload run for `seconds`, reading the timelines every 50 ms
    /// (well within their rings), until a vCPU ends or Ctrl-C.
    static func run(_ runner: VCPURunner, collecting collectors: [TimelineCollector], for seconds: Double) {
        let end = Stopwatch.now() + UInt64(max(0, seconds) * 1e9)
        while Stopwatch.now() < end && runner.endedCount == 0 && !Interrupts.shared.requested {
            collectors.forEach { $0.collect() }
            Stopwatch.sleep(until: min(end, Stopwatch.now() + 50_000_000))
        }
    }

    /// Asks every vCPU to verify its pages and stop; waits for them.
    static func verify(_ machine: Machine, _ runner: VCPURunner, pagesPerVCPU: UInt64) -> [DestinationReport.VCPUVerdict] {
        for index in machine.vcpus.indices { machine.mailbox(index)[MB_COMMAND] = 1 }
        // A verify pass reads each page once: seconds per GiB at worst.
        let outcomes = runner.wait(timeout: 60 + Double(pagesPerVCPU) / 100_000)
        return verdicts(machine, outcomes: outcomes)
    }

    static func verdicts(_ machine: Machine, outcomes: [VCPUOutcome]) -> [DestinationReport.VCPUVerdict] {
        machine.vcpus.indices.map { index in
            let mailbox = machine.mailbox(index)
            return DestinationReport.VCPUVerdict(writes: mailbox[MB_WRITES], counterSum: mailbox[MB_CHECKSUM], mismatches: mailbox[MB_MISMATCHES],
                                                 firstBad: mailbox[MB_FIRST_BAD], tscBackwards: mailbox[MB_MIG_BACKWARDS],
                                                 outcome: outcomes[index] == .finished ? "finished" : (outcomes[index].problem ?? "\(outcomes[index])"))
        }
    }

    /// guest TSC now, from the host's TSC and the guest's offset.
    static func guestTSC(offset: Int64) -> UInt64 { HostTSC.now() &+ UInt64(bitPattern: offset) }

    /// The guest's TSC offset: KVM's own attribute, else measured.
    static func tscOffset(_ vcpu: VCPU) throws(KVMError) -> Int64 {
        if let offset = vcpu.tscOffset() { return offset }
        return try vcpu.guestTSCOffset().offset
    }

    /// This boot of this host: equal on both ends means one host, one TSC.
    static var bootID: String { HostFiles.read("/proc/sys/kernel/random/boot_id")?.trimmingCharacters(in: " \n") ?? "" }
}
