import Glibc

/// Runs another program (compare runs kvmlab itself, one round at a time)
/// and collects its output, without Foundation.
public enum HostProcess {
    public struct Result: Sendable {
        public let status: Int32
        public let stdout: [UInt8]
        public let stderr: [UInt8]
    }

    /// The running kvmlab binary.
    public static var selfPath: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        return count > 0 ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
    }

    /// The pid of the child being waited for (0 when none), so a stop
    /// request can pass Ctrl-C on to it.
    private static let current = Locked<pid_t>(0)

    /// Sends `signal` to the running child, if any.
    public static func signalChild(_ signal: Int32) {
        current.withLock { pid in if pid > 0 { kill(pid, signal) } }
    }

    public static func run(_ path: String, _ arguments: [String]) throws(HostError) -> Result {
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard pipe(&out) == 0, pipe(&err) == 0 else { throw HostError("pipe: \(String(cString: strerror(errno)))") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO)
        posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO)
        posix_spawn_file_actions_addclose(&actions, out[0])
        posix_spawn_file_actions_addclose(&actions, err[0])
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = current.withLock { child -> Int32 in
            let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
            if result == 0 { child = pid }
            return result
        }
        close(out[1])
        close(err[1])
        guard spawned == 0 else {
            close(out[0]); close(err[0])
            throw HostError("cannot run \(path): \(String(cString: strerror(spawned)))")
        }
        let (stdout, stderr) = drain(out[0], err[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        current.withLock { $0 = 0 }
        // WIFEXITED / WEXITSTATUS / WTERMSIG by hand: the macros are not imported.
        let code = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return Result(status: code, stdout: stdout, stderr: stderr)
    }

    /// Starts `path` with `arguments`, descriptor `fd` passed on as its
    /// descriptor 3 and its stdout discarded (stderr stays shared, so its
    /// one-line errors reach the user). Ctrl-C reaches it with the process
    /// group; reap() collects it.
    public static func spawn(_ path: String, _ arguments: [String], passing fd: Int32) throws(HostError) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fd, 3)
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard result == 0 else { throw HostError("cannot run \(path): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Waits up to `timeout` seconds for `pid`, then kills it; its exit status (128 + signal if killed).
    public static func reap(_ pid: pid_t, timeout: Double) -> Int32 {
        let deadline = Stopwatch.now() + UInt64(max(0, timeout) * 1e9)
        var status: Int32 = 0
        while true {
            let done = waitpid(pid, &status, WNOHANG)
            if done == pid { break }
            if done < 0 && errno != EINTR { return -1 }
            if Stopwatch.now() > deadline {
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            Stopwatch.sleep(seconds: 0.01)
        }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Reads both pipes to their ends, whichever has data, so a chatty
    /// stderr cannot block the child while we wait on stdout.
    private static func drain(_ outFD: Int32, _ errFD: Int32) -> ([UInt8], [UInt8]) {
        var buffers: [[UInt8]] = [[], []]
        var fds = [pollfd(fd: outFD, events: Int16(POLLIN), revents: 0), pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)]
        var chunk = [UInt8](repeating: 0, count: 65536)
        var open = 2
        while open > 0 {
            guard poll(&fds, nfds_t(fds.count), -1) >= 0 || errno == EINTR else { break }
            for index in fds.indices where fds[index].fd >= 0 && fds[index].revents != 0 {
                let got = chunk.withUnsafeMutableBytes { read(fds[index].fd, $0.baseAddress, $0.count) }
                if got > 0 {
                    buffers[index].append(contentsOf: chunk[0..<got])
                } else if got == 0 || errno != EINTR {
                    close(fds[index].fd)
                    fds[index].fd = -1
                    open -= 1
                }
            }
        }
        return (buffers[0], buffers[1])
    }
}
