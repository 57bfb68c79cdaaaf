/// What a Swift handler knows about the step that calls it.
public struct HandlerContext: Sendable {
    /// The ID of the run (or child run) executing the step.
    public let workflowID: String
    /// The step's `id` in the spec.
    public let stepID: String
    /// The step's checkpoint slot in its run.
    public let slot: Int
    /// The attempt number, 1 for the first call and higher on retries.
    public let attempt: Int

    /// A key that is the same on every attempt and every recovery of this step, `<workflow id>/<slot>`:
    /// pass it to external services so a retried call has no second effect.
    public var idempotencyKey: String { "\(workflowID)/\(slot)" }

    /// A context; the interpreter creates one per attempt.
    public init(workflowID: String, stepID: String, slot: Int, attempt: Int) {
        self.workflowID = workflowID
        self.stepID = stepID
        self.slot = slot
        self.attempt = attempt
    }
}
