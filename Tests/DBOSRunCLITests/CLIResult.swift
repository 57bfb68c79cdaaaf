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
    var childEnvironment = environment
    // An empty value removes the variable: the tests choose the database explicitly.
    if childEnvironment["DBOS_SYSTEM_DATABASE_URL"] == nil { childEnvironment["DBOS_SYSTEM_DATABASE_URL"] = "" }
    let process = try ChildProcess(
        executable: executable.hasPrefix("/") ? executable : builtExecutable(named: executable), arguments: arguments,
        outputPath: outputPath, errorOutputPath: errorPath, environment: childEnvironment,
        workingDirectory: workingDirectory.path)
    guard let status = await process.waitForExit(timeout: timeout) else {
        process.kill()
        _ = await process.waitForExit(timeout: .seconds(5))
        throw CLITimeout(arguments: arguments)
    }
    return CLIResult(
        exitCode: status,
        standardOutput: (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "",
        standardError: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "")
}

/// The binary did not end in time.
struct CLITimeout: Error, CustomStringConvertible {
    var arguments: [String]
    var description: String { "dbos-run \(arguments.joined(separator: " ")) did not end in time" }
}
