import Glibc
import Guests
import KVM
import VMM

extension CheckSuite {
    static let abiChecks: [CheckCase] = [
        CheckCase("stats_fd_well_formed", "binary stats: unique names, well-formed descriptors and histograms, cumulative counters and buckets never decrease", quick: true) { _ in
            try statsCheck()
        },
        CheckCase("vcpu_creation", "VMs of 1, 64 and 256 vCPUs (and KVM_CAP_MAX_VCPUS with --full) boot and every vCPU runs", quick: true) { context in
            let max = try KVMDevice().maxVCPUs
            var notes: [String] = []
            for count in Set([1, 64, 256, context.full ? max : 0].filter { $0 > 0 && $0 <= max }).sorted() {
                var config = LaunchConfig()
                config.vcpus = count
                config.memory = UInt64(count) * 4096
                let lines = Locked(0)
                config.console = { _, _ in lines.withLock { $0 += 1 } }
                let result = try LaunchScenario.run(config)
                let said = lines.withLock { $0 }
                guard result.outcome == .finished, said == count else {
                    return .fail(notes + ["\(count) vCPUs:", "  expected every vCPU to finish and greet", "  observed \(result.outcome.rawValue), \(said) greetings: \(result.firstProblem ?? "")"])
                }
                notes.append("\(count) vCPUs ran")
            }
            return .pass(notes + ["KVM_CAP_MAX_VCPUS = \(max)"])
        },
        CheckCase("pre_fault_memory", "KVM_PRE_FAULT_MEMORY maps memory so the first pass takes no faults", quick: true) { _ in
            guard try KVMDevice().check(.preFaultMemory) > 0 else {
                return .skip("KVM_CAP_PRE_FAULT_MEMORY is 0 on this host (it needs Linux 6.11+ and the TDP MMU)")
            }
            var config = PopulateConfig()
            config.vcpus = 1
            config.bytesPerVCPU = 8 << 20
            config.modes = [.kvmPrefault]
            let result = try PopulateScenario.run(config)
            if let reason = result.modes.first?.unsupported { return .skip(reason) }
            guard result.experiment.status == .ok else { return verdict(result.experiment) }
            let faults = result.modes.first?.firstPass?.stats?["pf_fixed"] ?? 0
            return expect(faults <= 2048 / 100, "pf_fixed in the first pass after pre-faulting", expected: "≤ 1% of 2048 pages", observed: "\(faults)")
        },
        CheckCase("guest_memfd", "KVM_CREATE_GUEST_MEMFD gives a descriptor of the requested size", quick: true) { _ in
            let device = try KVMDevice()
            guard device.check(.guestMemfd) > 0 else { return .skip("KVM_CAP_GUEST_MEMFD is 0 on this host") }
            let vm = try device.createVM()
            let memfd = try vm.createGuestMemfd(size: 2 << 20)
            var info = stat()
            let size = fstat(memfd.raw, &info) == 0 ? Int(info.st_size) : -1
            return expect(size == 2 << 20, "guest_memfd size", expected: "\(2 << 20) bytes", observed: "\(size) bytes")
        },
        CheckCase("guest_memfd_bind_and_punch", "a memslot bound to guest_memfd: guest writes read back by the host; a punched hole takes exactly that page away",
                  quick: true) { _ in try guestMemfdBindCheck() },
    ]

    /// A memslot bound to guest_memfd memory: what the guest writes the host
    /// reads through the file's mapping, and a hole punched in the file takes
    /// exactly that page away from both.
    static func guestMemfdBindCheck() throws -> CheckVerdict {
        let device = try KVMDevice()
        guard device.check(.guestMemfd) > 0, device.check(.userMemory2) > 0 else {
            throw HostLacks("KVM_CAP_GUEST_MEMFD or KVM_CAP_USER_MEMORY2 is 0 on this host")
        }
        let flags = UInt64(UInt32(bitPattern: device.check(.guestMemfdFlags)))
        guard flags & 3 == 3 else {
            throw HostLacks("this host's default VM cannot bind guest_memfd: KVM_CAP_GUEST_MEMFD_FLAGS is \(flags), without MMAP and INIT_SHARED (Linux 6.18+); VM types \(VMType.names(in: device.check(.vmTypes)))")
        }
        let pages: UInt64 = 8, hole = 3
        let gpa = GuestLayout.testMemoryBase + (2 << 20)
        var config = MachineConfig(vcpus: 1, testMemory: 2 << 20)
        config.mappedSpan = 4 << 20  // the identity map reaches the guest_memfd slot after the test memory
        let machine = try Machine(config, device: device)
        let region = try GuestMemfdRegion(vm: machine.vm, slot: 7, gpa: gpa, size: pages * GuestLayout.pageSize)
        let driver = try PassDriver.load(on: machine)
        let runner = driver.runner
        try runner.start()
        defer { _ = driver.finish() }
        let stamp = Stamp(tag: 1, sequence: 1)
        guard driver.run(0, Pass(op: PASS_WRITE, gpa: gpa, pages: pages, stamp: stamp.base)) != nil else {
            return .fail(["the guest's write pass over the guest_memfd slot did not complete: \(runner.stopRequested.map { "\($0)" } ?? "-")"])
        }
        let seen = (0..<Int(pages)).filter { region.span.word(at: $0 * Int(GuestLayout.pageSize)) == stamp.word(page: $0) }.count
        if !InjectedFault.on(.skipHolePunch) { try region.punchHole(offset: UInt64(hole) * GuestLayout.pageSize, length: GuestLayout.pageSize) }
        let hostAfter = region.span.word(at: hole * Int(GuestLayout.pageSize))
        guard let mismatches = driver.run(0, Pass(op: PASS_VERIFY, gpa: gpa, pages: pages, stamp: stamp.base)) else {
            return .fail(["the guest's verify pass did not complete"])
        }
        let firstBad = machine.mailbox(0)[MB_FIRST_BAD]
        return expect(seen == Int(pages) && hostAfter == 0 && mismatches == 1 && firstBad == UInt64(hole), "guest_memfd slot",
                      expected: "the host reads all \(pages) pages the guest wrote; after a hole at page \(hole) both see only that page gone (0)",
                      observed: "host read \(seen) of \(pages); page \(hole) after the hole \(hostAfter == 0 ? "0" : "still 0x" + String(hostAfter, radix: 16)); the guest found \(mismatches) changed, first page \(firstBad == ~0 ? "none" : "\(firstBad)")")
    }

    /// Descriptors checked against the data block; two snapshots with a
    /// guest pass between them: no cumulative counter may go down.
    static func statsCheck() throws -> CheckVerdict {
        let machine = try Machine(MachineConfig(vcpus: 2, testMemory: 4 << 20))
        let files = [("vm", try machine.vm.statsFD())] + (try machine.vcpus.map { ("vcpu \($0.id)", try $0.statsFD()) })
        var problems = files.flatMap { malformedDescriptors($0.1, owner: $0.0) }
        let before = try files.map { try $0.1.snapshot() }
        let driver = try PassDriver.load(on: machine)
        let runner = driver.runner
        try runner.start()
        for index in machine.vcpus.indices {
            let region = machine.region(of: index)
            _ = driver.run(index, Pass(op: PASS_WRITE, gpa: region.gpa, pages: region.size / GuestLayout.pageSize, stamp: 0))
        }
        _ = driver.finish()
        for ((owner, file), earlier) in zip(files, before) {
            let later = try file.snapshot()
            // Cumulative counters, and every bucket of a histogram, only grow.
            for descriptor in file.schema.descriptors where descriptor.kind == .cumulative || descriptor.histogram != nil {
                let a = earlier.values[descriptor.name] ?? [], b = later.values[descriptor.name] ?? []
                for (index, (x, y)) in zip(a, b).enumerated() where y < x {
                    problems.append("\(owner): \(descriptor.name)\(descriptor.count > 1 ? " bucket \(index)" : "") went down from \(x) to \(y)")
                }
            }
        }
        let total = files.reduce(0) { $0 + $1.1.schema.descriptors.count }
        let histograms = files.reduce(0) { $0 + $1.1.schema.descriptors.filter { $0.histogram != nil }.count }
        return problems.isEmpty
            ? .pass(["\(total) descriptors in \(files.count) stats fds well formed (\(histograms) histograms with rising bucket bounds); no cumulative counter or histogram bucket decreased across a guest pass"])
            : .fail(["expected unique names, known types, 8-byte aligned values that do not overlap, histogram bounds rising to infinity, cumulative counters and buckets monotonic", "observed:"] + problems.prefix(5).map { "  \($0)" })
    }

    /// What is wrong with one stats fd's descriptors: duplicate names,
    /// unknown types, values that overlap or are misaligned, histogram
    /// bounds that do not rise to infinity.
    static func malformedDescriptors(_ file: StatsFile, owner: String) -> [String] {
        var problems: [String] = []
        let names = file.schema.descriptors.map(\.name)
        if Set(names).count != names.count { problems.append("\(owner): duplicate names \(Dictionary(grouping: names, by: { $0 }).filter { $0.value.count > 1 }.keys.sorted())") }
        var end = 0
        for descriptor in file.schema.descriptors.sorted(by: { $0.offset < $1.offset }) {
            if descriptor.kind == nil { problems.append("\(owner): \(descriptor.name) has unknown type \(descriptor.flags & 0xF)") }
            if descriptor.name.isEmpty || descriptor.count < 1 || descriptor.offset % 8 != 0 || descriptor.offset < end {
                problems.append("\(owner): \(descriptor.name.isEmpty ? "(no name)" : descriptor.name) has \(descriptor.count) values at offset \(descriptor.offset), overlapping or misaligned (previous value ends at \(end))")
            }
            end = max(end, descriptor.offset + descriptor.count * 8)
            if let layout = descriptor.histogram {
                let bounds = layout.upperBounds
                if !zip(bounds, bounds.dropFirst()).allSatisfy({ $0 < $1 }) || bounds.last != .infinity || (!layout.logarithmic && layout.bucketSize == 0) {
                    problems.append("\(owner): histogram \(descriptor.name) has \(layout.buckets) buckets of size \(layout.bucketSize) whose bounds do not rise to infinity")
                }
            }
        }
        return problems
    }
}
