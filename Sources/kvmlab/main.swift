import ArgumentParser
import Glibc
import KVM
import Scenarios
import VMM

// Parsing and running are separated so that every failure ends in one line
// on stderr with the right status: 2 for usage, 1 for runtime errors.
do {
    var command = try Kvmlab.parseAsRoot()
    try command.run()
} catch let error as ConfigError {
    Exit.fail(error.description, status: Exit.usage)
} catch let error as KVMError {
    Exit.fail(error.description, status: Exit.runtime)
} catch let error as RunFailure {
    Exit.fail(error.description, status: Exit.runtime)
} catch let error as ExitCode {
    exit(error.rawValue)
} catch {
    let code = Kvmlab.exitCode(for: error)
    if code == .success {
        print(Kvmlab.fullMessage(for: error))
        exit(0)
    }
    let message = Kvmlab.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    Exit.fail("\(message) (see 'kvmlab --help')", status: Exit.usage)
}
