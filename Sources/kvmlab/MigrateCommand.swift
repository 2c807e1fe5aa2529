import ArgumentParser
import Glibc
import Report
import Scenarios
import VMM

struct MigrateCommand: ExperimentCommand {
    typealias Scenario = MigrateScenario
    typealias Report = MigrateReport
    static let configuration = CommandConfiguration(
        commandName: kind.rawValue,
        abstract: kind.summary,
        discussion: """
        The source runs -v vCPUs of the migrator guest, each writing its own -b
        region at --dirty-rate pages/s (plus --idle-vcpus that only compute),
        measures a baseline, then pre-copies: round 1 sends all memory, each
        later round sends what the guest dirtied meanwhile, found by
        --dirty-track while the vCPUs keep running. When the dirty pages would
        fit in --downtime-limit at the measured bandwidth (or after
        --max-rounds), the vCPUs stop, the rest and every vCPU's state go
        over, and the destination resumes the guest with its TSC still
        running. The guest times itself throughout; after --after seconds on
        the destination it verifies every page it ever wrote.

        Without --to or --listen the destination is a child kvmlab on this
        host, over loopback TCP.

        Examples:
          kvmlab migrate                                  2 vCPUs × 64 MiB, bitmap
          kvmlab migrate --dirty-track manual --clear-chunk 1024
          kvmlab migrate --dirty-track ring --dirty-rate unlimited --idle-vcpus 1
          kvmlab migrate --bandwidth 50m --max-rounds 3 --abort-if-not-converged
          kvmlab migrate --bandwidth 20m --dirty-rate unlimited --auto-converge
          kvmlab migrate --dirty-track ring --dirty-limit 5000 --idle-vcpus 1
          kvmlab migrate --listen 0.0.0.0:4444 -s anonymous_thp    (destination host)
          kvmlab migrate --to 10.0.0.2:4444 -v 4 -b 1g            (source host)
        """)

    @Option(name: .customShort("v"), parsing: .unconditional, help: "Dirtying vCPUs.", transform: Bounded.int("-v", MigrateConfig.vcpuLimit)) var vcpus = 2
    @Option(parsing: .unconditional, help: "vCPUs that compute without writing memory.", transform: Bounded.int("--idle-vcpus", MigrateConfig.idleVCPULimit)) var idleVcpus = 0
    @Option(name: .customShort("b"), help: "Memory each dirtying vCPU writes (k/m/g suffixes).", transform: ByteSize.parse) var bytes = ByteSize(bytes: 64 << 20)
    @Option(name: .customShort("s"), help: "Backing (on --listen: the destination's own, else the source's): \(Backing.allValueStrings.joined(separator: ", ")).") var backing: Backing?
    @Option(help: "The local destination's backing (default: the source's).") var destBacking: Backing?
    @Option(help: "Pages per second each dirtying vCPU writes, or 'unlimited'.", transform: MigrateCommand.rate) var dirtyRate: Double? = 20_000
    @Flag(name: .customShort("a"), help: "Write pages in a random order (default: sequential).") var random = false
    @Option(parsing: .unconditional, help: "Percent of each region written after the first pass (the hot set).", transform: Bounded.double("--hot-set", 0.01...100, unit: "%")) var hotSet = 100.0
    @Option(help: "How dirty pages are found: bitmap (KVM_GET_DIRTY_LOG), manual (get, then KVM_CLEAR_DIRTY_LOG per chunk before sending it), ring (dirty rings).") var dirtyTrack: DirtyTrack = .bitmap
    @Option(parsing: .unconditional, help: "Pages per KVM_CLEAR_DIRTY_LOG in manual mode (a multiple of 64).", transform: Bounded.int("--clear-chunk", 64...(1 << 20))) var clearChunk = 4096
    @Option(parsing: .unconditional, help: "Dirty ring entries per vCPU (a power of two).", transform: Bounded.int("--ring-entries", 512...65536)) var ringEntries = 4096
    @Option(help: "Cap the stream at this many bytes per second (k/m/g suffixes), e.g. 100m.", transform: ByteSize.parse) var bandwidth: ByteSize?
    @Option(parsing: .unconditional, help: "Switch over once the dirty pages fit in this many seconds at the measured bandwidth.", transform: Bounded.double("--downtime-limit", 0.0001...60, unit: "seconds")) var downtimeLimit = 0.3
    @Option(parsing: .unconditional, help: "Rounds before giving up on convergence.", transform: Bounded.int("--max-rounds", 1...1000)) var maxRounds = 30
    @Flag(help: "When pre-copy does not converge, cancel and keep the source running instead of switching over anyway.") var abortIfNotConverged = false
    @Option(parsing: .unconditional, help: "Seconds of workload measured before tracking starts.", transform: Bounded.double("--baseline", 0.05...600, unit: "seconds")) var baseline = 0.5
    @Option(parsing: .unconditional, help: "Seconds the workload runs on the destination before it verifies its pages.", transform: Bounded.double("--after", 0...3600, unit: "seconds")) var after = 0.5
    @Option(parsing: .unconditional, help: "Milliseconds per slot of the guest's timeline.", transform: Bounded.double("--slot", 1...100, unit: "ms")) var slot = 10.0
    @Option(parsing: .unconditional, help: "Gaps in a vCPU's loop longer than this many microseconds are stalls.", transform: Bounded.double("--stall-threshold", 1...1_000_000, unit: "µs")) var stallThreshold = 100.0
    @Flag(help: "Throttle every vCPU when a round dirties faster than the link sends (QEMU's auto-converge).") var autoConverge = false
    @Option(parsing: .unconditional, help: "auto-converge: the first throttle, percent of each vCPU's time asleep.", transform: Bounded.double("--throttle-initial", 1...99, unit: "%")) var throttleInitial = 20.0
    @Option(parsing: .unconditional, help: "auto-converge: added per round that does not shrink the dirty set, percent.", transform: Bounded.double("--throttle-step", 1...99, unit: "%")) var throttleStep = 10.0
    @Option(parsing: .unconditional, help: "Slow each vCPU whose dirty ring shows more than this many pages per second down to it (needs --dirty-track ring).", transform: Bounded.double("--dirty-limit", 1...100_000_000, unit: "pages/s")) var dirtyLimit: Double?
    @Flag(help: "Skip the destination's check of all memory before it resumes (its time is part of the downtime).") var noDigest = false
    @Option(name: .customShort("c"), help: "Pin vCPU threads to these CPUs, round robin.") var pin: CPUListArgument?
    @Flag(help: "The destination populates all guest memory before it accepts the VM (QEMU's -mem-prealloc): the stream then pays no first touches.") var prealloc = false
    @Option(help: "Be the destination: wait on ADDR:PORT (default address 127.0.0.1) for one migration.") var listen: String?
    @Option(help: "Migrate to a destination started with --listen on ADDR:PORT.") var to: String?
    @Option(help: .hidden) var listenFd: Int32?
    @OptionGroup var output: OutputOptions

    /// The flag that sets each configuration field its errors name.
    static let flags = ["vcpus": "-v", "idleVCPUs": "--idle-vcpus", "bytesPerVCPU": "-b", "bandwidth": "--bandwidth", "clearChunk": "--clear-chunk",
                        "ringEntries": "--ring-entries", "throttle": "--dirty-limit", "track": "--dirty-track", "pin": "-c", "destination": "--to", "listen": "--listen"]

    static func rate(_ text: String) throws -> Double? {
        if text == "unlimited" { return nil }
        return try Bounded.double("--dirty-rate", 1...100_000_000, unit: "pages/s")(text)
    }

    func validate() throws {
        if listen != nil && to != nil { throw ValidationError("--listen and --to contradict each other: a run is either the destination or the source") }
        if (listen != nil || listenFd != nil) && destBacking != nil { throw ValidationError("--dest-backing is for a local destination; with --listen give -s") }
        if dirtyTrack != .manual && clearChunk != 4096 { throw ValidationError("--clear-chunk applies to --dirty-track manual only") }
        if let bandwidth, bandwidth.bytes < 1 << 20 || Double(bandwidth.bytes) > MigrateConfig.maxBandwidth {
            throw ValidationError("--bandwidth \(bandwidth.bytes) bytes/s: from 1m (1 MiB/s: a 4 MiB frame must go out in seconds, not hours) to 1t")
        }
        if bytes.bytes > MigrateConfig.maxBytesPerVCPU { throw ValidationError("-b \(bytes.bytes): at most 1t per vCPU") }
        if let to, (try? SocketAddress(parsing: to, field: "destination"))?.port == 0 { throw ValidationError("--to \(to): port 0 is not a destination; give the port --listen printed") }
        if autoConverge && dirtyLimit != nil { throw ValidationError("--auto-converge and --dirty-limit are two throttles: give one") }
        if dirtyLimit != nil && dirtyTrack != .ring { throw ValidationError("--dirty-limit measures each vCPU from its dirty ring: add --dirty-track ring") }
    }

    /// The source, or with --listen the destination.
    func run() throws {
        if listen != nil || listenFd != nil { return try serve() }
        try Output.experiment(try measure(), report: Report.self, options: output)
    }

    /// The source: migrates to --to, or to a child destination.
    func measure() throws -> MigrateResult {
        let config = try config()
        return try config.destination == nil ? migrateToChild(config) : MigrateScenario.run(config)
    }

    func config() throws -> MigrateConfig {
        var config = MigrateConfig()
        config.vcpus = vcpus
        config.idleVCPUs = idleVcpus
        config.bytesPerVCPU = bytes.bytes
        config.backing = backing ?? .anonymous
        config.dirtyRate = dirtyRate
        config.random = random
        config.hotSetPercent = hotSet
        config.track = dirtyTrack
        config.clearChunk = clearChunk
        config.ringEntries = ringEntries
        config.bandwidth = bandwidth.map { Double($0.bytes) }
        config.downtimeLimit = downtimeLimit
        config.maxRounds = maxRounds
        config.abortIfNotConverged = abortIfNotConverged
        config.baselineSeconds = baseline
        config.afterSeconds = after
        config.slotSeconds = slot / 1e3
        config.stallThreshold = stallThreshold / 1e6
        config.digest = !noDigest
        config.pin = pin?.cpus ?? []
        if autoConverge { config.throttle = .autoConverge(initial: throttleInitial / 100, step: throttleStep / 100) }
        if let dirtyLimit { config.throttle = .dirtyLimit(pagesPerSecond: dirtyLimit) }
        config.destination = try to.map { try SocketAddress(parsing: $0, field: "destination") }
        return config
    }

    /// A destination kvmlab on this host: it inherits the listening socket.
    private func migrateToChild(_ config: MigrateConfig) throws -> MigrateResult {
        var config = config
        let (listener, port) = try StreamSocket.listen(on: SocketAddress(host: "127.0.0.1", port: 0))
        var arguments = ["migrate", "--listen-fd", "3", "--quiet", "--no-trace"]
        if let destBacking { arguments += ["-s", destBacking.rawValue] }
        if prealloc { arguments.append("--prealloc") }
        let child: pid_t
        do {
            child = try HostProcess.spawn(HostProcess.selfPath, arguments, passing: listener)
        } catch {
            close(listener)
            throw error
        }
        close(listener)
        do {
            config.destination = SocketAddress(host: "127.0.0.1", port: port)
            let result = try MigrateScenario.run(config)
            _ = HostProcess.reap(child, timeout: 30)
            return result
        } catch {
            _ = HostProcess.reap(child, timeout: 0)
            throw error
        }
    }

    /// The destination: one migration, then a line saying how it went.
    private func serve() throws {
        let listener: Int32
        if let listenFd {
            listener = listenFd
        } else {
            let address = try SocketAddress(parsing: listen!, field: "listen")
            let (fd, port) = try StreamSocket.listen(on: address)
            listener = fd
            if !output.quiet { Exit.error("kvmlab: migrate: listening on \(address.host):\(port)") }
        }
        let report = try MigrateScenario.receive(listener: listener, backing: backing, prealloc: prealloc, pin: pin?.cpus ?? [])
        close(listener)
        let verified = report.vcpus.allSatisfy { $0.mismatches == 0 && $0.counterSum == $0.writes && $0.outcome == "finished" }
        Exit.output("migrate: received \(report.pagesReceived) pages into \(report.backing); resumed \(report.vcpus.count) vCPU(s) (TSC by \(report.tscMethod)); "
                     + (verified ? "every page verified" : "PAGE CHECK FAILED") + (report.problem.isEmpty ? "" : "; \(report.problem)") + "\n")
        if !report.problem.isEmpty || !verified { throw ExitCode(Exit.runtime) }
    }
}

extension DirtyTrack: ExpressibleByArgument {
    public static var allValueStrings: [String] { allCases.map(\.rawValue) }
}
