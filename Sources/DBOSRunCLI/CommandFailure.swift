import ArgumentParser
import DBOS
import DBOSSpec
import Foundation

/// A command's failure: the exit code the CLI contract gives it and one line a person can act on.
///
/// Commands throw it (or any error, which `init(_:)` classifies); `exit()` is the one place that
/// prints `dbos-run: error: <message>` to stderr and ends the process.
public struct CommandFailure: Error, CustomStringConvertible, Sendable, Equatable {
    /// The process exit status.
    public var exitCode: Int32
    /// One line saying what went wrong and where.
    public var message: String
    /// Problems found in a spec file (an input that fails the `input:` schema), printed as
    /// `FILE:LINE:COLUMN: error: message` lines instead of `message`.
    public var problems: [SpecError] = []

    /// Exit 1: a workflow error, or a system database that cannot be reached or opened.
    public static let failureExitCode: Int32 = 1
    /// Exit 2: an invalid spec, input, option or URL.
    public static let invalidInputExitCode: Int32 = 2
    /// Exit 3: the run was cancelled or timed out.
    public static let cancelledExitCode: Int32 = 3
    /// Exit 4: no workflow has the given ID.
    public static let unknownWorkflowExitCode: Int32 = 4
    /// Exit 5: a wait timed out.
    public static let timeoutExitCode: Int32 = 5

    /// A failure with an explicit exit code; line breaks in `message` are folded into one line.
    public init(exitCode: Int32, message: String) {
        self.exitCode = exitCode
        self.message = Self.singleLine(message)
    }

    /// Exit 2 for problems located in a spec file, printed one `FILE:LINE:COLUMN: error: message` line each.
    public init(problems: [SpecError], summary: String) {
        self.init(exitCode: Self.invalidInputExitCode, message: summary)
        self.problems = problems.sorted { $0.location < $1.location }
    }

    /// Classifies any error the engine or a command throws.
    public init(_ error: any Error) {
        switch error {
        case let failure as CommandFailure:
            self = failure
        case let error as WorkflowError:
            self.init(exitCode: Self.exitCode(for: error), message: error.description)
        case let error as SystemDatabaseError:
            if case .invalidURL = error {
                self.init(exitCode: Self.invalidInputExitCode, message: error.description)
            } else {
                self.init(exitCode: Self.failureExitCode, message: error.description)
            }
        case let error as SpecRunError:
            if case .invalidInput(_, let problems) = error {
                self.init(problems: problems, summary: error.description)
            } else {
                self.init(exitCode: Self.failureExitCode, message: error.description)
            }
        case let error as PortableError:
            self.init(exitCode: Self.failureExitCode, message: error.message)
        default:
            self.init(exitCode: Self.failureExitCode, message: String(describing: error))
        }
    }

    public var description: String { message }

    /// This failure with `secret` replaced by `***` wherever it stands as a value of its own (a password
    /// that must never be printed, whatever layer put it into the message; `SystemDatabaseURL.masking`).
    public func redacting(_ secret: String?) -> CommandFailure {
        guard let secret, !secret.isEmpty else { return self }
        var redacted = CommandFailure(exitCode: exitCode, message: SystemDatabaseURL.masking(secret, in: message))
        redacted.problems = problems.map { SpecError(SystemDatabaseURL.masking(secret, in: $0.message), at: $0.location) }
        return redacted
    }

    /// Prints `dbos-run: error: <message>` (or each of `problems` as `FILE:LINE:COLUMN: error: message`) to
    /// stderr and exits with the failure's code.
    public func exit() -> Never {
        TerminalStatusLine.shared.disable()
        let lines = problems.isEmpty ? ["dbos-run: error: \(message)"] : problems.map(\.description)
        FileHandle.standardError.write(Data(lines.map { $0 + "\n" }.joined().utf8))
        Foundation.exit(exitCode)
    }

    private static func exitCode(for error: WorkflowError) -> Int32 {
        switch error {
        case .nonexistentWorkflow: unknownWorkflowExitCode
        case .cannotResume, .invalidOptions, .conflictingWorkflowID, .serializationFailed, .invalidQueue,
            .queueDeduplicated:
            invalidInputExitCode
        case .cancelled, .maxRecoveryAttemptsExceeded: cancelledExitCode
        case .timedOut: timeoutExitCode
        default: failureExitCode
        }
    }

    private static func singleLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }.joined(separator: " ")
    }
}
