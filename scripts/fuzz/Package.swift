// swift-tools-version:6.0
// Fuzz targets for what Lymph reads from outside: JSON, event lines, webhook bodies on their way
// through the spool, plugin output, signature headers and pipeline YAML. Built by `scripts/fuzz`
// with libFuzzer and AddressSanitizer; its own package, so the project's build and tests never
// compile it.
import Foundation
import PackageDescription

// A path dependency is known by its folder's name, which is whatever the clone is called.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
let lymph = root.lastPathComponent.lowercased()

let package = Package(
    name: "lymph-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: root.path),
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", exact: "1.8.0"),
    ],
    targets: [
        .executableTarget(name: "lymph-fuzz", dependencies: [
            .product(name: "Lymph", package: lymph),
            .product(name: "LymphServe", package: lymph),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
