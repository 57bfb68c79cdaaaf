import Foundation

/// Talks to the workflows of other processes through the system database, with no workflow code
/// of its own: enqueue runs by name, wait for their results, send messages, read events, and
/// manage runs.
///
/// ```swift
/// let client = try await DBOSClient(systemDatabaseURL: "sqlite:.dbos/system.sqlite")
/// let handle = try await client.enqueue(workflowName: "checkout", queueName: "orders", input: ["id": "o-1"])
/// print(try await handle.result())
/// await client.close()
/// ```
public final class DBOSClient: Sendable {
    let runtime: DBOSRuntime

    /// Connects to (and if needed creates and migrates) the system database at `systemDatabaseURL`.
    public init(systemDatabaseURL: String, pollingInterval: Duration = .milliseconds(200)) async throws {
        runtime = try await DBOSRuntime(
            configuration: DBOSConfiguration(
                appName: "dbos-client", systemDatabaseURL: systemDatabaseURL, executorID: "dbos-client",
                applicationVersion: "dbos-client", recoversPendingWorkflows: false, pollingInterval: pollingInterval),
            role: .client)
        try await runtime.launch()
    }

    /// Enqueues a run of the workflow registered as `workflowName` (in whatever process serves
    /// `queueName`) and returns at once. Without `options.applicationVersion` any worker
    /// version may run it.
    public func enqueue<Input: Encodable & Sendable>(
        workflowName: String, queueName: String, input: Input, options: WorkflowOptions = WorkflowOptions()
    ) async throws -> WorkflowHandle<JSONValue> {
        var options = options
        options.queueName = queueName
        let placeholder = RegisteredWorkflow(name: workflowName, maxRecoveryAttempts: nil) { _, _ in
            throw WorkflowError.unregisteredWorkflow(workflowName)
        }
        let id = try await runtime.start(
            placeholder, inputText: try PortableJSON.encodeInput(input), options: options, parent: nil)
        return WorkflowHandle(workflowID: id, runtime: runtime)
    }

    /// A handle to an existing run.
    public func retrieveWorkflow<Output>(id: String, as type: Output.Type = JSONValue.self) -> WorkflowHandle<Output> {
        runtime.retrieveWorkflow(id: id, as: type)
    }

    /// Sends a message to a run; with an idempotency key it is delivered at most once.
    public func send<Message: Encodable & Sendable>(
        to workflowID: String, topic: String? = nil, message: Message, idempotencyKey: String? = nil
    ) async throws {
        try await runtime.send(to: workflowID, topic: topic, message: message, idempotencyKey: idempotencyKey)
    }

    /// Waits up to `timeout` for a run's event; nil on timeout.
    public func getEvent<Value: Decodable & Sendable>(
        workflowID: String, key: String, as type: Value.Type = JSONValue.self, timeout: Duration = .seconds(60)
    ) async throws -> Value? {
        try await runtime.getEvent(workflowID: workflowID, key: key, as: type, timeout: timeout)
    }

    /// The values of a run's stream, as they are written.
    public func readStream<Value: Decodable & Sendable>(
        workflowID: String, key: String, as type: Value.Type = JSONValue.self, from offset: Int = 0
    ) -> WorkflowStream<Value> {
        runtime.readStream(workflowID: workflowID, key: key, as: type, from: offset)
    }

    /// The values of a run's stream written so far, without waiting; `ended` is true once no more can come.
    public func readStreamSnapshot<Value: Decodable & Sendable>(
        workflowID: String, key: String, as type: Value.Type = JSONValue.self, from offset: Int = 0
    ) async throws -> (values: [Value], ended: Bool) {
        try await runtime.readStreamSnapshot(workflowID: workflowID, key: key, as: type, from: offset)
    }

    /// A run's status, or nil if none has this ID.
    public func workflowStatus(id: String) async throws -> WorkflowStatus? {
        try await runtime.workflowStatus(id: id)
    }

    /// Runs matching a filter, newest first by default.
    public func listWorkflows(_ filter: WorkflowFilter = WorkflowFilter()) async throws -> [WorkflowStatus] {
        try await runtime.listWorkflows(filter)
    }

    /// A run's checkpointed steps.
    public func listSteps(workflowID: String) async throws -> [StepInfo] {
        try await runtime.listSteps(workflowID: workflowID)
    }

    /// Moves the start of a DELAYED run to `date` (see `DBOSRuntime.setWorkflowDelay(id:until:)`).
    public func setWorkflowDelay(id: String, until date: Date) async throws {
        try await runtime.setWorkflowDelay(id: id, until: date)
    }

    /// Moves the start of a DELAYED run to `delay` from now.
    public func setWorkflowDelay(id: String, delay: Duration) async throws {
        try await runtime.setWorkflowDelay(id: id, delay: delay)
    }

    /// Cancels a run and its descendants.
    public func cancelWorkflow(id: String) async throws {
        try await runtime.cancelWorkflow(id: id)
    }

    /// Deletes runs (with `includeChildren`, their descendants too) and everything recorded for them.
    @discardableResult
    public func deleteWorkflows(ids: [String], includeChildren: Bool = false) async throws -> [String] {
        try await runtime.deleteWorkflows(ids: ids, includeChildren: includeChildren)
    }

    /// Puts a cancelled or failed run back on its queue to continue from its last checkpoint.
    @discardableResult
    public func resumeWorkflow(id: String) async throws -> WorkflowHandle<JSONValue> {
        try await runtime.resumeWorkflow(id: id)
    }

    /// Forks a run from a step; a worker serving `queueName` (default: the internal queue) executes the fork.
    @discardableResult
    public func forkWorkflow(
        id: String, fromStep startStep: Int, newWorkflowID: String? = nil, applicationVersion: String? = nil,
        queueName: String? = nil, partitionKey: String? = nil
    ) async throws -> WorkflowHandle<JSONValue> {
        try await runtime.forkWorkflow(
            id: id, fromStep: startStep, newWorkflowID: newWorkflowID, applicationVersion: applicationVersion,
            queueName: queueName, partitionKey: partitionKey)
    }

    /// Closes the database connection.
    public func close() async {
        await runtime.shutdown(gracePeriod: .zero)
    }
}
