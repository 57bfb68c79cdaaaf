import ArgumentParser
import DBOS

/// `dbos-run workflows list`: runs, newest first, optionally filtered.
public struct ListWorkflowsCommand: FailureReportingCommand {
    public static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List workflow runs, newest first.")

    /// The statuses `--status` accepts, as the CLI contract names them.
    public static let acceptedStatuses: [WorkflowState] = [
        .pending, .enqueued, .success, .error, .cancelled, .maxRecoveryAttemptsExceeded,
    ]

    /// Which system database to use (`--db`).
    @OptionGroup public var database: DatabaseOptions

    /// Only runs in this status.
    @Option(help: ArgumentHelp(
        "Only runs in this status: PENDING, ENQUEUED, SUCCESS, ERROR, CANCELLED or MAX_RECOVERY_ATTEMPTS_EXCEEDED.",
        valueName: "status"))
    public var status: String?

    /// Only runs of this workflow.
    @Option(help: ArgumentHelp("Only runs of the workflow with this name.", valueName: "name"))
    public var name: String?

    /// Only runs on this queue.
    @Option(help: ArgumentHelp("Only runs started on this queue.", valueName: "queue"))
    public var queue: String?

    /// At most this many runs. Parsed unconditionally so `--limit -1` reaches the range check instead of
    /// being taken for a flag ("missing value").
    @Option(parsing: .unconditional, help: ArgumentHelp("List at most this many runs.", valueName: "n"))
    public var limit: Int?

    /// Print a JSON array instead of a table.
    @Flag(help: "Print a JSON array of workflow objects instead of a table.")
    public var json = false

    public init() {}

    public func execute() async throws {
        let filter = WorkflowFilter(
            states: try status.map { [try Self.state(named: $0)] }, name: name, queueName: queue, limit: try validLimit())
        let statuses = try await database.withClient { client in try await client.listWorkflows(filter) }
        print(json ? WorkflowJSON.text(for: statuses) : WorkflowText.table(for: statuses))
    }

    /// The status `text` names (any letter case), or an exit-2 failure listing the accepted ones.
    static func state(named text: String) throws(CommandFailure) -> WorkflowState {
        guard let state = WorkflowState(rawValue: text.uppercased()), acceptedStatuses.contains(state) else {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode,
                message: "unknown status '\(text)' for --status; expected one of "
                    + acceptedStatuses.map(\.rawValue).joined(separator: ", "))
        }
        return state
    }

    private func validLimit() throws(CommandFailure) -> Int? {
        if let limit, limit < 1 {
            throw CommandFailure(
                exitCode: CommandFailure.invalidInputExitCode, message: "--limit must be at least 1, got \(limit)")
        }
        return limit
    }
}
