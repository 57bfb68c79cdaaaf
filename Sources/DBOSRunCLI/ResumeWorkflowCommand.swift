import ArgumentParser
import DBOS

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

    /// Runs the resumed workflow here, with progress like a run. Needs the spec interpreter.
    func resumeInThisProcess() async throws {
        throw CommandFailure(
            exitCode: CommandFailure.invalidInputExitCode,
            message: "resuming a workflow in this process needs the spec interpreter, which this build does not have yet; use --detach to leave it for a worker")
    }
}
