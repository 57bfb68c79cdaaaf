@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// Jobs that run inline on the caller's thread when that is an idle workflow thread and the
/// connection is idle (SQLiteExecutor, PostgresOwnerThread): never on the cooperative pool, never
/// two at once on one connection, each result delivered once, and callers that arrive meanwhile
/// still queue (and, on SQLite, share one commit).
@Suite struct InlineJobTests {
    @Test func anIdleSQLiteConnectionRunsAJobInlineAndCallersMeanwhileQueueAndShareOneCommit() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let connection = try SQLiteConnection(path: directory.file("inline.sqlite"))
        try connection.execute(script: "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY)")
        let executor = SQLiteExecutor(connection: connection, name: "test-sqlite-owner")
        defer { executor.shutdown() }
        let occupancy = Occupancy()
        let release = DispatchSemaphore(value: 0)
        @Sendable func insert(_ id: Int) -> @Sendable (SQLiteConnection) throws -> Int {
            { connection in
                occupancy.enter(id, inBatch: connection.isInBatch)
                defer { occupancy.leave() }
                if id == 0 { _ = release.wait(timeout: .now() + 60) }
                try connection.writeTransaction { _ = try connection.execute("INSERT INTO t(id) VALUES (\(id))") }
                return id
            }
        }

        let workflowThreads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        defer { workflowThreads.stop() }
        let first = Task(executorPreference: workflowThreads) { try await executor.perform(insert(0)) }
        #expect(await eventually { occupancy.entries.count == 1 })
        let others = (1...20).map { id in Task { try await executor.perform(insert(id)) } }
        #expect(await eventually { executor.queuedJobCount == 20 })
        release.signal()

        #expect(try await first.value == 0)
        var delivered: [Int] = []
        for task in others { delivered.append(try await task.value) }
        #expect(delivered == Array(1...20))
        let entries = occupancy.entries
        #expect(occupancy.overlaps == 0, "two jobs used the connection at once")
        #expect(entries.count == 21)
        // Only the owner thread runs batches, so the queued jobs ran there, all on one thread.
        let queued = entries.dropFirst()
        #expect(queued.allSatisfy { $0.inBatch }, "the queued jobs did not share one commit")
        let ownerThread = queued.first?.thread
        #expect(queued.allSatisfy { $0.thread == ownerThread })
        #expect(entries.first?.id == 0 && entries.first?.thread != ownerThread, "the first job did not run inline")
        let count = try await executor.perform { connection -> Int? in
            try connection.query("SELECT count(*) AS n FROM t").first?.int("n")
        }
        #expect(count == 21)
    }

    @Test func aPostgresOwnerThreadLendsItselfInlineOnlyWhenIdleAndQueuedJobsWaitForTheInlineOne() async throws {
        let owner = PostgresOwnerThread(name: "test-pg-owner")
        defer { owner.stop() }
        let ownerThread = try await owner.run { pthread_self() }
        let occupancy = Occupancy()
        let release = DispatchSemaphore(value: 0)
        @Sendable func job(_ id: Int) -> @Sendable () -> Int {
            {
                occupancy.enter(id, inBatch: false)
                defer { occupancy.leave() }
                if id == 0 { _ = release.wait(timeout: .now() + 60) }
                return id
            }
        }

        // The inline job runs on a thread of the test's own, so blocking it holds no cooperative thread.
        let first = Task { try await runOnOwnThread { try owner.runInlineIfIdle(job(0))?.get() } }
        #expect(await eventually { occupancy.entries.count == 1 })
        #expect(owner.runInlineIfIdle(job(-1)) == nil, "a second job ran inline beside the first")
        let others = (1...10).map { id in Task { try await owner.run(job(id)) } }
        #expect(await eventually { owner.queuedJobCount == 10 })
        release.signal()

        #expect(try await first.value == 0)
        var delivered: [Int] = []
        for task in others { delivered.append(try await task.value) }
        #expect(delivered == Array(1...10))
        #expect(occupancy.overlaps == 0, "two jobs used the connection at once")
        let entries = occupancy.entries
        #expect(entries.first?.id == 0 && entries.first?.thread != ownerThread, "the first job did not run inline")
        #expect(entries.dropFirst().allSatisfy { $0.thread == ownerThread }, "a job ran inline while another one ran")
        #expect(entries.count == 11)
    }

    @Test func aJobFromTheCooperativePoolNeverRunsInlineOnAnIdleSQLiteConnection() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let connection = try SQLiteConnection(path: directory.file("pool.sqlite"))
        let executor = SQLiteExecutor(connection: connection, name: "test-sqlite-owner")
        defer { executor.shutdown() }
        let ownerThread = try await executor.perform { _ in pthread_self() }
        // A plain task runs on the cooperative pool: each of its jobs goes to the owner thread.
        for _ in 0..<20 {
            let thread = try await Task { try await executor.perform { _ in pthread_self() } }.value
            #expect(pthread_equal(thread, ownerThread) != 0, "a job ran on a cooperative thread")
        }
        // The same from a workflow thread runs inline.
        let workflowThreads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        defer { workflowThreads.stop() }
        let inline = try await Task(executorPreference: workflowThreads) {
            let caller = pthread_self()
            let thread = try await executor.perform { _ in pthread_self() }
            return (caller, thread)
        }.value
        #expect(pthread_equal(inline.0, inline.1) != 0, "an idle workflow thread handed its job off")
        #expect(pthread_equal(inline.1, ownerThread) == 0)
    }

    @Test func aWorkflowThreadMayBlockOnlyWhileNoOtherWorkWaitsForItsExecutor() async throws {
        #expect(!WorkflowThreads.mayRunBlockingJobInline, "the test's own thread counted as a workflow thread")
        let plain = await Task { WorkflowThreads.mayRunBlockingJobInline }.value
        #expect(!plain, "a cooperative thread may block")

        let threads = WorkflowThreads(threadCount: 1, name: "test-workflow")
        defer { threads.stop() }
        let alone = await Task(executorPreference: threads) { WorkflowThreads.mayRunBlockingJobInline }.value
        #expect(alone, "an idle workflow thread may not run a job inline")

        // Occupy the only thread, queue a second task behind it, then ask from the first.
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let first = Task(executorPreference: threads) { () -> Bool in
            holding.signal()
            _ = release.wait(timeout: .now() + 60)
            return WorkflowThreads.mayRunBlockingJobInline
        }
        try await runOnOwnThread { _ = holding.wait(timeout: .now() + 60) }
        let second = Task(executorPreference: threads) { WorkflowThreads.mayRunBlockingJobInline }
        #expect(await eventually { threads.queuedJobCount == 1 })
        release.signal()
        #expect(await first.value == false, "a workflow thread blocked while other work waited for it")
        #expect(await second.value == true)
    }

    @Test func tasksThatPreferStoppedWorkflowThreadsStillRun() async throws {
        let threads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        let (gate, opener) = AsyncStream<Void>.makeStream()
        let task = Task(executorPreference: threads) { () -> Int in
            for await _ in gate { break }
            return 42
        }
        threads.stop()
        opener.yield()
        #expect(await task.value == 42)
        let after = await Task(executorPreference: threads) { WorkflowThreads.mayRunBlockingJobInline }.value
        #expect(!after, "a stopped executor's job ran on a workflow thread")
    }

    @Test func aSlowOrContendedJobSendsTheNextJobsToTheOwnerThread() {
        var backoff = InlineJobBackoff()
        var allowed = backoff.allowsInline()
        #expect(allowed)
        backoff.record(.microseconds(300))
        allowed = backoff.allowsInline()
        #expect(allowed, "a quick job changed nothing")
        backoff.record(InlineJobBackoff.slowJob * 2)
        var refused = 0
        for _ in 0..<InlineJobBackoff.handOffsAfterSlowJob where !backoff.allowsInline() { refused += 1 }
        #expect(refused == InlineJobBackoff.handOffsAfterSlowJob)
        allowed = backoff.allowsInline()
        #expect(allowed, "inline again after the hand-offs")
        backoff.recordContention()
        refused = 0
        for _ in 0..<InlineJobBackoff.handOffsAfterContention where !backoff.allowsInline() { refused += 1 }
        #expect(refused == InlineJobBackoff.handOffsAfterContention)
        allowed = backoff.allowsInline()
        #expect(allowed)
    }
}

/// Records which jobs held a connection, on which thread, and whether two ever held it at once.
private final class Occupancy: Sendable {
    struct Entry: Sendable {
        let id: Int
        let thread: pthread_t
        let inBatch: Bool
    }

    private let state = Mutex((holders: 0, overlaps: 0, entries: [Entry]()))

    var entries: [Entry] { state.withLock { $0.entries } }
    var overlaps: Int { state.withLock { $0.overlaps } }

    func enter(_ id: Int, inBatch: Bool) {
        let thread = pthread_self()
        state.withLock { state in
            state.holders += 1
            if state.holders > 1 { state.overlaps += 1 }
            state.entries.append(Entry(id: id, thread: thread, inBatch: inBatch))
        }
    }

    func leave() {
        state.withLock { $0.holders -= 1 }
    }
}
