import ArgumentParser
import DBOS
import DBOSSpec

/// `dbos-run workflows resume ID [--detach]`: continues a cancelled or failed run from its last checkpoint.
public struct ResumeWorkflowCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "resume",
        abstract: "Continue a cancelled or failed workflow run from its last checkpoint.",
        discussion: "With --detach the run is left ENQUEUED for a worker and its ID is printed.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run to resume.
    @Argument(help: ArgumentHelp("The workflow ID.", valueName: "id"))
    public var workflowID: String

    /// Leave the run for a worker instead of running it here.
    @Flag(help: "Leave the run ENQUEUED for a worker instead of running it in this process.")
    public var detach = false

    /// Print the output as JSON even when it is a string.
    @Flag(help: "Print the output as JSON, strings included.")
    public var json = false

    public init() {}

    public func execute() async throws {
        if detach {
            try await resumeDetached()
        } else {
            try await resumeInThisProcess()
        }
    }

    /// Puts the run back on its queue for a worker and prints its ID.
    func resumeDetached() async throws {
        let handle = try await database.withClient { client in
            try await client.resumeWorkflow(id: workflowID)
        }
        print(handle.workflowID)
    }

    /// Runs the resumed workflow here with the spec text stored with it, with progress and exit codes like a run.
    func resumeInThisProcess() async throws {
        let stored = try await StoredRun.open(database, workflowID: workflowID, executingID: workflowID)
        let run = AttachedRun(
            runtime: stored.runtime, workflowID: workflowID,
            continueCommand: "dbos-run workflows resume \(ShellWord.argument(workflowID))", printer: ValuePrinter(printsJSON: json))
        run.stopOnTerminationSignals()
        // Resumed before the queue runners start: a run still ENQUEUED would otherwise be claimed by this
        // process first, and the resume then refused as the run is no longer waiting.
        do {
            _ = try await stored.interpreter.resume(workflowID: workflowID)
        } catch {
            await stored.runtime.shutdown(gracePeriod: .zero)
            throw error
        }
        try await stored.runtime.launch()
        printError("dbos-run: run \(workflowID) resumed from its last checkpoint")
        try await run.waitForEnd()
    }
}
