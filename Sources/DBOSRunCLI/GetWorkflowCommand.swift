import ArgumentParser
import DBOS

/// `dbos-run workflows get ID`: one run's status, input, output or error, timestamps, executor and queue.
public struct GetWorkflowCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Show one workflow run.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run to show.
    @Argument(help: ArgumentHelp("The workflow ID.", valueName: "id"))
    public var workflowID: String

    /// Print a JSON object instead of text.
    @Flag(help: "Print the run as a JSON object.")
    public var json = false

    public init() {}

    public func execute() async throws {
        let status = try await database.withClient { client in
            try await client.workflowStatus(id: workflowID)
        }
        guard let status else { throw WorkflowError.nonexistentWorkflow(workflowID) }
        print(json ? WorkflowJSON.text(for: status) : WorkflowText.details(for: status))
    }
}
