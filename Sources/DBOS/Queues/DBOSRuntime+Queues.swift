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
                // Runs wait but a global limit holds them: the slot frees when a run's outcome is written,
                // here or in another process, which no notification announces. Poll at the queue's own
                // interval meanwhile, not the notifications' fallback (seconds per run on PostgreSQL).
                // (Not while this process's own slots are full: its runs' ends wake the runner.)
                if claimed.isEmpty, queue.globalConcurrency != nil || queue.rateLimit != nil,
                    state.withLock({ state in
                        !state.queuesSeenIdle.contains(queue.name)
                            && queue.workerConcurrency.map { (state.queueSlotsTaken[queue.name] ?? 0) < $0 } ?? true
                    })
                {
                    wait = min(wait, queue.pollingInterval)
                }
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
        // No claim while a recovery puts runs back on their queues (it signals the runners after).
        guard let names = state.withLock({ state -> [String]? in
            guard state.recoveriesInProgress == 0 else { return nil }
            state.queueClaimsInFlight += 1
            return Array(state.workflows.keys)
        }) else { return [] }
        defer { state.withLock { $0.queueClaimsInFlight -= 1 } }
        var request = DequeueRequest(
            queue: queue, executorID: configuration.executorID, applicationVersion: applicationVersion,
            workflowNames: names, localRunning: [:], onlyEnqueuedBy: claimScopeFilter, now: Date().epochMilliseconds)
        // The free slots held from the claim until its runs execute (counted as running then).
        let held = HeldSlots()
        defer {
            let count = held.count.withLock { $0 }
            if count > 0 { state.withLock { $0.queueSlotsTaken[queue.name, default: count] -= count } }
        }
        if queue.partitioned {
            request.localRunning = state.withLock { state in
                var counts: [String: Int] = [:]
                for running in state.running.values where running.queueName == queue.name {
                    counts[running.partitionKey ?? "", default: 0] += 1
                }
                return counts
            }
        } else {
            // Slots taken count the runs executing here and the enqueues that may start theirs
            // (`reserveQueueSlot`). Once runs wait to be claimed, the free slots are held until the
            // claimed runs execute, so that an enqueue meanwhile cannot start its run in one too.
            request.localRunningAtClaim = { [self] in
                held.foundWaitingRuns.withLock { $0 = true }
                return state.withLock { state in
                    // Runs wait: a run finishing from now on must send the runner to look again.
                    state.queuesSeenIdle.remove(queue.name)
                    let taken = state.queueSlotsTaken[queue.name] ?? 0
                    let free = queue.workerConcurrency.map { max(0, $0 - taken) } ?? 0
                    state.queueSlotsTaken[queue.name] = taken + free
                    held.count.withLock { $0 += free }
                    return ["": taken]
                }
            }
        }
        let claimed = try await database.dequeue(request)
        if !queue.partitioned, !held.foundWaitingRuns.withLock({ $0 }) {
            _ = state.withLock { $0.queuesSeenIdle.insert(queue.name) }
        }
        var runnable: [(WorkflowRecord, RegisteredWorkflow)] = []
        for record in claimed {
            guard let registered = state.withLock({ $0.workflows[record.name] }) else { continue }
            if let maxAttempts = registered.maxRecoveryAttempts, record.recoveryAttempts > maxAttempts + 1 {
                try await database.deadLetter(id: record.workflowID, at: Date().epochMilliseconds)
                wakeups.signal(WakeupRegistry.completionKey(workflowID: record.workflowID))
                continue
            }
            if stopForClaim(record, registered: registered, held: held) { continue }
            runnable.append((record, registered))
        }
        let checkpoints = try await checkpoints(ofClaimed: runnable.map(\.0.workflowID))
        for (record, registered) in runnable {
            execute(record, registered: registered, checkpoints: Self.bySlot(checkpoints[record.workflowID] ?? []))
        }
        return claimed.map(\.workflowID)
    }

    /// Whether a run just claimed has an execution still under way here: one that went on after
    /// the run was cancelled elsewhere (it had not noticed yet, or it is still stopping, in a step
    /// that does not check for cancellation) because the run was resumed meanwhile. That execution
    /// is stopped, as it would have been at its next operation; its timer, set for the deadline
    /// before the resume, with it. The run executes again from its checkpoints once it has ended
    /// (`executeClaimedAgain`), never before: a second execution would run the steps whose
    /// checkpoints it was still writing. Meanwhile the run keeps the queue slot the claim gave it.
    private func stopForClaim(_ record: WorkflowRecord, registered: RegisteredWorkflow, held: HeldSlots) -> Bool {
        let id = record.workflowID
        guard let queueName = record.queueName else { return false }
        return state.withLock { state in
            guard state.running[id] != nil else { return false }
            state.running[id]?.claimedAgain = ClaimedAgain(registered: registered, queueName: queueName)
            if state.running[id]?.stopReason == nil { state.running[id]?.stopReason = .cancelled(nil) }
            state.running[id]?.task.cancel()
            state.running[id]?.timer?.cancel()
            // One of the slots this dequeue holds becomes the run's (a queue without a worker limit holds none).
            let fromHeld = held.count.withLock { count in
                guard count > 0 else { return false }
                count -= 1
                return true
            }
            if !fromHeld { state.queueSlotsTaken[queueName, default: 0] += 1 }
            state.queueClaimsInFlight += 1
            return true
        }
    }

    /// Executes a run claimed while an earlier execution of it ran here, once that one has ended,
    /// if the run is still PENDING and this executor's (that execution did not record its outcome),
    /// from the checkpoints stored then. Otherwise, after shutdown began, or when the reads keep
    /// failing, the run's slot is given back (a run left PENDING is this executor's next recovery's).
    func executeClaimedAgain(_ id: String, _ claim: ClaimedAgain) async {
        var backoff = Duration.milliseconds(50)
        for attempt in 1...5 {
            guard !Task.isCancelled, state.withLock({ $0.phase != .stopped }) else { break }
            do {
                guard let record = try await database.workflow(id: id), record.state == .pending,
                    record.executorID == configuration.executorID, record.queueName == claim.queueName
                else { break }
                let checkpoints = try await database.operations(workflowIDs: [id])
                execute(record, registered: claim.registered, checkpoints: Self.bySlot(checkpoints[id] ?? []),
                    holdingReservedSlot: true)
                return
            } catch {
                guard attempt < 5, (try? await Task.sleep(for: backoff)) != nil else { break }
                backoff *= 2
            }
        }
        releaseQueueSlot(claim.queueName)
        wakeups.signal(WakeupRegistry.queueKey(claim.queueName))
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
                state.withLock { $0.checkpointReadFailures += 1 }
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

/// The slots of a queue a dequeue holds from its claim until the claimed runs execute, and
/// whether it found runs waiting at all.
private final class HeldSlots: Sendable {
    let count = Mutex(0)
    let foundWaitingRuns = Mutex(false)
}
