// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Lymph",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Lymph", targets: ["Lymph"]),
        .executable(name: "lymph", targets: ["lymph"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams.git", exact: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
    ],
    targets: [
        .target(
            name: "Lymph",
            dependencies: [
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .executableTarget(
            name: "lymph",
            dependencies: [
                "Lymph",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "LymphTests", dependencies: ["Lymph"]),
        .testTarget(name: "EndToEndTests", dependencies: ["Lymph"]),
    ],
    swiftLanguageModes: [.v6]
)
