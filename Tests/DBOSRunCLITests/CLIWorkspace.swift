import DBOSTestSupport
import Foundation

/// A temporary working directory with its own SQLite system database, where a test runs the built
/// binaries as a user would (the database reaches them through `DBOS_SYSTEM_DATABASE_URL`).
struct CLIWorkspace: Sendable {
    let directory: TemporaryDirectory

    /// The workspace's system database.
    var databaseURL: String { "sqlite:" + directory.file("system.sqlite") }

    /// Runs `body` in a fresh workspace and removes it afterwards.
    static func with(_ body: (CLIWorkspace) async throws -> Void) async throws {
        let workspace = CLIWorkspace(directory: try TemporaryDirectory(prefix: "dbos-cli"))
        defer { workspace.directory.remove() }
        try await body(workspace)
    }

    /// The repository's root directory.
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// The path of a reference spec of `Specs/`.
    static func referenceSpec(_ name: String) -> String { repositoryRoot + "/Specs/\(name)" }

    /// A path inside the workspace.
    func file(_ name: String) -> String { directory.file(name) }

    /// Writes a file into the workspace and returns its path.
    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let path = directory.file(name)
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    /// The non-empty lines of a workspace file (a side-effect log), none when it does not exist.
    func lines(of name: String) -> [String] {
        ((try? String(contentsOfFile: file(name), encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Runs a built binary to its end.
    func run(
        _ arguments: String..., executable: String = "dbos-run", environment: [String: String] = [:],
        timeout: Duration = .seconds(90)
    ) async throws -> CLIResult {
        try await runCLI(
            arguments, in: directory, environment: environment.merging(["DBOS_SYSTEM_DATABASE_URL": databaseURL]) { old, _ in old },
            timeout: timeout, executable: executable)
    }

    /// A run's fields as `workflows get ID --json` prints them; nil while no run has that ID.
    func workflow(_ id: String) async throws -> [String: Any]? {
        let result = try await run("workflows", "get", id, "--json")
        guard result.exitCode == 0 else { return nil }
        return try result.outputJSON() as? [String: Any]
    }

    /// Starts a built binary in the background.
    func start(_ arguments: String..., executable: String = "dbos-run") throws -> BackgroundCLI {
        try BackgroundCLI(arguments: arguments, in: self, executable: executable)
    }
}

/// A built binary running in the background, its stdout and stderr going to files.
final class BackgroundCLI: Sendable {
    private let process: ChildProcess

    init(arguments: [String], in workspace: CLIWorkspace, executable: String) throws {
        let name = UUID().uuidString.prefix(8)
        process = try ChildProcess(
            executable: builtExecutable(named: executable), arguments: arguments,
            outputPath: workspace.file("bg-\(name).out"), errorOutputPath: workspace.file("bg-\(name).err"),
            environment: ["DBOS_SYSTEM_DATABASE_URL": workspace.databaseURL], workingDirectory: workspace.directory.path)
    }

    /// Sends a signal (SIGKILL, SIGTERM, SIGINT).
    func signal(_ number: Int32) {
        process.kill(signal: number)
    }

    /// Waits for the end; the exit status (128 + signal for a killed process), or nil on timeout.
    func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        guard let status = await process.waitForExit(timeout: timeout) else {
            process.kill()
            return nil
        }
        return status
    }

    /// Waits until stderr contains `text`; returns whether it did in time.
    func waitForError(containing text: String, timeout: Duration = .seconds(60)) async -> Bool {
        await eventually(timeout: timeout) { errorOutput.contains(text) }
    }

    /// What it printed to stdout so far.
    var output: String { process.output }

    /// What it printed to stderr so far.
    var errorOutput: String { process.errorOutput }
}
