@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// The outcome of a run nobody in the process awaits may wait up to the step-checkpoint delay to
/// share a commit (`SystemDatabase.completeWorkflow(mayLinger:)`): on PostgreSQL with other
/// outcomes (`WriteBatcher.submit(_:lingeringIf:)`), on SQLite with the writer thread's next
/// write (`SQLiteExecutor.perform(deferringIf:_:)`). These tests hold outcomes for an hour, so
/// that only what ends the wait (a `result()`, an awaited or queued run, shutdown) can end it.
@Suite(.timeLimit(.minutes(2)))
struct OutcomeLingerTests {
    // MARK: The batcher

    @Test func lingeringItemsWaitForOneAnotherAndShareOneBatchEachWithItsOwnOutcome() async throws {
        let batches = Mutex<[[Int]]>([])
        let batcher = WriteBatcher<Int, Int>(maximumBatchSize: 100, concurrentBatches: 2, linger: .seconds(3600)) { items in
            batches.withLock { $0.append(items) }
            return items.map { $0.isMultiple(of: 2) ? .success($0 * 10) : .failure(WorkflowError.notLaunched) }
        }
        let tasks = (0..<5).map { item in Task { try await batcher.submit(item, lingeringIf: { true }) } }
        #expect(await eventually { batcher.lingeringCount == 5 })
        try await Task.sleep(for: .milliseconds(100))
        #expect(batches.withLock { $0.isEmpty }, "an item was written before anything asked for it")
        batcher.expedite()
        for (item, task) in tasks.enumerated() {
            if item.isMultiple(of: 2) {
                #expect(try await task.value == item * 10)
            } else {
                await #expect(throws: WorkflowError.self) { try await task.value }
            }
        }
        #expect(batches.withLock { $0.map { $0.sorted() } } == [[0, 1, 2, 3, 4]])
    }

    @Test func theFlushLoopWritesLingeringItemsByItselfAndStopsWhenNoneAreLeft() async throws {
        let written = Mutex<[Int]>([])
        let batcher = WriteBatcher<Int, Int>(maximumBatchSize: 2, concurrentBatches: 1, linger: .milliseconds(20)) { items in
            written.withLock { $0 += items }
            return items.map { .success($0) }
        }
        // Five items, more than a batch: the loop writes them all, in batches of two.
        let values = try await withThrowingTaskGroup(of: Int.self) { group in
            for item in 0..<5 { group.addTask { try await batcher.submit(item, lingeringIf: { true }) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(values.sorted() == [0, 1, 2, 3, 4])
        #expect(written.withLock { $0.sorted() } == [0, 1, 2, 3, 4])
        // With nothing left to write, the loop ends; a later item starts it again.
        #expect(await eventually { !batcher.isFlushLoopRunning })
        #expect(try await batcher.submit(9, lingeringIf: { true }) == 9)
        #expect(await eventually { !batcher.isFlushLoopRunning })
    }

    @Test func anItemWhoseCallerSaysNoIsWrittenAtOnce() async throws {
        let batcher = WriteBatcher<Int, Int>(maximumBatchSize: 100, concurrentBatches: 2, linger: .seconds(3600)) { items in
            items.map { .success($0) }
        }
        #expect(try await batcher.submit(3, lingeringIf: { false }) == 3)
        #expect(!batcher.isFlushLoopRunning)
    }

    @Test func afterLingeringStopsWhatLingersIsWrittenAndLaterItemsAreWrittenAtOnce() async throws {
        let batcher = WriteBatcher<Int, Int>(maximumBatchSize: 100, concurrentBatches: 2, linger: .seconds(3600)) { items in
            items.map { .success($0 + 1) }
        }
        let held = (0..<2).map { item in Task { try await batcher.submit(item, lingeringIf: { true }) } }
        #expect(await eventually { batcher.lingeringCount == 2 })
        batcher.stopLingering()
        #expect(try await held[0].value == 1)
        #expect(try await held[1].value == 2)
        // Held for an hour, it would time out here.
        #expect(try await batcher.submit(41, lingeringIf: { true }) == 42)
    }

    // MARK: SQLite's writer thread

    /// What a test job saw when it ran.
    private struct JobRun: Sendable, Equatable {
        let id: Int
        let inBatch: Bool
        let onWorkflowThread: Bool
    }

    /// The jobs that ran, in order.
    private final class JobLog: Sendable {
        private let state = Mutex<[JobRun]>([])
        var runs: [JobRun] { state.withLock { $0 } }
        func append(_ run: JobRun) { state.withLock { $0.append(run) } }
    }

    /// An executor on a fresh WAL database with a table `t`, deferring jobs up to `deferLimit`;
    /// `insert(id)` is a job that inserts row `id` in a transaction of its own and logs how it ran.
    private func withExecutor(
        deferLimit: Duration,
        _ test: (SQLiteExecutor, _ insert: @escaping @Sendable (Int) -> @Sendable (SQLiteConnection) throws -> JobRun, _ log: JobLog) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let connection = try SQLiteConnection(path: directory.file("deferred.sqlite"))
        try connection.execute(script: "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY)")
        let executor = SQLiteExecutor(connection: connection, name: "test-sqlite-owner", deferLimit: deferLimit)
        defer { executor.shutdown() }
        let log = JobLog()
        try await test(executor, { id in
            { connection in
                let run = JobRun(id: id, inBatch: connection.isInBatch, onWorkflowThread: WorkflowThreads.isWorkflowThread)
                try connection.writeTransaction { _ = try connection.execute("INSERT INTO t(id) VALUES (\(id))") }
                log.append(run)
                return run
            }
        }, log)
    }

    private func storedIDs(_ executor: SQLiteExecutor) async throws -> Set<Int> {
        try await executor.perform { connection in
            Set(try connection.query("SELECT id FROM t").compactMap { $0.int("id") })
        }
    }

    @Test func deferredJobsWaitForTheNextQueuedJobAndRunBeforeItInOneCommit() async throws {
        try await withExecutor(deferLimit: .seconds(3600)) { executor, insert, log in
            let deferred = (1...3).map { id in
                Task { try await executor.perform(deferringIf: { true }, insert(id)) }
            }
            #expect(await eventually { executor.deferredJobCount == 3 })
            try await Task.sleep(for: .milliseconds(100))
            #expect(log.runs.isEmpty, "a deferred job ran before anything asked for it")
            let queued = try await executor.perform(insert(4))
            for task in deferred { #expect(try await task.value.inBatch, "a deferred job did not share the batch") }
            #expect(queued.inBatch)
            let order = log.runs.map(\.id)
            #expect(order.count == 4 && order.last == 4, "the deferred jobs did not run before the queued one: \(order)")
            #expect(try await storedIDs(executor) == [1, 2, 3, 4])
        }
    }

    @Test func aDeferredJobRunsByItselfOnceItHasWaitedItsLimit() async throws {
        try await withExecutor(deferLimit: .milliseconds(300)) { executor, insert, log in
            // Alone, with nothing else to share a commit with: held for ever, this would hit the time limit.
            let held = Task { try await executor.perform(deferringIf: { true }, insert(1)) }
            #expect(await eventually { executor.deferredJobCount == 1 || !log.runs.isEmpty })
            #expect(log.runs.isEmpty, "the job ran at once instead of waiting")
            let run = try await held.value
            #expect(!run.inBatch)
            let stored = try await storedIDs(executor)
            #expect(stored == [1])
        }
    }

    @Test func aJobWhoseCallerSaysNoIsNotDeferredAndExpediteRunsTheDeferredOnes() async throws {
        try await withExecutor(deferLimit: .seconds(3600)) { executor, insert, _ in
            _ = try await executor.perform(deferringIf: { false }, insert(1))
            #expect(executor.deferredJobCount == 0)
            let held = Task { try await executor.perform(deferringIf: { true }, insert(2)) }
            #expect(await eventually { executor.deferredJobCount == 1 })
            executor.expediteDeferred()
            _ = try await held.value
            #expect(try await storedIDs(executor) == [1, 2])
        }
    }

    @Test func afterDeferringStopsWhatWaitsRunsAndLaterJobsRunAtOnce() async throws {
        try await withExecutor(deferLimit: .seconds(3600)) { executor, insert, _ in
            let held = Task { try await executor.perform(deferringIf: { true }, insert(1)) }
            #expect(await eventually { executor.deferredJobCount == 1 })
            executor.stopDeferring()
            _ = try await held.value
            _ = try await executor.perform(deferringIf: { true }, insert(2))
            #expect(try await storedIDs(executor) == [1, 2])
        }
    }

    @Test func shuttingTheExecutorDownRunsTheDeferredJobsAndRefusesLaterOnes() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("shutdown.sqlite")
        let connection = try SQLiteConnection(path: path)
        try connection.execute(script: "PRAGMA journal_mode=WAL; CREATE TABLE t(id INTEGER PRIMARY KEY)")
        let executor = SQLiteExecutor(connection: connection, name: "test-sqlite-owner", deferLimit: .seconds(3600))
        let held = Task {
            try await executor.perform(deferringIf: { true }) { connection in
                try connection.writeTransaction { try connection.execute("INSERT INTO t(id) VALUES (7)") }
            }
        }
        #expect(await eventually { executor.deferredJobCount == 1 })
        executor.shutdown()
        #expect(try await held.value == 1)
        await #expect(throws: SystemDatabaseError.self) {
            try await executor.perform(deferringIf: { true }) { connection in try connection.execute("INSERT INTO t(id) VALUES (8)") }
        }
        let reader = try SQLiteConnection(path: path)
        #expect(try reader.query("SELECT id FROM t").compactMap { $0.int("id") } == [7])
        reader.close()
    }

    @Test func aWorkflowThreadsJobQueuesBehindDeferredOnesInsteadOfOvertakingThem() async throws {
        try await withExecutor(deferLimit: .seconds(3600)) { executor, insert, log in
            let held = Task { try await executor.perform(deferringIf: { true }, insert(1)) }
            #expect(await eventually { executor.deferredJobCount == 1 })
            let workflowThreads = WorkflowThreads(threadCount: 2, name: "test-workflow")
            defer { workflowThreads.stop() }
            let job = try await Task(executorPreference: workflowThreads) { try await executor.perform(insert(2)) }.value
            #expect(!job.onWorkflowThread, "the job ran inline, ahead of the deferred one")
            #expect(job.inBatch)
            #expect(try await held.value.inBatch)
            #expect(log.runs.map(\.id) == [1, 2])
        }
    }

    @Test func aJobThatFailsInABatchLeavesTheDeferredJobsBeforeItWritten() async throws {
        try await withExecutor(deferLimit: .seconds(3600)) { executor, insert, _ in
            let held = Task { try await executor.perform(deferringIf: { true }, insert(1)) }
            #expect(await eventually { executor.deferredJobCount == 1 })
            // Row 1 again: a constraint violation, rolled back to the job's savepoint only.
            await #expect(throws: (any Error).self) { try await executor.perform(insert(1)) }
            let run = try await held.value
            #expect(run.inBatch)
            let stored = try await storedIDs(executor)
            #expect(stored == [1])
        }
    }

    @Test func whenSQLiteRollsBackABatchTheJobsBeforeFailAndTheJobsAfterCommitAlone() async throws {
        try await withExecutor(deferLimit: .seconds(3600)) { executor, insert, _ in
            let held = (1...2).map { id in Task { try await executor.perform(deferringIf: { true }, insert(id)) } }
            #expect(await eventually { executor.deferredJobCount == 2 })
            // Queued together: a job that ends the shared transaction (as SQLite does by itself after a
            // full disk or an I/O error), then one more.
            let owner = SQLiteExecutorTestGate()
            let breaking = Task {
                try await executor.perform { connection -> Int in
                    owner.enter()
                    try connection.execute(script: "ROLLBACK")
                    throw SQLiteError(code: 10, message: "disk I/O error (simulated)", statement: nil)
                }
            }
            let after = Task { try await executor.perform(insert(3)) }
            #expect(await eventually { executor.queuedJobCount == 2 || owner.entered })
            executor.expediteDeferred()
            for task in held {
                await #expect(throws: SQLiteError.self, "a job whose write was rolled back reported success") {
                    _ = try await task.value
                }
            }
            await #expect(throws: SQLiteError.self) { _ = try await breaking.value }
            let last = try await after.value
            #expect(last.id == 3 && !last.inBatch)
            let stored = try await storedIDs(executor)
            #expect(stored == [3], "what the jobs were told does not match what is stored")
        }
    }

    @Test func anOutcomeHeldOnSQLiteIsWrittenWhenExpeditedAndNotBefore() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("held.sqlite")
        let database = SQLSystemDatabase(backend: try SQLiteBackend(path: path, deferLimit: .seconds(3600)))
        try await database.migrate()
        _ = try await database.insertWorkflow(WorkflowInsert(
            workflowID: "held", state: .pending, name: "w", inputs: "[]", executorID: "local", applicationVersion: "v1",
            now: 1))
        let mayLinger = Mutex(true)
        let completion = Task {
            try await database.completeWorkflow(
                id: "held", state: .success, output: "1", error: nil, checkpoint: nil, at: 2,
                mayLinger: { mayLinger.withLock { $0 } })
        }
        let reader = try SQLiteConnection(path: path)
        defer { reader.close() }
        func storedStatus() throws -> String? {
            try reader.query("SELECT status FROM workflow_status WHERE workflow_uuid = 'held'").first?.string("status")
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(try storedStatus() == "PENDING", "the outcome was not held")
        // What a caller that begins to wait does: it stops the holding, then writes what is held.
        mayLinger.withLock { $0 = false }
        database.expediteCompletions()
        #expect(try await completion.value)
        #expect(try storedStatus() == "SUCCESS")
        await database.close()
    }

    // MARK: Runs

    /// `withLaunchedRuntime` on `backend` with outcomes (and checkpoints) held for an hour unless
    /// something ends the wait.
    ///
    /// On SQLite any statement of the runtime's own also ends it (a held outcome shares the writer
    /// thread's next commit, and the internal queue is polled every 200 ms), so whether an outcome
    /// is held is checked on PostgreSQL only; SQLite's holding is checked on its executor above.
    private func withOutcomesHeldForAnHour<Workflows: Sendable>(
        _ backend: Backend,
        register: (DBOSRuntime) throws -> Workflows, test: (DBOSRuntime, Workflows) async throws -> Void
    ) async throws {
        try await withLaunchedRuntime(
            backend, pollingInterval: .milliseconds(50),
            configure: {
                $0.stepCheckpointWrites = .beforeNextOperation(within: .seconds(3600))
                $0.outcomeLingerLimit = .seconds(3600)
            },
            register: register, test: test)
    }

    /// A one-step workflow that records when its code has ended, on `backend`, with outcomes
    /// (and checkpoints) held for an hour unless something ends the wait.
    private func withHeldOutcomes(
        _ backend: Backend,
        _ test: (DBOSRuntime, Workflow<Int, Int>, _ codeEnded: @escaping @Sendable (String) -> Bool) async throws -> Void
    ) async throws {
        let ended = Mutex<Set<String>>([])
        try await withOutcomesHeldForAnHour(
            backend,
            register: { runtime in
                try runtime.register("held") { (context: WorkflowContext, value: Int) -> Int in
                    let doubled = try await context.runStep("double") { value * 2 }
                    ended.withLock { _ = $0.insert(context.workflowID) }
                    return doubled
                }
            },
            test: { runtime, workflow in
                try await test(runtime, workflow) { id in ended.withLock { $0.contains(id) } }
            })
    }

    /// The run's state as another process sees it.
    private func storedState(of id: String, in runtime: DBOSRuntime) async throws -> WorkflowState? {
        let client = try await DBOSClient(systemDatabaseURL: runtime.configuration.systemDatabaseURL)
        do {
            let state = try await client.workflowStatus(id: id)?.state
            await client.close()
            return state
        } catch {
            await client.close()
            throw error
        }
    }

    @Test(arguments: Backend.allCases) func anOutcomeNobodyAwaitsIsHeldUntilAResultAsksForIt(backend: Backend) async throws {
        try await withHeldOutcomes(backend) { runtime, workflow, codeEnded in
            let handle = try await runtime.startWorkflow(workflow, input: 21, options: WorkflowOptions(workflowID: "held-1"))
            #expect(await eventually { codeEnded("held-1") })
            try await Task.sleep(for: .milliseconds(300))
            if backend == .postgres {
                #expect(try await storedState(of: "held-1", in: runtime) == .pending, "the outcome was not held")
            }
            #expect(try await handle.result() == 42)
            #expect(try await runtime.workflowStatus(id: "held-1")?.state == .success)
            #expect(try await runtime.listSteps(workflowID: "held-1").map(\.name) == ["double"])
        }
    }

    @Test(arguments: Backend.allCases) func theOutcomeOfARunSomeoneAlreadyAwaitsIsWrittenAtOnce(backend: Backend) async throws {
        let gate = Gate()
        try await withOutcomesHeldForAnHour(
            backend,
            register: { runtime in
                try runtime.register("gated") { (context: WorkflowContext, value: Int) -> Int in
                    let doubled = try await context.runStep("double") { value * 2 }
                    await gate.wait()
                    return doubled
                }
            },
            test: { runtime, workflow in
                let handle = try await runtime.startWorkflow(workflow, input: 5, options: WorkflowOptions(workflowID: "awaited-1"))
                let result = Task { try await handle.result() }
                // The caller waits before the run ends: held for an hour, its outcome would time out here.
                #expect(await eventually { runtime.state.withLock { $0.outcomeWaiters["awaited-1"] != nil } })
                gate.open()
                #expect(try await result.value == 10)
                #expect(try await runtime.workflowStatus(id: "awaited-1")?.state == .success)
            })
    }

    @Test(arguments: Backend.allCases) func aQueuedRunAwaitedBeforeItStartsIsWrittenAtOnceAndAHeldOutcomeFreesItsSlot(backend: Backend) async throws {
        let gate = Gate()
        try await withOutcomesHeldForAnHour(
            backend,
            register: { runtime in
                try runtime.register(queue: WorkflowQueue(name: "one-at-a-time", workerConcurrency: 1))
                return try runtime.register("queued") { (context: WorkflowContext, value: Int) -> Int in
                    let doubled = try await context.runStep("double") { value * 2 }
                    if value == 1 { await gate.wait() }
                    return doubled
                }
            },
            test: { runtime, workflow in
                let queue = WorkflowOptions(queueName: "one-at-a-time")
                var first = queue
                first.workflowID = "queued-first"
                var second = queue
                second.workflowID = "queued-second"
                _ = try await runtime.startWorkflow(workflow, input: 1, options: first)
                let waiting = try await runtime.startWorkflow(workflow, input: 2, options: second)
                let result = Task { try await waiting.result() }
                #expect(try await runtime.workflowStatus(id: "queued-second")?.state == .enqueued)
                #expect(await eventually { runtime.state.withLock { $0.outcomeWaiters["queued-second"] != nil } })
                // The first run's outcome is then held for an hour (nobody awaits it), but not its slot;
                // the second starts, and its outcome, awaited since before it ran, is written at once.
                gate.open()
                #expect(try await result.value == 4)
                if backend == .postgres {
                    #expect(try await runtime.workflowStatus(id: "queued-first")?.state == .pending)
                }
            })
    }

    @Test(arguments: Backend.allCases) func aRunWhoseCodeEndedBeforeItsDeadlineIsNotTimedOutWhileItsOutcomeWaits(backend: Backend) async throws {
        try await withHeldOutcomes(backend) { runtime, workflow, codeEnded in
            let handle = try await runtime.startWorkflow(
                workflow, input: 1, options: WorkflowOptions(workflowID: "deadline-1", timeout: .seconds(3)))
            #expect(await eventually { codeEnded("deadline-1") })
            // Past the deadline, with the outcome still held.
            try await Task.sleep(for: .milliseconds(3500))
            if backend == .postgres {
                #expect(try await storedState(of: "deadline-1", in: runtime) == .pending)
            }
            #expect(try await handle.result() == 2)
            #expect(try await runtime.workflowStatus(id: "deadline-1")?.state == .success)
        }
    }

    @Test func aCancellationThatReachesTheDatabaseWhileTheOutcomeWaitsIsWhatTheRunsHandleReports() async throws {
        // PostgreSQL only: there nothing but a result(), an awaited run or shutdown writes a held
        // outcome, so another process's cancellation surely comes first. The workflow has no step,
        // so its outcome carries no checkpoint (whose write would notice the cancellation itself).
        let ended = Mutex(false)
        try await withOutcomesHeldForAnHour(
            .postgres,
            register: { runtime in
                try runtime.register("stepless") { (_: WorkflowContext, value: Int) -> Int in
                    ended.withLock { $0 = true }
                    return value * 2
                }
            },
            test: { runtime, workflow in
                let handle = try await runtime.startWorkflow(workflow, input: 3, options: WorkflowOptions(workflowID: "cancelled-1"))
                #expect(await eventually { ended.withLock { $0 } })
                try await Task.sleep(for: .milliseconds(100))
                let client = try await DBOSClient(systemDatabaseURL: runtime.configuration.systemDatabaseURL)
                do {
                    try await client.cancelWorkflow(id: "cancelled-1")
                    await client.close()
                } catch {
                    await client.close()
                    throw error
                }
                // The run's code returned 6, but the database says CANCELLED: the handle says so too.
                do {
                    let output = try await handle.result()
                    Issue.record("result() returned \(output) for a run the database has as cancelled")
                } catch let error as WorkflowError {
                    #expect(error.isCancellation, "got \(error)")
                }
                #expect(try await runtime.workflowStatus(id: "cancelled-1")?.state == .cancelled)
            })
    }

    @Test(arguments: Backend.allCases) func shutdownWritesTheOutcomesItHeld(backend: Backend) async throws {
        let setup = try await TestRuntime(backend)
        defer { setup.directory.remove() }
        let ended = Mutex(false)
        var configuration = DBOSConfiguration(systemDatabaseURL: setup.url, applicationVersion: "test")
        configuration.stepCheckpointWrites = .beforeNextOperation(within: .seconds(3600))
        configuration.outcomeLingerLimit = .seconds(3600)
        let runtime = try await DBOSRuntime(configuration: configuration)
        let workflow = try runtime.register("held") { (context: WorkflowContext, value: Int) -> Int in
            let doubled = try await context.runStep("double") { value * 2 }
            ended.withLock { $0 = true }
            return doubled
        }
        try await runtime.launch()
        _ = try await runtime.startWorkflow(workflow, input: 4, options: WorkflowOptions(workflowID: "held-at-shutdown"))
        #expect(await eventually { ended.withLock { $0 } })
        try await Task.sleep(for: .milliseconds(300))
        if backend == .postgres {
            #expect(try await storedState(of: "held-at-shutdown", in: runtime) == .pending)
        }
        await runtime.shutdown(gracePeriod: .seconds(5))

        let client = try await DBOSClient(systemDatabaseURL: setup.url)
        let status = try await client.workflowStatus(id: "held-at-shutdown")
        #expect(status?.state == .success)
        #expect(status?.output == .integer(8))
        #expect(try await client.listSteps(workflowID: "held-at-shutdown").map(\.name) == ["double"])
        await client.close()
    }
}

/// Records that a job began on the owner thread.
private final class SQLiteExecutorTestGate: Sendable {
    private let state = Mutex(false)
    var entered: Bool { state.withLock { $0 } }
    func enter() { state.withLock { $0 = true } }
}
