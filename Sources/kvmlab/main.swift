import VMM
import KVM
import Glibc
let n = Int(CommandLine.arguments.dropFirst().first ?? "4")!
do {
    let m = try Machine(MachineConfig(vcpus: n, testMemory: UInt64(n) << 22))
    try m.load(GuestImage.builtin("hello")!)
    let r = VCPURunner(machine: m) { _, _ in .finish }
    try r.start()
    print(r.wait(timeout: 10).filter { !$0.isSuccess })
    let m2 = try Machine(MachineConfig(vcpus: 1, testMemory: 1 << 22))
    try m2.load(GuestImage.builtin("fault")!)
    let r2 = VCPURunner(machine: m2) { _, _ in .finish }
    try r2.start()
    for o in r2.wait(timeout: 10) { if case .exception(let e) = o { print(e) } else { print(o) } }
    try m2.load(GuestImage.builtin("spin")!)
    let r3 = VCPURunner(machine: m2) { _, _ in .finish }
    try r3.start()
    print(r3.wait(timeout: 1))
    let m3 = try Machine(MachineConfig(vcpus: n, testMemory: UInt64(n) << 24))
    let d = try MemstressDriver(machine: m3, params: MemstressParams(writePercent: 50, random: true))
    let probe = try StatsProbe(machine: m3)
    let s0 = try probe.sample()
    try d.start()
    for _ in 0..<3 {
        guard let rep = d.runIteration() else { print(d.finish()); break }
        print(rep.map { "\($0.writes)/\($0.reads) stamped=\(d.pagesStamped(vcpu: $0.vcpu, iteration: d.iteration))" })
    }
    print(d.finish())
    let dl = try probe.sample().delta(since: s0)
    print(dl.vm.filter { $0.value != 0 }, dl.vcpus.filter { $0.value != 0 })
} catch { print("error: \(error)") }
