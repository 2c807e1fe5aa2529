import Foundation
import Testing

/// The layers of DESIGN.md, checked on the sources: each target imports
/// only the targets beneath it, and only KVM and VMM reach the C shims
/// (CKVM is the KVM interface, CHost the host helpers). A scenario that
/// imports CKVM to encode a kernel struct, or a KVM file that reaches up
/// into VMM, fails here.
@Suite(.timeLimit(.minutes(1))) struct LayeringTests {
    static let allowed: [String: Set<String>] = [
        "KVM": ["CKVM", "CHost", "Glibc"],
        "VMM": ["CKVM", "CHost", "KVM", "Guests", "Glibc", "Dispatch", "Synchronization"],
        "Scenarios": ["VMM", "KVM", "Guests", "Glibc", "Synchronization"],
        "Report": ["Scenarios", "VMM", "Guests", "Glibc", "FoundationEssentials"],
        "kvmlab": ["Report", "Scenarios", "VMM", "KVM", "BuildInfo", "ArgumentParser", "Glibc"],
    ]

    static func imports(of layer: String) throws -> [(file: String, module: String)] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources").appendingPathComponent(layer)
        let files = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        return try files.flatMap { file in
            try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8).split(separator: "\n")
                .filter { $0.hasPrefix("import ") }.map { (file, String($0.dropFirst("import ".count))) }
        }
    }

    @Test(arguments: allowed.keys.sorted())
    func aLayerImportsOnlyWhatIsBeneathIt(_ layer: String) throws {
        let imports = try Self.imports(of: layer)
        #expect(!imports.isEmpty, "no sources found for \(layer)")
        let wrong = imports.filter { !Self.allowed[layer]!.contains($0.module) }
        #expect(wrong.isEmpty, "\(layer): \(wrong.map { "\($0.file) imports \($0.module)" })")
    }
}
