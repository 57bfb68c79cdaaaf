@testable import DBOS
import DBOSTestSupport
import Foundation
import Synchronization
import Testing

/// On PostgreSQL the outcome of a run nobody in the process awaits may wait up to the
/// step-checkpoint delay to share a commit with other outcomes (`WriteBatcher.submit(_:lingeringIf:)`,
/// `SystemDatabase.completeWorkflow(mayLinger:)`). These tests hold outcomes for an hour, so
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

    // MARK: Runs

    /// `withLaunchedRuntime` on PostgreSQL with outcomes (and checkpoints) held for an hour unless
    /// something ends the wait.
    private func withOutcomesHeldForAnHour<Workflows: Sendable>(
        register: (DBOSRuntime) throws -> Workflows, test: (DBOSRuntime, Workflows) async throws -> Void
    ) async throws {
        try await withLaunchedRuntime(
            .postgres, pollingInterval: .milliseconds(50),
            configure: {
                $0.stepCheckpointWrites = .beforeNextOperation(within: .seconds(3600))
                $0.outcomeLingerLimit = .seconds(3600)
            },
            register: register, test: test)
    }

    /// A one-step workflow that records when its code has ended, on PostgreSQL, with outcomes
    /// (and checkpoints) held for an hour unless something ends the wait.
    private func withHeldOutcomes(
        _ test: (DBOSRuntime, Workflow<Int, Int>, _ codeEnded: @escaping @Sendable (String) -> Bool) async throws -> Void
    ) async throws {
        let ended = Mutex<Set<String>>([])
        try await withOutcomesHeldForAnHour(
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

    @Test func anOutcomeNobodyAwaitsIsHeldUntilAResultAsksForIt() async throws {
        try await withHeldOutcomes { runtime, workflow, codeEnded in
            let handle = try await runtime.startWorkflow(workflow, input: 21, options: WorkflowOptions(workflowID: "held-1"))
            #expect(await eventually { codeEnded("held-1") })
            try await Task.sleep(for: .milliseconds(300))
            #expect(try await runtime.workflowStatus(id: "held-1")?.state == .pending, "the outcome was not held")
            #expect(try await handle.result() == 42)
            #expect(try await runtime.workflowStatus(id: "held-1")?.state == .success)
            #expect(try await runtime.listSteps(workflowID: "held-1").map(\.name) == ["double"])
        }
    }

    @Test func theOutcomeOfARunSomeoneAlreadyAwaitsIsWrittenAtOnce() async throws {
        let gate = OpenableGate()
        try await withOutcomesHeldForAnHour(
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

    @Test func aQueuedRunAwaitedBeforeItStartsIsWrittenAtOnceAndAHeldOutcomeFreesItsSlot() async throws {
        let gate = OpenableGate()
        try await withOutcomesHeldForAnHour(
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
                #expect(try await runtime.workflowStatus(id: "queued-first")?.state == .pending)
            })
    }

    @Test func aRunWhoseCodeEndedBeforeItsDeadlineIsNotTimedOutWhileItsOutcomeWaits() async throws {
        try await withHeldOutcomes { runtime, workflow, codeEnded in
            let handle = try await runtime.startWorkflow(
                workflow, input: 1, options: WorkflowOptions(workflowID: "deadline-1", timeout: .seconds(3)))
            #expect(await eventually { codeEnded("deadline-1") })
            // Past the deadline, with the outcome still held.
            try await Task.sleep(for: .milliseconds(3500))
            #expect(try await runtime.workflowStatus(id: "deadline-1")?.state == .pending)
            #expect(try await handle.result() == 2)
            #expect(try await runtime.workflowStatus(id: "deadline-1")?.state == .success)
        }
    }

    @Test func shutdownWritesTheOutcomesItHeld() async throws {
        let setup = try await TestRuntime(.postgres)
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
        #expect(try await runtime.workflowStatus(id: "held-at-shutdown")?.state == .pending)
        await runtime.shutdown(gracePeriod: .seconds(5))

        let client = try await DBOSClient(systemDatabaseURL: setup.url)
        let status = try await client.workflowStatus(id: "held-at-shutdown")
        #expect(status?.state == .success)
        #expect(status?.output == .integer(8))
        #expect(try await client.listSteps(workflowID: "held-at-shutdown").map(\.name) == ["double"])
        await client.close()
    }
}

/// Holds workflow code until opened; its wait is not a durable operation.
private final class OpenableGate: Sendable {
    private let isOpen = Mutex(false)

    func open() { isOpen.withLock { $0 = true } }

    func wait() async {
        while !isOpen.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(10)) }
    }
}
