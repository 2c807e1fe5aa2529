// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "kvmlab",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kvmlab", targets: ["kvmlab"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // <linux/kvm.h>, ioctl request numbers and non-variadic shims: the KVM interface only.
        .target(name: "CKVM", cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]),
        // Host helpers below Swift's reach: raw syscalls, signals, pinning, the TSC, ordered shared-memory access.
        .target(name: "CHost", cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]),
        // The guests: x86-64 assembly assembled by SwiftPM into the binary.
        .target(name: "Guests", path: "guest", cSettings: [.unsafeFlags(["-Wall", "-Werror"])]),
        // The git commit and Swift version, passed in by the Makefile.
        .target(name: "BuildInfo"),
        .target(name: "KVM", dependencies: ["CKVM", "CHost"]),
        .target(name: "VMM", dependencies: ["KVM", "CKVM", "CHost", "Guests"]),
        .target(name: "Scenarios", dependencies: ["VMM", "KVM", "Guests"]),
        .target(name: "Report", dependencies: ["Scenarios", "VMM", "Guests"]),
        .executableTarget(
            name: "kvmlab",
            dependencies: [
                "Scenarios", "Report", "VMM", "KVM", "BuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Runs programs (the kvmlab binary, validators) for both test suites.
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "UnitTests", dependencies: ["KVM", "VMM", "CHost", "Scenarios", "Report", "Guests", "TestSupport"]),
        .testTarget(name: "IntegrationTests", dependencies: ["KVM", "VMM", "Scenarios", "Report", "Guests", "TestSupport"]),
    ]
)
