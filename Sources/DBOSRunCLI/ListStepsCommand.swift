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

    /// Print the engine's rows as recorded instead of the spec's steps.
    @Flag(help: "Show the engine's checkpoint rows as recorded (DBOS.sleep, timeout slots, skip markers) instead of the spec's steps.")
    public var raw = false

    public init() {}

    public func execute() async throws {
        let id = workflowID
        let steps = try await database.withClient { [raw] client in
            if raw { return try await client.listSteps(workflowID: id).map(SpecStepView.Row.init(recorded:)) }
            guard let rows = try await SpecStepView.rows(of: id, client: client) else {
                throw WorkflowError.nonexistentWorkflow(id)
            }
            return rows
        }
        print(json ? StepJSON.text(for: steps) : WorkflowText.table(for: steps))
    }
}
