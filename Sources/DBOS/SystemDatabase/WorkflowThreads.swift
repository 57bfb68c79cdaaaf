import Foundation
import Synchronization

/// The threads that workflow code runs on: a `TaskExecutor` the system database owns.
///
/// Every workflow task prefers this executor (`DBOSRuntime.execute`), so a workflow's code and
/// its statements can run on one thread: when a statement finds its connection idle and this
/// thread may block (`reserveInlineSlot`), the statement's blocking call runs right here instead
/// of being handed to the connection's thread and the result handed back, two thread wake-ups per
/// statement that cost a sequential workflow about a fifth of its time on SQLite. Blocking calls
/// therefore still never run on Swift's cooperative pool, only on threads the database owns.
///
/// A workflow thread may block only while no other job waits for one of these threads (that work
/// is not held up, and concurrent writes are still grouped into one commit by the connection's
/// thread), and never all of them at once: one thread always stays free for the rest, even when a
/// server stalls or another process holds a lock for long.
///
/// Jobs start in the order they were queued (first in, first out: task priorities are not looked
/// at), on `threadCount` threads, which start with the first job. After `stop()`, or once the
/// executor is released, the threads finish what is queued and end; jobs enqueued later run on the
/// global concurrent executor, so a task that still prefers this executor is never stranded.
final class WorkflowThreads: TaskExecutor, Sendable {
    private let core: Core

    init(threadCount: Int, name: String) {
        precondition(threadCount > 0, "a workflow executor needs a thread")
        core = Core(threadCount: threadCount, name: name)
    }

    deinit { core.stop() }

    /// The number of threads a system database gives its workflows: one per core, at least two,
    /// so that one workflow blocked in a statement leaves another thread to the rest.
    static var defaultThreadCount: Int { max(2, ProcessInfo.processInfo.activeProcessorCount) }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if !core.append(job, executor: asUnownedTaskExecutor()) { globalConcurrentExecutor.enqueue(job) }
    }

    /// Runs `body`, holding back until it returns the thread wake-ups that jobs it enqueues on
    /// any `WorkflowThreads` would make. For code that starts tasks on these threads while it
    /// holds a lock: a thread woken then can take the waker's core (two cores) and reach for the
    /// same lock, spinning while its holder waits for a core. On PostgreSQL, runs started under
    /// `DBOSRuntime`'s lock this way made queue1 about 15 % slower, a twelfth of the process's time
    /// spent spinning in `Mutex`. `body` is synchronous, so it runs on one thread; nested calls
    /// wake at the end of the outermost.
    static func withWakeupsDeferred<T, Failure: Error>(_ body: () throws(Failure) -> T) throws(Failure) -> T {
        guard pthread_getspecific(WakeupDeferral.currentKey) == nil else { return try body() }
        let deferral = WakeupDeferral()
        pthread_setspecific(WakeupDeferral.currentKey, Unmanaged.passUnretained(deferral).toOpaque())
        defer {
            pthread_setspecific(WakeupDeferral.currentKey, nil)
            for core in deferral.cores { core.wakeThread() }
        }
        return try body()
    }

    /// A new key for a thread-local value (never deleted: the keys are static).
    fileprivate static func newThreadKey() -> pthread_key_t {
        var key = pthread_key_t()
        let status = pthread_key_create(&key, nil)
        precondition(status == 0, "pthread_key_create failed: \(status)")
        return key
    }

    /// The wake-ups held back on one thread by `withWakeupsDeferred`.
    fileprivate final class WakeupDeferral {
        static let currentKey: pthread_key_t = WorkflowThreads.newThreadKey()

        /// The deferral of the calling thread, if it defers.
        static var current: WakeupDeferral? {
            pthread_getspecific(currentKey).map { Unmanaged<WakeupDeferral>.fromOpaque($0).takeUnretainedValue() }
        }

        var cores: [Core] = []
    }

    /// Lets the queued jobs run, then ends the threads. Later jobs run on the global executor.
    func stop() {
        core.stop()
    }

    /// How many jobs wait for a thread; for tests.
    var queuedJobCount: Int { core.queuedCount.load(ordering: .relaxed) }

    /// How many threads wait for a job; for tests.
    var idleThreadCount: Int { core.idleThreadCount }

    /// True on a thread of any `WorkflowThreads`.
    static var isWorkflowThread: Bool { pthread_getspecific(Core.currentKey) != nil }

    /// Reserves the right to make one blocking call on the calling thread: granted only on a
    /// workflow thread, while no other job waits for its executor's threads and at least one other
    /// of them is not blocked inline. Returns the slot to release when the call is done, or nil
    /// (then hand the call to a thread of its own).
    static func reserveInlineSlot() -> InlineSlot? {
        guard let marker = pthread_getspecific(Core.currentKey) else { return nil }
        let core = Unmanaged<Core>.fromOpaque(marker).takeUnretainedValue()
        return core.reserveInlineSlot() ? InlineSlot(core: core) : nil
    }

    /// A reserved inline call; `release()` it once the call returned.
    struct InlineSlot {
        fileprivate let core: Core

        func release() {
            core.inlineCount.subtract(1, ordering: .releasing)
        }
    }

    /// The queue and the threads. The threads hold the core, not the executor, so releasing the
    /// executor (`deinit`) can stop them.
    ///
    /// `@unchecked Sendable` is safe because the mutable state (`jobs`, `head`, `idleThreads`,
    /// `startedThreads`, `isStopped`) is only touched while holding `condition`; the counters are atomic.
    fileprivate final class Core: @unchecked Sendable {
        /// The thread-local marker of a workflow thread: the `Core` it belongs to.
        static let currentKey: pthread_key_t = WorkflowThreads.newThreadKey()

        let threadCount: Int
        let name: String
        let queuedCount = Atomic<Int>(0)
        let inlineCount = Atomic<Int>(0)
        private let condition = NSCondition()
        private var jobs: [UnownedJob] = []
        /// The index of the next job to run in `jobs` (a queue without shifting the array).
        private var head = 0
        private var idleThreads = 0
        private var startedThreads = 0
        private var isStopped = false

        init(threadCount: Int, name: String) {
            self.threadCount = threadCount
            self.name = name
        }

        /// Queues `job`, starting the threads with the first one; false once stopped.
        func append(_ job: UnownedJob, executor: UnownedTaskExecutor) -> Bool {
            condition.lock()
            guard !isStopped else {
                condition.unlock()
                return false
            }
            jobs.append(job)
            queuedCount.add(1, ordering: .relaxed)
            var wakesThread = false
            if startedThreads < threadCount {
                while startedThreads < threadCount {
                    let thread = Thread { [self] in runJobs(on: executor) }
                    thread.name = "\(name)-\(startedThreads)"
                    thread.start()
                    startedThreads += 1
                }
            } else {
                wakesThread = idleThreads > 0
            }
            condition.unlock()
            // Signalled after the unlock: a thread woken while the lock is still held would wake
            // only to wait for the lock, one more sleep and wake-up per job.
            if wakesThread {
                if let deferral = WakeupDeferral.current { deferral.cores.append(self) } else { wakeThread() }
            }
            return true
        }

        var idleThreadCount: Int {
            condition.lock()
            defer { condition.unlock() }
            return idleThreads
        }

        /// Wakes an idle thread, if one waits, for a job queued before.
        func wakeThread() {
            condition.signal()
        }

        func stop() {
            condition.lock()
            isStopped = true
            condition.broadcast()
            condition.unlock()
        }

        func reserveInlineSlot() -> Bool {
            guard queuedCount.load(ordering: .relaxed) == 0 else { return false }
            var current = inlineCount.load(ordering: .relaxed)
            while current < threadCount - 1 {
                let (exchanged, original) = inlineCount.compareExchange(
                    expected: current, desired: current + 1, ordering: .acquiringAndReleasing)
                if exchanged { return true }
                current = original
            }
            return false
        }

        private func runJobs(on executor: UnownedTaskExecutor) {
            pthread_setspecific(Self.currentKey, Unmanaged.passUnretained(self).toOpaque())
            defer { pthread_setspecific(Self.currentKey, nil) }
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
            // Drop the jobs already taken once the queue is empty, or once they are most of the array.
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
}
