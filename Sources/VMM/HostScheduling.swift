import CHost
import Glibc
import KVM

/// SCHED_FIFO for the calling thread, where permitted.
public enum Realtime {
    /// Returns what is in force, in words.
    public static func enable() -> String {
        var param = sched_param()
        param.sched_priority = 1
        return sched_setscheduler(0, SCHED_FIFO, &param) == 0 ? "SCHED_FIFO priority 1" : "not permitted: \(KVMError.name(of: errno))"
    }

    public static func disable() {
        var param = sched_param()
        param.sched_priority = 0
        sched_setscheduler(0, SCHED_OTHER, &param)
    }
}

/// The TSC rate as /proc/cpuinfo states it (a fallback when KVM_GET_TSC_KHZ is missing).
public enum HostTSC {
    public static func cpuinfoKHz() -> Int? {
        guard let text = HostFiles.read("/proc/cpuinfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("cpu MHz") {
            if let value = line.split(separator: ":").last.flatMap({ Double(String($0).trimmingCharacters(in: " \t")) }),
               value.isFinite, value > 0, value < 1e6 {
                return Int(value * 1000)
            }
        }
        return nil
    }

    public static func now() -> UInt64 { host_rdtsc() }
}

/// Polite busy-waiting for host threads that poll guest memory.
public enum Spin {
    /// PAUSE: tells the CPU this is a spin loop.
    public static func pause() { host_cpu_relax() }

    /// Leaves the CPU to another thread (a vCPU sharing it).
    public static func yield() { sched_yield() }
}
