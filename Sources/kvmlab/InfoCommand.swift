import ArgumentParser
import KVM
import Report
import Scenarios
import VMM

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show what this host's KVM can do: capabilities, MMU mode, stats.",
        discussion: """
        Without access to /dev/kvm it still prints what it can read (kernel,
        CPU, vendor module, module parameters, THP, hugetlb pools), then says
        that the KVM facts need root or the kvm group, and exits 1.

        Example: kvmlab info --json | jq .detail.maxVCPUs
        """)

    @Flag(help: "Print one JSON document instead of tables.") var json = false

    /// `info --json` without /dev/kvm: the host, and why the rest is missing.
    struct HostOnly: Encodable {
        let kvm: String
    }

    func run() throws {
        let info: KVMInfo
        do {
            info = try InfoScenario.run()
        } catch let error as KVMError {
            let host = HostFingerprint.current()
            let why = "\(error.description); the KVM facts need root or the kvm group"
            Exit.output(json ? try JSONDocument(command: "info", host: host, experiment: nil, detail: HostOnly(kvm: why)).render()
                             : InfoReport.hostText(host))
            Exit.fail(why, status: Exit.runtime)
        }
        Exit.output(json ? try JSONDocument(command: "info", host: info.host, experiment: nil, detail: info).render() : InfoReport.text(info))
    }
}
