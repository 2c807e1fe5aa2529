/// What a guest reported on the kvmlab event port.
public enum GuestEvent: Sendable, Equatable {
    case iteration
    case done
    case fail(status: UInt64)
    case other(code: UInt8)
}

/// What the host does after handling a guest event.
public enum Resume: Sendable {
    case resume
    case finish
}

/// Why a run was stopped from the host side.
public enum StopReason: String, CaseIterable, Sendable, Codable {
    case host
    case timeout
    case interrupted
    case error

    /// The reason as the runner's atomic holds it: 0 is "no stop yet".
    var code: Int { StopReason.allCases.firstIndex(of: self)! + 1 }
    init?(code: Int) {
        guard code > 0, code <= StopReason.allCases.count else { return nil }
        self = StopReason.allCases[code - 1]
    }
}

/// A guest exception as the IDT stub reported it, with the registers.
public struct ExceptionReport: Sendable, Equatable, CustomStringConvertible {
    public let vcpu: Int
    public let vector: Int
    public let errorCode: UInt64
    public let rip: UInt64
    public let cs: UInt64
    public let rflags: UInt64
    public let rsp: UInt64
    public let cr2: UInt64
    /// General registers at the fault (RAX from the stub's frame).
    public let registers: [(String, UInt64)]

    public static func == (a: ExceptionReport, b: ExceptionReport) -> Bool {
        a.vcpu == b.vcpu && a.vector == b.vector && a.errorCode == b.errorCode && a.rip == b.rip && a.cr2 == b.cr2
    }

    static let mnemonics = ["DE", "DB", "NMI", "BP", "OF", "BR", "UD", "NM", "DF", "CSO", "TS", "NP", "SS", "GP", "PF", "",
                            "MF", "AC", "MC", "XM", "VE", "CP"]

    public var mnemonic: String {
        vector < ExceptionReport.mnemonics.count && !ExceptionReport.mnemonics[vector].isEmpty
            ? "#" + ExceptionReport.mnemonics[vector] : "vector \(vector)"
    }

    public var summary: String {
        var text = "vCPU \(vcpu): guest exception \(mnemonic) (vector \(vector)) error code 0x\(hex(errorCode)) at RIP 0x\(hex(rip)) CPL\(cs & 3)"
        if vector == 14 { text += ", CR2 0x\(hex(cr2))" }
        return text
    }

    public var registerDump: String {
        var lines: [String] = []
        var line = ""
        for (index, (name, value)) in registers.enumerated() {
            line += name.padding(3) + " " + hex(value).leftPadded(16) + "  "
            if index % 4 == 3 { lines.append(line); line = "" }
        }
        if !line.isEmpty { lines.append(line) }
        lines.append("RIP " + hex(rip).leftPadded(16) + "  RFLAGS " + hex(rflags).leftPadded(8) + "  CS " + hex(cs) + "  CR2 " + hex(cr2))
        return lines.joined(separator: "\n")
    }

    public var description: String { summary + "\n" + registerDump }
}

func hex(_ value: UInt64) -> String { String(value, radix: 16) }

extension String {
    public func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadded(_ width: Int, with fill: Character = "0") -> String {
        count >= width ? self : String(repeating: fill, count: width - count) + self
    }
}

/// How one vCPU's run ended.
public enum VCPUOutcome: Sendable, Equatable {
    case finished
    case failed(status: UInt64)
    case exception(ExceptionReport)
    /// The guest left in a way no kvmlab guest should (triple fault, MMIO to
    /// unbacked memory, an unknown port, an internal KVM error).
    case crashed(String)
    case stopped(StopReason)
    case error(String)

    public var isSuccess: Bool { self == .finished }

    /// What this outcome says went wrong, in one line; nil for success or a
    /// stop the host asked for.
    public var problem: String? {
        switch self {
        case .finished, .stopped(.host): return nil
        case .failed(let status): return "guest reported failure, status \(status)"
        case .exception(let report): return report.description
        case .crashed(let text), .error(let text): return text
        case .stopped(let reason): return "stopped: \(reason.rawValue)"
        }
    }

    var kind: OutcomeKind {
        switch self {
        case .finished, .stopped(.host), .stopped(.error): return .finished
        case .failed: return .failed
        case .exception, .crashed: return .faulted
        case .stopped(.timeout): return .timedOut
        case .stopped(.interrupted): return .interrupted
        case .error: return .error
        }
    }
}

/// How a set of vCPUs ended, from the least to the most severe.
public enum OutcomeKind: String, Sendable, Codable, Comparable {
    case finished, interrupted, timedOut = "timed_out", failed, faulted, error

    private var rank: Int { OutcomeKind.order.firstIndex(of: self)! }
    private static let order: [OutcomeKind] = [.finished, .interrupted, .timedOut, .failed, .faulted, .error]
    public static func < (a: OutcomeKind, b: OutcomeKind) -> Bool { a.rank < b.rank }
}

extension Collection where Element == VCPUOutcome {
    /// The most severe way any vCPU ended.
    public var worst: OutcomeKind { map(\.kind).max() ?? .finished }

    /// The first vCPU's problem, if any vCPU had one.
    public var firstProblem: String? { lazy.compactMap(\.problem).first }

    /// What a measuring run reports about its vCPUs: nothing when they all
    /// finished or were interrupted, else the first problem.
    public var runProblem: String? {
        switch worst {
        case .finished, .interrupted: return nil
        default: return firstProblem ?? "a vCPU did not finish"
        }
    }
}
