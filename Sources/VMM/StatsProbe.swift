import KVM

/// KVM's own counters for a machine: the VM stats fd and every vCPU's,
/// summed, so that a phase can be described by what the kernel did.
public final class StatsProbe: @unchecked Sendable {
    // @unchecked: immutable after init; each sample is a pread of its own.
    let vmFile: StatsFile
    let vcpuFiles: [StatsFile]

    /// The VM's stats and the sum of the listed vCPUs' (default: all).
    /// Fails on kernels without binary stats (KVM_CAP_BINARY_STATS_FD).
    public init(machine: Machine, vcpus: [Int]? = nil) throws(KVMError) {
        vmFile = try machine.vm.statsFD()
        var files: [StatsFile] = []
        for index in vcpus ?? Array(machine.vcpus.indices) { files.append(try machine.vcpus[index].statsFD()) }
        vcpuFiles = files
    }

    public func sample() throws(KVMError) -> StatsSample {
        var vcpus: [StatsSnapshot] = []
        for file in vcpuFiles { vcpus.append(try file.snapshot()) }
        return StatsSample(vm: try vmFile.snapshot(), vcpus: StatsSnapshot.sum(vcpus))
    }

    public var vmNames: [String] { vmFile.names }
    public var vcpuNames: [String] { vcpuFiles.first?.names ?? [] }
}

/// VM stats and the sum of vCPU stats at one moment.
public struct StatsSample: Sendable {
    public let vm: StatsSnapshot
    public let vcpus: StatsSnapshot

    public func delta(since earlier: StatsSample) -> StatsDelta {
        let histograms = vm.histogramDelta(since: earlier.vm).merging(vcpus.histogramDelta(since: earlier.vcpus)) { vm, _ in vm }
        return StatsDelta(vm: vm.delta(since: earlier.vm), vcpus: vcpus.delta(since: earlier.vcpus), histograms: histograms.isEmpty ? nil : histograms)
    }
}

/// Changes between two samples, by stat name.
public struct StatsDelta: Sendable, Equatable, Codable {
    public var vm: [String: Int64]
    public var vcpus: [String: Int64]
    /// Histogram stats (VM's and summed vCPUs') bucket by bucket, those that moved.
    public var histograms: [String: StatsHistogram]?

    public init(vm: [String: Int64] = [:], vcpus: [String: Int64] = [:], histograms: [String: StatsHistogram]? = nil) {
        self.vm = vm
        self.vcpus = vcpus
        self.histograms = histograms
    }

    /// The change from `before` to `after`, or nil if either sample is missing
    /// (a kernel without binary stats).
    public static func between(_ before: StatsSample?, _ after: StatsSample?) -> StatsDelta? {
        guard let before, let after else { return nil }
        return after.delta(since: before)
    }

    /// A VM stat's change, or a vCPU stat's summed change, by name.
    public subscript(name: String) -> Int64? { vm[name] ?? vcpus[name] }
}
