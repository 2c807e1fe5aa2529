import Glibc
import Guests
import KVM
import VMM

/// One populate mode on its own machine: population first, with the
/// workload vCPUs held back, then the workload's two passes (write every
/// page, read every word back).
final class PopulateRun {
    let mode: PopulateMode
    let config: PopulateConfig
    /// The pre-fault vCPU, if the mode has one, is the last; the workload is 0..<workers.
    let machine: Machine
    private let timer: PhaseTimer
    private let runner: VCPURunner
    private let driver: PassDriver
    /// Opens when population is done. Workload vCPUs enter the guest only
    /// then: an idle pass worker spins, and would take CPU time from the
    /// pre-fault vCPU.
    private let populated = IterationGate()
    private var unsupported: String?

    private var workers: Int { config.vcpus }
    private var pagesPerVCPU: UInt64 { config.bytesPerVCPU / GuestLayout.pageSize }

    init(mode: PopulateMode, config: PopulateConfig, device: KVMDevice) throws {
        self.mode = mode
        self.config = config
        machine = try Machine(MachineConfig(vcpus: config.vcpus + (mode == .prefaultVCPU ? 1 : 0),
                                            testMemory: config.bytesPerVCPU * UInt64(config.vcpus), backing: config.backing), device: device)
        timer = PhaseTimer(machine: machine)
        let gate = populated, workers = config.vcpus
        runner = VCPURunner(machine: machine, prologue: { $0 >= workers || gate.wait(after: 0) != nil }) { _, _ in .finish }
        runner.onStop { gate.cancel() }
        driver = PassDriver(machine: machine, runner: runner)
    }

    func execute() throws -> PopulateModeResult {
        try machine.load(GuestImage.builtin("passes")!)
        let test = machine.test!
        let residentBefore = test.residentPages()
        var population, firstPass, secondPass: PopulateStep?
        var mismatches: UInt64 = 0
        var problem: String?
        do {
            population = try step("population") { try populate() }
            populated.open(1)
            if unsupported == nil {
                if mode != .prefaultVCPU { try runner.start() }
                if population != nil {
                    firstPass = step("first pass") { workloadPass(PASS_WRITE) != nil }
                    if InjectedFault.on(.corruptPage), firstPass != nil { machine.memory(at: GuestLayout.testMemoryBase, bytes: 8)?.store(0, at: 0) }
                    secondPass = firstPass == nil ? nil : step("second pass") {
                        guard let bad = workloadPass(PASS_VERIFY) else { return false }
                        mismatches = bad
                        return true
                    }
                }
            }
        } catch {
            problem = "\(error)"
        }
        // Workload vCPUs still held back (population failed) never enter.
        populated.cancel()
        let ending = driver.finish(known: problem, complete: unsupported != nil || secondPass != nil)
        if let unsupported { return .skipped(mode, pages: config.totalPages, reason: unsupported) }
        return PopulateModeResult(mode: mode, population: population, firstPass: firstPass, secondPass: secondPass, residentBefore: residentBefore,
                                  pages: config.totalPages, unsupported: nil, mismatches: mismatches,
                                  problem: ending.problem, interrupted: ending.interrupted)
    }

    /// The mode's own population; false if it did not complete (or, with
    /// `unsupported` set, cannot run here).
    private func populate() throws -> Bool {
        switch mode {
        case .demand:
            return true
        case .hostPopulate:
            try machine.test!.populateWrite()
            return true
        case .kvmPrefault:
            do {
                try PopulateScenario.prefaultInParallel(machine, workers: workers, bytesPerVCPU: config.bytesPerVCPU)
            } catch let error as KVMError where error.errno == EOPNOTSUPP {
                unsupported = "not supported on this host: KVM_PRE_FAULT_MEMORY failed with EOPNOTSUPP (\(error.description))"
                return false
            }
            return true
        case .prefaultVCPU:
            try runner.start()
            return driver.run(workers, Pass(op: PASS_WRITE, gpa: GuestLayout.testMemoryBase, pages: config.totalPages, stamp: 0)) != nil
        }
    }

    /// Times `body` with the KVM stats around it and the test memory's
    /// resident pages after it; nil if `body` did not complete.
    private func step(_ name: String, _ body: () throws -> Bool) rethrows -> PopulateStep? {
        let (done, phase) = try timer.measure(name, body)
        return done ? PopulateStep(seconds: phase.seconds ?? 0, stats: phase.stats, tracepoints: phase.tracepoints, residentPages: machine.test!.residentPages()) : nil
    }

    /// Every workload vCPU runs one pass over its own share; the pages
    /// that did not hold their stamp, or nil if a vCPU did not finish.
    private func workloadPass(_ op: Int32) -> UInt64? {
        for index in 0..<workers {
            driver.begin(index, Pass(op: op, gpa: GuestLayout.testMemoryBase + UInt64(index) * config.bytesPerVCPU, pages: pagesPerVCPU,
                                     stamp: Stamp(tag: PopulateRun.stampTag, sequence: index).base))
        }
        var bad: UInt64 = 0
        for index in 0..<workers {
            guard let mismatches = driver.wait(index, timeout: 120) else { return nil }
            bad += mismatches
        }
        return bad
    }

    /// The workload's stamp tag (both passes: the second checks the first's).
    private static let stampTag: UInt16 = 0x7050
}
