import Foundation
import Synchronization

/// The threads that workflow code runs on: a `TaskExecutor` the system database owns.
///
/// Every workflow task prefers this executor (`DBOSRuntime.execute`), so a workflow's code and
/// its statements can run on one thread: when a statement finds its connection idle and this
/// thread has nothing else queued, the statement's blocking call runs right here
/// (`mayRunBlockingJobInline`) instead of being handed to the connection's thread and the
/// result handed back, two thread wake-ups per statement that cost a sequential workflow more
/// than a fifth of its time on SQLite. Blocking calls therefore still never run on Swift's
/// cooperative pool, only on threads the database owns; and while other workflow work is
/// queued here, statements go to their connection's thread as before, so that work is not held
/// up and concurrent writes are still grouped into one commit.
///
/// Jobs run in the order they were queued, on `threadCount` threads. After `stop()` the threads
/// finish what is queued and end; jobs enqueued later run on the global concurrent executor, so a
/// task that still prefers this executor is never stranded.
///
/// `@unchecked Sendable` is safe because the mutable state (`jobs`, `head`, `idleThreads`,
/// `isStopped`) is only touched while holding `condition`.
final class WorkflowThreads: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    /// The index of the next job to run in `jobs` (a queue without shifting the array).
    private var head = 0
    private var idleThreads = 0
    private var isStopped = false
    private let queuedCount = Atomic<Int>(0)

    /// The thread-local marker of a workflow thread: the `WorkflowThreads` it belongs to.
    private static let currentKey: pthread_key_t = {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }()

    init(threadCount: Int, name: String) {
        precondition(threadCount > 0, "a workflow executor needs a thread")
        for index in 0..<threadCount {
            let thread = Thread { [self] in runJobs() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// The number of threads a system database gives its workflows: one per core, at least two,
    /// so that one workflow blocked in a statement leaves another thread to the rest.
    static var defaultThreadCount: Int { max(2, ProcessInfo.processInfo.activeProcessorCount) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        guard !isStopped else {
            condition.unlock()
            globalConcurrentExecutor.enqueue(job)
            return
        }
        jobs.append(job)
        queuedCount.add(1, ordering: .relaxed)
        if idleThreads > 0 { condition.signal() }
        condition.unlock()
    }

    /// How many jobs wait for a thread; for tests.
    var queuedJobCount: Int { queuedCount.load(ordering: .relaxed) }

    /// Lets the queued jobs run, then ends the threads. Later jobs run on the global executor.
    func stop() {
        condition.lock()
        isStopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// True when the calling thread is a workflow thread with no other job waiting for a thread
    /// of its executor: a blocking call made now keeps nothing else waiting, and it does not
    /// occupy a cooperative thread.
    static var mayRunBlockingJobInline: Bool {
        guard let marker = pthread_getspecific(currentKey) else { return false }
        let threads = Unmanaged<WorkflowThreads>.fromOpaque(marker).takeUnretainedValue()
        return threads.queuedCount.load(ordering: .relaxed) == 0
    }

    private func runJobs() {
        pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
        defer { pthread_setspecific(Self.currentKey, nil) }
        let executor = asUnownedTaskExecutor()
        while let job = nextJob() {
            job.runSynchronously(on: executor)
        }
    }

    /// The next job, waiting for one; nil once stopped with nothing left to run.
    private func nextJob() -> UnownedJob? {
        condition.lock()
        defer { condition.unlock() }
        while head == jobs.count {
            if isStopped { return nil }
            idleThreads += 1
            condition.wait()
            idleThreads -= 1
        }
        let job = jobs[head]
        head += 1
        queuedCount.subtract(1, ordering: .relaxed)
        // Drop the run jobs once the queue is empty, or once they are most of the array.
        if head == jobs.count {
            jobs.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= jobs.count {
            jobs.removeFirst(head)
            head = 0
        }
        return job
    }
}
