import Foundation

/// A process started by a test, with its output going to files (never to pipes a test could
/// forget to drain), that the test can SIGKILL.
public final class ChildProcess: @unchecked Sendable {
    // @unchecked: `process` is only started in `init` and read afterwards; Foundation's Process
    // is thread-safe for those reads.
    private let process = Process()
    /// Where the process's standard output goes.
    public let outputPath: String

    /// Where the process's standard error goes (the same file as `outputPath` unless given apart).
    public let errorOutputPath: String

    /// Starts `executable` with `arguments`; stdout goes to `outputPath`, stderr to
    /// `errorOutputPath` (by default the same file).
    public init(executable: String, arguments: [String], outputPath: String, errorOutputPath: String? = nil) throws {
        self.outputPath = outputPath
        self.errorOutputPath = errorOutputPath ?? outputPath
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = output
        if let errorOutputPath {
            _ = FileManager.default.createFile(atPath: errorOutputPath, contents: nil)
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errorOutputPath))
        } else {
            process.standardError = output
        }
        try process.run()
    }

    /// The process ID.
    public var processIdentifier: Int32 { process.processIdentifier }

    /// Sends SIGKILL: the process dies at once, with no chance to clean up.
    public func kill() {
        _ = Foundation.kill(process.processIdentifier, SIGKILL)
    }

    /// Waits for the process to end (up to `timeout`) and returns its exit status, or nil on timeout.
    public func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    /// Everything the process printed so far.
    public var output: String {
        (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
    }

    /// Everything the process printed to standard error so far (all of its output when stderr
    /// was not given a file of its own).
    public var errorOutput: String {
        (try? String(contentsOfFile: errorOutputPath, encoding: .utf8)) ?? ""
    }
}

/// The path of an executable built next to the test bundle (`.build/debug/NAME`).
public func builtExecutable(named name: String) -> String {
    let testBinary = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: testBinary).deletingLastPathComponent()
    // On some layouts the test binary sits inside an .xctest bundle folder.
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path),
        directory.path != "/"
    {
        directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent(name).path
}

/// Waits until `condition` holds, checking every 20 ms, for at most `timeout`; returns whether it held.
public func eventually(timeout: Duration = .seconds(30), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}
