import DBOS

/// A checkpointed step in the CLI's JSON shape: `{"step", "name", "status", "output", "error",
/// "started_at", "completed_at"}`. The status is `ERROR` when the step recorded an error, else
/// `SUCCESS`; the error is its message.
public enum StepJSON {
    /// The field names, in print order.
    public static let keys = ["step", "name", "status", "output", "error", "started_at", "completed_at"]

    /// A step's status as the CLI prints it.
    public static func status(of step: StepInfo) -> String {
        step.error == nil ? "SUCCESS" : "ERROR"
    }

    /// One step as an ordered JSON object.
    public static func object(for step: StepInfo) -> OrderedJSONObject {
        OrderedJSONObject([
            ("step", .integer(Int64(step.functionID))),
            ("name", .string(step.name)),
            ("status", .string(status(of: step))),
            ("output", step.output ?? .null),
            ("error", step.error.map { .string($0.message) } ?? .null),
            ("started_at", Timestamp.jsonValue(step.startedAt)),
            ("completed_at", Timestamp.jsonValue(step.completedAt)),
        ])
    }

    /// Compact JSON text for a run's steps (a JSON array).
    public static func text(for steps: [StepInfo]) -> String {
        OrderedJSONObject.jsonText(of: steps.map(object(for:)))
    }
}
