// swift-tools-version:6.1
import PackageDescription

/// Settings every Swift target of the package shares: Swift 6 language mode plus the
/// upcoming features that keep existentials and imports explicit.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "dbos-swift",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DBOS", targets: ["DBOS"]),
        .library(name: "DBOSSpec", targets: ["DBOSSpec"]),
        .library(name: "DBOSRunCLI", targets: ["DBOSRunCLI"]),
        .executable(name: "dbos-run", targets: ["dbos-run"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
    ],
    targets: [
        // System-library shims: a module map and a header, nothing else.
        .systemLibrary(
            name: "CSQLite", pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]),
        .systemLibrary(
            name: "CLibPQ", pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]),
        .systemLibrary(
            name: "CYAML", pkgConfig: "yaml-0.1",
            providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]),

        // The checkpoint engine and its system databases. Knows nothing of YAML.
        .target(
            name: "DBOS",
            dependencies: ["CSQLite", "CLibPQ"],
            swiftSettings: swiftSettings),
        // The spec language: YAML loading, validation, expressions, the step graph, the interpreter.
        .target(
            name: "DBOSSpec",
            dependencies: ["DBOS", "CYAML", .product(name: "Subprocess", package: "swift-subprocess")],
            swiftSettings: swiftSettings),
        // The `dbos-run` commands, reusable by programs that register their own handlers.
        .target(
            name: "DBOSRunCLI",
            dependencies: [
                "DBOS", "DBOSSpec",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "dbos-run",
            dependencies: ["DBOSRunCLI"],
            swiftSettings: swiftSettings),

        // The benchmark scenarios of BENCHMARKS.md (run it in release mode).
        .executableTarget(
            name: "dbos-bench",
            dependencies: ["DBOS", "DBOSSpec"],
            swiftSettings: swiftSettings),

        // Examples: programs that use the engine and register their own code.
        .executableTarget(
            name: "dbos-example-greeting",
            dependencies: ["DBOS"],
            path: "Examples/Greeting",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "dbos-example-payments",
            dependencies: ["DBOSRunCLI", "DBOSSpec"],
            path: "Examples/Payments",
            exclude: ["Specs"],
            swiftSettings: swiftSettings),

        // Test support: helpers shared by the test targets and a worker process the crash tests kill.
        .target(
            name: "DBOSTestSupport",
            dependencies: ["DBOS"],
            path: "Tests/Support",
            swiftSettings: swiftSettings),
        .executableTarget(
            name: "dbos-test-worker",
            dependencies: ["DBOS", "DBOSTestSupport"],
            path: "Tests/DBOSTestWorker",
            swiftSettings: swiftSettings),
        // The chaos tests' worker: the `dbos-run` CLI plus handlers that record each execution (Docs/Chaos.md).
        .executableTarget(
            name: "dbos-chaos-worker",
            dependencies: ["DBOS", "DBOSRunCLI", "DBOSSpec", "DBOSTestSupport"],
            path: "Tests/DBOSChaosWorker",
            exclude: ["Specs"],
            swiftSettings: swiftSettings),
        // The multi-process tests run the built `dbos-test-worker` and `dbos-run` binaries, hence the dependencies.
        .testTarget(
            name: "DBOSTests",
            dependencies: ["DBOS", "DBOSTestSupport", "dbos-test-worker", "dbos-run"],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "DBOSSpecTests",
            dependencies: ["DBOSSpec", "DBOSTestSupport"],
            exclude: ["Invalid"],
            swiftSettings: swiftSettings),
        // End-to-end tests of the commands: they run the built `dbos-run` and payments example binaries, hence the dependencies.
        .testTarget(
            name: "DBOSRunCLITests",
            dependencies: [
                "DBOSRunCLI", "DBOS", "DBOSTestSupport", "dbos-run", "dbos-example-payments",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings),
        // Workers SIGKILLed at random and PostgreSQL restarted under load; nothing may be lost or run twice.
        .testTarget(
            name: "DBOSChaosTests",
            dependencies: ["DBOS", "DBOSTestSupport", "dbos-chaos-worker"],
            swiftSettings: swiftSettings),
    ]
)
