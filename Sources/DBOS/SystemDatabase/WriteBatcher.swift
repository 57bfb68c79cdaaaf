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
///
/// Lingering (`submit(_:lingeringIf:)`): an item nobody in the process waits for may instead
/// wait up to `linger` for others, so that items arriving one at a time (the outcomes of runs
/// enqueued one after the other) share a commit. A flush loop, running only while items linger,
/// writes them every `linger` (items that come during a flush wait for the next round);
/// `expedite()` writes them at once (someone began to wait for one).
final class WriteBatcher<Item: Sendable, Output: Sendable>: Sendable {
    typealias Outcome = Result<Output, any Error>

    private enum Turn {
        case done(Outcome)
        case lead
        /// Lingering has stopped: submit the item as any other.
        case submit
    }

    private struct Waiter {
        let item: Item
        let continuation: CheckedContinuation<Turn, Never>
    }

    private struct State {
        var waiting: [Waiter] = []
        var batchesInFlight = 0
        /// Items waiting for the flush loop or an `expedite()`, oldest first.
        var lingering: [Waiter] = []
        var isFlushLoopRunning = false
        /// An `expedite()` flush is started and has not taken the lingering items yet.
        var isExpediting = false
        var isLingeringStopped = false
    }

    private let state = Mutex(State())
    private let maximumBatchSize: Int
    private let concurrentBatches: Int
    private let linger: Duration?
    /// Where flushes of lingering items run (the database's workflow threads, whose statements
    /// need no thread hop); nil for the global executor.
    private let flushExecutor: (any TaskExecutor)?
    private let runBatch: @Sendable ([Item]) async -> [Outcome]

    init(
        maximumBatchSize: Int, concurrentBatches: Int, linger: Duration? = nil, flushExecutor: (any TaskExecutor)? = nil,
        runBatch: @escaping @Sendable ([Item]) async -> [Outcome]
    ) {
        precondition(maximumBatchSize > 0 && concurrentBatches > 0, "a batcher needs room for one batch of one")
        precondition(linger.map { $0 > .zero } ?? true, "a linger must be longer than zero")
        self.maximumBatchSize = maximumBatchSize
        self.concurrentBatches = concurrentBatches
        self.linger = linger
        self.flushExecutor = flushExecutor
        self.runBatch = runBatch
    }

    /// How many calls wait for a turn (for tests and diagnostics).
    var waitingCount: Int { state.withLock { $0.waiting.count } }

    /// How many items linger (for tests and diagnostics).
    var lingeringCount: Int { state.withLock { $0.lingering.count } }

    /// Whether the flush loop runs (for tests): only while items linger.
    var isFlushLoopRunning: Bool { state.withLock { $0.isFlushLoopRunning } }

    /// Writes `item` like `submit(_:)`, but, when `mayLinger` says so, lets it wait up to about
    /// `linger` to share a commit with others; at once when the batcher has no linger or
    /// lingering has stopped. `mayLinger` is asked under the batcher's lock, so a caller that
    /// makes it false and then calls `expedite()` either finds the item lingering (and writes it)
    /// or keeps it from lingering at all. It must not call into the batcher.
    func submit(_ item: Item, lingeringIf mayLinger: @Sendable () -> Bool) async throws -> Output {
        guard linger != nil else { return try await submit(item) }
        let turn = await withCheckedContinuation { (continuation: CheckedContinuation<Turn, Never>) in
            let (accepted, startsLoop) = state.withLock { state -> (Bool, Bool) in
                guard !state.isLingeringStopped, mayLinger() else { return (false, false) }
                state.lingering.append(Waiter(item: item, continuation: continuation))
                defer { state.isFlushLoopRunning = true }
                return (true, !state.isFlushLoopRunning)
            }
            if !accepted { continuation.resume(returning: .submit) }
            if startsLoop { startFlush(loop: true) }
        }
        switch turn {
        case .done(let outcome):
            return try outcome.get()
        case .lead, .submit:
            return try await submit(item)
        }
    }

    /// Writes the lingering items now, without waiting for the write: a caller began to wait for
    /// one of them. Calls made while an earlier one's flush has not taken the items yet add none.
    func expedite() {
        let starts = state.withLock { state -> Bool in
            guard !state.lingering.isEmpty, !state.isExpediting else { return false }
            state.isExpediting = true
            return true
        }
        if starts { startFlush(loop: false) }
    }

    /// Writes the lingering items now and makes later `submit(_:lingeringIf:)` calls write at once
    /// (shutdown: nothing may wait for a loop about to stop).
    func stopLingering() {
        state.withLock { $0.isLingeringStopped = true }
        expedite()
    }

    /// Flushes in a task of its own: the items are not the caller's, so the caller's
    /// cancellation must not fail their writes.
    private func startFlush(loop: Bool) {
        let operation: @Sendable () async -> Void = { [self] in
            if loop { await flushLoop() } else { await flushLingering(endingLoopWhenEmpty: false) }
        }
        if let flushExecutor {
            Task(executorPreference: flushExecutor, operation: operation)
        } else {
            Task(operation: operation)
        }
    }

    /// Every `linger`, writes what lingers; ends when nothing did.
    private func flushLoop() async {
        guard let linger else { return }
        while true {
            try? await Task.sleep(for: linger)
            guard await flushLingering(endingLoopWhenEmpty: true) else { return }
        }
    }

    /// Writes the items lingering now (not those that come meanwhile: they wait for the next
    /// round), in batches of at most `maximumBatchSize`; false when none lingered (and then, for
    /// the loop, it has ended: the next lingering item starts another).
    @discardableResult
    private func flushLingering(endingLoopWhenEmpty: Bool) async -> Bool {
        let taken = state.withLock { state -> [Waiter] in
            if state.lingering.isEmpty, endingLoopWhenEmpty { state.isFlushLoopRunning = false }
            if !endingLoopWhenEmpty { state.isExpediting = false }
            defer { state.lingering.removeAll(keepingCapacity: true) }
            return state.lingering
        }
        var start = taken.startIndex
        while start < taken.endIndex {
            let batch = taken[start..<min(start + maximumBatchSize, taken.endIndex)]
            let outcomes = await runBatch(batch.map(\.item))
            for (waiter, outcome) in zip(batch, outcomes) { waiter.continuation.resume(returning: .done(outcome)) }
            // `runBatch` owes one outcome per item; a short answer must not strand a caller.
            for waiter in batch.dropFirst(outcomes.count) {
                waiter.continuation.resume(returning: .done(.failure(SystemDatabaseError.closed)))
            }
            start = batch.endIndex
        }
        return !taken.isEmpty
    }

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
        case .lead, .submit:
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
