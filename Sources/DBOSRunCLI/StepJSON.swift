import DBOS

/// A checkpointed step in the CLI's JSON shape: `{"step", "name", "status", "output", "error",
/// "started_at", "completed_at"}`. The status is `SUCCESS` or `ERROR` for a recorded step; a spec
/// run's steps may also be `SKIPPED` or `PENDING` (see `SpecStepView`); the error is its message.
enum StepJSON {
    /// The field names, in print order.
    static let keys = ["step", "name", "status", "output", "error", "started_at", "completed_at"]

    /// One step as an ordered JSON object.
    static func object(for step: SpecStepView.Row) -> OrderedJSONObject {
        OrderedJSONObject([
            ("step", .integer(Int64(step.slot))),
            ("name", .string(step.name)),
            ("status", .string(step.status)),
            ("output", step.output ?? .null),
            ("error", step.error.map { .string($0) } ?? .null),
            ("started_at", Timestamp.jsonValue(step.startedAt)),
            ("completed_at", Timestamp.jsonValue(step.completedAt)),
        ])
    }

    /// Compact JSON text for a run's steps (a JSON array).
    static func text(for steps: [SpecStepView.Row]) -> String {
        OrderedJSONObject.jsonText(of: steps.map(object(for:)))
    }
}
