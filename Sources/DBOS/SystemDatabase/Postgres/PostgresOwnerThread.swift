import Foundation

/// A dedicated thread that runs submitted jobs one at a time, in order.
///
/// libpq calls block, and Swift's cooperative pool has only as many threads as cores (two here), so
/// a blocking `PQexecParams` there would stall unrelated tasks. Each connection owns one of these
/// threads instead; async callers suspend on a continuation until their job has run.
///
/// `@unchecked Sendable` is safe because the mutable state (`jobs`, `isStopping`) is only read or
/// written while holding `condition`.
final class PostgresOwnerThread: @unchecked Sendable {
    private enum Job {
        case run(@Sendable () -> Void)
        case exit(@Sendable () -> Void)
    }

    private let condition = NSCondition()
    private var jobs: [Job] = []
    private var isStopping = false

    init(name: String) {
        let thread = Thread { [self] in runJobs() }
        thread.name = name
        thread.start()
    }

    /// Queues `job`; false if the thread is stopping and the job will never run.
    @discardableResult
    func submit(_ job: @escaping @Sendable () -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !isStopping else { return false }
        jobs.append(.run(job))
        condition.signal()
        return true
    }

    /// Runs `body` on the thread and returns its result to the suspended caller.
    func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = submit { continuation.resume(with: Result { try body() }) }
            if !accepted { continuation.resume(throwing: PostgresError.closed()) }
        }
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
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            switch job {
            case .run(let body):
                body()
            case .exit(let cleanup):
                cleanup()
                return
            }
        }
    }
}
