import Scenarios
import VMM

/// `kvmlab info` as text.
public enum InfoReport {
    /// What can be read without /dev/kvm: the host and its KVM module's parameters.
    public static func hostText(_ host: HostFingerprint) -> String {
        keyValues("Host", [
            ("kernel", host.kernel),
            ("cpu", "\(host.cpu) (\(host.onlineCPUs) online)"),
            ("kvm module", host.kvmModule ?? "none"),
            ("mmu", host.mmuDescription),
            ("thp", host.thpMode ?? "unavailable"),
            ("hugetlb", host.hugetlbPools.map { "\(Sizes.format($0.pageSize)): \($0.free)/\($0.total) free" }.joined(separator: ", ")),
        ] + host.parameters.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    public static func text(_ info: KVMInfo) -> String {
        var out = hostText(info.host)
        out += "\n" + keyValues("KVM", [
            ("api version", "\(info.apiVersion)"),
            ("vcpus", "recommended \(info.nrVCPUs), max \(info.maxVCPUs)"),
            ("memslots", "\(info.nrMemslots)"),
            ("manual dirty-log protect", info.manualProtectFlags.isEmpty ? "no" : info.manualProtectFlags.joined(separator: " + ")),
            ("dirty ring", info.dirtyRingMaxBytes > 0 ? "up to \(info.dirtyRingMaxEntries) entries (\(Sizes.format(UInt64(info.dirtyRingMaxBytes))))\(info.dirtyRingAcqRel ? ", acq/rel" : "")" : "no"),
            ("binary stats", info.binaryStats ? "yes" : "no"),
            ("disable quirks2", "0x\(String(info.disableQuirks2Mask, radix: 16)) \(info.disableableQuirks.joined(separator: " "))"),
            ("SLOT_ZAP_ALL can be disabled", info.slotZapAllDisableable ? "yes (--no-zap-all)" : "no"),
            ("pre-fault memory", info.preFaultMemory ? "yes" : "no"),
            ("guest_memfd", info.guestMemfd ? "yes" : "no"),
            ("vm types", info.vmTypes.isEmpty ? "default only" : info.vmTypes.joined(separator: ", ")),
            ("tsc", info.tscKHz.map { "\($0) kHz (KVM_GET_TSC_KHZ)" } ?? "unknown"),
        ])
        var caps = Table(title: "\nCapabilities", headers: ["capability", "value"])
        for cap in info.capabilities { caps.add([cap.name, "\(cap.value)"]) }
        out += caps.render()
        out += "\nVM stats (\(info.vmStats.count)): " + info.vmStats.joined(separator: " ") + "\n"
        out += "vCPU stats (\(info.vcpuStats.count)): " + info.vcpuStats.joined(separator: " ") + "\n"
        let trace = info.tracepoints
        if let tracefs = trace.tracefs {
            let countable = trace.events.filter(\.countable).map(\.name), refused = trace.events.filter { !$0.countable }.map(\.name)
            out += "\nMMU tracepoints (tracefs at \(tracefs)\(trace.note.map { "; \($0)" } ?? "")): \(countable.count) countable per phase"
                + (refused.isEmpty ? "" : ", \(refused.count) not countable here (perf_event_open refused): \(refused.joined(separator: " "))") + "\n  "
                + countable.joined(separator: " ") + "\n"
        } else {
            out += "\nMMU tracepoints: none can be counted: \(trace.note ?? "no tracefs")\n"
        }
        return out
    }
}
