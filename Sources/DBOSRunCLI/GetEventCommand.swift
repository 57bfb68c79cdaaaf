import ArgumentParser
import DBOS

/// `dbos-run get-event ID KEY [--timeout 30s] [--json]`: prints an event's value, waiting for it.
public struct GetEventCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "get-event",
        abstract: "Print the value of a workflow run's event, waiting for it to be set.",
        discussion: "A string value prints as its bare text unless --json is given; other values print as JSON.")

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// The run that sets the event.
    @Argument(help: ArgumentHelp("The workflow ID.", valueName: "id"))
    public var workflowID: String

    /// The event's key.
    @Argument(help: ArgumentHelp("The event's key.", valueName: "key"))
    public var key: String

    /// How long to wait for the event (parsed unconditionally, so `-1s` gets the duration error).
    @Option(parsing: .unconditional, help: ArgumentHelp("How long to wait for the event, e.g. 250ms, 30s, 5m, 1h30m.", valueName: "duration"))
    public var timeout = "30s"

    /// Print the value as JSON even when it is a string.
    @Flag(help: "Print the value as JSON, strings included.")
    public var json = false

    public init() {}

    public func execute() async throws {
        let timeoutDuration = try CLIDuration.parse(timeout, option: "--timeout")
        let value = try await database.withClient { client -> JSONValue? in
            guard try await client.workflowStatus(id: workflowID) != nil else {
                throw WorkflowError.nonexistentWorkflow(workflowID)
            }
            return try await client.getEvent(workflowID: workflowID, key: key, timeout: timeoutDuration)
        }
        guard let value else {
            throw CommandFailure(
                exitCode: CommandFailure.timeoutExitCode,
                message: "timed out after \(timeout) waiting for event '\(key)' of workflow '\(workflowID)'")
        }
        ValuePrinter(printsJSON: json).print(value)
    }
}
