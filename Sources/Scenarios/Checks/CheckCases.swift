import Glibc
import Guests
import KVM
import VMM

extension CheckSuite {
    /// Every check, in the order they run; `--quick` takes those marked quick.
    public static let all: [CheckCase] = dirtyBitmapChecks + clearChecks + ringChecks + concurrentChecks + memslotChecks
        + mmuStressChecks + hugePageChecks + guestChecks + abiChecks

    static func dirtyLog(_ change: @escaping @Sendable (inout DirtyLogConfig) -> Void) -> @Sendable (CheckContext) throws -> CheckVerdict {
        { _ in
            var config = DirtyLogConfig()
            config.vcpus = 2
            config.bytesPerVCPU = 8 << 20
            config.iterations = 3
            change(&config)
            return verdict(try DirtyLogScenario.run(config).experiment)
        }
    }

    static let dirtyBitmapChecks: [CheckCase] = [
        CheckCase("dirty_bitmap_sequential", "every page written in order is reported dirty, and no other", quick: true, dirtyLog { _ in }),
        CheckCase("dirty_bitmap_random", "pages written in a random order are reported exactly", quick: true, dirtyLog { $0.random = true; $0.seed = 3 }),
        CheckCase("dirty_bitmap_partial_writes", "with 40% of pages written (the rest read), exactly the written ones are dirty", quick: true,
                  dirtyLog { $0.random = true; $0.writePercent = 40; $0.initiallySet = false; $0.seed = 5 }),
        CheckCase("dirty_bitmap_no_manual_protect", "plain KVM_GET_DIRTY_LOG (it re-protects by itself) is exact", quick: true,
                  dirtyLog { $0.manualProtect = false; $0.writePercent = 60; $0.random = true }),
        CheckCase("dirty_bitmap_initially_set_off", "manual protect without INITIALLY_SET is exact from the first harvest", quick: false,
                  dirtyLog { $0.initiallySet = false }),
        CheckCase("dirty_bitmap_several_slots", "four memslots with random partial writes: each slot's bitmap is its own", quick: true,
                  dirtyLog { $0.slots = 4; $0.random = true; $0.writePercent = 30; $0.initiallySet = false; $0.seed = 7 }),
    ]

    static let clearChecks: [CheckCase] = [
        CheckCase("clear_dirty_log_chunks", "KVM_CLEAR_DIRTY_LOG in 64-page and (rounded) 96-page chunks on a 100-page slot", quick: true) { _ in
            var notes: [String] = []
            for chunk in [64, 96] {
                var config = DirtyLogConfig()
                config.bytesPerVCPU = 100 * 4096
                config.iterations = 2
                config.random = true
                config.writePercent = 50
                config.initiallySet = false
                config.clearChunk = chunk
                let experiment = try DirtyLogScenario.run(config).experiment
                guard experiment.status == .ok else { return verdict(experiment, notes: ["chunk \(chunk):"]) }
                notes.append("chunk \(chunk): \(experiment.checks.count) checks passed")
            }
            return .pass(notes)
        },
        CheckCase("clear_dirty_log_rejects_misaligned", "KVM refuses clears whose first page or length breaks the 64-page rule", quick: true) { _ in
            let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20, manualProtect: [.enable, .initiallySet]))
            try machine.setTestSlotFlags(.logDirtyPages)
            var bitmap = DirtyBitmap(pages: 256)
            try machine.vm.getDirtyLog(slot: Machine.firstTestSlot, into: &bitmap)
            var accepted: [String] = []
            for range in [ClearRange(firstPage: 32, pageCount: 64), ClearRange(firstPage: 0, pageCount: 32)] {
                if (try? machine.vm.clearDirtyLog(slot: Machine.firstTestSlot, bitmap: bitmap, ranges: [range])) != nil {
                    accepted.append("first \(range.firstPage) count \(range.pageCount)")
                }
            }
            try machine.vm.clearDirtyLog(slot: Machine.firstTestSlot, bitmap: bitmap, ranges: ClearRange.chunks(slotPages: 256, chunk: 64))
            try machine.vm.getDirtyLog(slot: Machine.firstTestSlot, into: &bitmap)
            return expect(accepted.isEmpty && bitmap.dirtyCount == 0, "misaligned clears refused, aligned ones re-protect",
                          expected: "both misaligned clears rejected; 0 dirty pages after the aligned clear",
                          observed: "accepted: \(accepted.isEmpty ? "none" : accepted.joined(separator: ", ")); \(bitmap.dirtyCount) dirty after the aligned clear")
        },
    ]

    static let ringChecks: [CheckCase] = [
        CheckCase("dirty_ring_smallest", "the smallest ring KVM accepts fills, is drained on ring-full exits, and loses nothing", quick: true) { context in
            try dirtyLog { $0.ringEntries = (try? KVMDevice().dirtyRingLimits.minEntries) ?? 256; $0.random = true }(context)
        },
        CheckCase("dirty_ring_large", "a 4096-entry ring harvests every written page", quick: false, dirtyLog { $0.ringEntries = 4096 }),
        CheckCase("dirty_ring_full_cpl0", "the smallest ring, filled by CPL0 vCPUs until KVM stops them: every page once, never past full", quick: true,
                  ringFill(.kernel, everySize: false)),
        CheckCase("dirty_ring_full_cpl3", "the same with CPL3 vCPUs", quick: true, ringFill(.user, everySize: false)),
        CheckCase("dirty_ring_full_every_size_cpl0", "every ring size KVM accepts, filled by 1 and 2 CPL0 vCPUs", quick: false, ringFill(.kernel, everySize: true)),
        CheckCase("dirty_ring_full_every_size_cpl3", "every ring size KVM accepts, filled by 1 and 2 CPL3 vCPUs", quick: false, ringFill(.user, everySize: true)),
    ]

    /// Rings filled to KVM_EXIT_DIRTY_RING_FULL with no harvest before it
    /// (RingFillScenario), at `cpl`, for 1 and 2 vCPUs: quick takes the
    /// smallest ring KVM accepts, full every power of two up to the largest.
    static func ringFill(_ cpl: PrivilegeLevel, everySize: Bool) -> @Sendable (CheckContext) throws -> CheckVerdict {
        { _ in
            let limits = try KVMDevice().dirtyRingLimits
            guard limits.maxEntries > 0 else { return .skip("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)") }
            var lines: [String] = [], refused: [Int] = []
            var failed = false
            var accepted = 0
            var size = limits.minEntries
            while size <= limits.maxEntries && (everySize || accepted == 0) {
                defer { size *= 2 }
                for vcpus in [1, 2] {
                    var config = RingFillConfig()
                    config.cpl = cpl
                    config.vcpus = vcpus
                    config.ringEntries = size
                    // Many fills, so that a loss that strikes a third of them is
                    // certain; big rings fewer, so the largest stays a few seconds.
                    config.fillsPerPass = max(2, min(16, 131_072 / size))
                    let result: RingFillResult
                    do {
                        result = try RingFillScenario.run(config)
                    } catch let error as KVMError where error.errno == EINVAL && error.operation.contains("ENABLE_CAP") {
                        // KVM wants room for its reserve: smaller rings are refused, not broken.
                        refused.append(size)
                        break
                    }
                    accepted += 1
                    let (line, failure) = ringFillSummary(result)
                    lines.append(line)
                    if let failure {
                        lines += failure
                        failed = true
                    }
                }
            }
            guard accepted > 0 else { return .fail(["KVM refused every ring size from \(limits.minEntries) to \(limits.maxEntries) entries"]) }
            if !refused.isEmpty { lines.insert("KVM refuses rings of \(refused.map(String.init).joined(separator: ", ")) entries (below its reserve)", at: 0) }
            return failed ? .fail(lines) : .pass(lines)
        }
    }

    /// One line for a ring-fill run, and its failure lines if it failed.
    static func ringFillSummary(_ result: RingFillResult) -> (String, [String]?) {
        let config = result.config
        let exits = result.entriesAtExit.map { "\($0.fewest)–\($0.most) of \(config.ringEntries) entries at an exit" } ?? "no entries"
        let line = "ring of \(config.ringEntries), \(config.vcpus) vCPU\(config.vcpus == 1 ? "" : "s") at CPL\(config.cpl.rawValue): "
            + "\(result.fullExits) ring-full exits, \(exits); \(result.pagesChecked) written pages checked"
            + (result.reReported > 0 ? ", \(result.reReported) re-reported after filling the ring (expected)" : "")
        let expectedPages = Int(config.pagesPerVCPU) * config.vcpus * config.passes
        var failure: [String] = []
        if !result.problems.isEmpty { failure += result.problems.map { "could not measure: \($0)" } }
        if result.interrupted { failure.append("interrupted") }
        if result.fullExits == 0 { failure += ["ring-full exits:", "  expected at least one (each pass writes \(config.fillsPerPass) rings' worth)", "  observed 0"] }
        if result.pagesChecked != expectedPages && result.problems.isEmpty {
            failure += ["pages written:", "  expected \(expectedPages)", "  observed \(result.pagesChecked)"]
        }
        if result.overruns > 0 {
            failure += ["exits with a full ring (KVM pushed past its reserve):", "  expected 0", "  observed \(result.overruns) of \(result.fullExits)"]
        }
        if result.lost + result.duplicates + result.strays > 0 {
            failure += ["pages in the ring exactly once:", "  expected every written page once, nothing else",
                        "  observed \(result.lost) lost, \(result.duplicates) duplicated, \(result.strays) stray"]
        }
        if result.resetMismatches > 0 {
            failure += ["KVM_RESET_DIRTY_RINGS counts:", "  expected the entries collected since the last reset", "  observed \(result.resetMismatches) different"]
        }
        if !failure.isEmpty { failure += result.examples.map { "  e.g. \($0)" } }
        return (line, failure.isEmpty ? nil : failure)
    }

    static func concurrent(_ cpl: PrivilegeLevel, ring: RingSize?) -> @Sendable (CheckContext) throws -> CheckVerdict {
        { context in
            var config = ConcurrentHarvestConfig()
            config.seconds = context.seconds
            config.cpl = cpl
            if let ring {
                let limits = try KVMDevice().dirtyRingLimits
                guard limits.maxEntries > 0 else { return .skip("this host's KVM has no dirty ring (KVM_CAP_DIRTY_LOG_RING)") }
                config.ringEntries = ring == .smallest ? limits.minEntries : min(4096, limits.maxEntries)
            }
            let result = try ConcurrentHarvestScenario.run(config)
            let what = "\(result.harvests) harvests while \(config.vcpus) vCPUs at CPL\(cpl.rawValue) wrote \(result.writes) times"
                + (config.ringEntries.map { ", ring of \($0) entries" } ?? ", bitmap with manual protect")
            if !result.problems.isEmpty { return .fail([what] + result.problems.map { "could not measure: \($0)" }) }
            guard result.writesChecked > 0 else { return .fail([what, "no write could be checked (the guest wrote nothing between harvests)"]) }
            return expect(result.lost == 0, "lost pages", expected: "0 of \(result.writesChecked) checked writes",
                          observed: "\(result.lost) of \(result.writesChecked)" + (result.examples.isEmpty ? "" : "; " + result.examples.joined(separator: "; ")),
                          notes: [what])
        }
    }

    enum RingSize { case smallest, large }

    static let concurrentChecks: [CheckCase] = [
        CheckCase("concurrent_harvest_bitmap_cpl3", "get and clear the bitmap while CPL3 vCPUs write: no write lost", quick: true, concurrent(.user, ring: nil)),
        CheckCase("concurrent_harvest_bitmap_cpl0", "the same with CPL0 vCPUs", quick: true, concurrent(.kernel, ring: nil)),
        CheckCase("concurrent_harvest_ring_smallest_cpl3", "harvest and reset the smallest rings while CPL3 vCPUs write", quick: true, concurrent(.user, ring: .smallest)),
        CheckCase("concurrent_harvest_ring_smallest_cpl0", "the same with CPL0 vCPUs", quick: true, concurrent(.kernel, ring: .smallest)),
        CheckCase("concurrent_harvest_ring_large_cpl3", "4096-entry rings, CPL3 vCPUs", quick: false, concurrent(.user, ring: .large)),
        CheckCase("concurrent_harvest_ring_large_cpl0", "4096-entry rings, CPL0 vCPUs", quick: false, concurrent(.kernel, ring: .large)),
    ]

    static func memslot(_ tests: [MemslotTest], noZapAll: Bool = false) throws -> MemslotResult {
        var config = MemslotConfig()
        config.slots = 16
        config.memory = 4 << 20
        config.seconds = 0.2
        config.runs = 1
        config.tests = tests
        config.noZapAll = noZapAll
        return try MemslotScenario.run(config)
    }

    static let memslotChecks: [CheckCase] = [
        CheckCase("memslot_move_integrity", "data written through a slot reads back at both addresses while it moves under a running vCPU", quick: true) { _ in
            verdict(try memslot([.moveActive, .moveInactive, .rw]).experiment)
        },
        CheckCase("memslot_deleted_slot_exits_mmio", "a guest access to a deleted slot exits to the host as MMIO at that address", quick: true) { _ in
            try deletedSlotCheck()
        },
        CheckCase("slot_zap_all", "moving a slot zaps every shadow page with KVM_X86_QUIRK_SLOT_ZAP_ALL, fewer without it", quick: true) { _ in
            guard try KVMDevice().canDisable(.slotZapAll) else { return .skip("this kernel cannot disable KVM_X86_QUIRK_SLOT_ZAP_ALL") }
            let with = try memslot([.moveInactive]), without = try memslot([.moveInactive], noZapAll: true)
            for result in [with, without] where result.experiment.status != .ok { return verdict(result.experiment) }
            let zapped = [with, without].map { $0.runs.first?.stats?["mmu_shadow_zapped"] ?? 0 }
            let shadow = HostFingerprint.current().mmuMode == "shadow"
            return expect(!shadow || zapped[0] > zapped[1], "mmu_shadow_zapped with / without the quirk",
                          expected: shadow ? "more with the quirk" : "(TDP MMU: reported only)", observed: "\(zapped[0]) / \(zapped[1])")
        },
    ]

    /// Writes a slot, deletes it, asks the guest to write it again: the
    /// vCPU must leave with an MMIO exit at the slot's address.
    static func deletedSlotCheck() throws -> CheckVerdict {
        let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20))
        let seen = Locked<UInt64?>(nil)
        let driver = try PassDriver.load(on: machine)
        let runner = driver.runner
        runner.onMMIO = { _, address, _ in seen.withLock { $0 = $0 ?? address }; return false }
        try runner.start()
        let base = GuestLayout.testMemoryBase
        let first = driver.run(0, Pass(op: PASS_WRITE, gpa: base, pages: 256, stamp: Stamp(tag: 1, sequence: 1).base))
        try machine.vm.deleteMemoryRegion(slot: Machine.firstTestSlot)
        driver.begin(0, Pass(op: PASS_WRITE, gpa: base, pages: 256, stamp: Stamp(tag: 1, sequence: 2).base))
        _ = driver.wait(0, timeout: 10)
        let outcomes = driver.finish()
        let address = seen.withLock { $0 }
        let crashed = outcomes.first.map { if case .crashed = $0 { return true } else { return false } } ?? false
        return expect(first == 0 && address.map { (base..<base + (1 << 20)).contains($0) } == true && crashed,
                      "access after delete", expected: "an MMIO exit in 0x\(String(base, radix: 16))..+1 MiB, the vCPU ended",
                      observed: "MMIO at \(address.map { "0x" + String($0, radix: 16) } ?? "none"), vCPU \(outcomes.first.map { "\($0)" } ?? "-")")
    }

    static let hugePageChecks: [CheckCase] = [
        CheckCase("thp_split_by_dirty_logging", "THP memory is mapped 2 MiB and split to 4 KiB by dirty logging; eager or on write", quick: true) { _ in
            var config = DirtyLogConfig()
            config.bytesPerVCPU = 16 << 20
            config.iterations = 2
            config.backing = .anonymousTHP
            config.initiallySet = false
            return try hugePageVerdict(DirtyLogScenario.run(config), reason: "THP did not back the memory (THP mode \(HostFingerprint.current().thpMode ?? "unknown"))")
        },
        CheckCase("hugetlb_split_by_dirty_logging", "hugetlb 2 MiB memory is mapped 2 MiB and split by dirty logging", quick: false) { _ in
            guard let pool = HugetlbPool.pool(pageSize: 2 << 20) else { return .skip("no 2 MiB hugetlb pool") }
            defer { HugetlbPool.setTotal(pool.total, pageSize: 2 << 20) }
            guard let grown = HugetlbPool.setTotal(pool.total + 4, pageSize: 2 << 20), grown >= pool.total + 4 else {
                return .skip("the 2 MiB hugetlb pool could not grow by 4 pages")
            }
            var config = DirtyLogConfig()
            config.bytesPerVCPU = 8 << 20
            config.iterations = 2
            config.backing = .anonymousHugetlb2MB
            return try hugePageVerdict(DirtyLogScenario.run(config), reason: "hugetlb did not give 2 MiB mappings")
        },
    ]

    /// Populate maps huge pages; every one is gone by the end; say where.
    static func hugePageVerdict(_ result: DirtyLogResult, reason: String) -> CheckVerdict {
        guard result.experiment.status == .ok else { return verdict(result.experiment) }
        guard let populated = result.populate?.stats?.vm["pages_2m"] else { return .skip("KVM's binary stats have no pages_2m") }
        guard populated > 0 else { return .skip(reason) }
        var split: Int64 = 0
        var where_: [String] = []
        for phase in result.phases.dropFirst() {
            let gone = -(phase.stats?.vm["pages_2m"] ?? 0)
            if gone > 0 { split += gone; where_.append("\(phase.name): \(gone)") }
        }
        let eager = where_.contains { $0.hasPrefix("enable") || $0.contains("clear") }
        return expect(split >= populated, "2 MiB mappings split", expected: "all \(populated) populate mapped",
                      observed: "\(split) (\(where_.joined(separator: ", "))); \(eager ? "eager splitting" : "split on the guest's write faults")")
    }

    static func launch(_ guest: String, cpl: PrivilegeLevel = .user, timeout: Double = 10) throws -> LaunchResult {
        var config = LaunchConfig()
        config.guest = guest
        config.cpl = cpl
        config.timeout = timeout
        config.console = { _, _ in }
        return try LaunchScenario.run(config)
    }

    static let guestChecks: [CheckCase] = [
        CheckCase("exception_reported", "a guest #PF reaches the host with vector 14, its error code, RIP and CR2", quick: true) { _ in
            let machine = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 20))
            let image = GuestImage.builtin("fault")!
            try machine.load(image)
            let runner = VCPURunner(machine: machine) { _, _ in .finish }
            try runner.start()
            guard case .exception(let report) = runner.wait(timeout: 10)[0] else { return .fail(["the fault guest did not report an exception"]) }
            let rip = GuestLayout.codeAddress + UInt64(image.marker)
            return expect(report.vector == 14 && report.cr2 == 0x7fff_0000_0000 && report.rip == rip && report.errorCode & 1 == 0,
                          "exception", expected: "vector 14, not-present error code, RIP 0x\(String(rip, radix: 16)), CR2 0x7fff00000000",
                          observed: "vector \(report.vector), error 0x\(String(report.errorCode, radix: 16)), RIP 0x\(String(report.rip, radix: 16)), CR2 0x\(String(report.cr2, radix: 16))")
        },
        CheckCase("watchdog_ends_spinning_guest", "the watchdog stops a guest that never exits", quick: true) { _ in
            let result = try launch("spin", timeout: 0.3)
            return expect(result.outcome == .timedOut, "outcome", expected: "timed_out", observed: result.outcome.rawValue)
        },
        CheckCase("triple_fault_reported", "a triple fault is reported as KVM_EXIT_SHUTDOWN, not as a finished vCPU", quick: true) { _ in
            let result = try launch("triple")
            return expect(result.outcome == .faulted && result.firstProblem?.contains("KVM_EXIT_SHUTDOWN") == true, "outcome",
                          expected: "faulted with KVM_EXIT_SHUTDOWN", observed: "\(result.outcome.rawValue): \(result.firstProblem ?? "-")")
        },
    ]
}
