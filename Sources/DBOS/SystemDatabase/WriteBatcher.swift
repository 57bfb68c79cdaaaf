import Synchronization

/// Groups concurrent writes of one kind (step checkpoints, completions, starts) so that several
/// workflows' rows go to the database in one statement, one round trip and one commit.
///
/// Nothing waits to fill a batch: a call runs at once when fewer than `concurrentBatches` batches
/// are in flight, alone or with whatever queued meanwhile; otherwise it queues, and the batch that
/// finishes first hands its turn to the oldest queued call, which takes the queue with it. So a
/// lone caller (seq10) pays nothing, and under load (start1) batches grow by themselves.
///
/// `runBatch` returns one result per item, in order: a failure of one item (a constraint, bad
/// input) must not fail the others, so a batch statement that fails as a whole is retried item by
/// item by the caller's `runBatch`.
final class WriteBatcher<Item: Sendable, Output: Sendable>: Sendable {
    typealias Outcome = Result<Output, any Error>

    private enum Turn {
        case done(Outcome)
        case lead
    }

    private struct Waiter {
        let item: Item
        let continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var waiting: [Waiter] = []
        var batchesInFlight = 0
    }

    private let state = Mutex(State())
    private let maximumBatchSize: Int
    private let concurrentBatches: Int
    private let runBatch: @Sendable ([Item]) async -> [Outcome]

    init(
        maximumBatchSize: Int, concurrentBatches: Int, runBatch: @escaping @Sendable ([Item]) async -> [Outcome]
    ) {
        precondition(maximumBatchSize > 0 && concurrentBatches > 0, "a batcher needs room for one batch of one")
        self.maximumBatchSize = maximumBatchSize
        self.concurrentBatches = concurrentBatches
        self.runBatch = runBatch
    }

    /// How many calls wait for a turn (for tests and diagnostics).
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// Writes `item` (in a batch with others, or alone) and returns its own outcome.
    func submit(_ item: Item) async throws -> Output {
        // A free slot is taken without suspending (a resumed continuation would cost a hop).
        if takeSlot() { return try await lead(with: item).get() }
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let leads = state.withLock { state -> Bool in
                // A batch may have finished since the check above.
                if state.batchesInFlight < concurrentBatches {
                    state.batchesInFlight += 1
                    return true
                }
                state.waiting.append(Waiter(item: item, continuation: continuation))
                return false
            }
            if leads { continuation.resume(returning: .lead) }
        }
        switch turn {
        case .done(let outcome):
            return try outcome.get()
        case .lead:
            // Also a turn handed over by a finished batch: the item left the queue then.
            return try await lead(with: item).get()
        }
    }

    private func takeSlot() -> Bool {
        state.withLock { state in
            guard state.batchesInFlight < concurrentBatches else { return false }
            state.batchesInFlight += 1
            return true
        }
    }

    /// Runs one batch: `item` plus the oldest waiting items.
    private func lead(with item: Item) async -> Outcome {
        let others = state.withLock { state -> [Waiter] in
            let count = min(state.waiting.count, maximumBatchSize - 1)
            defer { state.waiting.removeFirst(count) }
            return Array(state.waiting.prefix(count))
        }
        let items = [item] + others.map(\.item)
        // The batch runs in the leader's task, but the other items are not the leader's: if the
        // leader's run is cancelled, its waits (a pool connection, a retry's backoff) would throw
        // CancellationError for every row of the batch. So a shared batch runs in a task of its
        // own, which does not inherit the cancellation; a lone item stays on the fast path.
        let runBatch = runBatch
        let outcomes = others.isEmpty ? await runBatch(items) : await Task { await runBatch(items) }.value
        for (waiter, outcome) in zip(others, outcomes.dropFirst()) {
            waiter.continuation.resume(returning: .done(outcome))
        }
        // Hand the turn to the oldest waiter (its caller leads the next batch), or give it up.
        let next = state.withLock { state -> Waiter? in
            if state.waiting.isEmpty {
                state.batchesInFlight -= 1
                return nil
            }
            return state.waiting.removeFirst()
        }
        next?.continuation.resume(returning: .lead)
        return outcomes.first ?? .failure(SystemDatabaseError.closed)
    }
}
