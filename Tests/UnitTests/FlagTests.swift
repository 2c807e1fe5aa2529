import TestSupport
import Testing

/// Flags kvmlab refuses while parsing, before it opens /dev/kvm: one line on
/// stderr naming the flag and its bound, exit status 2, nothing on stdout,
/// and never a trap (these inputs each crashed with SIGILL once).
@Suite(.timeLimit(.minutes(1))) struct FlagTests {
    @Test(arguments: [
        (["jitter", "--warmup", "inf"], "--warmup"),
        (["jitter", "--threshold", "1e30"], "--threshold must be between 0.01 and 1000000"),
        (["jitter", "--window", "1e30"], "--window"),
        (["jitter", "--duration", "nan"], "--duration"),
        (["jitter", "--rate", "-5"], "--rate"),
        (["teardown", "--threshold", "1e20"], "--threshold"),
        (["teardown", "--baseline", "-inf"], "--baseline"),
        (["dirty-log", "-b", "1m", "--clear-chunk", "9223372036854775807"], "--clear-chunk"),
        (["dirty-log", "-v", "0"], "-v takes a whole number from 1"),
        (["dirty-log", "-w", "101"], "-w"),
        (["run", "--vcpus", "-3"], "--vcpus takes a whole number from 1"),
        (["run", "--timeout", "-1"], "--timeout must be between"),
        (["run", "--timeout", "1e400"], "--timeout"),
        (["run", "-i", "0"], "--iterations"),
        (["exit-latency", "-n", "1"], "--exits"),
        (["exit-latency", "-v", "2000"], "--vcpus"),
        (["memslot", "--seconds", "0"], "--seconds"),
        (["memslot", "-r", "100000"], "--runs"),
        (["populate", "-v", "513"], "-v"),
        (["root-reload", "--dirtiers", "-1"], "--dirtiers"),
        (["root-reload", "--duration", "0"], "--duration"),
        (["teardown", "--cpu", "-1"], "--cpu"),
        (["run", "-m", "12x"], "not a size"),
        (["frobnicate"], "frobnicate"),
        (["run", "-v", "0"], "--vcpus"),
        (["run", "--cpl", "1"], "cpl"),
        (["dirty-log", "-b", "1m", "--initially-set", "maybe"], "initially-set"),
        (["jitter", "--op", "nosuch"], "op"),
        (["jitter", "--rate", "0"], "--rate"),
        (["jitter", "-v", "0"], "-v"),
        (["memslot", "--test", "nosuch"], "test"),
        (["populate", "--mode", "nosuch"], "mode"),
        (["teardown", "--order", "sideways"], "order"),
        (["compare", "exit-latency", "--noise", "nan", "--a", "", "--b", ""], "--noise takes a percentage from 0 to 100"),
        (["compare", "exit-latency", "--noise", "-1", "--a", "", "--b", ""], "--noise"),
        (["compare", "exit-latency", "--noise", "1e30", "--a", "", "--b", ""], "--noise"),
        (["compare", "exit-latency", "--rounds", "0", "--a", "", "--b", ""], "--rounds takes a whole number from 1 to 1000"),
        (["compare", "exit-latency", "--rounds", "9223372036854775808", "--a", "", "--b", ""], "--rounds"),
    ])
    func refusedWithTheBound(arguments: [String], mentions: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(mentions), "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    /// Help reaches stdout with status 0 however it is asked for (it once
    /// came out as an error line with status 1 from `--help` and `help X`).
    @Test(arguments: [
        (["--help"], "SUBCOMMANDS"),
        (["-h"], "SUBCOMMANDS"),
        (["dirty-log", "--help"], "dirty_log_perf_test"),
        (["help", "jitter"], "USAGE: kvmlab jitter"),
        (["compare", "-h"], "--fail-if"),
        (["--version"], "kvmlab 0."),
    ])
    func helpOnStdout(arguments: [String], mentions: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status == 0, "\(arguments): \(result.stderr)")
        #expect(result.stdout.contains(mentions), "\(result.stdout)")
        #expect(result.stderr.isEmpty, "\(result.stderr)")
    }
}
