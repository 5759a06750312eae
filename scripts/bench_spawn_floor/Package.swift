// swift-tools-version:6.0
// The process-start floor for scripts/bench case 6: how fast a Swift program can start the same
// script once per event, with swift-subprocess alone and with posix_spawn called directly.
// Its own package, so the project's build and tests never compile it.
import PackageDescription

let package = Package(
    name: "bench-spawn-floor",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/swiftlang/swift-subprocess", exact: "1.0.2")
    ],
    targets: [
        .executableTarget(
            name: "bench-spawn-floor",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess")
            ])
    ],
    swiftLanguageModes: [.v6]
)
