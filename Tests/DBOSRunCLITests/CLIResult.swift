import DBOSTestSupport
import Foundation

/// What one run of the `dbos-run` binary printed and how it ended.
struct CLIResult: CustomStringConvertible {
    var exitCode: Int32
    var standardOutput: String
    var standardError: String

    /// The standard output parsed as JSON.
    func outputJSON() throws -> Any {
        try JSONSerialization.jsonObject(with: Data(standardOutput.utf8), options: .fragmentsAllowed)
    }

    var description: String { "exit \(exitCode)\nstdout: \(standardOutput)\nstderr: \(standardError)" }
}

/// Runs the built `dbos-run` binary (or another built `executable`) in `workingDirectory`, with stdout and stderr going to files
/// (no pipe to forget to drain), and waits for it to end.
///
/// `DBOS_SYSTEM_DATABASE_URL` is removed from the child's environment unless `environment` sets it,
/// so a developer's own setting never leaks into a test.
func runCLI(
    _ arguments: [String], in workingDirectory: TemporaryDirectory, environment: [String: String] = [:],
    timeout: Duration = .seconds(60), executable: String = "dbos-run"
) async throws -> CLIResult {
    let name = UUID().uuidString.prefix(8)
    let outputPath = workingDirectory.file("cli-\(name).out")
    let errorPath = workingDirectory.file("cli-\(name).err")
    _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
    defer {
        try? FileManager.default.removeItem(atPath: outputPath)
        try? FileManager.default.removeItem(atPath: errorPath)
    }
    let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
    let error = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
    defer {
        try? output.close()
        try? error.close()
    }

    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable.hasPrefix("/") ? executable : builtExecutable(named: executable))
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory.path)
    var childEnvironment = ProcessInfo.processInfo.environment
    childEnvironment["DBOS_SYSTEM_DATABASE_URL"] = nil
    childEnvironment.merge(environment) { _, new in new }
    process.environment = childEnvironment
    process.standardOutput = output
    process.standardError = error
    try process.run()

    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline {
            process.terminate()
            throw CLITimeout(arguments: arguments)
        }
        try await Task.sleep(for: .milliseconds(10))
    }
    return CLIResult(
        exitCode: process.terminationStatus,
        standardOutput: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
        standardError: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
}

/// The binary did not end in time.
struct CLITimeout: Error, CustomStringConvertible {
    var arguments: [String]
    var description: String { "dbos-run \(arguments.joined(separator: " ")) did not end in time" }
}
