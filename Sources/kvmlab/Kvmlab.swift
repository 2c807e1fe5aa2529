import ArgumentParser
import BuildInfo

struct Kvmlab: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvmlab",
        abstract: "A micro-VMM that drives the kernel's real KVM to exercise its MMU.",
        discussion: """
        Examples:
          kvmlab info                          what this host's KVM can do
          kvmlab info --json                   the same as one JSON document
          kvmlab run                           one vCPU says hello on the serial port
          kvmlab run -v 64 --guest memstress -m 256m -i 5
          kvmlab run --image guest.bin --cpl 0 --timeout 5

        Experiments (each prints a table, or one JSON document with --json):
        \(Registry.helpList)
        Comparing: kvmlab compare EXPERIMENT ... --a 'FLAGS' --b 'FLAGS', or saved documents.

        Exit status: 0 success, 1 runtime error, 2 usage error; `run` adds
        3 guest failed, 4 guest fault, 5 timed out, 130 interrupted.
        """,
        version: Kvmlab.version,
        subcommands: Registry.subcommands)
}

extension Kvmlab {
    static let release = "0.3.0"

    /// "kvmlab 0.3.0 (commit abc123, Swift 6.3.1, x86_64)".
    static var version: String {
        "kvmlab \(release) (commit \(String(cString: kvmlab_build_commit())), \(String(cString: kvmlab_build_swift())), x86_64)"
    }
}
