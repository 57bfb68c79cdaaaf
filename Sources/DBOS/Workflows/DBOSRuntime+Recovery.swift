import Foundation
import Synchronization

extension DBOSRuntime {
    // MARK: Recovery

    /// Resumes this executor's PENDING runs of this application version; returns their IDs.
    /// Completed steps return their checkpoints without running again.
    @discardableResult
    public func recoverPendingWorkflows() async throws -> [String] {
        try ensureLaunched()
        // Queued runs go back to their queue, so its limits hold while they are recovered; the others
        // are read in the same pause, so none of them is a run a claim of this process just took.
        let (requeued, pending) = try await withQueueClaimsPaused {
            let requeued = try await database.requeuePendingWorkflows(
                executorID: configuration.executorID, applicationVersion: applicationVersion,
                excluding: state.withLock { Array($0.running.keys) }, at: Date().epochMilliseconds)
            let pending = try await database.pendingWorkflows(
                executorID: configuration.executorID, applicationVersion: applicationVersion)
            return (requeued, pending)
        }
        for queueName in Set(state.withLock { $0.queues.keys }) { wakeups.signal(WakeupRegistry.queueKey(queueName)) }
        var recovered: [String] = []
        for record in pending {
            if localTask(of: record.workflowID) != nil { continue }
            guard let registered = state.withLock({ $0.workflows[record.name] }) else {
                // Left PENDING: a process that registers this workflow can still recover it.
                continue
            }
            if try await claimAndExecute(record, registered: registered) { recovered.append(record.workflowID) }
        }
        return recovered + requeued
    }

    /// Runs `body` while no claim of this process is under way or starts. A run being claimed (by an
    /// enqueue that starts it, or by a queue runner) is PENDING and this executor's before it runs
    /// here, so putting such runs back on their queue must wait for those claims to finish.
    private func withQueueClaimsPaused<T>(_ body: () async throws -> T) async throws -> T {
        state.withLock { $0.recoveriesInProgress += 1 }
        defer { state.withLock { $0.recoveriesInProgress -= 1 } }
        while state.withLock({ $0.queueClaimsInFlight > 0 }) { try await Task.sleep(for: .milliseconds(1)) }
        return try await body()
    }

    /// Takes over one PENDING run whose process is gone (of any executor) and executes it here
    /// from its checkpoints, as recovery would. Use it when you know the process that ran it
    /// died (`dbos-run FILE --id X` after a crash); a run still executing elsewhere would then
    /// execute twice. Finished, enqueued or locally running runs are left as they are.
    @discardableResult
    public func recoverWorkflow(id: String) async throws -> WorkflowHandle<JSONValue> {
        try ensureLaunched()
        guard let record = try await database.workflow(id: id) else { throw WorkflowError.nonexistentWorkflow(id) }
        if record.state == .pending, localTask(of: id) == nil {
            let registered = try registeredWorkflow(named: record.name)
            if let version = record.applicationVersion, version != applicationVersion {
                throw WorkflowError.applicationVersionMismatch(id: id, recorded: version, current: applicationVersion)
            }
            try await claimAndExecute(record, registered: registered)
        }
        return WorkflowHandle(workflowID: id, runtime: self)
    }

    /// Counts a recovery attempt for a PENDING run and executes it from its checkpoints; returns
    /// false when it was abandoned (too many attempts) or is no longer PENDING.
    @discardableResult
    func claimAndExecute(_ record: WorkflowRecord, registered: RegisteredWorkflow) async throws -> Bool {
        switch try await database.claimForRecovery(
            id: record.workflowID, executorID: configuration.executorID,
            maxAttempts: registered.maxRecoveryAttempts, at: Date().epochMilliseconds)
        {
        case .claimed(let attempts):
            var record = record
            record.recoveryAttempts = attempts
            try await executeFromCheckpoints(record, registered: registered)
            return true
        case .exceeded:
            wakeups.signal(WakeupRegistry.completionKey(workflowID: record.workflowID))
            return false
        case .notPending:
            return false
        }
    }

    /// Loads a run's checkpoints and executes it; completed operations replay their results.
    func executeFromCheckpoints(_ record: WorkflowRecord, registered: RegisteredWorkflow) async throws {
        let checkpoints = try await database.operations(workflowID: record.workflowID)
        execute(record, registered: registered, checkpoints: Self.bySlot(checkpoints))
    }

    /// Checkpoints keyed by their function ID (the first one if a slot appears twice).
    static func bySlot(_ checkpoints: [OperationRecord]) -> [Int: OperationRecord] {
        Dictionary(checkpoints.map { ($0.functionID, $0) }, uniquingKeysWith: { first, _ in first })
    }
}
