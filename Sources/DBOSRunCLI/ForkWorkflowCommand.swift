import ArgumentParser
import DBOS
import DBOSSpec
import Foundation

/// `dbos-run workflows fork ID --from-step N [--id NEW] [--detach]`: a new run that reuses the
/// original's checkpoints before slot N and executes from N.
public struct ForkWorkflowCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fork",
        abstract: "Start a new run that reuses a run's checkpoints before a step and re-executes from it.",
        discussion: "With --detach the new run is left ENQUEUED for a worker and its ID is printed.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run to fork.
    @Argument(help: ArgumentHelp("The ID of the workflow to fork.", valueName: "id"))
    public var workflowID: String

    /// The first slot the fork executes again (parsed unconditionally, so a negative number gets its own error).
    @Option(parsing: .unconditional, help: ArgumentHelp("The step slot to re-execute from; earlier steps' checkpoints are reused.", valueName: "n"))
    public var fromStep: Int

    /// The new run's ID (parsed unconditionally: an ID may start with `-`).
    @Option(name: .customLong("id"), parsing: .unconditional, help: ArgumentHelp("The new run's workflow ID (default: a new UUID).", valueName: "new-id"))
    public var newWorkflowID: String?

    /// Leave the fork for a worker instead of running it here.
    @Flag(help: "Leave the new run ENQUEUED for a worker instead of running it in this process.")
    public var detach = false

    /// Print the output as JSON even when it is a string.
    @Flag(help: "Print the output as JSON, strings included.")
    public var json = false

    public init() {}

    public func execute() async throws {
        if detach {
            try await forkDetached()
        } else {
            try await forkInThisProcess()
        }
    }

    /// Creates the fork for a worker and prints its ID.
    func forkDetached() async throws {
        let handle = try await database.withClient { client in
            guard try await client.workflowStatus(id: workflowID) != nil else {
                throw WorkflowError.nonexistentWorkflow(workflowID)
            }
            return try await client.forkWorkflow(id: workflowID, fromStep: fromStep, newWorkflowID: newWorkflowID)
        }
        print(handle.workflowID)
    }

    /// Runs the fork here with the spec text stored with the original, with progress and exit codes like a run.
    func forkInThisProcess() async throws {
        let forkedID = newWorkflowID ?? UUID().uuidString.lowercased()
        let stored = try await StoredRun.open(database, workflowID: workflowID, executingID: forkedID)
        let run = AttachedRun(
            runtime: stored.runtime, workflowID: forkedID,
            continueCommand: "dbos-run workflows resume \(ShellWord.argument(forkedID))", printer: ValuePrinter(printsJSON: json))
        run.stopOnTerminationSignals()
        try await stored.runtime.launch()
        _ = try await stored.interpreter.fork(workflowID: workflowID, fromSlot: fromStep, newWorkflowID: forkedID)
        printError("dbos-run: run \(forkedID) forked from \(workflowID) at step slot \(fromStep)")
        try await run.waitForEnd()
    }
}
