import DBOS

/// A workflow run in the CLI's JSON shape: `{"workflow_id", "name", "status", "input", "output",
/// "error", "queue", "executor_id", "created_at", "updated_at", "attempts"}`, with RFC 3339 times
/// and null for what a run does not have.
public enum WorkflowJSON {
    /// The field names, in print order.
    public static let keys = [
        "workflow_id", "name", "status", "input", "output", "error", "queue", "executor_id",
        "created_at", "updated_at", "attempts",
    ]

    /// The queue a run is shown on: none for the engine's internal queue, where `workflows resume`,
    /// `fork` and cron ticks put runs that were not started on a queue of the user's.
    static func queue(of status: WorkflowStatus) -> String? {
        status.queueName == WorkflowQueue.internalQueueName ? nil : status.queueName
    }

    /// One run as an ordered JSON object.
    public static func object(for status: WorkflowStatus) -> OrderedJSONObject {
        OrderedJSONObject([
            ("workflow_id", .string(status.workflowID)),
            ("name", .string(status.name)),
            ("status", .string(status.state.rawValue)),
            ("input", status.input ?? .null),
            ("output", status.output ?? .null),
            ("error", status.error.map { .string($0.message) } ?? .null),
            ("queue", queue(of: status).map(JSONValue.string) ?? .null),
            ("executor_id", status.executorID.map(JSONValue.string) ?? .null),
            ("created_at", Timestamp.jsonValue(status.createdAt)),
            ("updated_at", Timestamp.jsonValue(status.updatedAt)),
            ("attempts", .integer(Int64(status.recoveryAttempts))),
        ])
    }

    /// Compact JSON text for one run.
    public static func text(for status: WorkflowStatus) -> String {
        object(for: status).jsonText
    }

    /// Compact JSON text for a list of runs (a JSON array).
    public static func text(for statuses: [WorkflowStatus]) -> String {
        OrderedJSONObject.jsonText(of: statuses.map(object(for:)))
    }
}
