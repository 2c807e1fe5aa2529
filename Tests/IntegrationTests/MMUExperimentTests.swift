import Foundation
import Guests
import KVM
import TestSupport
import Testing
@testable import Report
@testable import Scenarios
@testable import VMM

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct RootReloadTests {
    @Test func cplZeroVCPUTogglesWhileOthersDirty() throws {
        var config = RootReloadConfig()
        config.dirtiers = 1
        config.workingSet = 1 << 20
        config.duration = 0.3
        let result = try RootReloadScenario.run(config)
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        #expect(result.baseline.toggles == 0)
        let toggling = try #require(result.toggling)
        // Every counted toggle was read back from CR0 by the guest itself.
        #expect(toggling.toggles > 0)
        #expect(result.baseline.pagesDirtied > 0 && toggling.pagesDirtied > 0)
        #expect(result.baseline.pagesDirtied % 256 == 0)
        if result.emulatedKernelMode {
            // Emulated: every toggle leaves the guest, and the summary says so.
            #expect((toggling.togglerStats?["exits"] ?? 0) >= Int64(toggling.toggles))
            #expect(RootReloadSummary(result).note == RootReloadSummary.emulationNote)
            #expect(RootReloadReport.text(result).contains("emulates CPL0 guest code"))
        } else {
            #expect(RootReloadSummary(result).note == nil)
        }
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct PopulateTests {
    @Test func everyModeMakesTheMemoryUsable() throws {
        var config = PopulateConfig()
        config.vcpus = 2
        config.bytesPerVCPU = 8 << 20
        let result = try PopulateScenario.run(config)
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        let pages = 2 * 2048
        let modes = Dictionary(uniqueKeysWithValues: result.modes.map { ($0.mode, $0) })
        for mode in result.modes where mode.unsupported == nil {
            #expect(mode.residentBefore == 0, "\(mode.mode): memory resident before population")
            #expect(mode.mismatches == 0 && mode.secondPass != nil, "\(mode.mode)")
            #expect(mode.firstPass?.residentPages == pages)
        }
        // Demand: nothing until the vCPUs fault it in, page by page.
        let demand = try #require(modes[.demand])
        #expect(demand.population?.residentPages == 0)
        #expect((demand.firstPass?.stats?["pf_fixed"] ?? 0) >= Int64(pages))
        // Host population: every page resident before any vCPU runs.
        let host = try #require(modes[.hostPopulate])
        #expect(host.population?.residentPages == pages)
        #expect((host.population?.stats?["pf_fixed"] ?? -1) == 0)
        // Pre-fault vCPU: KVM's mappings exist before the workload runs.
        let vcpu = try #require(modes[.prefaultVCPU])
        #expect((vcpu.population?.stats?["pf_fixed"] ?? 0) >= Int64(pages) / 8)
        #expect((vcpu.firstPass?.stats?["pf_fixed"] ?? Int64(pages)) <= Int64(pages) / 100)
        let kvm = try #require(modes[.kvmPrefault])
        if try KVMDevice().check(.preFaultMemory) == 0 {
            #expect(kvm.unsupported?.contains("not supported on this host") == true)
            #expect(PopulateReport.text(result).contains("kvm-prefault: not supported on this host"))
        } else {
            #expect(kvm.unsupported == nil)
            #expect((kvm.firstPass?.stats?["pf_fixed"] ?? Int64(pages)) <= Int64(pages) / 100)
        }
    }
}

@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct TeardownTests {
    @Test(arguments: TeardownOrder.allCases)
    func teardownFreesEverythingWhileTheProbeWatches(order: TeardownOrder) throws {
        var config = TeardownConfig()
        config.vcpus = 2
        config.memory = 64 << 20
        config.orders = [order]
        config.baselineSeconds = 0.1
        let result = try TeardownScenario.run(config)
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        let run = try #require(result.runs.first)
        #expect(run.steps.count == 2)
        let destroy = try #require(run.steps.first { $0.name.hasPrefix("destroy VM") })
        let unmap = try #require(run.steps.first { $0.name.hasPrefix("unmap") })
        #expect(run.steps.first?.name == (order == .vmFirst ? destroy.name : unmap.name))
        // The VM fd and both vCPU fds close in the destroy step...
        #expect(destroy.descriptorsClosed >= 3)
        // ...and the populated memory goes back to the host in the unmap step.
        #expect(unmap.residentBytesFreed >= Int64(config.memory) * 9 / 10)
        #expect(run.probeLoops > 0)
        #expect(run.windows.map(\.name) == ["idle", "busy", "teardown"])
        // Beside a busy thread on its CPU the probe must have been descheduled.
        let busy = try #require(run.windows.first { $0.name == "busy" })
        #expect(!busy.gaps.isEmpty)
        #expect((run.populateStats?["pf_fixed"] ?? 0) > 0)
    }
}

/// teardown's TCP victim: a bulk flow over loopback on the teardown's CPU.
/// Its throughput is measured in every window and every byte it read lands
/// in a slot; the fault that stops its receiver counting is caught.
@Suite(.timeLimit(.minutes(2)), .serialized, .enabled(if: KVMAvailability.usable, "\(KVMAvailability.problem ?? "")"))
struct TCPVictimTests {
    func config(_ victim: VictimKind) -> TeardownConfig {
        var config = TeardownConfig()
        config.vcpus = 1
        config.memory = 64 << 20
        config.orders = [.vmFirst]
        config.baselineSeconds = 0.2
        config.victim = victim
        return config
    }

    @Test func theFlowIsMeasuredInEveryWindowAndItsSlotsAddUp() throws {
        let result = try TeardownScenario.run(config(.tcp))
        #expect(result.experiment.status == .ok, "\(result.experiment.problems) \(result.experiment.checks.filter { !$0.passed })")
        let run = try #require(result.runs.first)
        #expect(run.victimNote == nil)
        #expect(run.windows.isEmpty && run.probeLoops == 0)  // no probe beside a TCP victim alone
        let flow = try #require(run.flows.first)
        #expect(flow.flow == "victim" && flow.cpu == result.cpu)
        #expect(flow.windows.map(\.name) == ["idle", "busy", "teardown"])
        // Windows of 50 ms or more (idle and busy here) always see the flow move;
        // a short teardown may fall between its turns on a loaded CPU.
        #expect(flow.windows.filter { $0.slotBytes.count >= FlowRecord.windowToMove }.map(\.name) == ["idle", "busy"] + (flow.windows[2].slotBytes.count >= FlowRecord.windowToMove ? ["teardown"] : []))
        #expect(flow.windows.filter { $0.slotBytes.count >= FlowRecord.windowToMove }.allSatisfy { $0.slotBytes.reduce(0, +) > 0 }, "\(flow.windows.map { $0.slotBytes.reduce(0, +) })")
        #expect(flow.bytesReceived > 0 && flow.bytesCounted == flow.bytesReceived)
        for window in ["idle", "busy", "teardown"] {
            #expect(result.experiment.metric("tcp_throughput_bytes_per_second{flow=victim,order=vm-first,window=\(window)}")?.distribution?.count ?? 0 > 0)
        }
        #expect(result.experiment.metric("tcp_throughput_ratio{flow=victim,order=vm-first,window=idle}")?.value == 1)
    }

    @Test func bothReportsTheProbeAndTheFlowAndAControlFlow() throws {
        var both = config(.both)
        both.cpu = 1
        both.controlCPU = 0
        let result = try TeardownScenario.run(both)
        let run = try #require(result.runs.first)
        #expect(run.probeLoops > 0 && run.windows.count == 3)
        #expect(run.flows.map(\.flow) == ["victim", "control"] && run.flows.map(\.cpu) == [1, 0])
        let text = TeardownReport.text(result)
        #expect(text.contains("TCP over loopback per window") && text.contains("The probe's gaps"))
    }

    @Test func aReceiverThatStopsCountingIsCaught() throws {
        let result = try CLI.run(["teardown", "-v", "1", "--memory", "64m", "--baseline", "0.2", "--order", "vm-first", "--victim", "tcp", "--json"],
                                 environment: [InjectedFault.variable: InjectedFault.victimStopsCounting.rawValue])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stdout.contains("its slots add up to the bytes received") && result.stdout.contains("checks_failed"))
    }

    @Test(arguments: [(["--control-cpu", "0"], "needs --victim tcp"), (["--victim", "tcp", "--cpu", "1", "--control-cpu", "1"], "the CPU under test"),
                      (["--victim", "loud"], "victim")])
    func badVictimFlagsAreUsageErrors(flags: [String], mentions: String) throws {
        let result = try CLI.run(["teardown", "-v", "1", "--memory", "8m"] + flags)
        #expect(result.status == 2 && result.stderr.contains(mentions), "\(result.stderr)")
    }
}

/// Where loopback TCP cannot be had (a network namespace whose lo is down),
/// a TCP victim says why in one line and the run goes on with the probe.
@Suite(.timeLimit(.minutes(1)), .enabled(if: KVMAvailability.usable && FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare"), "needs /dev/kvm and unshare"))
struct TCPVictimWithoutLoopbackTests {
    @Test func theRunGoesOnWithTheProbe() throws {
        let result = try Tool.run("/usr/bin/unshare", ["-n", CLI.binary, "teardown", "-v", "1", "--memory", "8m", "--baseline", "0.05",
                                                         "--order", "vm-first", "--victim", "tcp"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("no TCP victim: loopback TCP for the victim: connect"), "\(result.stdout)")
        #expect(result.stdout.contains("The probe's gaps above the threshold"))
    }
}
