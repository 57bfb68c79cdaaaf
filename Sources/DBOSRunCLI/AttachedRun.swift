import DBOS
import DBOSSpec
import Foundation
import Synchronization

/// One run executed by this process until it ends, the way `dbos-run FILE`, `workflows resume` and
/// `workflows fork` do it: progress on stderr, the output on stdout, the exit code from the outcome.
struct AttachedRun: Sendable {
    /// The launched (or about to be launched) runtime executing the run.
    let runtime: DBOSRuntime
    /// The run.
    let workflowID: String
    /// The command that continues the run after an interruption, for the message on SIGINT/SIGTERM.
    let continueCommand: String
    /// How the output is printed.
    let printer: ValuePrinter

    /// How long runs this process started without waiting (`wait: false` children) get to finish once the
    /// run has ended; what is still running then stays PENDING for recovery.
    static let finishingGracePeriod: Duration = .seconds(10)

    private let stopping = StopFlag()

    init(runtime: DBOSRuntime, workflowID: String, continueCommand: String, printer: ValuePrinter) {
        self.runtime = runtime
        self.workflowID = workflowID
        self.continueCommand = continueCommand
        self.printer = printer
    }

    /// Makes SIGINT and SIGTERM stop the process promptly: the running steps are cancelled (a shell step's
    /// process group is killed), nothing more is checkpointed, the run stays PENDING. A second signal exits at once.
    func stopOnTerminationSignals() {
        let runtime = runtime
        let stopping = stopping
        let message = "run \(workflowID) stopped and left PENDING; continue it with: \(continueCommand)"
        TerminationSignals.handle { number in
            guard stopping.set() else { Foundation.exit(128 + number) }
            printError("dbos-run: \(TerminationSignals.name(of: number)) received; stopping")
            Task {
                await runtime.shutdown(gracePeriod: .zero)
                TerminalStatusLine.shared.disable()
                printError("dbos-run: \(message)")
                Foundation.exit(128 + number)
            }
        }
    }

    /// Waits for the run to end, prints its output (exit 0) or throws the failure the outcome calls for.
    func waitForEnd() async throws {
        _ = try? await runtime.retrieveWorkflow(id: workflowID).result()
        if stopping.isSet {
            // The signal handler is shutting the runtime down and will exit the process.
            while true { try? await Task.sleep(for: .seconds(60)) }
        }
        let status: WorkflowStatus?
        do {
            status = try await runtime.workflowStatus(id: workflowID)
        } catch {
            await runtime.shutdown(gracePeriod: .zero)
            throw error
        }
        await runtime.shutdown(gracePeriod: Self.finishingGracePeriod)
        TerminalStatusLine.shared.disable()
        guard let status else { throw WorkflowError.nonexistentWorkflow(workflowID) }
        try Self.report(status, printer: printer)
    }

    /// Prints a finished run's output, or throws its failure: exit 1 for an error (the message names the
    /// step), 3 for a cancelled, timed-out or abandoned run.
    static func report(_ status: WorkflowStatus, printer: ValuePrinter) throws(CommandFailure) {
        switch status.state {
        case .success:
            printer.print(status.output ?? .null)
        case .error:
            throw CommandFailure(
                exitCode: CommandFailure.failureExitCode,
                message: status.error?.message ?? "workflow '\(status.workflowID)' failed")
        case .cancelled:
            // A timeout stores its reason ("workflow 'X' timed out after ..."); a cancellation may store none.
            let cancelled = "workflow '\(status.workflowID)' was cancelled"
            let reason = status.error?.message
            let message = reason.map { $0.contains("timed out") || $0.contains(cancelled) ? $0 : "\(cancelled): \($0)" }
            throw CommandFailure(exitCode: CommandFailure.cancelledExitCode, message: message ?? cancelled)
        case .maxRecoveryAttemptsExceeded:
            throw CommandFailure(
                exitCode: CommandFailure.cancelledExitCode,
                message: "workflow '\(status.workflowID)' exceeded its maximum recovery attempts and was abandoned")
        case .pending, .enqueued, .delayed:
            throw CommandFailure(
                exitCode: CommandFailure.failureExitCode,
                message: "workflow '\(status.workflowID)' is still \(status.state.rawValue)")
        }
    }
}

/// Whether a termination signal arrived; set once.
final class StopFlag: Sendable {
    private let value = Mutex(false)

    /// Sets the flag; returns false when it was already set.
    func set() -> Bool {
        value.withLock { value in
            defer { value = true }
            return !value
        }
    }

    /// Whether the flag is set.
    var isSet: Bool { value.withLock { $0 } }
}
