import ArgumentParser

/// A `dbos-run` command whose failures end the process the contract's way: one
/// `dbos-run: error: <message>` line on stderr and the failure's exit code, never a stack trace.
///
/// Commands implement `execute()`; `run()` classifies whatever it throws with
/// `CommandFailure.init(_:)` and exits through `CommandFailure.exit()`.
public protocol FailureReportingCommand: AsyncParsableCommand {
    /// Does the command's work; any error thrown becomes a `CommandFailure`.
    func execute() async throws
}

extension FailureReportingCommand {
    /// Runs `execute()` and turns its errors into the contract's one line and exit code;
    /// ArgumentParser's own exits (help, `ExitCode`) pass through.
    public mutating func run() async throws {
        do {
            try await execute()
        } catch let error as ExitCode {
            throw error
        } catch let error as CleanExit {
            throw error
        } catch {
            CommandFailure(error).exit()
        }
    }
}
