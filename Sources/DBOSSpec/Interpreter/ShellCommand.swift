import DBOS
import Foundation
import Subprocess
import Synchronization
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// One `run:` command: `/bin/sh -c` in a session of its own, so a timeout or a cancellation kills the
/// whole process group (background jobs included), not only the shell.
struct ShellCommand: Sendable {
    /// The script, passed to the shell as is (templates never reach it; values go through `env`).
    var script: String
    /// Variables set on top of this process's environment.
    var environment: [String: String]
    /// The longest one run may take.
    var timeout: Duration?
    /// Where the command's process group is recorded while it runs, and for which step: a later
    /// attempt of the same step (after its worker was killed) stops it first. Nil: not recorded.
    var registration: (registry: StepProcessRegistry, workflowID: String, slot: Int)?

    /// Stdout and stderr are collected up to this size; more is an error rather than silent truncation.
    static let outputLimit = 64 << 20

    /// What a finished command printed.
    struct Result: Sendable {
        var standardOutput: String
        var standardError: String
    }

    /// Runs the command; a non-zero exit, a signal or a timeout throws `ShellCommandError`.
    func run() async throws -> Result {
        var options = PlatformOptions()
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .milliseconds(500))]
        var updates: [Environment.Key: String?] = [:]
        for (name, value) in environment { updates[Environment.Key(stringLiteral: name)] = value }
        let environment = Environment.inherit.updating(updates)
        let script = script
        let platformOptions = options
        let registration = registration
        if let registration {
            await registration.registry.stopLeftovers(workflowID: registration.workflowID, slot: registration.slot)
        }
        try Task.checkCancellation()
        // The file that records the running command, removed however the command ends.
        let recordedFile = RecordedFile()
        defer { if let path = recordedFile.path.withLock({ $0 }) { registration?.registry.commandEnded(path) } }

        enum Outcome: Sendable {
            case finished(Swift.Result<ExecutionRecord, any Error>)
            case timedOut
        }
        let outcome = await withTaskGroup(of: Outcome.self) { group in
            group.addTask {
                do {
                    let result = try await Subprocess.run(
                        .path("/bin/sh"), arguments: ["-c", script], environment: environment,
                        platformOptions: platformOptions, input: .none,
                        output: .string(limit: Self.outputLimit), error: .string(limit: Self.outputLimit)
                    ) { execution in
                        // In a session of its own, the shell leads a process group of its own ID.
                        if let registration {
                            let path = registration.registry.commandStarted(
                                workflowID: registration.workflowID, slot: registration.slot,
                                processGroup: execution.processIdentifier.value)
                            recordedFile.path.withLock { $0 = path }
                        }
                    }
                    return .finished(.success(ExecutionRecord(
                        status: result.terminationStatus, standardOutput: result.standardOutput,
                        standardError: result.standardError)))
                } catch {
                    return .finished(.failure(error))
                }
            }
            if let timeout {
                group.addTask {
                    do {
                        try await Task.sleep(for: timeout)
                        return .timedOut
                    } catch {
                        // Cancelled because the command finished first: never the first result looked at.
                        return .timedOut
                    }
                }
            }
            let first = await group.next() ?? .timedOut
            group.cancelAll()
            if case .timedOut = first {
                // Wait for the teardown, so the group is gone when the step reports its timeout.
                while let next = await group.next() {
                    if case .finished = next { break }
                }
            }
            return first
        }
        if Task.isCancelled { throw CancellationError() }
        switch outcome {
        case .timedOut:
            throw ShellCommandError.timedOut(timeout ?? .zero)
        case .finished(.failure(let error)):
            throw ShellCommandError.couldNotRun(String(describing: error))
        case .finished(.success(let record)):
            switch record.status {
            case .exited(0):
                return Result(standardOutput: record.standardOutput, standardError: record.standardError)
            case .exited(let code):
                throw ShellCommandError.exited(code: Int(code), standardErrorTail: Self.tail(of: record.standardError))
            case .signaled(let signal):
                throw ShellCommandError.signaled(Int(signal), standardErrorTail: Self.tail(of: record.standardError))
            }
        }
    }

    /// The file recording the running command (set by the task that starts it).
    final class RecordedFile: Sendable {
        let path = Mutex<String?>(nil)
    }

    /// What the child task hands back.
    struct ExecutionRecord: Sendable {
        var status: TerminationStatus
        var standardOutput: String
        var standardError: String
    }

    /// The last 20 lines of stderr, at most 2 KB, so errors stay readable and small.
    static func tail(of text: String) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        while let last = lines.last, last.trimmingCharacters(in: .whitespaces).isEmpty { lines.removeLast() }
        var tail = lines.suffix(20).joined(separator: "\n")
        if tail.utf8.count > 2048 {
            tail = "..." + String(decoding: Array(tail.utf8.suffix(2048)), as: UTF8.self)
        }
        return tail
    }

    /// Stdout as the step's output, as `output:` asks.
    static func output(from text: String, format: RunOutputFormat) throws -> JSONValue {
        switch format {
        case .text:
            var trimmed = Substring(text)
            while let last = trimmed.last, last == "\n" || last == "\r\n" || last == "\r" { trimmed = trimmed.dropLast() }
            return .string(String(trimmed))
        case .json:
            do {
                return try JSONValue(parsing: text)
            } catch {
                let preview = text.count > 200 ? String(text.prefix(200)) + "..." : text
                throw ShellCommandError.invalidJSONOutput(preview.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        case .lines:
            return .array(text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" })
                .map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\r")) }
                .filter { !$0.isEmpty }.map { .string($0) })
        }
    }
}

/// Why a `run:` command failed.
enum ShellCommandError: Error, Sendable, CustomStringConvertible {
    case exited(code: Int, standardErrorTail: String)
    case signaled(Int, standardErrorTail: String)
    case timedOut(Duration)
    case couldNotRun(String)
    case invalidJSONOutput(String)

    var description: String {
        switch self {
        case .exited(let code, let tail): "exit code \(code)" + (tail.isEmpty ? "" : ": \(tail)")
        case .signaled(let signal, let tail): "killed by signal \(signal)" + (tail.isEmpty ? "" : ": \(tail)")
        case .timedOut(let timeout): "timed out after \(SpecDuration.text(timeout)); its process group was killed"
        case .couldNotRun(let reason): "could not start /bin/sh: \(reason)"
        case .invalidJSONOutput(let preview): "output is not valid JSON (output: json): \(preview)"
        }
    }
}
