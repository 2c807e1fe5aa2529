import Glibc
import VMM

/// The destination's half: accepts one stream, builds the VM its HELLO
/// describes (with its own backing if asked), writes pages as they come,
/// loads the vCPUs' state at the switchover, checks memory against the
/// source's, runs the guest on and reports back.
enum MigrationDestination {
    /// Seconds without a byte from the source before the destination gives up.
    static let receiveTimeout = 120

    /// Serves one migration on `listener`. Throws on a stream it refuses
    /// or a source that went away before the switchover.
    /// `prealloc`: populate all guest memory before accepting the VM (as
    /// QEMU's -mem-prealloc), so the stream does not pay for first touches.
    static func serve(listener: Int32, backing: Backing?, prealloc: Bool, pin: [Int]) throws -> DestinationReport {
        Interrupts.shared.install()
        guard let socket = try StreamSocket.accept(listener, cancelled: { Interrupts.shared.requested }) else {
            throw HostError("interrupted while waiting for the source")
        }
        var timeout = timeval(tv_sec: receiveTimeout, tv_usec: 0)
        _ = setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let token = Interrupts.shared.add { socket.shutdown() }
        defer { Interrupts.shared.remove(token) }
        let channel = MigrationChannel(socket: socket)
        guard let first = try channel.receiveHeader(maxSystemBytes: 0) else { throw MigrationWireError("the source closed the stream before saying anything") }
        guard first.kind == .hello else { throw MigrationWireError("the stream starts with a \(first.kind) frame instead of HELLO") }
        let hello = try MigrationHello.decode(try channel.receivePayload(first))
        try Resources.requireRAM(hello.testMemory, for: "the source's \(hello.testMemory >> 20) MiB of guest memory", fix: "migrate a smaller VM, or free memory here")
        let machine = try Machine(MachineConfig(vcpus: hello.vcpus, testMemory: hello.testMemory, backing: backing ?? hello.backing, slots: hello.slots))
        guard machine.layout.systemSize == hello.systemSize else {
            throw MigrationWireError("the source's system memory is \(hello.systemSize) bytes, this kvmlab's layout \(machine.layout.systemSize): different versions")
        }
        var report = DestinationReport()
        report.backing = (backing ?? hello.backing).rawValue
        if prealloc, let test = machine.test {
            let clock = Stopwatch()
            try test.populateWrite()
            report.preallocSeconds = clock.seconds
        }
        try channel.send(.ready, payload: Array(report.backing.utf8))
        let memory = machine.memory(at: GuestLayout.testMemoryBase, bytes: hello.testMemory)!
        let system = machine.memory(at: 0, bytes: machine.layout.systemSize)!
        let state = try receivePrecopy(channel, memory: memory, system: system, report: &report, vcpus: hello.vcpus)
        return try resume(machine, hello: hello, state: state, channel: channel, memory: memory, pin: pin, report: report)
    }

    /// Frames until STATE: pages into test memory, system memory, round ends.
    private static func receivePrecopy(_ channel: MigrationChannel, memory: GuestSpan, system: GuestSpan,
                                       report: inout DestinationReport, vcpus: Int) throws -> SwitchoverState {
        var received: UInt64 = 0
        while true {
            guard let header = try channel.receiveHeader(maxSystemBytes: system.bytes) else {
                throw HostError("the source closed the stream before the switchover (\(received) pages received)")
            }
            switch header.kind {
            case .pages:
                try channel.receivePages(header, into: memory) { _ in received += 1 }
            case .system:
                var reader = WireReader(try channel.receivePayload(header))
                let offset = try reader.u64()
                let bytes = reader.remaining
                guard offset <= UInt64(system.bytes), UInt64(bytes) <= UInt64(system.bytes) - offset else {
                    throw MigrationWireError("system memory at +\(offset), \(bytes) bytes, is outside the \(system.bytes) bytes of system memory")
                }
                let data = Array(try reader.raw(bytes))
                data.withUnsafeBytes { system.copy(into: Int(offset), from: $0.baseAddress!, count: bytes) }
            case .roundEnd:
                _ = try channel.receivePayload(header)
            case .cancel:
                throw HostError("the source cancelled the migration (\(received) pages received); nothing was resumed here")
            case .state:
                report.pagesReceived = received
                return try SwitchoverState.decode(try channel.receivePayload(header), vcpus: vcpus)
            default:
                throw MigrationWireError("a \(header.kind) frame before the switchover")
            }
        }
    }

    private static func resume(_ machine: Machine, hello: MigrationHello, state: SwitchoverState, channel: MigrationChannel,
                               memory: GuestSpan, pin: [Int], report initial: DestinationReport) throws -> DestinationReport {
        var report = initial
        let load = Stopwatch()
        var refused = Set<UInt32>()
        for (vcpu, saved) in zip(machine.vcpus, state.vcpus) { refused.formUnion(try vcpu.restoreState(saved)) }
        report.msrsRefused = refused.sorted()
        // The planted fault tsc-not-carried starts the guest's TSC from 0,
        // as a freshly created vCPU's.
        let offset = InjectedFault.on(.tscNotCarried) ? -Int64(bitPattern: HostTSC.now()) : continuedTSCOffset(state, hello: hello)
        for vcpu in machine.vcpus { report.tscMethod = try vcpu.setTSCOffset(offset) }
        report.loadSeconds = load.seconds
        var local: MemoryDigest?
        if hello.digest {
            let clock = Stopwatch()
            local = MemoryDigest.of(memory)
            report.digestSeconds = clock.seconds
        }
        let runner = VCPURunner(machine: machine) { _, _ in .resume }
        let collectors = machine.vcpus.indices.map { TimelineCollector(mailbox: machine.mailbox($0)) }
        // Read before the threads start: a vCPU may run its first loop
        // before this thread gets the CPU back, and its TSC must not be
        // earlier than the resume's.
        report.resumeMonotonicNanos = Stopwatch.now()
        report.resumeTSC = MigratorGuest.guestTSC(offset: offset)
        try runner.start(pin: pin)
        do {
            try channel.send(.resumed, payload: ResumeNotice(monotonicNanos: report.resumeMonotonicNanos, guestTSC: report.resumeTSC).encode())
            guard let header = try channel.receiveHeader(maxSystemBytes: 0), header.kind == .digest else {
                throw MigrationWireError("the source sent no DIGEST after the switchover")
            }
            let source = try MemoryDigest.decode(try channel.receivePayload(header), pages: memory.bytes / MigrationWire.pageBytes)
            compare(source, local, report: &report)
        } catch {
            report.problem = "\(error)"
        }
        MigratorGuest.run(runner, collecting: collectors, for: hello.afterSeconds)
        report.endTSC = MigratorGuest.guestTSC(offset: offset)
        report.vcpus = MigratorGuest.verify(machine, runner, pagesPerVCPU: hello.testMemory / GuestLayout.pageSize)
        collectors.forEach { $0.collect(final: true) }
        report.timelines = collectors.map(\.timeline)
        try channel.send(.result, payload: report.encode())
        return report
    }

    /// The TSC offset that keeps the guest's TSC running: on the same boot
    /// of the same host, the source's offset; elsewhere the source's TSC at
    /// the stop plus the wall time since, at the guest's rate.
    static func continuedTSCOffset(_ state: SwitchoverState, hello: MigrationHello) -> Int64 {
        if hello.bootID == MigratorGuest.bootID && !hello.bootID.isEmpty { return state.tscOffset }
        // At most a day: a stream older than that (or a hostile stop time) must not overflow the TSC.
        let elapsed = min(86_400, max(0, HostClock.unixTime() - Double(state.stopUnixNanos) / 1e9))
        let guestNow = state.stopGuestTSC &+ UInt64(elapsed * Double(hello.tscKHz) * 1000)
        return Int64(bitPattern: guestNow &- HostTSC.now())
    }

    /// The source's memory at the stop against this side's before resuming.
    static func compare(_ source: MemoryDigest, _ local: MemoryDigest?, report: inout DestinationReport) {
        guard let local else { return }
        report.digestChecked = true
        report.digestEqual = source.digest == local.digest
        for page in source.counters.indices where source.counters[page] != local.counters[page] {
            report.mismatchedPages += 1
            if report.examples.count < 8 { report.examples.append([UInt64(page), source.counters[page], local.counters[page]]) }
        }
    }
}
