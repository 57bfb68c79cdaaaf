import Foundation
import Synchronization

extension DBOSRuntime {
    // MARK: Resume and fork

    /// Continues a cancelled or failed run from its last checkpoint: it goes back on its queue
    /// (or the internal queue) and a worker executes it; completed steps are not run again.
    /// A failed run's failed step runs again. A cancelled run's descendants that were cancelled with
    /// it (by `cancelWorkflow(id:)` or its timeout, in the same statement) are resumed with it (DBOS's
    /// own resume leaves them cancelled, so a resumed run awaiting one would fail again at once); a
    /// descendant cancelled on its own stays cancelled.
    @discardableResult
    public func resumeWorkflow<Output>(id: String, as type: Output.Type = JSONValue.self) async throws -> WorkflowHandle<Output> {
        guard let record = try await database.workflow(id: id) else { throw WorkflowError.nonexistentWorkflow(id) }
        guard let queues = try await database.resumeWorkflow(
            id: id, queueName: WorkflowQueue.internalQueueName, executorID: configuration.executorID,
            at: Date().epochMilliseconds)
        else {
            throw WorkflowError.cannotResume(id: id, state: record.state)
        }
        for queue in queues { wakeups.signal(WakeupRegistry.queueKey(queue)) }
        return WorkflowHandle(workflowID: id, runtime: self)
    }

    /// Starts a new run of the same workflow and input that reuses the original's checkpoints of
    /// slots before `startStep` and executes from `startStep` on.
    ///
    /// The fork waits on `queueName` (in `partitionKey` of a partitioned queue), within that
    /// queue's limits; by default on the engine's internal queue, which has none.
    @discardableResult
    public func forkWorkflow<Output>(
        id: String, fromStep startStep: Int, newWorkflowID: String? = nil, applicationVersion: String? = nil,
        queueName: String? = nil, partitionKey: String? = nil, as type: Output.Type = JSONValue.self
    ) async throws -> WorkflowHandle<Output> {
        var problems: [String] = []
        if startStep < 0 { problems.append("a fork's start step cannot be negative") }
        if partitionKey != nil && queueName == nil { problems.append("a partition key requires a queue") }
        guard problems.isEmpty else { throw WorkflowError.invalidOptions(problems) }
        let forkedID = newWorkflowID ?? UUID().uuidString
        let queueName = queueName ?? WorkflowQueue.internalQueueName
        try await database.forkWorkflow(ForkRequest(
            originalID: id, forkedID: forkedID, startStep: startStep,
            applicationVersion: applicationVersion ?? (role == .client ? nil : self.applicationVersion),
            queueName: queueName, partitionKey: partitionKey, now: nextCreationTime()))
        wakeups.signal(WakeupRegistry.queueKey(queueName))
        return WorkflowHandle(workflowID: forkedID, runtime: self)
    }

    // MARK: Management

    /// The run's current status, or nil if no run has this ID.
    public func workflowStatus(id: String) async throws -> WorkflowStatus? {
        try await database.workflow(id: id).map(WorkflowStatus.init)
    }

    /// Runs matching a filter, newest first by default.
    public func listWorkflows(_ filter: WorkflowFilter = WorkflowFilter()) async throws -> [WorkflowStatus] {
        try await database.listWorkflows(filter).map(WorkflowStatus.init)
    }

    /// A run's checkpointed steps, in slot order.
    public func listSteps(workflowID: String) async throws -> [StepInfo] {
        guard try await database.workflow(id: workflowID) != nil else {
            throw WorkflowError.nonexistentWorkflow(workflowID)
        }
        return try await database.operations(workflowID: workflowID).map(StepInfo.init)
    }

    /// Deletes runs with everything recorded for them (checkpoints, messages, events, streams);
    /// with `includeChildren`, their descendants too. IDs of no run are ignored. A run still
    /// executing somewhere stops at its next durable operation, finding no run to record it in.
    /// Returns the IDs of the runs deleted.
    @discardableResult
    public func deleteWorkflows(ids: [String], includeChildren: Bool = false) async throws -> [String] {
        let deleted = try await database.deleteWorkflows(ids: ids, includeDescendants: includeChildren)
        state.withLock { state in
            for id in deleted { state.recentOutputs.forget(id) }
        }
        return deleted
    }

    /// Moves the start of a run enqueued with a delay (`WorkflowOptions.delay`) that is still
    /// waiting for it (DELAYED) to `date`; a date already passed makes it due at once (DBOS's
    /// `SetWorkflowDelay`). A run in any other state is refused with `invalidOptions`.
    public func setWorkflowDelay(id: String, until date: Date) async throws {
        guard let found = try await database.setDelay(
            id: id, until: date.epochMilliseconds, at: Date().epochMilliseconds)
        else { throw WorkflowError.nonexistentWorkflow(id) }
        guard found.state == .delayed else {
            throw WorkflowError.invalidOptions([
                "run '\(id)' is \(found.state.rawValue), not DELAYED: only a run still waiting for its delay can be given another"
            ])
        }
        if let queueName = found.queueName { wakeups.signal(WakeupRegistry.queueKey(queueName)) }
    }

    /// Moves the start of a DELAYED run to `delay` from now (see `setWorkflowDelay(id:until:)`).
    public func setWorkflowDelay(id: String, delay: Duration) async throws {
        guard delay >= .zero else { throw WorkflowError.invalidOptions(["a delay cannot be negative"]) }
        try await setWorkflowDelay(id: id, until: Date().addingTimeInterval(Double(delay.milliseconds) / 1000))
    }

    /// Cancels a run and all its descendants. Runs in this process stop at once; runs in other
    /// processes stop at their next step. Finished runs are left as they are.
    public func cancelWorkflow(id: String) async throws {
        guard try await database.workflow(id: id) != nil else { throw WorkflowError.nonexistentWorkflow(id) }
        let cancelled = try await database.cancelWorkflows(
            ids: [id], includeDescendants: true, error: nil, at: Date().epochMilliseconds)
        stopLocalRuns(cancelled, reason: nil)
    }
}
