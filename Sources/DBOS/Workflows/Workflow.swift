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
    /// For a queued run the clock starts when it is dequeued.
    public var timeout: Duration?
    /// Enqueue the run on this queue instead of running it at once.
    public var queueName: String?
    /// The run's priority on a queue with priorities enabled: 1 (first) to 2,147,483,647.
    public var priority: Int?
    /// While a run with this ID waits or runs on the queue, another enqueue with it is deduplicated.
    public var deduplicationID: String?
    /// What a deduplicated enqueue does.
    public var deduplicationPolicy: DeduplicationPolicy
    /// Keep the run DELAYED this long before it may be dequeued.
    public var delay: Duration?
    /// The partition of a partitioned queue the run belongs to.
    public var partitionKey: String?
    /// The application version the run must be executed by (default: this process's).
    public var applicationVersion: String?
    /// Free-form data stored with the run (DBOS's `attributes` column), for tools and callers.
    public var attributes: JSONValue?

    /// Options; all are optional. The queue-related ones require `queueName`.
    public init(
        workflowID: String? = nil, timeout: Duration? = nil, queueName: String? = nil, priority: Int? = nil,
        deduplicationID: String? = nil, deduplicationPolicy: DeduplicationPolicy = .reject, delay: Duration? = nil,
        partitionKey: String? = nil, applicationVersion: String? = nil, attributes: JSONValue? = nil
    ) {
        self.workflowID = workflowID
        self.timeout = timeout
        self.queueName = queueName
        self.priority = priority
        self.deduplicationID = deduplicationID
        self.deduplicationPolicy = deduplicationPolicy
        self.delay = delay
        self.partitionKey = partitionKey
        self.applicationVersion = applicationVersion
        self.attributes = attributes
    }

    /// Problems with combinations of options, as messages.
    var problems: [String] {
        var problems: [String] = []
        if queueName == nil {
            if priority != nil { problems.append("a priority requires a queue") }
            if deduplicationID != nil { problems.append("a deduplication ID requires a queue") }
            if delay != nil { problems.append("a delay requires a queue") }
            if partitionKey != nil { problems.append("a partition key requires a queue") }
        }
        if let priority, !(1...2_147_483_647).contains(priority) {
            problems.append("priority \(priority) is out of range 1...2147483647")
        }
        if deduplicationID != nil && partitionKey != nil {
            problems.append("a deduplication ID and a partition key cannot be combined")
        }
        if let timeout, timeout <= .zero { problems.append("a timeout must be positive") }
        if let workflowID, workflowID.isEmpty { problems.append("a workflow ID cannot be empty") }
        return problems
    }
}

/// A workflow's code with its types erased: its input as stored (and, for a run started in this
/// process, as passed) in, its output serialized (and as returned) out.
struct RegisteredWorkflow: Sendable {
    let name: String
    let maxRecoveryAttempts: Int?
    let run: @Sendable (WorkflowContext, RunInput) async throws -> RunOutput
}

/// A run's input: the stored JSON, and the value itself when the run was started in this process
/// with it (DBOS Go and Python hand such a run the caller's value too). A run recovered, dequeued
/// or started with JSON decodes the stored text.
struct RunInput: Sendable {
    let text: String?
    var value: (any Sendable)? = nil
}

/// A finished run's output: the JSON that is stored, and the value the workflow returned, which
/// `result()` in this process returns while the run's task is alive instead of decoding the JSON.
struct RunOutput: Sendable {
    let text: String
    let value: any Sendable
}
