/// A registered workflow: its name and its input and output types. Returned by
/// `DBOSRuntime.register(_:maxRecoveryAttempts:_:)` and used to start runs with type safety.
public struct Workflow<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable {
    /// The name stored with each run and used to find the code at recovery.
    public let name: String

    /// A reference to a workflow registered under `name` (in this process or another one).
    public init(name: String) {
        self.name = name
    }
}

/// Options for starting a workflow.
public struct WorkflowOptions: Sendable {
    /// The idempotency key: a workflow ID runs once; later starts return the same run.
    public var workflowID: String?
    /// A durable start-to-completion limit: past it the workflow is cancelled, even across restarts.
    public var timeout: Duration?

    /// Options; all are optional.
    public init(workflowID: String? = nil, timeout: Duration? = nil) {
        self.workflowID = workflowID
        self.timeout = timeout
    }
}

/// A workflow's code with its types erased: serialized input in, serialized output out.
struct RegisteredWorkflow: Sendable {
    let name: String
    let maxRecoveryAttempts: Int?
    let run: @Sendable (WorkflowContext, String?) async throws -> String
}
