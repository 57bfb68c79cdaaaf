import Foundation
import Synchronization

/// Runs every SQLite call of one connection on a thread it owns, so blocking SQLite calls
/// (a busy wait, an fsync) never occupy Swift's cooperative thread pool.
///
/// Jobs are queued under a lock and run in order by the owner thread; `perform` suspends the
/// calling task with a continuation until its job is done.
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

    /// A queued job. It runs on the owner thread only, so it may touch the connection.
    private typealias Job = @Sendable (SQLiteConnectionBox) -> Completion

    private struct State {
        var jobs: [Job] = []
        var isStopping = false
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

    /// Runs `body` on the owner thread with the connection and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
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

    private func run(_ batch: [Job]) {
        guard batch.count > 1 else {
            for job in batch { job(box).deliver() }
            return
        }
        let connection = box.connection
        do {
            try connection.beginBatch()
        } catch {
            // No shared transaction: run the jobs one by one, each committing by itself.
            for job in batch { job(box).deliver() }
            return
        }
        let completions = batch.map { $0(box) }
        do {
            try connection.commitBatch()
            for completion in completions { completion.deliver() }
        } catch {
            // Nothing of the batch was committed: every job fails, none half-succeeds.
            for completion in completions { completion.fail(error) }
        }
    }

    private func runLoop() {
        while true {
            condition.lock()
            var batch: [Job] = []
            var stopping = false
            while true {
                (batch, stopping) = state.withLock { state in
                    let jobs = state.jobs
                    state.jobs.removeAll(keepingCapacity: true)
                    return (jobs, state.isStopping)
                }
                if !batch.isEmpty || stopping { break }
                condition.wait()
            }
            condition.unlock()
            run(batch)
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
/// `@unchecked Sendable` is safe because the box is only dereferenced on the executor's owner
/// thread: jobs run there and nowhere else.
final class SQLiteConnectionBox: @unchecked Sendable {
    let connection: SQLiteConnection
    init(connection: SQLiteConnection) { self.connection = connection }
}
