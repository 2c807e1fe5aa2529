import Glibc

/// Progress on stderr while a phase runs longer than a second: the phase
/// and its elapsed time on one line, rewritten in place. Only when stderr
/// is a terminal and the user did not ask for --quiet; stdout (tables,
/// JSON) never sees it.
public final class Progress: Sendable {
    public static let shared = Progress()

    private struct State {
        var enabled = false
        var phase: String?
        var started: UInt64 = 0
        var shown = false
        var ticker = false
    }
    private let state = Locked(State())

    /// Turns progress on when stderr is a terminal, unless `quiet`.
    public func enable(quiet: Bool) {
        state.withLock { $0.enabled = !quiet && isatty(STDERR_FILENO) == 1 }
    }

    public func begin(_ phase: String) {
        let startTicker = state.withLock { state -> Bool in
            guard state.enabled else { return false }
            state.phase = phase
            state.started = Stopwatch.now()
            defer { state.ticker = true }
            return !state.ticker
        }
        // The ticker lives as long as the process; it only reads the state.
        if startTicker { _ = try? JoinableThread(stackSize: 64 << 10) { [self] in tick() } }
    }

    public func end() {
        let clear = state.withLock { state -> Bool in
            defer { state.phase = nil; state.shown = false }
            return state.shown
        }
        if clear { write("\r\u{1b}[K") }
    }

    private func tick() {
        while true {
            Stopwatch.sleep(seconds: 0.25)
            let line = state.withLock { state -> String? in
                guard let phase = state.phase else { return nil }
                let elapsed = Double(Stopwatch.now() - state.started) / 1e9
                guard elapsed >= 1 else { return nil }
                state.shown = true
                return "\r\u{1b}[Kkvmlab: \(phase) … \(Int(elapsed)) s"
            }
            if let line { write(line) }
        }
    }

    private func write(_ text: String) {
        _ = text.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
    }
}
