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
        // <linux/kvm.h>, ioctl request numbers and non-variadic shims.
        .target(name: "CKVM"),
        // The guests: x86-64 assembly assembled by SwiftPM into the binary.
        .target(name: "Guests", path: "guest"),
        .target(name: "KVM", dependencies: ["CKVM"]),
        .target(name: "VMM", dependencies: ["KVM", "CKVM", "Guests"]),
        .target(name: "Scenarios", dependencies: ["VMM", "KVM"]),
        .target(name: "Report", dependencies: ["Scenarios", "VMM"]),
        .executableTarget(
            name: "kvmlab",
            dependencies: [
                "Scenarios", "Report", "VMM", "KVM",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "UnitTests", dependencies: ["KVM", "VMM", "Scenarios", "Report"]),
        .testTarget(name: "IntegrationTests", dependencies: ["KVM", "VMM", "Scenarios", "Report"]),
    ]
)
