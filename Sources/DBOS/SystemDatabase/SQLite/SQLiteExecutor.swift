import CSQLite
import Foundation
import Synchronization

/// Runs the SQLite calls of one connection one job at a time, either on the calling thread (a
/// workflow thread that may block, while the connection is idle) or on a thread the executor owns.
///
/// Inline: a job whose caller holds an inline slot (`WorkflowThreads.reserveInlineSlot`) and
/// that finds nothing queued, no batch running and no other inline job runs at once on the
/// caller's thread and commits by itself, like a batch of one. This saves the two thread wake-ups
/// of a hand-off (caller to owner thread, result back to the caller), which are most of a short
/// statement's cost when one workflow writes at a time. Workflow threads belong to the system
/// database, so a blocking call there never holds a cooperative thread. A busy wait (another
/// process holds the write lock: up to the 5 s busy timeout) or a slow fsync holds the workflow
/// thread that long, so after a slow inline job, or after callers had to queue, the next jobs go
/// through the owner thread for a while (`InlineJobBackoff`). Inline jobs never wait for each
/// other (the one that loses the race queues), and the owner thread starts no batch while one runs.
///
/// Queued: jobs are queued under a lock and run in order by the owner thread; `perform` suspends
/// the calling task with a continuation until its job is done.
///
/// Group commit: when several jobs are waiting, the thread runs them all inside one write
/// transaction (each job's own transaction becomes a savepoint) and commits once, so concurrent
/// workflows share one fsync. A job's caller resumes only after that commit.
///
/// Deferred: a job may instead wait up to `deferLimit` for the next batch (`perform(deferringIf:_:)`,
/// the outcome of a run nobody in the process waits for), so that writes arriving one after the
/// other (an enqueue, then the outcome of the run it started, then the next enqueue) share one
/// commit instead of paying one fsync each. Deferred jobs run first in the next batch the owner
/// thread runs, at the latest when the oldest has waited `deferLimit`, or at once after
/// `expediteDeferred()`. While any wait, no job runs inline: it queues, and shares their commit.
final class SQLiteExecutor: Sendable {
    /// What to do with a job's outcome once the batch it ran in is committed (or failed).
    private struct Completion {
        let deliver: @Sendable () -> Void
        let fail: @Sendable (any Error) -> Void
    }

    /// A queued job. It runs on the owner thread, which holds the connection while it runs.
    private typealias Job = @Sendable (SQLiteConnectionBox) -> Completion

    private struct State {
        var jobs: [Job] = []
        /// Jobs waiting to share the next batch's commit, oldest first, and since when the oldest waits.
        var deferred: [Job] = []
        var oldestDeferredSince: ContinuousClock.Instant?
        /// `expediteDeferred()` was called: the owner thread runs the deferred jobs at once.
        var isExpeditingDeferred = false
        var isDeferringStopped = false
        /// The owner thread sleeps with no deadline: a first deferred job must wake it to set one.
        var isOwnerSleepingIndefinitely = false
        /// The owner thread found an inline job running and sleeps until it signals.
        var isOwnerWaitingForInline = false
        var isStopping = false
        /// The owner thread is running a batch.
        var isRunningBatch = false
        /// A caller is running a job inline.
        var isRunningInline = false
        var backoff = InlineJobBackoff()
    }

    private let state = Mutex(State())
    private let condition = NSCondition()
    private let box: SQLiteConnectionBox
    private let finished = NSCondition()
    private let threadDone = Mutex(false)
    /// How long a deferred job may wait for a batch; nil: jobs are never deferred.
    private let deferLimit: Duration?

    init(connection: SQLiteConnection, name: String, deferLimit: Duration? = nil) {
        precondition(deferLimit.map { $0 > .zero } ?? true, "a deferral must be longer than zero")
        box = SQLiteConnectionBox(connection: connection)
        self.deferLimit = deferLimit
        let thread = Thread { [self] in runLoop() }
        thread.name = name
        thread.start()
    }

    /// How many jobs wait for the owner thread; for tests.
    var queuedJobCount: Int { state.withLock { $0.jobs.count } }

    /// Whether `perform(deferringIf:_:)` may defer jobs at all.
    var defersJobs: Bool { deferLimit != nil }

    /// How many deferred jobs wait for a batch; for tests.
    var deferredJobCount: Int { state.withLock { $0.deferred.count } }

    /// Runs `body` like `perform(_:)`, but, when `mayDefer` says so, lets it wait up to the
    /// executor's `deferLimit` to share the next batch's commit; at once when the executor has no
    /// limit or deferring has stopped. `mayDefer` is asked under the executor's lock, so a caller
    /// that makes it false and then calls `expediteDeferred()` either finds the job deferred (and
    /// runs it) or keeps it from being deferred at all. It must not call into the executor.
    func perform<T: Sendable>(
        deferringIf mayDefer: @Sendable () -> Bool, _ body: @escaping @Sendable (SQLiteConnection) throws -> T
    ) async throws -> T {
        guard deferLimit != nil else { return try await perform(body) }
        let deferredResult = await withCheckedContinuation { (continuation: CheckedContinuation<Result<T, any Error>?, Never>) in
            let job: Job = { box in
                let result = Result { try body(box.connection) }
                return Completion(
                    deliver: { continuation.resume(returning: result) },
                    fail: { continuation.resume(returning: .failure($0)) })
            }
            let (deferred, wakesOwner) = state.withLock { state -> (Bool, Bool) in
                guard !state.isStopping, !state.isDeferringStopped, mayDefer() else { return (false, false) }
                if state.deferred.isEmpty { state.oldestDeferredSince = .now }
                state.deferred.append(job)
                return (true, state.deferred.count == 1 && state.isOwnerSleepingIndefinitely)
            }
            if !deferred { continuation.resume(returning: nil) }
            if wakesOwner { signalOwner() }
        }
        if let deferredResult { return try deferredResult.get() }
        return try await perform(body)
    }

    /// Runs the deferred jobs now, without waiting for them: a caller began to wait for one.
    func expediteDeferred() {
        let wakesOwner = state.withLock { state -> Bool in
            guard !state.deferred.isEmpty, !state.isExpeditingDeferred else { return false }
            state.isExpeditingDeferred = true
            return true
        }
        if wakesOwner { signalOwner() }
    }

    /// Runs the deferred jobs now and makes later `perform(deferringIf:_:)` calls run at once
    /// (shutdown: nothing may wait for a thread about to stop).
    func stopDeferring() {
        state.withLock { $0.isDeferringStopped = true }
        expediteDeferred()
    }

    private func signalOwner() {
        condition.lock()
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` with the connection (inline when it is idle, else on the owner thread) and
    /// returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        if let result = performInlineIfIdle(body) { return try result.get() }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job: Job = { box in
                let result = Result { try body(box.connection) }
                return Completion(
                    deliver: { continuation.resume(with: result) },
                    fail: { continuation.resume(throwing: $0) })
            }
            let accepted = state.withLock { state -> Bool in
                guard !state.isStopping else { return false }
                state.jobs.append(job)
                return true
            }
            guard accepted else {
                continuation.resume(throwing: SystemDatabaseError.closed)
                return
            }
            condition.lock()
            condition.signal()
            condition.unlock()
        }
    }

    /// Runs `body` on the calling thread if that is an idle workflow thread and nothing else uses
    /// the connection; nil if it must queue.
    private func performInlineIfIdle<T>(_ body: (SQLiteConnection) throws -> T) -> Result<T, any Error>? {
        guard let slot = WorkflowThreads.reserveInlineSlot() else { return nil }
        defer { slot.release() }
        let claimed = state.withLock { state -> Bool in
            // Deferred jobs wait for the owner's next batch: a job that went inline instead would
            // overtake them (and, with steady inline traffic, keep them waiting past their limit).
            guard state.jobs.isEmpty, state.deferred.isEmpty, !state.isRunningBatch, !state.isRunningInline,
                !state.isStopping
            else {
                return false
            }
            guard state.backoff.allowsInline() else { return false }
            state.isRunningInline = true
            return true
        }
        guard claimed else { return nil }
        let clock = ContinuousClock()
        let start = clock.now
        let result = Result { try body(box.connection) }
        let duration = clock.now - start
        let ownerHasWork = state.withLock { state -> Bool in
            state.isRunningInline = false
            state.backoff.record(duration)
            if !state.jobs.isEmpty { state.backoff.recordContention() }
            defer { state.isOwnerWaitingForInline = false }
            return !state.jobs.isEmpty || state.isStopping || state.isOwnerWaitingForInline
        }
        if ownerHasWork {
            condition.lock()
            condition.signal()
            condition.unlock()
        }
        return result
    }

    /// Finishes the queued jobs, closes the connection and ends the thread.
    func shutdown() {
        state.withLock { $0.isStopping = true }
        condition.lock()
        condition.signal()
        condition.unlock()
        finished.lock()
        while !threadDone.withLock({ $0 }) { finished.wait() }
        finished.unlock()
    }

    /// Runs a batch and returns what resumes its callers: they are resumed only once the batch no
    /// longer holds the connection, so a resumed caller's next job may run inline at once.
    private func run(_ batch: [Job]) -> [@Sendable () -> Void] {
        guard batch.count > 1 else { return batch.map { $0(box).deliver } }
        let connection = box.connection
        do {
            try connection.beginBatch()
        } catch {
            // No shared transaction: run the jobs one by one, each committing by itself.
            return batch.map { $0(box).deliver }
        }
        var completions: [Completion] = []
        for (index, job) in batch.enumerated() {
            completions.append(job(box))
            guard connection.isInTransaction else {
                // SQLite rolled the shared transaction back by itself (a full disk, an I/O error):
                // what the jobs before wrote is gone, whatever their savepoints said, so they fail;
                // the job that hit the error reports its own; the rest commit each by themselves.
                connection.abandonBatch()
                let rolledBack = SQLiteError(
                    code: SQLITE_ABORT,
                    message: "the write was rolled back with the commit it shared, when another write in it failed",
                    statement: nil)
                let lost: [@Sendable () -> Void] = completions.dropLast().map { completion in { completion.fail(rolledBack) } }
                return lost + [completions[index].deliver] + batch[(index + 1)...].map { $0(box).deliver }
            }
        }
        do {
            try connection.commitBatch()
            return completions.map(\.deliver)
        } catch {
            // Nothing of the batch was committed: every job fails, none half-succeeds.
            return completions.map { completion in { completion.fail(error) } }
        }
    }

    /// What the owner thread does next: run a batch, or sleep until a deadline or a signal.
    private enum Step {
        case run([Job], stopping: Bool)
        case sleep(until: ContinuousClock.Instant?)
    }

    /// Takes the next batch: the queued jobs, with the deferred ones first, when there are queued
    /// jobs to share a commit with, or when the oldest has waited `deferLimit`, or when expedited
    /// or stopping. Without a batch, says how long to sleep: until the oldest deferred job is due;
    /// right after a batch, at most `deferLimit` (a deferred job arriving meanwhile needs no
    /// wake-up of its own); otherwise until signalled.
    private func nextStep(afterBatch: Bool) -> Step {
        state.withLock { state in
            state.isOwnerSleepingIndefinitely = false
            // An inline job has the connection: wait for it (it signals when done).
            guard !state.isRunningInline else {
                state.isOwnerWaitingForInline = true
                return .sleep(until: nil)
            }
            let now = ContinuousClock.now
            var oldestIsDue = true
            if let since = state.oldestDeferredSince, let deferLimit { oldestIsDue = since + deferLimit <= now }
            let deferredDue =
                !state.deferred.isEmpty
                && (!state.jobs.isEmpty || state.isExpeditingDeferred || state.isStopping || oldestIsDue)
            var batch: [Job] = []
            if deferredDue {
                batch = state.deferred
                state.deferred.removeAll(keepingCapacity: true)
                state.oldestDeferredSince = nil
                state.isExpeditingDeferred = false
            }
            if state.jobs.count > 1 { state.backoff.recordContention() }
            batch += state.jobs
            state.jobs.removeAll(keepingCapacity: true)
            state.isRunningBatch = !batch.isEmpty
            if !batch.isEmpty || state.isStopping { return .run(batch, stopping: state.isStopping) }
            if let since = state.oldestDeferredSince, let deferLimit { return .sleep(until: since + deferLimit) }
            if afterBatch, let deferLimit { return .sleep(until: now + deferLimit) }
            state.isOwnerSleepingIndefinitely = true
            return .sleep(until: nil)
        }
    }

    private func runLoop() {
        var afterBatch = false
        while true {
            condition.lock()
            var batch: [Job] = []
            var stopping = false
            waiting: while true {
                switch nextStep(afterBatch: afterBatch) {
                case .run(let jobs, let isStopping):
                    (batch, stopping) = (jobs, isStopping)
                    break waiting
                case .sleep(let deadline):
                    // Slept once since the batch: from now on, until signalled or a deferred job is due.
                    afterBatch = false
                    if let deadline {
                        // NSCondition waits on the wall clock: in slices, so that a clock set back
                        // cannot stretch a deadline of the continuous clock.
                        let seconds = min((deadline - .now).seconds, 0.05)
                        if seconds > 0 { _ = condition.wait(until: Date(timeIntervalSinceNow: seconds)) }
                    } else {
                        condition.wait()
                    }
                }
            }
            condition.unlock()
            afterBatch = !batch.isEmpty
            let resumptions = run(batch)
            if !batch.isEmpty { state.withLock { $0.isRunningBatch = false } }
            for resume in resumptions { resume() }
            if stopping && batch.isEmpty { break }
        }
        box.connection.close()
        finished.lock()
        threadDone.withLock { $0 = true }
        finished.broadcast()
        finished.unlock()
    }
}

/// Carries the connection into jobs.
///
/// `@unchecked Sendable` is safe because the box is only dereferenced by the one job that holds the
/// connection: a batch on the owner thread or a single inline job, never two at once (`State`).
final class SQLiteConnectionBox: @unchecked Sendable {
    let connection: SQLiteConnection
    init(connection: SQLiteConnection) { self.connection = connection }
}
