import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A process started by a test, with its output going to files (never to pipes a test could
/// forget to drain), that the test can SIGKILL.
///
/// It uses posix_spawn and waitpid rather than Foundation.Process, whose termination tracking on
/// Linux can miss a child's exit when many processes start at once (a test then waits forever).
public final class ChildProcess: Sendable {
    /// The process ID.
    public let processIdentifier: pid_t
    /// Where the process's standard output goes.
    public let outputPath: String
    /// Where the process's standard error goes (the same file as `outputPath` unless given apart).
    public let errorOutputPath: String
    private let exitStatus = Mutex<Int32?>(nil)

    /// Starts `executable` with `arguments`; stdout goes to `outputPath`, stderr to
    /// `errorOutputPath` (by default the same file). The environment is this process's, with
    /// `environment`'s entries set (an empty value removes a variable).
    public init(
        executable: String, arguments: [String], outputPath: String, errorOutputPath: String? = nil,
        environment: [String: String] = [:], workingDirectory: String? = nil
    ) throws {
        self.outputPath = outputPath
        self.errorOutputPath = errorOutputPath ?? outputPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if let errorOutputPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorOutputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        var variables = ProcessInfo.processInfo.environment
        for (name, value) in environment { variables[name] = value.isEmpty ? nil : value }
        // posix_spawn has no portable working-directory action: a shell changes into it and execs.
        let command =
            workingDirectory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments }
            ?? [executable] + arguments
        let argv = command.map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, command[0], &actions, nil, argv, envp)
        guard result == 0 else {
            throw CocoaError(.fileReadUnknown, userInfo: [
                NSLocalizedDescriptionKey: "cannot start \(executable): \(String(cString: strerror(result)))"
            ])
        }
        processIdentifier = pid
    }

    /// Sends SIGKILL (or another signal): with SIGKILL the process dies at once, with no chance to clean up.
    public func kill(signal: Int32 = SIGKILL) {
        guard exitStatus.withLock({ $0 }) == nil else { return }
        _ = Glibc.kill(processIdentifier, signal)
    }

    /// Waits for the process to end (up to `timeout`) and returns its exit status (128 + the
    /// signal number when a signal ended it), or nil on timeout.
    public func waitForExit(timeout: Duration = .seconds(60)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = reap() { return status }
            if ContinuousClock.now > deadline { return nil }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Blocks the calling thread until the process ends and returns its exit status; for
    /// synchronous test helpers only (an async test should await `waitForExit`).
    public func waitUntilExit() -> Int32 {
        while true {
            if let status = reap() { return status }
            usleep(5_000)
        }
    }

    /// Whether the process is still running.
    public var isRunning: Bool { reap() == nil }

    private func reap() -> Int32? {
        exitStatus.withLock { stored in
            if let stored { return stored }
            var status: Int32 = 0
            let result = waitpid(processIdentifier, &status, WNOHANG)
            guard result == processIdentifier else { return nil }
            let signal = status & 0x7f
            stored = signal == 0 ? (status >> 8) & 0xff : 128 + signal
            return stored
        }
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
