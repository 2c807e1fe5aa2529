import Glibc

/// What this host is, as far as KVM MMU results depend on it. Every JSON
/// document carries one, so results from different hosts are never mixed up.
public struct HostFingerprint: Sendable, Codable, Equatable {
    public let kernel: String
    public let cpu: String
    public let onlineCPUs: Int
    /// kvm_intel, kvm_amd or kvm_pvm: the vendor module that is loaded.
    public let kvmModule: String?
    /// "tdp_mmu", "tdp_legacy" (EPT/NPT on the old MMU) or "shadow".
    public let mmuMode: String
    public let mmuDescription: String
    public let parameters: [String: String]
    public let thpMode: String?
    public let hugetlbPools: [HugetlbPool.Pool]

    public static func current() -> HostFingerprint {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let module = ["kvm_intel", "kvm_amd", "kvm_pvm"].first { HostFiles.exists("/sys/module/\($0)") }
        var parameters: [String: String] = [:]
        for parameter in ["tdp_mmu", "eager_page_split", "nx_huge_pages", "halt_poll_ns"] {
            if let value = HostFiles.trimmed("/sys/module/kvm/parameters/\(parameter)") { parameters["kvm.\(parameter)"] = value }
        }
        for (moduleName, parameter) in [("kvm_intel", "ept"), ("kvm_amd", "npt"), ("kvm_intel", "enable_unrestricted_guest")] {
            if let value = HostFiles.trimmed("/sys/module/\(moduleName)/parameters/\(parameter)") { parameters["\(moduleName).\(parameter)"] = value }
        }
        let (mode, description) = mmu(module: module, parameters: parameters)
        return HostFingerprint(
            kernel: release, cpu: cpuModel(), onlineCPUs: Resources.onlineCPUs,
            kvmModule: module, mmuMode: mode, mmuDescription: description, parameters: parameters,
            thpMode: bracketed(HostFiles.trimmed("/sys/kernel/mm/transparent_hugepage/enabled")),
            hugetlbPools: HugetlbPool.pools)
    }

    static func isOn(_ value: String?) -> Bool { ["Y", "y", "1"].contains(value ?? "") }

    /// Which MMU KVM uses, from the vendor module and its parameters.
    static func mmu(module: String?, parameters: [String: String]) -> (String, String) {
        guard let module else { return ("unknown", "no KVM vendor module is loaded") }
        if module == "kvm_pvm" {
            return ("shadow", "shadow MMU (kvm_pvm: no EPT/NPT; guest CPL0 code is emulated)")
        }
        let twoDimensional = module == "kvm_intel" ? parameters["kvm_intel.ept"] : parameters["kvm_amd.npt"]
        guard isOn(twoDimensional ?? "Y") else { return ("shadow", "shadow MMU (\(module) with \(module == "kvm_intel" ? "ept" : "npt") off)") }
        if isOn(parameters["kvm.tdp_mmu"]) { return ("tdp_mmu", "TDP MMU (\(module == "kvm_intel" ? "EPT" : "NPT"))") }
        return ("tdp_legacy", "legacy MMU over \(module == "kvm_intel" ? "EPT" : "NPT") (kvm.tdp_mmu=N)")
    }

    static func cpuModel() -> String {
        guard let text = HostFiles.read("/proc/cpuinfo") else { return "unknown" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") { return String(line[line.index(after: colon)...]).trimmingCharacters(in: " \t") }
        }
        return "unknown"
    }

    /// "always [madvise] never" -> "madvise".
    static func bracketed(_ text: String?) -> String? {
        guard let text, let open = text.firstIndex(of: "["), let close = text.firstIndex(of: "]"), open < close else { return text }
        return String(text[text.index(after: open)..<close])
    }

    /// Guest CPL0 code is emulated instruction by instruction on this host.
    public var emulatesKernelMode: Bool { kvmModule == "kvm_pvm" }
}
