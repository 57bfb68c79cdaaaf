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
        for record in claimed {
            guard let registered = state.withLock({ $0.workflows[record.name] }) else { continue }
            if let maxAttempts = registered.maxRecoveryAttempts, record.recoveryAttempts > maxAttempts + 1 {
                try await database.deadLetter(id: record.workflowID, at: Date().epochMilliseconds)
                wakeups.signal(WakeupRegistry.completionKey(workflowID: record.workflowID))
                continue
            }
            try await executeFromCheckpoints(record, registered: registered)
        }
        return claimed.map(\.workflowID)
    }

    /// The dequeue filter that `configuration.queueClaimScope` asks for.
    private var claimScopeFilter: (executorID: String, workflowIDs: [String])? {
        switch configuration.queueClaimScope {
        case .all: nil
        case .enqueuedByThisExecutor(let workflowIDs): (configuration.executorID, workflowIDs)
        }
    }
}
