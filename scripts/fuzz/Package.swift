// swift-tools-version:6.0
// Fuzz targets for what Lymph reads from outside: JSON, event lines, webhook bodies on their way
// through the spool, plugin output, signature headers, pipeline YAML (alias-heavy too) and regex
// patterns. Built by `scripts/fuzz/run` with libFuzzer and AddressSanitizer; its own package, so
// the project's own build never compiles it. `scripts/test` builds it plainly (no sanitizer, no
// libFuzzer) and replays seeds through every target (`scripts/fuzz/run --check`), so it cannot
// rot unnoticed.
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
        // NIOHTTP1's HTTPHeaders: what the webhook handler reads its headers from (RequestHeaders).
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "lymph-fuzz",
            dependencies: [
                .product(name: "Lymph", package: lymph),
                .product(name: "LymphServe", package: lymph),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ])
    ],
    swiftLanguageModes: [.v6]
)
