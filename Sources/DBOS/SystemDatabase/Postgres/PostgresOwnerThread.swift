import Foundation

/// A dedicated thread that runs submitted jobs one at a time, in order.
///
/// libpq calls block, and Swift's cooperative pool has only as many threads as cores (two here), so
/// a blocking `PQexecParams` there would stall unrelated tasks. Each connection owns one of these
/// threads instead; async callers suspend on a continuation until their job has run.
///
/// A caller on a thread that may block (a workflow thread, never the cooperative pool) may instead
/// run a job inline there (`runInlineIfIdle`) when nothing is queued or running here; this thread
/// then starts no job until that one is done, so jobs still never overlap.
///
/// `@unchecked Sendable` is safe because the mutable state (`jobs`, `isStopping`, `isRunningJob`,
/// `isRunningInline`, `backoff`) is only read or written while holding `condition`.
final class PostgresOwnerThread: @unchecked Sendable {
    private enum Job {
        /// Runs on the thread and returns what hands its result back, which is called only once
        /// the thread counts as idle again, so the resumed caller's next job may run inline.
        case run(@Sendable () -> @Sendable () -> Void)
        case exit(@Sendable () -> Void)
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var isStopping = false
    private var isRunningJob = false
    private var isRunningInline = false
    private var backoff = InlineJobBackoff()

    init(name: String) {
        let thread = Thread { [self] in runJobs() }
        thread.name = name
        thread.start()
    }

    /// How many jobs wait for the thread; for tests.
    var queuedJobCount: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count
    }

    /// Queues `job`; false if the thread is stopping and the job will never run.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        enqueue(.run {
            job()
            return {}
        })
    }

    private func enqueue(_ job: Job) -> Bool {
        condition.lock()
        guard !isStopping else {
            condition.unlock()
            return false
        }
        jobs.append(job)
        condition.unlock()
        // After the unlock, so the woken thread does not go back to sleep waiting for the lock.
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result to the suspended caller.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = enqueue(.run {
                let result = Result { try body() }
                return { continuation.resume(with: result) }
            })
            if !accepted { continuation.resume(throwing: PostgresError.closed()) }
        }
    }

    /// Runs `body` on the calling thread if no job is queued or running on this thread (and it is
    /// not stopping); nil if the caller must `run` it here instead. See `InlineJobBackoff` for
    /// when a slow job sends the next ones back to the thread.
    func runInlineIfIdle<T>(_ body: () throws -> T) -> Result<T, any Error>? {
        condition.lock()
        guard jobs.isEmpty, !isRunningJob, !isRunningInline, !isStopping, backoff.allowsInline() else {
            condition.unlock()
            return nil
        }
        isRunningInline = true
        condition.unlock()
        let clock = ContinuousClock()
        let start = clock.now
        let result = Result { try body() }
        let duration = clock.now - start
        condition.lock()
        isRunningInline = false
        backoff.record(duration)
        let jobsAreWaiting = !jobs.isEmpty
        condition.unlock()
        if jobsAreWaiting { condition.signal() }
        return result
    }

    /// Lets already queued jobs finish, then runs `cleanup` and ends the thread. Later submissions
    /// are refused. Safe to call more than once; only the first cleanup runs.
    func stop(then cleanup: @escaping @Sendable () -> Void = {}) {
        condition.lock()
        defer { condition.unlock() }
        guard !isStopping else { return }
        isStopping = true
        jobs.append(.exit(cleanup))
        condition.signal()
    }

    private func runJobs() {
        while true {
            condition.lock()
            while jobs.isEmpty || isRunningInline { condition.wait() }
            let job = jobs.removeFirst()
            isRunningJob = true
            condition.unlock()
            switch job {
            case .run(let body):
                let handBack = body()
                condition.lock()
                isRunningJob = false
                condition.unlock()
                handBack()
            case .exit(let cleanup):
                cleanup()
                return
            }
        }
    }
}
