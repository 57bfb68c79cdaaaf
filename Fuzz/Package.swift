// swift-tools-version:6.1
import Foundation
import PackageDescription

// libFuzzer targets for the parsers that read what users write. A package of its own, so nothing here is built
// by `swift build` or `swift test` of the project; see Docs/Guarantees.md ("Fuzzing") for how to run them.

/// The project's package identity is the name of its checkout directory, whatever the clone was called.
let project = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "dbos-swift-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "..")],
    targets: [.target(name: "FuzzDriver")] + ["fuzz-yaml", "fuzz-spec", "fuzz-expression"].map { name in
        .executableTarget(name: name, dependencies: ["FuzzDriver", .product(name: "DBOSSpec", package: project)])
    }
)
