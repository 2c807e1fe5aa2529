import ArgumentParser
import Glibc
import Scenarios

/// Exit statuses and the one-line error convention.
enum Exit {
    static let usage: Int32 = 2
    static let runtime: Int32 = 1
    static let interrupted: Int32 = 130

    static func fail(_ message: String, status: Int32) -> Never {
        error("kvmlab: error: " + message.replacingNewlines())
        exit(status)
    }

    /// The one mapping from a run's status to the process's exit status.
    static func code(_ status: RunStatus) -> Int32 {
        switch status {
        case .ok: return 0
        case .checksFailed, .error: return runtime
        case .interrupted: return interrupted
        }
    }

    static func check(_ status: RunStatus) throws {
        let code = code(status)
        if code != 0 { throw ExitCode(code) }
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
