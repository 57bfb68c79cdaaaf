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

    init(connection: SQLiteConnection, name: String) {
        box = SQLiteConnectionBox(connection: connection)
        let thread = Thread { [self] in runLoop() }
        thread.name = name
        thread.start()
    }

    /// How many jobs wait for the owner thread; for tests.
    var queuedJobCount: Int { state.withLock { $0.jobs.count } }

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
            guard state.jobs.isEmpty, !state.isRunningBatch, !state.isRunningInline, !state.isStopping else {
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
            return !state.jobs.isEmpty || state.isStopping
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
        let completions = batch.map { $0(box) }
        do {
            try connection.commitBatch()
            return completions.map(\.deliver)
        } catch {
            // Nothing of the batch was committed: every job fails, none half-succeeds.
            return completions.map { completion in { completion.fail(error) } }
        }
    }

    private func runLoop() {
        while true {
            condition.lock()
            var batch: [Job] = []
            var stopping = false
            while true {
                (batch, stopping) = state.withLock { state in
                    // An inline job has the connection: wait for it (it signals when done).
                    guard !state.isRunningInline else { return ([], false) }
                    let jobs = state.jobs
                    state.jobs.removeAll(keepingCapacity: true)
                    state.isRunningBatch = !jobs.isEmpty
                    if jobs.count > 1 { state.backoff.recordContention() }
                    return (jobs, state.isStopping)
                }
                if !batch.isEmpty || stopping { break }
                condition.wait()
            }
            condition.unlock()
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
