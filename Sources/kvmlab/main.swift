import ArgumentParser
import Glibc
import VMM

// Parsing and running are separated so that every failure ends in one line
// on stderr with the right status: 2 for usage (a bad flag, an impossible
// request), 1 for anything that went wrong while running.

/// Help and --version arrive as errors, from parsing or (for `--help` and
/// `help SUBCOMMAND`) from running the parser's own help command.
func exitIfHelp(_ error: Error) {
    guard Kvmlab.exitCode(for: error) == .success else { return }
    Exit.output(Kvmlab.fullMessage(for: error) + "\n")
    exit(0)
}

var command: ParsableCommand
do {
    command = try Kvmlab.parseAsRoot()
} catch {
    exitIfHelp(error)
    let message = Kvmlab.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    Exit.fail("\(message) (see 'kvmlab --help')", status: Exit.usage)
}
// Signal handling is process setup: done before any experiment starts its clocks.
Interrupts.shared.install()
do {
    try command.run()
} catch let error as ConfigError {
    // An experiment names the fields by its flags; other commands' errors are already in CLI terms.
    Exit.fail((command as? any ExperimentCommand).map { type(of: $0).usage(error) } ?? error.description, status: Exit.usage)
} catch let error as HostLacks {
    Exit.fail(error.description, status: Exit.usage)
} catch let error as ValidationError {
    Exit.fail(error.message, status: Exit.usage)
} catch let error as ExitCode {
    exit(error.rawValue)
} catch {
    exitIfHelp(error)
    Exit.fail((error as? CustomStringConvertible)?.description ?? "\(error)", status: Exit.runtime)
}
