import Foundation
import Synchronization

extension DBOSRuntime {
    // MARK: Queues

    /// The worker loop of one queue: claims runs within the queue's limits and executes them.
    /// It wakes when this process enqueues or finishes a run of the queue, and polls for the
    /// changes of other processes.
    func runQueue(_ queue: WorkflowQueue) async {
        let pollingInterval = state.withLock { $0.notificationsActive }
            ? max(queue.pollingInterval, configuration.notificationFallbackInterval) : queue.pollingInterval
        var backoff = pollingInterval
        let key = WakeupRegistry.queueKey(queue.name)
        while !Task.isCancelled {
            let ticket = wakeups.ticket(for: key)
            var wait = pollingInterval
            do {
                let claimed = try await dequeueOnce(queue)
                backoff = pollingInterval
                // More may be waiting than one claim took: look again at once.
                if !claimed.isEmpty { wait = .zero }
            } catch {
                // The database is unreachable or busy: back off up to 30 s, then retry.
                backoff = min(backoff * 2, .seconds(30))
                wait = backoff
            }
            if wait == .zero {
                wakeups.cancel(ticket)
                await Task.yield()
            } else {
                await wakeups.wait(ticket, timeout: wait)
            }
        }
    }

    /// One dequeue: claim what the limits allow and start each claimed run.
    @discardableResult
    func dequeueOnce(_ queue: WorkflowQueue) async throws -> [String] {
        let (names, localRunning) = state.withLock { state -> ([String], [String: Int]) in
            var counts: [String: Int] = [:]
            for running in state.running.values where running.queueName == queue.name {
                counts[running.partitionKey ?? "", default: 0] += 1
            }
            return (Array(state.workflows.keys), counts)
        }
        let claimed = try await database.dequeue(DequeueRequest(
            queue: queue, executorID: configuration.executorID, applicationVersion: applicationVersion,
            workflowNames: names, localRunning: localRunning, onlyEnqueuedBy: claimScopeFilter,
            now: Date().epochMilliseconds))
        var runnable: [(WorkflowRecord, RegisteredWorkflow)] = []
        for record in claimed {
            guard let registered = state.withLock({ $0.workflows[record.name] }) else { continue }
            if let maxAttempts = registered.maxRecoveryAttempts, record.recoveryAttempts > maxAttempts + 1 {
                try await database.deadLetter(id: record.workflowID, at: Date().epochMilliseconds)
                wakeups.signal(WakeupRegistry.completionKey(workflowID: record.workflowID))
                continue
            }
            runnable.append((record, registered))
        }
        let checkpoints = try await checkpoints(ofClaimed: runnable.map(\.0.workflowID))
        for (record, registered) in runnable {
            execute(record, registered: registered, checkpoints: Self.bySlot(checkpoints[record.workflowID] ?? []))
        }
        return claimed.map(\.workflowID)
    }

    /// The checkpoints of runs just claimed (a forked or re-enqueued run has some), in one read.
    /// The runs are PENDING and this executor's now, and nobody else starts them before this process
    /// recovers its runs at its next launch, so a failed read is tried again a few times (backing
    /// off from 50 ms) before the error goes to `runQueue`, which backs off itself.
    private func checkpoints(ofClaimed ids: [String]) async throws -> [String: [OperationRecord]] {
        var backoff = Duration.milliseconds(50)
        for _ in 1..<5 {
            do {
                return try await database.operations(workflowIDs: ids)
            } catch {
                try await Task.sleep(for: backoff)
                backoff *= 2
            }
        }
        return try await database.operations(workflowIDs: ids)
    }

    /// The dequeue filter that `configuration.queueClaimScope` asks for.
    private var claimScopeFilter: (executorID: String, workflowIDs: [String])? {
        switch configuration.queueClaimScope {
        case .all: nil
        case .enqueuedByThisExecutor(let workflowIDs): (configuration.executorID, workflowIDs)
        }
    }
}
