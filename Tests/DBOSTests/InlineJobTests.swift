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

    @Test func aWorkflowThreadMayBlockOnlyWhileNoOtherWorkWaitsAndNeverAllOfThemAtOnce() async throws {
        func mayBlock() -> Bool {
            guard let slot = WorkflowThreads.reserveInlineSlot() else { return false }
            slot.release()
            return true
        }
        #expect(!mayBlock(), "the test's own thread counted as a workflow thread")
        let plain = await Task { mayBlock() }.value
        #expect(!plain, "a cooperative thread may block")

        let threads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        defer { threads.stop() }
        let alone = await Task(executorPreference: threads) { mayBlock() }.value
        #expect(alone, "an idle workflow thread may not run a job inline")

        // One thread holds the only slot of two threads (one must stay free)...
        let holding = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holder = Task(executorPreference: threads) { () -> Bool in
            guard let slot = WorkflowThreads.reserveInlineSlot() else { return false }
            holding.signal()
            _ = release.wait(timeout: .now() + 60)
            slot.release()
            return true
        }
        try await runOnOwnThread { _ = holding.wait(timeout: .now() + 60) }
        let other = await Task(executorPreference: threads) { mayBlock() }.value
        #expect(!other, "both workflow threads could block at once")
        // ...and with the other thread busy too, a queued job keeps the holder from blocking again.
        let busy = DispatchSemaphore(value: 0)
        let freeBusy = DispatchSemaphore(value: 0)
        let occupier = Task(executorPreference: threads) {
            busy.signal()
            _ = freeBusy.wait(timeout: .now() + 60)
        }
        try await runOnOwnThread { _ = busy.wait(timeout: .now() + 60) }
        let queued = Task(executorPreference: threads) { mayBlock() }
        #expect(await eventually { threads.queuedJobCount == 1 })
        release.signal()
        #expect(await holder.value)
        freeBusy.signal()
        await occupier.value
        #expect(await queued.value, "the slot was not given back")
    }

    @Test(.timeLimit(.minutes(1)))
    func tasksThatPreferStoppedWorkflowThreadsStillRun() async throws {
        let threads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        let (gate, opener) = AsyncStream<Void>.makeStream()
        let task = Task(executorPreference: threads) { () -> Int in
            for await _ in gate { break }
            return 42
        }
        threads.stop()
        opener.yield()
        #expect(await task.value == 42)
        let after = await Task(executorPreference: threads) { WorkflowThreads.isWorkflowThread }.value
        #expect(!after, "a stopped executor's job ran on a workflow thread")
    }

    @Test func aSlowInlineSQLiteJobSendsTheNextJobsToTheOwnerThread() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let connection = try SQLiteConnection(path: directory.file("slow.sqlite"))
        let executor = SQLiteExecutor(connection: connection, name: "test-sqlite-owner")
        defer { executor.shutdown() }
        let ownerThread = try await executor.perform { _ in pthread_self() }
        let threads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        defer { threads.stop() }
        let ran = try await Task(executorPreference: threads) { () -> [Bool] in
            var inline: [Bool] = []
            let slow = try await executor.perform { _ -> pthread_t in
                usleep(UInt32(InlineJobBackoff.slowJob.components.attoseconds / 1_000_000_000_000 * 3))
                return pthread_self()
            }
            inline.append(pthread_equal(slow, ownerThread) == 0)
            for _ in 0..<InlineJobBackoff.handOffsAfterSlowJob + 1 {
                let thread = try await executor.perform { _ in pthread_self() }
                inline.append(pthread_equal(thread, ownerThread) == 0)
            }
            return inline
        }.value
        #expect(ran.first == true, "the slow job did not run inline")
        #expect(ran.dropFirst().prefix(InlineJobBackoff.handOffsAfterSlowJob).allSatisfy { !$0 },
            "a job ran inline right after a slow one")
        #expect(ran.last == true, "jobs never ran inline again")
    }

    @Test func aPostgresStatementRunsInlineOnlyFromAnIdleWorkflowThread() async throws {
        let setup = try await TestRuntime(.postgres)
        defer { setup.directory.remove() }
        _ = try await PostgresConnection.createDatabaseIfMissing(PostgresURL(setup.url))
        let connection = try await PostgresConnection.connect(PostgresURL(setup.url))
        defer { connection.close() }
        @Sendable func statementThread() async throws -> pthread_t {
            try await connection.session { transaction in
                _ = try transaction.query("SELECT 1 AS one")
                return pthread_self()
            }
        }
        let ownerThread = try await statementThread()
        let fromPool = try await Task { try await statementThread() }.value
        #expect(pthread_equal(fromPool, ownerThread) != 0, "a statement ran on a cooperative thread")
        let threads = WorkflowThreads(threadCount: 2, name: "test-workflow")
        defer { threads.stop() }
        let fromWorkflow = try await Task(executorPreference: threads) { () -> (pthread_t, pthread_t) in
            (pthread_self(), try await statementThread())
        }.value
        #expect(pthread_equal(fromWorkflow.0, fromWorkflow.1) != 0, "an idle workflow thread handed its statement off")
    }

    @Test(arguments: Backend.allCases)
    func workflowCodeAndItsStepsRunOnTheDatabasesWorkflowThreads(backend: Backend) async throws {
        try await withLaunchedRuntime(backend) { runtime in
            try runtime.register("where") { (context: WorkflowContext, _: Int) -> [Bool] in
                let body = WorkflowThreads.isWorkflowThread
                let step = try await context.runStep("step") { WorkflowThreads.isWorkflowThread }
                let child = await withTaskGroup(of: Bool.self) { group in
                    group.addTask { WorkflowThreads.isWorkflowThread }
                    return await group.next() ?? false
                }
                return [body, step, child]
            }
        } test: { runtime, workflow in
            let ran: [Bool] = try await runtime.runWorkflow(workflow, input: 0)
            #expect(ran == [true, true, true], "workflow body, step, child task on a workflow thread")
            #expect(!WorkflowThreads.isWorkflowThread)
        }
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
