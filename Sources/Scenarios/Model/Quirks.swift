import KVM
import VMM

/// The one place a quirk the user asked to disable is checked against the host.
enum Quirks {
    static func requireDisable(_ quirk: X86Quirk, device: KVMDevice) throws {
        guard device.canDisable(quirk) else {
            throw HostLacks("--no-zap-all: this kernel cannot disable KVM_X86_QUIRK_\(quirk.kernelName) (see kvmlab info)")
        }
    }
}
