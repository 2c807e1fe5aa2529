import Foundation

/// Runs a program and collects what it printed (stdin optional).
public enum Tool {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: String
        public let stderr: String
    }

    /// A program still running after this many seconds is killed: a test
    /// must fail, not hang, when a fault makes kvmlab loop (a test's own
    /// time limit cannot stop a test blocked waiting for a child).
    public static let limit = 110.0


    public static func run(_ path: String, _ arguments: [String], input: String? = nil,
                           environment: [String: String]? = nil, directory: String? = nil, limit: Double = Tool.limit) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe(), stdin = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : stdin
        try process.run()
        let watchdog = DispatchWorkItem { [process] in if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        DispatchQueue.global().asyncAfter(deadline: .now() + limit, execute: watchdog)
        defer { watchdog.cancel() }
        if let input {
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
        }
        // Read both pipes at once: a full stderr pipe must not stall stdout.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        let killed = process.terminationReason == .uncaughtSignal && process.terminationStatus == SIGKILL
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self) + (killed ? "\n[killed after \(Int(limit)) s: \(([path] + arguments).joined(separator: " "))]" : ""))
    }
}

/// The built kvmlab binary, which sits next to the test bundle.
public enum CLI {
    public static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("kvmlab").path
    }

    /// Every experiment once, small and short: what the output-format tests
    /// (JSON schema, metrics) run each command with.
    public static let smallestRuns: [[String]] = [
        ["run", "-v", "2", "--guest", "memstress", "-m", "8m", "-i", "1"],
        ["dirty-log", "-v", "2", "-b", "4m", "-i", "2", "-s", "anonymous_thp"],
        ["jitter", "-v", "1", "--duration", "0.2", "--warmup", "0.1"],
        ["exit-latency", "-n", "2000"],
        ["memslot", "-s", "8", "--memory", "4m", "-l", "0.1", "-r", "1", "--test", "map", "--test", "move-inactive"],
        ["populate", "-v", "1", "-b", "4m"],
        ["root-reload", "--dirtiers", "1", "--working-set", "1m", "--duration", "0.2"],
        ["teardown", "-v", "1", "--memory", "8m", "--baseline", "0.02"],
        ["migrate", "-v", "1", "-b", "4m", "--baseline", "0.05", "--after", "0.05"],
    ]

    /// Runs kvmlab; `environment` entries are added to the test's own.
    public static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> Tool.Result {
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        return try Tool.run(binary, arguments, environment: env)
    }
}
