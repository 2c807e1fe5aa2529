import ArgumentParser
import Glibc

/// Exit statuses and the one-line error convention.
enum Exit {
    static let usage: Int32 = 2
    static let runtime: Int32 = 1

    static func fail(_ message: String, status: Int32) -> Never {
        let line = "kvmlab: error: " + message.replacingNewlines() + "\n"
        _ = line.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
        exit(status)
    }

    /// A measured run's status word ("ok", "interrupted", "error") as an exit.
    static func check(status: String) throws {
        switch status {
        case "ok": return
        case "interrupted": throw ExitCode(130)
        default: throw ExitCode(1)
        }
    }

    static func error(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
    }

    static func output(_ text: String) {
        _ = text.withCString { Glibc.write(STDOUT_FILENO, $0, strlen($0)) }
    }
}

extension String {
    func replacingNewlines() -> String { split(separator: "\n").joined(separator: "; ") }
}
