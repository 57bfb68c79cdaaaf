import Synchronization

/// Writes the step checkpoints that waited too long for their run's next durable operation.
///
/// A finished step's checkpoint is written with the run's next operation or its outcome
/// (`DBOSConfiguration.StepCheckpointWrites`); workflow code is meant to go from one durable
/// operation to the next, but it may also await something else (a plain `Task.sleep`, another
/// run's result), and a checkpoint must not wait on that. Each deferred checkpoint is watched
/// here; one task, running only while there are any, writes each about `delay` after its step
/// ended (best effort: a write that fails is left to the run). A checkpoint taken by its run
/// meanwhile is simply no longer watched.
final class DeferredCheckpointWatch: Sendable {
    private struct Watched {
        let context: WorkflowContext
        let since: ContinuousClock.Instant
    }

    private struct State {
        var watched: [ObjectIdentifier: Watched] = [:]
        var isLoopRunning = false
        var isStopped = false
    }

    private let state = Mutex(State())
    let delay: Duration

    init(delay: Duration) {
        self.delay = delay
    }

    /// How many checkpoints are watched (for tests).
    var watchedCount: Int { state.withLock { $0.watched.count } }

    /// Watches the deferred checkpoint of `context` from now on.
    func watch(_ context: WorkflowContext) {
        let startsLoop = state.withLock { state -> Bool in
            guard !state.isStopped else { return false }
            state.watched[ObjectIdentifier(context)] = Watched(context: context, since: .now)
            defer { state.isLoopRunning = true }
            return !state.isLoopRunning
        }
        if startsLoop { Task { await self.runLoop() } }
    }

    /// Stops watching `context` (its run took or wrote the checkpoint).
    func unwatch(_ context: WorkflowContext) {
        _ = state.withLock { $0.watched.removeValue(forKey: ObjectIdentifier(context)) }
    }

    /// Stops the loop; checkpoints deferred later are left to their runs (shutdown writes them).
    func stop() {
        state.withLock { state in
            state.isStopped = true
            state.watched.removeAll()
        }
    }

    /// Sleeps until the oldest watched checkpoint is due, writes every due one (at once: each is
    /// its own run's, and the database batches them), and ends when nothing is watched.
    private func runLoop() async {
        var wait = delay
        while true {
            try? await Task.sleep(for: wait)
            let due = state.withLock { state -> [WorkflowContext]? in
                guard !state.watched.isEmpty, !state.isStopped else {
                    state.isLoopRunning = false
                    return nil
                }
                let now = ContinuousClock.now
                let due = state.watched.filter { now - $0.value.since >= delay }
                for key in due.keys { state.watched.removeValue(forKey: key) }
                let oldestLeft = state.watched.values.map(\.since).min()
                wait = oldestLeft.map { max(.milliseconds(1), $0 + delay - now) } ?? delay
                return due.values.map(\.context)
            }
            guard let due else { return }
            // A write that fails or takes too long leaves the checkpoint waiting: the run's next
            // operation writes it (and reports a failure), or its outcome carries it.
            await withTaskGroup(of: Void.self) { group in
                for context in due {
                    group.addTask { await context.writeDeferredCheckpointInTaskOfItsOwn() }
                }
            }
        }
    }
}
