import ArgumentParser
import DBOS

/// `dbos-run workflows cancel ID`: cancels a run and its children.
public struct CancelWorkflowCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "cancel",
        abstract: "Cancel a workflow run and its children.",
        discussion: "A process running it stops at its next step. A finished run is left as it is.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run to cancel.
    @Argument(help: ArgumentHelp("The workflow ID.", valueName: "id"))
    public var workflowID: String

    public init() {}

    public func execute() async throws {
        let status = try await database.withClient { client in
            try await client.cancelWorkflow(id: workflowID)
            return try await client.workflowStatus(id: workflowID)
        }
        guard let status else { throw WorkflowError.nonexistentWorkflow(workflowID) }
        if status.state == .cancelled {
            print("cancelled workflow '\(workflowID)'")
        } else {
            print("workflow '\(workflowID)' already finished as \(status.state.rawValue); nothing to cancel")
        }
    }
}
