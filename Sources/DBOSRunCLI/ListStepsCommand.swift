import ArgumentParser
import DBOS

/// `dbos-run workflows steps ID`: each checkpointed step of a run.
public struct ListStepsCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "steps",
        abstract: "List a workflow run's checkpointed steps.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run whose steps to list.
    @Argument(help: ArgumentHelp("The workflow ID.", valueName: "id"))
    public var workflowID: String

    /// Print a JSON array instead of a table.
    @Flag(help: "Print a JSON array of step objects instead of a table.")
    public var json = false

    public init() {}

    public func execute() async throws {
        let steps = try await database.withClient { client in
            try await client.listSteps(workflowID: workflowID)
        }
        print(json ? StepJSON.text(for: steps) : WorkflowText.table(for: steps))
    }
}
