import Foundation

/// A workflow run as the system database records it.
public struct WorkflowStatus: Sendable {
    /// The run's ID (its idempotency key).
    public var workflowID: String
    /// Where the run is in its lifecycle.
    public var state: WorkflowState
    /// The registered workflow name.
    public var name: String
    /// The input (positional argument 0 of the stored portable input).
    public var input: JSONValue?
    /// The output, once it succeeded.
    public var output: JSONValue?
    /// The error, once it failed (or the reason it was cancelled).
    public var error: PortableError?
    /// The executor that last ran it.
    public var executorID: String?
    /// The application version it runs under.
    public var applicationVersion: String?
    /// The queue it was started on, if any.
    public var queueName: String?
    /// When it was created.
    public var createdAt: Date
    /// When its row last changed.
    public var updatedAt: Date
    /// How many times it was started (1 for a run that never needed recovery).
    public var recoveryAttempts: Int
    /// Its start-to-completion timeout, if any.
    public var timeout: Duration?
    /// The absolute deadline derived from the timeout, if it started.
    public var deadline: Date?
    /// The workflow that started it, for a child run.
    public var parentWorkflowID: String?
    /// When it started running.
    public var startedAt: Date?
    /// When it finished.
    public var completedAt: Date?
    /// The run it was forked from, if any.
    public var forkedFrom: String?
    /// The free-form data stored with the run.
    public var attributes: JSONValue?
    /// Its priority on its queue (0: none, which runs before 1).
    public var priority: Int
    /// The deduplication ID it holds on its queue while it waits or runs.
    public var deduplicationID: String?
    /// The partition of a partitioned queue it belongs to.
    public var partitionKey: String?
    /// Until when it stays DELAYED, for a run enqueued with a delay.
    public var delayUntil: Date?
    /// The format its input and output are stored in (`portable_json` for runs of this library).
    public var serialization: String?

    init(_ record: WorkflowRecord) {
        workflowID = record.workflowID
        state = record.state
        name = record.name
        input = PortableJSON.inputValue(from: record.inputs)
        output = record.output.flatMap { try? JSONValue(parsing: $0) }
        error = record.error.map(PortableError.init(storedText:))
        executorID = record.executorID
        applicationVersion = record.applicationVersion
        queueName = record.queueName
        createdAt = Date(epochMilliseconds: record.createdAt)
        updatedAt = Date(epochMilliseconds: record.updatedAt)
        recoveryAttempts = record.recoveryAttempts
        timeout = record.timeoutMilliseconds.map { .milliseconds($0) }
        deadline = record.deadline.map(Date.init(epochMilliseconds:))
        parentWorkflowID = record.parentWorkflowID
        startedAt = record.startedAt.map(Date.init(epochMilliseconds:))
        completedAt = record.completedAt.map(Date.init(epochMilliseconds:))
        forkedFrom = record.forkedFrom
        attributes = record.attributes.flatMap { try? JSONValue(parsing: $0) }
        priority = record.priority
        deduplicationID = record.deduplicationID
        partitionKey = record.partitionKey
        delayUntil = record.delayUntil.map(Date.init(epochMilliseconds:))
        serialization = record.serialization
    }
}

/// One checkpointed operation of a workflow.
public struct StepInfo: Sendable {
    /// The checkpoint slot (DBOS's function ID), in call order from 0.
    public var functionID: Int
    /// The step's name (`DBOS.sleep`, `DBOS.recv`… for the engine's own operations).
    public var name: String
    /// The recorded output.
    public var output: JSONValue?
    /// The recorded error.
    public var error: PortableError?
    /// The child workflow started at this slot, if any.
    public var childWorkflowID: String?
    /// When the step started.
    public var startedAt: Date?
    /// When the step's checkpoint was written (for a sleep: the wake-up time).
    public var completedAt: Date?

    init(_ record: OperationRecord) {
        functionID = record.functionID
        name = record.functionName
        output = record.output.flatMap { try? JSONValue(parsing: $0) }
        error = record.error.map(PortableError.init(storedText:))
        childWorkflowID = record.childWorkflowID
        startedAt = record.startedAt.map(Date.init(epochMilliseconds:))
        completedAt = record.completedAt.map(Date.init(epochMilliseconds:))
    }
}
