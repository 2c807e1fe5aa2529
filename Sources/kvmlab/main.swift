import ArgumentParser
import Glibc
import KVM
import Scenarios
import VMM

// Parsing and running are separated so that every failure ends in one line
// on stderr with the right status: 2 for usage (a bad flag, an impossible
// request), 1 for anything that went wrong while running.
var command: ParsableCommand
do {
    command = try Kvmlab.parseAsRoot()
} catch {
    if Kvmlab.exitCode(for: error) == .success {
        print(Kvmlab.fullMessage(for: error))
        exit(0)
    }
    let message = Kvmlab.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    Exit.fail("\(message) (see 'kvmlab --help')", status: Exit.usage)
}
do {
    try command.run()
} catch let error as ConfigError {
    Exit.fail(error.description, status: Exit.usage)
} catch let error as ValidationError {
    Exit.fail(error.message, status: Exit.usage)
} catch let error as ExitCode {
    exit(error.rawValue)
} catch let error as CustomStringConvertible {
    Exit.fail(error.description, status: Exit.runtime)
} catch {
    Exit.fail("\(error)", status: Exit.runtime)
}
